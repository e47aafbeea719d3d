"""OpenSync's ``/api/export/evals`` (convex/http.ts, convex/evals.ts): its four formats with
its field names, its ``X-Export-Sessions`` / ``X-Export-TestCases`` headers and its 404s.

Cases are cut by our evals module (a prompt, then everything the agent did until the next
prompt; masked and, by default, anonymised), then written in OpenSync's shapes. Like OpenSync
the file is made whole before it is sent (its headers carry the counts), but in a spooled
temporary file, not in memory. What differs from OpenSync is listed in the README's table:
"eval-ready" is a session with an eval status; a graded answer (golden, correct) is the
expected output.
"""

import re
import tempfile
from datetime import datetime, timezone

from flask import Response

from . import evals, queries
from .errors import ApiError
from .export import REDACTED_HEADER, to_json
from .redact import Redactor

SPOOL_BYTES = 8 * 1024 * 1024  # past this the file being made goes to disk
RULE = "=" * 80
STATUS_OUT = {"needs-review": "needs_review"}  # ours → OpenSync's spelling
MEDIA = {"deepeval": ("application/json", "json"), "openai": ("application/x-ndjson", "jsonl"),
         "promptfoo": ("application/x-ndjson", "jsonl"), "filesystem": ("application/json", "json")}
# OpenSync's task types, by the first words of a prompt that name one (its order decides).
TASKS = [("bug_fix", ("fix", "bug", "error")), ("code_generation", ("write", "create", "implement")),
         ("explanation", ("explain", "what")), ("refactoring", ("refactor", "improve"))]
CODE_FENCE = re.compile(r"```(\w+)?")


def shown_source(source):
    """A source as OpenSync shows it: none is "opencode" (its default), ours "cursor" is its
    "cursor-sync"."""
    return {None: "opencode", "cursor": "cursor-sync"}.get(source, source)


def _sources(tool):
    """The stored sources OpenSync's ``tool`` selects (opencode: also sessions with none)."""
    return {"opencode": ["opencode", None], "cursor": ["cursor", "cursor-sync"]}.get(tool, [tool])


def _iso_ms(ms):
    """JavaScript's toISOString: milliseconds always, Z."""
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _query(args):
    """Our evals query for OpenSync's parameters."""
    filters = {"graded": True}
    for ours, theirs in (("model", "model"), ("date_from", "date_from"), ("date_to", "date_to"), ("tags", "tags"),
                         ("min_tokens", "min_tokens"), ("eval_status", "status")):
        if args.get(theirs) not in (None, []):
            filters[ours] = args[theirs]
    if args.get("tool"):
        filters["sources"] = _sources(args["tool"])
    # OpenSync's openai and promptfoo files are always a case per turn; full and final_only
    # both take the whole conversation (the last exchange, and all before it as context).
    grain = "turn" if args["format"] in ("openai", "promptfoo") else {"per_turn": "turn"}.get(args["turn_mode"], "session")
    return {**filters, "format": args["format"], "granularity": grain, "system": False,
            "tools": args["include_metadata"], "anonymize": args["anonymize"], "redact": args["redact"]}


# --- cases in OpenSync's shapes ---------------------------------------------------------------

def _texts(history):
    return [text for pair in history for text in pair if text]


def _deepeval(session, case, args):
    meta = case["metadata"]
    full = args["turn_mode"] == "full"
    usage = ({"prompt_tokens": session["prompt_tokens"], "completion_tokens": session["completion_tokens"],
              "duration_ms": session["duration_ms"] or None} if full else case["usage"])
    prompts, answers = [p for p, _ in case["history"]] + [case["prompt"]], [a for _, a in case["history"]] + [case["answer"]]
    metadata = {"session_id": meta["externalId"], "model": meta["model"] or "unknown", "tool": shown_source(meta["source"]),
                "timestamp": _iso_ms(session["created_at"]), "tokens_input": usage["prompt_tokens"],
                "tokens_output": usage["completion_tokens"]}
    if usage["duration_ms"] is not None:
        metadata["latency_ms"] = usage["duration_ms"]
    project = meta["project"] or case.get("project_path")
    if project:
        metadata["project"] = project
    metadata["tags"] = meta["tags"]
    if meta["evalStatus"]:
        metadata["eval_status"] = STATUS_OUT.get(meta["evalStatus"], meta["evalStatus"])
    return {"input": "\n\n".join(prompts) if full else case["prompt"],
            "actual_output": "\n\n".join(a for a in answers if a) if full else case["answer"],
            "expected_output": evals._expectation(case),
            "context": [] if full or not args["include_metadata"] else _texts(case["history"]),
            "retrieval_context": None, "metadata": metadata}


def _openai(session, case, args):
    said = [{"role": role, "content": text} for prompt, answer in case["history"]
            for role, text in (("user", prompt), ("assistant", answer))]
    meta = case["metadata"]
    return {"input": [*said, {"role": "user", "content": case["prompt"]}], "ideal": evals._expectation(case) or case["answer"],
            "metadata": {"session_id": meta["externalId"], "model": meta["model"] or "unknown",
                         "source": shown_source(meta["source"])}}


def _task(prompt):
    words = prompt.lower()
    return next((task for task, cues in TASKS if any(cue in words for cue in cues)), "general")


def _promptfoo(session, case, args):
    variables = {"input": case["prompt"]}
    fence = CODE_FENCE.search(case["answer"] or "")
    if fence and fence.group(1):
        variables["language"] = fence.group(1)
    variables["task_type"] = _task(case["prompt"])
    test = {"vars": variables}
    if case["metadata"]["evalStatus"] in ("golden", "correct"):
        test["assert"] = [{"type": "llm-rubric", "value": "Response should be helpful and accurate"}]
    return test


RENDER = {"deepeval": _deepeval, "openai": _openai, "promptfoo": _promptfoo}


def _cases_file(user_id, query, args, out):
    """Write the cases to ``out``; returns (sessions read, cases, secrets masked)."""
    export = evals.Export(user_id, query)
    render, fmt = RENDER[args["format"]], args["format"]
    if fmt == "deepeval":
        out.write(b"[")
    for n, (session, case) in enumerate(export.session_cases()):
        if session["project_path"] and not session["project_name"]:
            # OpenSync names the folder when a session has no project name: masked, home made `~`
            path = export.redactor.text(session["project_path"])
            case["project_path"] = evals._anonymise(path, None) if args["anonymize"] else path
        line = to_json(render(session, case, args), **({"indent": 2} if fmt == "deepeval" else {"separators": (",", ":")}))
        out.write(((",\n" if n else "\n") + line if fmt == "deepeval" else line + "\n").encode())
    if fmt == "deepeval":
        out.write(b"\n]\n")
    return export.sessions, export.cases, export.redactor.total


# --- the filesystem bundle ----------------------------------------------------------------------

def _session_file(session, messages, args):
    lines = [RULE, f"SESSION: {session['external_id']}", f"SOURCE: {shown_source(session['source'])}",
             f"MODEL: {session['model'] or 'unknown'}", f"DATE: {_iso_ms(session['created_at'])}",
             f"TOKENS: {session['total_tokens']}"]
    if session["eval_status"]:
        lines.append(f"STATUS: {STATUS_OUT.get(session['eval_status'], session['eval_status'])}")
    if session["tags"]:
        lines.append(f"TAGS: {', '.join(session['tags'])}")
    if session["project_name"]:
        lines.append(f"PROJECT: {'project' if args['anonymize'] else session['project_name']}")
    lines += [RULE, ""]
    for m in messages:
        lines += [f"[{_iso_ms(m['created_at'])}] {m['role'].upper()}:", m["text_content"] or "(empty)", ""]
    lines += [RULE, "END SESSION", RULE]
    text = "\n".join(lines)
    return evals._anonymise(text, session["project_path"]) if args["anonymize"] else text


def _file_name(session, taken):
    name = f"session-{session['external_id'][:8]}.txt"
    if name in taken:  # OpenSync would overwrite the first; keep both
        name = f"session-{session['external_id'][:8]}-{session['id']}.txt"
    taken.add(name)
    return name


README = """OPENSYNC EVAL EXPORT (from opensync-lite)

Exported: {date}
Sessions: {sessions}
Test cases: {cases}

`files` holds one plain-text transcript per session (a header, then each message with its
time and role), for retrieval tests or reading; `manifest` lists them, the sources and models.
The same sessions as test cases: GET /opensync/api/export/evals?format=deepeval (run with
`deepeval test run`), format=openai (OpenAI evals JSONL), format=promptfoo (promptfoo tests:
file://...jsonl).
"""


def _bundle(user_id, query, args, files_out):
    """Write the bundle's files object's entries to ``files_out``; returns (sessions read,
    cases, secrets masked, the manifest and readme)."""
    redactor = Redactor(query["redact"])
    read = skipped = cases = 0
    names, taken, sources, models = [], set(), dict.fromkeys(("opencode", "claude-code", "factory-droid", "codex-cli",
                                                              "cursor-sync"), 0), {}
    rows = queries.iter_sessions(user_id, query, sort="created_at", descending=False)
    for batch in evals._batches(rows, 200):
        for session in queries.with_curation(batch):
            read += 1
            shown = shown_source(session["source"])
            if shown in sources:
                sources[shown] += 1
            if session["model"]:
                models[session["model"]] = True
            messages = [m for m in queries.session_messages(session["id"]) if m["role"] != "system"]
            if not messages:
                skipped += 1
                continue
            name = _file_name(session, taken)
            files_out.write(((",\n" if names else "\n") + f"    {to_json(name)}: "
                             + to_json(redactor.text(_session_file(session, messages, args)))).encode())
            names.append(name)
            cases += sum(m["role"] == "user" for m in messages)
    now = datetime.now(timezone.utc)
    manifest = {"opensync_metadata": {"export_version": "1.0", "export_date": _iso_ms(int(now.timestamp() * 1000)),
                                      "total_sessions": read - skipped, "total_test_cases": cases,
                                      "skipped_sessions": skipped},
                "sources": sources, "models": list(models), "files": names}
    readme = README.format(date=now.isoformat(timespec="seconds"), sessions=read - skipped, cases=cases)
    return read, cases, redactor.total, manifest, readme


# --- the download -------------------------------------------------------------------------------

def _chunks(*parts):
    """Texts, and spooled files read back in pieces (and closed)."""
    for part in parts:
        if isinstance(part, str):
            yield part.encode()
            continue
        part.seek(0)
        try:
            while chunk := part.read(64 * 1024):
                yield chunk
        finally:
            part.close()


def download(user_id, args):
    if not queries.count_sessions(user_id, {"graded": True}):
        raise ApiError(404, "No eval-ready sessions found")
    query = _query(args)
    if not queries.count_sessions(user_id, query):
        raise ApiError(404, "No sessions match the specified filters")
    spool = tempfile.SpooledTemporaryFile(SPOOL_BYTES)
    if args["format"] == "filesystem":
        sessions, cases, masked, manifest, readme = _bundle(user_id, query, args, spool)
        body = _chunks('{\n  "manifest": ' + to_json(manifest) + ',\n  "files": {', spool,
                       '\n  },\n  "readme": ' + to_json(readme) + "\n}\n")
    else:
        sessions, cases, masked = _cases_file(user_id, query, args, spool)
        body = _chunks(spool)
    mimetype, suffix = MEDIA[args["format"]]
    name = f"opensync-{args['format']}-{datetime.now(timezone.utc).date().isoformat()}.{suffix}"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Export-Sessions": str(sessions),
        "X-Export-TestCases": str(cases), REDACTED_HEADER: str(masked)})
