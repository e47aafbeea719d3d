"""What search reads of a message's parts besides its text: the tool calls' inputs and results
(``tool_text``) and the model's thinking (``thinking_text``), kept on the message row so both
engines index them as they index the text.

Bounded: a test run's output or a file dump can be megabytes, so each part gives at most
PART_CAP characters (its head and its tail: a failing run says why at the end) and a message
at most MESSAGE_CAP of each kind.
"""

import json
import re

TOOL_CALLS = ("tool-call", "tool_use", "tool")
TOOL_RESULTS = ("tool-result", "tool_result")
THINKING = ("thinking", "reasoning", "redacted_thinking")
PART_CAP = 16_000
HEAD = 12_000  # of PART_CAP, the rest is the tail
MESSAGE_CAP = 32_000
# Text columns hold neither (PostgreSQL refuses NUL, UTF-8 has no lone surrogate); JSON's
# escapes let parts carry both.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Keys of a tool call that name it rather than say what it did.
SKIPPED_KEYS = {"id", "toolUseId", "tool_use_id", "callID", "callId", "type", "isError", "is_error"}


def _strings(value, out, budget):
    """The strings inside a JSON value (keys skipped), until ``budget`` characters are taken."""
    if budget[0] <= 0:
        return
    if isinstance(value, str):
        out.append(value)
        budget[0] -= len(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append(str(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in SKIPPED_KEYS:
                _strings(item, out, budget)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out, budget)


def _capped(text):
    if len(text) <= PART_CAP:
        return text
    return text[:HEAD] + " … " + text[-(PART_CAP - HEAD):]


def _text_of(content):
    """A part's content as searchable text: a string as it is (a JSON string inside parsed)."""
    if isinstance(content, str) and content[:1] in "{[":
        try:
            content = json.loads(content)
        except ValueError:
            pass
    found = []
    # Reading past the cap is wasted work, but the tail is kept: take a little more than a cap.
    _strings(content, found, [PART_CAP * 8])
    return _capped("\n".join(found))


def part_texts(parts):
    """{"tool_text": ..., "thinking_text": ...} for a message's parts (lists of dicts)."""
    tool, thinking = [], []
    for part in parts or ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in TOOL_CALLS or kind in TOOL_RESULTS:
            tool.append(_text_of(part.get("content")))
        elif kind in THINKING:
            thinking.append(_text_of(part.get("content")))
    return {"tool_text": _storable(tool), "thinking_text": _storable(thinking)}


def _storable(texts):
    return UNSTORABLE.sub("\ufffd", "\n".join(t for t in texts if t)[:MESSAGE_CAP])
