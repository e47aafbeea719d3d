"""`opensync-lite statusline`: Claude Code's statusLine command.

Claude Code runs it after each turn with JSON on stdin (model, workspace, cost.total_cost_usd,
context_window, and for subscribers rate_limits.five_hour / seven_day with used_percentage and
resets_at in epoch seconds) and shows the first line it prints. The line is made at once from
that JSON and what the server answered last time (today's spend across every agent, budget
warnings), kept in a small cache file; then a detached process forwards the snapshot to the server
(a short time-out, nothing printed, the answer written to the cache) while the line is already
shown. Only the standard library is imported here, and the package's __init__ is lazy: the
command starts in a few tens of milliseconds.

The server and key: OPENSYNC_URL and OPENSYNC_KEY, else what `--setup --key … --url …` wrote to
$XDG_CONFIG_HOME/opensync-lite/statusline.json (0600), else http://127.0.0.1:8765 and no key
(nothing is forwarded).
"""

import os
import sys
import time

TIMEOUT_S = 2.0
WARN_AT = 80  # percent of a quota window that turns the figure into a warning
DEFAULT_URL = "http://127.0.0.1:8765"


# --- reading JSON without the json package --------------------------------------------------------
# `import json` costs more than the rest of this command: json.decoder imports re, and re enum
# and functools. The C scanner json itself uses (_json) parses the same, without them.

class _Strict:
    strict, object_hook, object_pairs_hook, memo = True, None, None, {}
    parse_float, parse_int = float, int

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"{name} is not JSON")


def loads(text):
    """json.loads(text), by the C scanner when there is one."""
    try:
        import _json
    except ImportError:  # another Python than CPython
        import json

        return json.loads(text)
    _Strict.memo = {}
    value, end = _json.make_scanner(_Strict)(text, _skip(text, 0))
    if _skip(text, end) != len(text):
        raise ValueError("extra data after the JSON value")
    return value


def _skip(text, at):
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _home():
    return os.path.expanduser("~")


def _config_dir():
    return os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(_home(), ".config"), "opensync-lite")


def _cache_path():
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(_home(), ".cache"), "opensync-lite",
                        "statusline.json")


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            value = loads(f.read())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError, StopIteration, UnicodeDecodeError, RecursionError):
        return {}


def settings():
    saved = _read_json(os.path.join(_config_dir(), "statusline.json"))
    host = os.environ.get("OPENSYNC_HOST", "127.0.0.1")
    default = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{os.environ.get('OPENSYNC_PORT', '8765')}"
    url = os.environ.get("OPENSYNC_URL") or saved.get("url") or default
    return url.rstrip("/"), os.environ.get("OPENSYNC_KEY") or saved.get("key")


# --- the line ------------------------------------------------------------------------------------

def _number(value):
    return value if type(value) in (int, float) and value == value else None  # not bool, not NaN


def _money(value):
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else "<$0.01"


def _reset(seconds, now, weekday=False):
    """A reset time in local time: 14:05 today, Sat 09:00 further off."""
    at = time.localtime(seconds if seconds < 100_000_000_000 else seconds / 1000)
    today = time.localtime(now)
    other_day = (at.tm_year, at.tm_yday) != (today.tm_year, today.tm_yday)
    return time.strftime("%a %H:%M" if weekday or other_day else "%H:%M", at)


def _window(name, window, now, weekday):
    if not isinstance(window, dict) or _number(window.get("used_percentage")) is None:
        return None
    used = window["used_percentage"]
    text = f"{name} {used:.0f}%"
    if _number(window.get("resets_at")) is not None:
        text += f" ↻{_reset(window['resets_at'], now, weekday)}"
    return ("⚠ " if used >= WARN_AT else "") + text


def line(data, cache, now=None):
    """The status line from Claude Code's JSON and the cached server answer."""
    now = time.time() if now is None else now
    parts = []
    model = data.get("model")
    name = model.get("display_name") or model.get("id") if isinstance(model, dict) else model
    if isinstance(name, str) and name:
        parts.append(name[:40])
    cost = data.get("cost")
    session_cost = _number(cost.get("total_cost_usd")) if isinstance(cost, dict) else None
    if session_cost is not None:
        parts.append(f"{_money(session_cost)} session")
    today = cache.get("today")
    if isinstance(today, dict) and _number(today.get("cost")) is not None and cache.get("day") == time.strftime("%Y-%m-%d", time.gmtime(now)):
        parts.append(f"{_money(today['cost'])}{'~' if today.get('costBasis') else ''} today")
    limits = data.get("rate_limits") if isinstance(data.get("rate_limits"), dict) else {}
    for label, key, weekday in (("5h", "five_hour", False), ("7d", "seven_day", True)):
        text = _window(label, limits.get(key), now, weekday)
        if text:
            parts.append(text)
    for alert in cache.get("alerts") or ():
        if isinstance(alert, dict) and isinstance(alert.get("text"), str):
            parts.append("⚠ " + alert["text"][:80])
    return " · ".join(parts) or "opensync"


# --- forwarding ------------------------------------------------------------------------------------

def forward(url, key, data, cache_path):
    """POST the snapshot and keep the answer for the next line. Errors are swallowed: the
    status line has been printed already and must never show one."""
    import json
    import socket
    import urllib.request

    body = json.dumps({**data, "machine": socket.gethostname()}).encode()
    request = urllib.request.Request(f"{url}/api/limits/snapshots", data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer = json.loads(response.read())
    except Exception:  # noqa: BLE001 (down, refused, slow, refused the key: say nothing)
        return
    answer["day"] = time.strftime("%Y-%m-%d", time.gmtime())
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    partial = f"{cache_path}.{os.getpid()}.tmp"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(answer, f)
    os.replace(partial, cache_path)  # a reader sees the old answer or the new one, whole


def _detach_and_forward(raw):
    """Start the forwarder (this file again, ``--forward``) in its own session with /dev/null
    for stdin, stdout and stderr: it never holds the status line's pipe, so Claude Code has
    the line as soon as this process exits, and nothing it does can reach the screen."""
    if not hasattr(os, "posix_spawn") or len(raw) > 100_000:
        return
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-S", os.path.abspath(__file__), "--forward", raw],
                       os.environ, file_actions=quiet, setsid=True)
    except OSError:
        pass


def _forward_main(raw):
    os.nice(10)  # behind the agent and its status line, never in their way
    url, key = settings()
    if key:
        forward(url, key, loads(raw), _cache_path())


# --- setup -----------------------------------------------------------------------------------------

def command_line():
    """How Claude Code should run this command: this file by this Python with -S (no site
    packages to scan: it needs the standard library only), which starts several times faster
    than the `opensync-lite statusline` script; both do the same."""
    import shlex

    return f"{shlex.quote(sys.executable)} -S {shlex.quote(os.path.abspath(__file__))}"


def setup(url=None, key=None):
    """Write the statusLine entry into ~/.claude/settings.json (the rest kept as it was) and,
    when given, the server and key to the config file. Returns (exit code or None, what to say)."""
    import json
    from pathlib import Path

    claude = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude") / "settings.json"
    current = {}
    if claude.exists():
        try:
            current = json.loads(claude.read_text(encoding="utf-8"))
        except ValueError:
            return None, f"{claude} is not valid JSON: fix it first, nothing was changed."
        if not isinstance(current, dict):
            return None, f"{claude} does not hold a JSON object: nothing was changed."
    current["statusLine"] = {"type": "command", "command": command_line(), "padding": 0}
    claude.parent.mkdir(parents=True, exist_ok=True)
    partial = claude.with_suffix(".json.tmp")
    partial.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, claude)
    said = [f"Claude Code's status line now runs `{current['statusLine']['command']}` ({claude})."]
    if url or key:
        path = Path(_config_dir()) / "statusline.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = _read_json(path)
        saved.update({k: v for k, v in (("url", url), ("key", key)) if v})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(saved, f)
        said.append(f"Server and key saved to {path} (readable by you only).")
    return 0, "\n".join(said)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--setup" in argv:
        def value(name):
            return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None
        code, said = setup(value("--url"), value("--key"))
        print(said, file=sys.stderr if code is None else sys.stdout)
        return 1 if code is None else 0
    if argv[:1] == ["--forward"] and len(argv) == 2:
        _forward_main(argv[1])
        return 0
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    try:
        raw = sys.stdin.read()
        data = loads(raw or "null")
    except (ValueError, UnicodeDecodeError, StopIteration, RecursionError):
        data = None
    data = data if isinstance(data, dict) else {}
    print(line(data, _read_json(_cache_path())), flush=True)
    if data and settings()[1]:
        _detach_and_forward(raw)
    os._exit(0)  # the line is out and flushed: no interpreter teardown to wait for


if __name__ == "__main__":  # `python -S …/statusline.py`: what --setup writes, the fastest start
    sys.exit(main())
