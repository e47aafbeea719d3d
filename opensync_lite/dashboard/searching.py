"""The Search and Files pages: what happened in which session, and which sessions touched a file.
Reads through ``queries``; no SQL here."""

from flask import current_app, g, render_template, request

from .. import queries, schemas
from ..search import WHERE
from ..semantic import Unavailable
from .views import _filter_options, _given, _query, _session_page, bp

WHERE_LABELS = {"": "Everywhere", "prompts": "Prompts", "answers": "Answers", "tools": "Tool calls and output",
                "thinking": "Thinking"}
FOUND_IN_LABELS = {"title": "title", "prompt": "prompt", "answer": "answer", "tool": "tool", "thinking": "thinking",
                   "message": "message", "session": "title"}


TYPE_LABELS = {"fulltext": "Words", "semantic": "Meaning", "hybrid": "Words and meaning"}


@bp.get("/search")
def search():
    """Sessions matching the words (or the meaning: ``type``), one per session with its best
    matches, a page at a time."""
    raw = _given(request.args)
    hits, more, args, unavailable = [], False, {}, None
    if raw.get("q"):
        args = schemas.load(schemas.search_query, raw)
        try:
            hits, more = queries.search(g.user_id, args["q"], limit=args["limit"], source=args.get("source"),
                                        where=args.get("where"), offset=args["offset"], kind=args["type"])
        except Unavailable as err:  # no model here: the page says what to install, words still work
            unavailable = err.message
    offset = args.get("offset", 0)
    return render_template("dashboard/search.html", args=args, q=raw.get("q", ""), hits=hits, offset=offset,
                           next_offset=offset + len(hits) if more else None, where_labels=WHERE_LABELS,
                           where_choices=("", *WHERE), found_in_labels=FOUND_IN_LABELS, options=_filter_options(),
                           type_labels=TYPE_LABELS, search_type=args.get("type") or raw.get("type", "fulltext"),
                           unavailable=unavailable)


def editor_url(path):
    """The link that opens ``path`` in the user's editor (OPENSYNC_EDITOR_URL, {path} in it),
    or None for a path that is not absolute (there is no file to open)."""
    template = current_app.config.get("OPENSYNC_EDITOR_URL") or ""
    if "{path}" not in template or not path.startswith("/"):
        return None
    return template.replace("{path}", path)


def by_project(files):
    """The files grouped by project, the project with the most touched file first; files in no
    project (absolute paths outside any session's folder) last."""
    groups = {}
    for f in files:
        groups.setdefault(f["project"] or "", []).append(f)
    return sorted(groups.items(), key=lambda item: (item[0] == "", -item[1][0]["sessions"], item[0]))


@bp.get("/files")
def files():
    """The most touched files, or the files at ``path`` (a file name or any end of a path finds
    it) and the sessions that touched them; files grouped by project."""
    args = _query(schemas.files_query)
    path, prefix = args.get("file"), args["file_prefix"]
    page = {"rows": [], "total": 0, "next_cursor": None, "previous_cursor": None, "touched": {}}
    if path:
        page = _session_page(args)
        page["touched"] = queries.files_of([row["id"] for row in page["rows"]], g.user_id, path, prefix)
    found = queries.touched_files(g.user_id, path, prefix, args["files_limit"])
    return render_template("dashboard/files.html", path=path, prefix=prefix, files_limit=args["files_limit"],
                           files=found, groups=by_project(found), editor_url=editor_url, **page)
