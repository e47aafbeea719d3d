"""The dashboard's pages. Each view loads its query string through a schema, reads through
``queries`` and renders a template; writes go through ``ingest`` and ``auth``. No SQL here."""

import json
from datetime import datetime, timezone

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException

from .. import db, errors, evals, export, ingest, queries, schemas, shares
from ..errors import ApiError
from ..heavy import heavy, limited
from . import hosts, login, reader
from . import sources as src
from .formatting import FILTERS, percent, plural
from .remember import remembered

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")
bp.before_request(hosts.check)
bp.before_request(db.prepare_request)
bp.before_request(login.guard)
bp.after_request(login.save)
bp.url_value_preprocessor(db.ids_in_range)
for _name, _filter in FILTERS.items():
    bp.add_app_template_filter(_filter, f"os_{_name}")

LIVE_PAGES = {"dashboard.overview", "dashboard.sessions"}
# Defence in depth behind escaping: no inline script, nothing from elsewhere, no framing.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@bp.after_request
def _headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")  # pages hold private data
    return response


@bp.get("/favicon.ico")
def favicon():
    """Tools and browsers ask for /favicon.ico whatever a page links: the same SVG icon."""
    response = bp.send_static_file("favicon.svg")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.context_processor
def _globals():
    return {"csrf_token": login.csrf_token, "notices": login.take_notices, "describe_source": src.describe,
            "known_sources": src.KNOWN,
            "signed_in": g.get("user_id") is not None, "live": request.endpoint in LIVE_PAGES,
            "page_url": _page_url, "percent": percent, "live_version": _live_version,
            "eval_statuses": schemas.EVAL_STATUSES, "project_key": _project_key}


def _project_key(value):
    """The project a ``project`` filter names, as its option's value (a name can mean a folder)."""
    return value and queries.user_projects(g.user_id).resolve(value)


def _live_version():
    """The user's data version, read once per request."""
    if "data_version" not in g:
        g.data_version = queries.data_version(g.user_id, reuse=True)  # the projects may have read it
    return g.data_version


def _remembered(page, args, compute):
    """``compute()`` for this page, user and query, reused while the data is unchanged (and,
    for pages that default to "the last N days", on the same UTC day, as the stats count days)."""
    today = datetime.now(timezone.utc).date().isoformat()
    key = (page, g.user_id, tuple(sorted((k, repr(v)) for k, v in args.items())), today)
    return remembered(key, _live_version(), compute)


def _filter_options():
    return _remembered("options", {}, lambda: queries.filter_options(g.user_id))


def _given(values, strip=False):
    """The fields a GET or POST form really filled in: an empty one counts as not given."""
    return {key: value.strip() if strip else value for key, value in values.items() if value.strip()}


def _query(schema):
    """The query string through ``schema``."""
    return schemas.load(schema, _given(request.args))


def _page_url(**changes):
    """This page's URL with some parameters changed (None removes one)."""
    merged = {**_given(request.args), **changes}
    return url_for(request.endpoint, **{**request.view_args, **{k: v for k, v in merged.items() if v is not None}})


def _error_page(status, message, fields=None, headers=None):
    # Notices wait for the next real page (and outside the blueprint, see app.py, there are none).
    page = render_template("dashboard/error.html", status=status, message=message, fields=fields or {}, notices=list,
                           live=False)
    response = _headers(current_app.make_response((page, status)))
    response.headers.update(headers or {})
    return response


@bp.errorhandler(ApiError)
def _api_error(err):
    return _error_page(err.status, err.message, err.fields, err.headers)


@bp.errorhandler(HTTPException)
def error_page(err):
    """An HTTP error as the dashboard's page (also for paths no route matched, see app.py)."""
    if request.endpoint == "dashboard.live":
        return jsonify(error=err.description), err.code
    response = _error_page(err.code or 500, err.description or err.name)
    if err.code == 405 and err.valid_methods:
        response.headers["Allow"] = ", ".join(err.valid_methods)
    return response


@bp.errorhandler(Exception)
def _unexpected(err):
    errors.log.exception("unhandled error")  # the details go to the log, never to the page
    if request.endpoint == "dashboard.live":
        return errors.error_response(500, "Internal server error.")
    return _error_page(500, "Something went wrong on the server; the details are in its log.")


FILTER_NAMES = tuple(schemas.FiltersQuery._declared_fields)


def _unfiltered(args):
    # The overview always leaves connection tests out: that alone is no filter.
    return all(args.get(name) is None for name in FILTER_NAMES if name != "tests")


# --- sessions ---------------------------------------------------------------------------------

def _cursor(args, key):
    return key and schemas.encode_cursor(args["sort"], args["descending"], key)


def _session_page(args):
    """The template values of one page of the sessions ``args`` select."""
    rows, total, next_key, previous_key = queries.session_page(g.user_id, args)
    return {"rows": rows, "total": total, "next_cursor": _cursor(args, next_key),
            "previous_cursor": _cursor(args, previous_key)}


@bp.post("/sessions/bulk")
def bulk_curate():
    """Star, unstar, grade or tag every ticked session of the list at once."""
    back = login.safe_next(request.form.get("next")) or url_for("dashboard.sessions")
    ticked = request.form.getlist("id")
    try:
        form = schemas.load(schemas.bulk_form, {**_given(request.form, strip=True), **({"id": ",".join(ticked)} if ticked else {})})
    except ApiError as err:  # nothing ticked, no status chosen: say so on the list itself
        login.notify(" ".join(message for messages in err.fields.values() for message in messages) or err.message)
        return redirect(back)
    action = form["action"]
    if action == "tag":
        changed = ingest.curate_many(g.user_id, form["ids"], {}, add_tags=[form["tag"]])
        done = f"Tagged #{form['tag']}"
    elif action == "grade":
        status = None if form["eval_status"] == "none" else form["eval_status"]
        changed = ingest.curate_many(g.user_id, form["ids"], {"eval_status": status})
        done = f"Marked {status}" if status else "Cleared the eval status of"
    else:
        changed = ingest.curate_many(g.user_id, form["ids"], {"starred": action == "star"})
        done = "Starred" if action == "star" else "Unstarred"
    login.notify(f"{done} {changed} session{'' if changed == 1 else 's'}.")
    return redirect(back)


# --- evals export -----------------------------------------------------------------------------

def _evals_args():
    """The evals page's query: the session filters and the export's options (ticked sessions
    arrive as repeated `id`)."""
    raw = {k: v for k, v in _given(request.args).items() if k in EVALS_KEYS}  # the list's other fields come along
    if request.args.getlist("id"):
        raw["ids"] = ",".join(request.args.getlist("id"))
    if "options" in request.args:  # the options form was sent: an unticked box sends nothing
        for option in ("system", "tools", "anonymize", "redact"):
            raw[option] = "true" if request.args.get(option) else "false"
    return raw, schemas.load(schemas.evals_query, raw)


def _wire_names(schema):
    """The query-string names a schema takes."""
    return {field.data_key or name for name, field in schema._declared_fields.items()}


EVALS_KEYS = _wire_names(schemas.EvalsQuery)
FILTER_NAMES_WIRE = _wire_names(schemas.FiltersQuery)


@bp.get("/export/evals")
@heavy
def evals_export():
    raw, args = _evals_args()
    preview = evals.Export(g.user_id, args).preview()
    list_args = {k: v for k, v in raw.items() if k in FILTER_NAMES_WIRE}
    return render_template("dashboard/evals.html", args=args, raw=raw, preview=preview, formats=evals.FORMATS,
                           grains=evals.GRAINS, to_json=_pretty_json, list_args=list_args)


@bp.get("/export/evals/download")
@heavy
def evals_download():
    _, args = _evals_args()
    return evals.Export(g.user_id, args).download()


@bp.get("/sessions/export.<any(csv, json):fmt>")
@heavy
def export_sessions(fmt):
    """Exactly the filtered list the page shows, every page of it."""
    args = _query(schemas.sessions_query)
    rows = queries.iter_sessions(g.user_id, args, sort=args["sort"], descending=args["descending"])
    return export.sessions_download(rows, fmt)


def _own_session(session_id):
    row = queries.find_session(g.user_id, session_id=session_id)
    if row is None:
        abort(404, "No such session.")
    return row


def _part(session_id, total):
    """(the part of the conversation asked for by ``?part=``, 1-based; its first message's
    offset): a 400 for no whole number, a 404 past the last part."""
    asked = request.args.get("part", "1")
    if not asked.isascii() or not asked.isdigit() or len(asked) > 12 or int(asked) < 1:
        abort(400, "part: a whole number from 1.")
    part, parts = int(asked), max(1, -(-total // reader.PART_MESSAGES))
    if part > parts:
        abort(404, f"This session's conversation has {parts} part{'s' if parts > 1 else ''}.")
    return part, parts


@bp.get("/sessions/<int:session_id>")
def session_detail(session_id):
    row = _own_session(session_id)
    children, child_count, _, _ = queries.list_sessions(g.user_id, {"parent": row["external_id"]}, limit=50)
    # A long session is shown PART_MESSAGES messages at a time: reading and rendering 50 000 took 16 s.
    total = queries.message_count(session_id)
    part, parts = _part(session_id, total)
    offset = (part - 1) * reader.PART_MESSAGES

    def link(number):
        return url_for("dashboard.session_detail", session_id=session_id, part=number) + "#conversation-head"

    shown = {"first": offset + 1, "last": min(total, offset + reader.PART_MESSAGES), "total": total,
             "part": part, "parts": parts, "previous": link(part - 1) if part > 1 else None,
             "next": link(part + 1) if part < parts else None} if parts > 1 else None
    conversation = _remembered("conversation", {"id": session_id, "part": part}, lambda: reader.render_conversation(
        row, queries.session_messages(session_id, reader.PART_MESSAGES, offset), children if child_count <= len(children) else
        queries.list_sessions(g.user_id, {"parent": row["external_id"]}, limit=reader.MAX_CHILDREN)[0], shown))
    parent = row["parent_external_id"] and queries.find_session(g.user_id, external_id=row["parent_external_id"])
    return render_template("dashboard/session.html", session=queries.with_curation([row])[0],
                           resume=reader.resume_command(row), branch=reader.git_branch(row),
                           conversation=conversation, children=children, child_count=child_count, parent=parent,
                           subagents=queries.subagent_totals(g.user_id, row["external_id"]) if child_count else None,
                           files=queries.files_of([session_id], g.user_id)[session_id],
                           shares=shares.active(g.user_id, session_id), sharing=shares.state())


@bp.post("/sessions/<int:session_id>/curate")
def curate_session(session_id):
    """The session page's star, eval status, tags (comma-separated) and note, all at once."""
    _own_session(session_id)
    form = request.form
    fields = schemas.load(schemas.session_patch, {
        "starred": form.get("starred") == "on",
        "evalStatus": form.get("evalStatus") or None,
        "tags": [tag.strip() for tag in form.get("tags", "").split(",") if tag.strip()],
        "note": form.get("note", "").strip() or None,
    })
    ingest.curate(g.user_id, session_id, fields)
    login.notify("Saved.")
    return redirect(url_for("dashboard.session_detail", session_id=session_id))


def _pretty_json(value):
    return json.dumps(value, ensure_ascii=False, indent=2)


@bp.get("/sessions/<int:session_id>/download.<any(markdown, json, html):fmt>")
@heavy
def download_session(session_id, fmt):
    row = _own_session(session_id)
    return export.session_download(row, queries.session_messages(session_id), fmt)


# --- share links ------------------------------------------------------------------------------

@bp.post("/sessions/<int:session_id>/shares")
def create_share(session_id):
    _own_session(session_id)
    allowed, loopback = shares.state()
    if not allowed:
        abort(403, shares.OFF)
    if loopback and request.form.get("confirm") != "yes":
        login.notify("This server listens on this computer only, so nobody else can open a share link. "
                     "Tick the box to make one anyway (for a tunnel or a proxy), or download the HTML file instead.")
        return redirect(url_for("dashboard.session_detail", session_id=session_id) + "#share")
    slug = shares.create(g.user_id, session_id)
    login.notify(f"Share link made: {shares.url(slug)}")
    return redirect(url_for("dashboard.session_detail", session_id=session_id) + "#share")


@bp.post("/shares/<int:share_id>/revoke")
def revoke_share(share_id):
    if not shares.revoke(g.user_id, share_id):
        abort(404, "No such active share link.")
    login.notify("Share link revoked: it now answers 404.")
    return redirect(login.safe_next(request.form.get("next")) or url_for("dashboard.settings"))


@bp.get("/s/<slug>")
def shared(slug):
    """A shared session, without sign-in: redacted, as the HTML download is."""
    found = current_app.config["OPENSYNC_SHARING"] and shares.opened(slug)
    if not found:
        abort(404, "Not found.")
    user_id, session_id = found
    row = queries.find_session(user_id, session_id=session_id)
    # Anyone with a link can ask: its owner's shares are bounded like their own exports.
    response = limited(("shared", user_id),
                       lambda: export.session_download(row, queries.session_messages(session_id), "html"))
    response.headers.pop("Content-Disposition")  # shown, not downloaded
    response.headers.update({"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                             "Cache-Control": "no-store",
                             # frame-ancestors works only as a header, not in the page's own meta tag
                             "Content-Security-Policy": export.STANDALONE_CSP + "; frame-ancestors 'none'"})
    return response


@bp.post("/sessions/<int:session_id>/delete")
def delete_session(session_id):
    row = _own_session(session_id)
    ingest.delete_session(g.user_id, session_id)
    login.notify(f"Deleted “{row['title'] or row['external_id']}” and its {plural(row['message_count'], 'message')}.")
    return redirect(url_for("dashboard.sessions"))


# --- live refresh -----------------------------------------------------------------------------

@bp.get("/live")
def live():
    """The user's data version; 304 while it is unchanged, so polling costs one index read."""
    version = _live_version()
    response = jsonify(version=version)
    response.set_etag(version)
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)
