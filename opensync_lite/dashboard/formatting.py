"""How numbers and times read on the pages (template filters, prefixed `os_`)."""

import re
from datetime import datetime, timezone

from ..projects import row_label


def tokens(value):
    """12 345 → 12.3k; 4 500 000 → 4.5M (the exact figure is in the title attribute)."""
    value = value or 0
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(int(value))


def cost(value):
    value = value or 0
    if value == 0:
        return "$0"
    return f"${value:,.2f}" if value >= 0.01 else "<$0.01"


def duration(ms):
    """1h 02m, 4m 05s, 12s."""
    seconds = int((ms or 0) // 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def when(ms):
    """UTC date and time, minute precision (pages turn it into local time when scripts run)."""
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def iso(ms):
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")


def number(value):
    return f"{value or 0:,}"


def plural(count, word, words=None):
    """1 session, 2 sessions, 1,204 sessions (``words`` when the plural is not word + s)."""
    count = count or 0
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def share(part, whole):
    """A share in whole percent that never reads 0 % for something or 100 % for less than all."""
    if not whole or not part:
        return "0%"
    value = 100 * part / whole
    if value < 1:
        return "<1%"
    if value > 99 and part < whole:
        return ">99%"
    return f"{value:.0f}%"


def change(value):
    """+12%, −40%, ±0% for a change in percent."""
    if value is None:
        return ""
    if abs(value) < 0.5:
        return "±0%"
    return f"{'+' if value > 0 else '−'}{abs(value):,.0f}%"


DATED = re.compile(r"-(20\d{6}|latest)$")


def model(name):
    """A model id as a dense row shows it: claude-sonnet-4-20250514 → sonnet-4,
    models/gemini-2.5-pro → gemini-2.5-pro (the full id is in the title attribute)."""
    if not name:
        return "–"
    short = name.rsplit("/", 1)[-1]
    short = DATED.sub("", short)
    if short.startswith("claude-") and short[7:8].isalpha():  # claude-sonnet-4, not claude-3-5-haiku
        short = short[7:]
    return short or name


def project(row):
    """A session's project as a row shows it: its folder's last component, else its name."""
    return row_label(row.get("project_name"), row.get("project_path"))


def percent(part, whole):
    return 100 * part / whole if whole else 0


# (what a User-Agent contains, what to call it), the first match winning: Edge and Opera also say
# Chrome, Chrome also says Safari, Android says Linux and iPhones "like Mac OS X".
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("HeadlessChrome/", "Headless Chrome"),
            ("Chromium/", "Chromium"), ("Chrome/", "Chrome"), ("Version/", "Safari"), ("curl/", "curl"))
SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
           ("CrOS", "ChromeOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"))


def browser(agent):
    """"Firefox 128 on Linux" from a User-Agent (the page shows the whole string on hover)."""
    agent = agent or ""
    name = next((f"{label} {agent.split(token, 1)[1].split('.', 1)[0].split(' ', 1)[0]}".strip()
                 for token, label in BROWSERS if token in agent), None)
    system = next((label for token, label in SYSTEMS if token in agent), None)
    if name and system:
        return f"{name} on {system}"
    return name or system or (agent[:60] + ("…" if len(agent) > 60 else "")) or "an unnamed browser"


FILTERS = {"tokens": tokens, "cost": cost, "duration": duration, "when": when, "iso": iso, "number": number,
           "browser": browser, "plural": plural, "project": project, "model": model, "share": share, "change": change}
