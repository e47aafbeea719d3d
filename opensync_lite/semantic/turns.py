"""What is embedded: a session is cut into turns (a prompt and the answers that follow it, up
to the next prompt), each one text, plus one text for the session itself (its title and
project). A turn rather than a message: a prompt means most beside its answer (and an answer
beside its question), tool calls and results are left to full text, and a turn vector stands
for several messages, so the scan a query makes is shorter. Texts are capped: a static model
averages its tokens, so past a few thousand characters more text only blurs the vector."""

import hashlib

PROMPT_CHARS = 1200
ANSWER_CHARS = 1200
SESSION_CHARS = 600


def digest(text):
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=10).hexdigest()


def session_text(title, project_name):
    return " ".join(t for t in (title, project_name) if t)[:SESSION_CHARS]


def turns(messages):
    """[(first message id, text, messages in the turn)] of ``messages`` (dicts with id, role,
    text_content; in order). Messages without text (tool calls and results alone) count
    toward their turn but add no words; a turn with no words at all is left out."""
    out, current = [], None
    for message in messages:
        text = (message["text_content"] or "").strip()
        if message["role"] == "user" and text or current is None:
            current = {"id": message["id"], "prompt": [], "answer": [], "count": 0}
            out.append(current)
        current["count"] += 1
        if text:
            (current["prompt"] if message["role"] == "user" else current["answer"]).append(text)
    result = []
    for turn in out:
        prompt = "\n".join(turn["prompt"])[:PROMPT_CHARS]
        answer = "\n".join(turn["answer"])[:ANSWER_CHARS]
        text = f"{prompt}\n{answer}".strip()
        if text:
            result.append((turn["id"], text, turn["count"]))
    return result
