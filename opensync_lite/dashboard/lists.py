"""The sessions list: one page of the filtered sessions with its place in the list ("51–100
of 442"), the totals of the whole filtered set, a star per row, subagents folded under their
parents unless asked for, and the sessions still running marked."""

import time

from flask import g, redirect, render_template, request, url_for

from .. import ingest, queries, schemas
from . import login
from .views import _cursor, _filter_options, _given, _own_session, _remembered, bp

PAGE_SIZES = (25, 50, 100, 200)
# A session with activity this recent and no end reason is taken to be still running.
RUNNING_MS = 10 * 60 * 1000


def list_query():
    """The list's query: subagents folded unless the URL says otherwise or asks for one
    parent's subagents. Returns (the loaded query, its query string as the page's links and
    exports should carry it)."""
    given = _given(request.args)
    wire = dict(given)
    if "subagents" not in given and "parent" not in given:
        wire["subagents"] = "fold"
    return schemas.load(schemas.sessions_query, wire), wire


@bp.get("/sessions")
def sessions():
    args, wire = list_query()
    page_size = args["limit"]
    if args["last"]:  # the last page holds what the pages before it leave, as page numbers would
        args = {**args, "limit": queries.count_sessions(g.user_id, args) % page_size or page_size}
    rows, total, next_key, previous_key = queries.session_page(g.user_id, args)
    first = 0
    if rows and (args["after"] is not None or args["before"] is not None or args["last"]):
        first = queries.rows_before(g.user_id, args, args["sort"], args["descending"],
                                    (rows[0][args["sort"]], rows[0]["id"]))
    rollups = queries.subagent_rollups(g.user_id, [row["external_id"] for row in rows])
    now = int(time.time() * 1000)
    for row in rows:
        row["below"] = rollups.get(row["external_id"])  # its subagents, every level down
        row["subagent_count"] = row["below"]["subagents"] if row["below"] else 0
        row["test"] = queries.is_connection_test(row)  # one post, never ended, never running
        row["running"] = not row["test"] and row["end_reason"] is None and now - (row["updated_at"] or 0) < RUNNING_MS
    totals_filters = {key: value for key, value in args.items() if key != "subagents"}
    totals = _remembered("list-totals", totals_filters, lambda: queries.list_totals(g.user_id, totals_filters))
    return render_template(
        "dashboard/sessions.html", args=args, wire=wire, rows=rows, total=total, first=first,
        next_cursor=_cursor(args, next_key), previous_cursor=_cursor(args, previous_key),
        totals=totals, folded=args.get("subagents") == "fold" and not args.get("parent"),
        page_size=page_size, page_sizes=sorted({*PAGE_SIZES, page_size}), options=_filter_options(), sort_names={v: k for k, v in schemas.SORTS.items()})


@bp.post("/sessions/<int:session_id>/star")
def star_session(session_id):
    """The list's star on one row: sets (or clears) the star and goes back to the same page."""
    _own_session(session_id)
    starred = request.form.get("starred") == "true"
    ingest.curate(g.user_id, session_id, {"starred": starred})
    return redirect(login.safe_next(request.form.get("next")) or url_for("dashboard.sessions"))
