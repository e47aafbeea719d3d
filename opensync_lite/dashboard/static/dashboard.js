// opensync-lite dashboard: small enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Whether any row is ticked (a phone shows the bulk bar only then).
  function noteTicked() {
    document.documentElement.classList.toggle("has-ticked", !!document.querySelector("input[name=id][form=bulk]:checked"));
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("input[type=checkbox]")) setTimeout(noteTicked);
  });

  // Filter forms submit as soon as a choice changes (the Apply button stays for typing).
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function (event) {
      if (event.target.matches("select, input[type=date]")) form.requestSubmit();
    });
  });

  // On a phone, filter forms fold behind their "Filters" button (the CSS shows the button only there).
  document.querySelectorAll(".filters-toggle[aria-controls]").forEach(function (button) {
    var form = document.getElementById(button.getAttribute("aria-controls"));
    if (!form) return;
    button.hidden = false;
    form.classList.add("collapsed");
    button.addEventListener("click", function () {
      var open = form.classList.toggle("collapsed") === false;
      button.setAttribute("aria-expanded", String(open));
      if (open) { var first = form.querySelector("select, input:not([type=hidden])"); if (first) first.focus(); }
    });
    // A link into the folded form (the overview's "Custom" range) opens it at its fields.
    document.querySelectorAll('a[href^="#"]').forEach(function (link) {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target || !form.contains(target)) return;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        form.classList.remove("collapsed");
        button.setAttribute("aria-expanded", "true");
        var field = target.querySelector("input, select");
        if (field) field.focus();
      });
    });
  });

  // A one-time sign-in link goes straight through.
  var now = document.querySelector("form[data-submit-now]");
  if (now) now.submit();

  // Copy buttons.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var text = document.getElementById(button.dataset.copy).textContent;
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Times in the reader's own time zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (!isNaN(date)) {
        node.title = node.textContent;
        // Dense lists leave the year out when it is this year's.
        var short = node.hasAttribute("data-short");
        var options = short ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" } : { dateStyle: "medium", timeStyle: "short" };
        if (short && date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
        node.textContent = date.toLocaleString(undefined, options);
      }
    });
  }
  localTimes(document);

  // "Tick all" in a table head ticks the rows' boxes (shown only when this script runs).
  document.addEventListener("change", function (event) {
    if (!event.target.matches("[data-select-all]")) return;
    event.target.closest("table").querySelectorAll("tbody input[type=checkbox]").forEach(function (box) {
      box.checked = event.target.checked;
    });
  });
  document.querySelectorAll("[data-select-all]").forEach(function (box) { box.hidden = false; });

  // Chart tooltips: hover and keyboard focus show them (CSS); a first tap shows one, a second
  // tap on the same bar opens its sessions; Escape hides the one shown.
  var pointer = "mouse";
  document.addEventListener("pointerdown", function (event) { pointer = event.pointerType; }, true);
  document.addEventListener("click", function (event) {
    var bar = event.target.closest(".col a.bar");
    var shown = document.querySelector(".col.show-tip");
    if (shown && (!bar || bar.parentNode !== shown)) shown.classList.remove("show-tip");
    if (bar && pointer === "touch" && !bar.parentNode.classList.contains("show-tip")) {
      event.preventDefault();
      bar.parentNode.classList.add("show-tip");
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll(".col.show-tip").forEach(function (col) { col.classList.remove("show-tip"); });
    var focused = document.activeElement;
    if (focused && focused.matches(".col a.bar")) focused.parentNode.classList.add("hide-tip");
  });
  document.addEventListener("focusout", function (event) {
    if (event.target.matches && event.target.matches(".col a.bar")) event.target.parentNode.classList.remove("hide-tip");
  });

  // Keys: `/` search, `j` / `k` through a list's rows, `?` the list of keys. Never while typing.
  var ROWS = "table.sessions tbody tr, ul.recent > li, ol.hits > li, table.files tbody tr";
  function typing(target) {
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }
  function moveRow(step) {
    var rows = Array.prototype.slice.call(document.querySelectorAll(ROWS));
    if (!rows.length) return;
    var current = rows.findIndex(function (row) { return row.classList.contains("row-active"); });
    if (current === -1) current = rows.findIndex(function (row) { return row.contains(document.activeElement); });
    var next = current === -1 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, current + step));
    rows.forEach(function (row) { row.classList.remove("row-active"); });
    var row = rows[next];
    row.classList.add("row-active");
    var link = row.querySelector("a.row-link") || row.querySelector("a[href]");
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var keys = document.getElementById("keys");
    if (keys && keys.open) return;
    if (event.key === "/") {
      var box = document.querySelector("input[type=search]");
      var page = document.querySelector('.topbar nav a[href$="/search"]');
      if (box) { event.preventDefault(); box.focus(); box.select(); }
      else if (page) { event.preventDefault(); location.href = page.href; }
    } else if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      moveRow(event.key === "j" ? 1 : -1);
    } else if (event.key === "?" && keys) {
      event.preventDefault();
      keys.showModal();
    }
  });

  // Live pages poll a cheap version endpoint (304 while nothing changed) and, when the data
  // changed, fetch the same URL and swap the live regions: filters and scroll stay as they are.
  var liveUrl = document.body.dataset.live;
  if (!liveUrl) return;
  var version = document.body.dataset.version || null;
  function refresh() {
    return fetch(location.href, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) return;
      return response.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region]").forEach(function (region) {
          var replacement = fresh.getElementById(region.id);
          if (replacement) {
            // Rows the reader ticked stay ticked when the list is redrawn.
            var ticked = Array.prototype.map.call(region.querySelectorAll("input[name=id]:checked"), function (box) { return box.value; });
            replacement.querySelectorAll("input[name=id]").forEach(function (box) { box.checked = ticked.indexOf(box.value) !== -1; });
            replacement.querySelectorAll("[data-select-all]").forEach(function (box) { box.hidden = false; });
            localTimes(replacement);
            region.replaceWith(document.adoptNode(replacement));
          }
        });
      });
    });
  }
  function poll() {
    if (document.hidden) return;
    var headers = version ? { "If-None-Match": '"' + version + '"' } : {};
    fetch(liveUrl, { credentials: "same-origin", headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status !== 200) return;
      return response.json().then(function (body) {
        var changed = body.version !== version;
        version = body.version;
        if (changed) return refresh();
      });
    }).catch(function () {});
  }
  poll();
  setInterval(poll, 3000);
})();
