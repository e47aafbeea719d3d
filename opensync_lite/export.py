"""Sessions as files: JSON, JSON Lines, Markdown and CSV. Rows come from queries; the
wire shape from responses; this module only lays them out."""

import csv
import io
import json
import re
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from urllib.parse import quote

from flask import Response, render_template, stream_with_context

from . import __version__, responses
from .redact import Redactor

CSV_COLUMNS = [
    ("ID", "id"), ("External ID", "externalId"), ("Source", "source"), ("Title", "title"),
    ("Project", "projectName"), ("Project Path", "projectPath"), ("Model", "model"),
    ("Provider", "provider"), ("Prompt Tokens", "promptTokens"), ("Completion Tokens", "completionTokens"),
    ("Total Tokens", "totalTokens"), ("Cache Write Tokens", "cacheWriteTokens"),
    ("Cache Read Tokens", "cacheReadTokens"), ("Cost", "cost"), ("Duration (ms)", "durationMs"),
    ("Messages", "messageCount"), ("Tool Calls", "toolCallCount"), ("Created", "createdAt"), ("Updated", "updatedAt"),
]


# Lone UTF-16 surrogates can be stored (inside `extra` and part content, kept exactly) but not
# encoded as UTF-8: JSON output writes them as \u escapes (exact), other formats as U+FFFD.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Spreadsheets run a cell that starts with one of these as a formula (OWASP's CSV injection rule).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def to_json(value, **kwargs):
    """JSON text of ``value`` that can always be sent as UTF-8."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def printable(text):
    return LONE_SURROGATE.sub("\ufffd", text)


def one_line(text):
    """A heading or table cell cannot hold a line break: one would start a new section."""
    return re.sub(r"[\r\n]+", " ", str(text))


def iso(ms):
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")


def session_json(session, messages):
    return to_json(
        {"session": responses.session_out.dump(session), "messages": responses.message_out.dump(messages, many=True)},
        indent=2,
    )


def session_jsonl(session, messages):
    lines = [{"type": "session", **responses.session_out.dump(session)}]
    lines += [{"type": "message", **m} for m in responses.message_out.dump(messages, many=True)]
    return "".join(to_json(line) + "\n" for line in lines)


def _cell(value):
    return one_line(value if value is not None else "").replace("|", "\\|")


def session_markdown(session, messages):
    title = one_line(session["title"] or session["external_id"])
    out = [f"# {title}", "", "| Property | Value |", "| --- | --- |"]
    props = [
        ("Source", session["source"] or "unknown"),
        ("Project", session["project_name"] or session["project_path"] or ""),
        ("Model", session["model"] or ""),
        ("Tokens", f"{session['total_tokens']} ({session['prompt_tokens']} prompt, {session['completion_tokens']} completion)"),
        ("Cost", f"${session['cost']:.4f}"),
        ("Date", iso(session["created_at"])),
        ("Session", session["external_id"]),
    ]
    out += [f"| {name} | {_cell(value)} |" for name, value in props]
    for m in messages:
        out += ["", f"## {m['role'].title()}", ""]
        if m["text_content"]:
            out.append(m["text_content"])
        for part in m["parts"]:
            if part["type"] == "text" and isinstance(part["content"], str):
                if part["content"] != m["text_content"]:
                    out += ["", part["content"]]
                continue
            out += ["", f"**{one_line(part['type'])}**", "", "```json", to_json(part["content"], indent=2), "```"]
    return printable("\n".join(out) + "\n")


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        value = printable(value)
        return "'" + value if value.startswith(FORMULA_START) else value
    return value


def sessions_csv(rows):
    """Stream CSV text, one chunk per row, never the whole file in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush():
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([header for header, _ in CSV_COLUMNS])
    yield flush()
    for row in rows:
        wire = responses.session_out.dump(row)
        wire["createdAt"], wire["updatedAt"] = iso(row["created_at"]), iso(row["updated_at"])
        writer.writerow([_csv_cell(wire[key]) for _, key in CSV_COLUMNS])
        yield flush()


def sessions_json(rows):
    """Stream a JSON array of sessions."""
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + to_json(responses.session_out.dump(row))
    yield "]"


@cache
def _stylesheet():
    css = resources.files(__package__).joinpath("dashboard/static/dashboard.css").read_text(encoding="utf-8")
    return css.replace("</", "<\\/")  # it sits inside <style>: nothing in it may close that element


# What the HTML page may do, wherever it is opened: run no script, fetch nothing, send no form.
STANDALONE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"


def session_html(session, messages, redacted=None):
    """One self-contained HTML page: inline CSS, no script, nothing fetched, escaped like the
    dashboard (its own templates render it). ``redacted``: how many secrets were masked."""
    from .dashboard import reader
    from .dashboard.sources import describe

    return render_template("dashboard/standalone.html", session=session, **reader.context(messages, session),
                           css=_stylesheet(), describe_source=describe, branch=reader.git_branch(session),
                           exported=int(datetime.now(timezone.utc).timestamp() * 1000), redacted=redacted,
                           version=__version__, csp=STANDALONE_CSP)


# --- downloads (the JSON API and the dashboard answer the same files) -------------------------------

SESSION_FORMATS = {
    "json": (session_json, "application/json", "json"),
    "jsonl": (session_jsonl, "application/x-ndjson", "jsonl"),
    "markdown": (session_markdown, "text/markdown", "md"),
    "html": (session_html, "text/html", "html"),
}


def attachment(name):
    """Content-Disposition for a download: an ASCII ``filename`` for old clients and the
    exact name as RFC 5987 ``filename*`` (headers must be Latin-1; names may be any text)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)[:120]
    exact = quote(printable(name)[:120], safe="")
    return {"Content-Disposition": f"attachment; filename=\"{safe}\"; filename*=UTF-8''{exact}"}


REDACTED_HEADER = "X-Redacted-Secrets"  # how many secrets a download had masked


def session_download(session, messages, fmt, redact=True):
    """One session as a file, its secrets masked (counted in REDACTED_HEADER) unless ``redact`` is off."""
    render, mimetype, suffix = SESSION_FORMATS[fmt]
    redactor = Redactor(redact)
    session, messages = redactor.value(session), redactor.value(messages)
    body = session_html(session, messages, redactor.total if redact else None) if fmt == "html" else render(session, messages)
    headers = {**attachment(f"session-{session['external_id']}.{suffix}"), REDACTED_HEADER: str(redactor.total)}
    return Response(body, mimetype=mimetype, headers=headers)


def sessions_download(rows, fmt, redact=True):
    """Sessions streamed as CSV or a JSON array (Flask adds the charset to text types), each
    row's secrets masked unless ``redact`` is off."""
    redactor = Redactor(redact)
    rows = (redactor.value(row) for row in rows)
    chunks, mimetype = (sessions_csv(rows), "text/csv") if fmt == "csv" else (sessions_json(rows), "application/json")
    return Response(stream_with_context(chunks), mimetype=mimetype, headers=attachment(f"sessions.{fmt}"))
