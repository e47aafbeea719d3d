// opensync-lite session reader: copy buttons, "expand all", and opening the fold a link
// points into. The page reads the same without it (dashboard.js does the copying).
(function () {
  "use strict";
  var reader = document.querySelector(".conversation");
  document.querySelectorAll("button.copy[data-copy][hidden]").forEach(function (button) { button.hidden = false; });
  if (!reader) return;

  var expand = reader.querySelector("[data-expand-all]");
  if (expand) {
    expand.hidden = false;
    expand.addEventListener("click", function () {
      var folds = reader.querySelectorAll(".turns details");
      var open = expand.getAttribute("aria-pressed") !== "true";
      folds.forEach(function (node) { node.open = open; });
      reader.querySelectorAll(".turns .fold-toggle").forEach(function (box) { box.checked = open; });
      expand.setAttribute("aria-pressed", String(open));
      expand.textContent = open ? "Collapse all" : "Expand all";
    });
  }

  // A link to a message inside a folded tool call or a hidden step opens it.
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (!target || !reader.contains(target)) return;
    var only = document.getElementById("prompts-only");
    if (only && only.checked && target.closest(".steps, .answer")) only.checked = false;
    for (var node = target; node && node !== reader; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    // A call's anchors (its own message's and its result's) sit beside its <details>.
    var row = target.closest(".tool-row");
    var fold = row ? row.querySelector("details") : target.querySelector("details");
    if (fold) fold.open = true;
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", reveal);
  reveal();
})();
