"""How each source looks: its full name and a two-letter monogram. Colours live in the
stylesheet (`.src-<name>`), with the name always shown as text too."""

KNOWN = {
    "claude-code": ("Claude Code", "CC"),
    "opencode": ("OpenCode", "OC"),
    "kilo": ("Kilo", "Ki"),
    "cursor": ("Cursor", "Cu"),
    "codex-cli": ("Codex CLI", "Cx"),
    "gemini-cli": ("Gemini CLI", "Ge"),
    "factory-droid": ("Factory Droid", "FD"),
    "pi": ("Pi", "Pi"),
    "copilot-cli": ("Copilot CLI", "Co"),
    "qwen-code": ("Qwen Code", "Qw"),
    "cline": ("Cline", "Cl"),
}
UNKNOWN = "unknown"


def describe(source):
    """(css class, monogram, short label, full name) for a session's source."""
    if source is None:
        return "src-unknown", "?", UNKNOWN, "Unknown (the plugin sent no source)"
    if source in KNOWN:
        name, monogram = KNOWN[source]
        return f"src-{source}", monogram, source, name
    return "src-other", (source[:2] or "?").title(), source, source


def chart_class(index, source):
    """Chart colours: the known sources keep theirs, others take one of four spare hues."""
    if source is None:
        return "src-unknown"
    if source in KNOWN:
        return f"src-{source}"
    return f"src-spare{index % 4}"
