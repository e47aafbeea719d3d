"""Deterministic sessions and messages posted through the real sync routes."""

import random

SOURCES = ["claude-code", "opencode", "cursor", None]
MODELS = ["claude-sonnet-4", "gpt-5", "gemini-2.5-pro"]
PROVIDERS = ["anthropic", "openai", "google"]
PROJECTS = [("alpha", "/w/alpha"), ("beta", "/w/beta"), (None, "/w/gamma")]
DAY = 86_400_000
BASE = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def make_sessions(count=24, seed=7):
    rng = random.Random(seed)
    sessions = []
    for i in range(count):
        name, path = PROJECTS[i % 3]
        body = {
            "externalId": f"s{i:03d}",
            "title": f"Session {i} about {'parsers' if i % 4 == 0 else 'widgets'}",
            "projectPath": path,
            "model": MODELS[i % 3],
            "provider": PROVIDERS[i % 3],
            "promptTokens": rng.randint(1, 10_000),
            "completionTokens": rng.randint(1, 2_000),
            "cost": round(rng.uniform(0.001, 2), 4),
            "durationMs": rng.randint(1_000, 900_000),
            "createdAt": BASE + (i % 6) * DAY + i * 1000,
        }
        if name:
            body["projectName"] = name
        if SOURCES[i % 4]:
            body["source"] = SOURCES[i % 4]
        sessions.append(body)
    return sessions


def post_all(api, sessions, messages_per_session=2):
    for s in sessions:
        assert api.post("/sync/session", s).status_code == 200
        for j in range(messages_per_session):
            message = {"sessionExternalId": s["externalId"], "externalId": f"{s['externalId']}-m{j}",
                       "role": "user" if j % 2 == 0 else "assistant",
                       "textContent": f"message {j} of {s['externalId']}", "createdAt": s["createdAt"] + j}
            assert api.post("/sync/message", message).status_code == 200


def bulk_sessions(app, user, sessions, messages_per_session, prefix="bulk", title=None):
    """``sessions`` sessions of ``messages_per_session`` messages each (user prompt, assistant
    answer, in turn) for ``user``, inserted in bulk through the models: tens of thousands of
    messages in seconds, where the sync routes would take minutes. Returns the user's id."""
    from opensync_lite import auth, db
    from opensync_lite.models import Message, Session

    with app.app_context(), app.extensions["opensync"].connection_context():
        user_id = auth.get_or_create_user(user).id
        with db.write_transaction(user_id):
            rows = [{"user": user_id, "external_id": f"{prefix}-{i}", "source": "claude-code",
                     "title": title(i) if title else f"Bulk session {i}", "message_count": messages_per_session,
                     "created_at": BASE + i * 1000, "updated_at": BASE + i * 1000} for i in range(sessions)]
            for start in range(0, len(rows), 500):
                Session.insert_many(rows[start:start + 500]).execute()
            ids = dict(Session.select(Session.external_id, Session.id)
                       .where(Session.user == user_id, Session.external_id.startswith(prefix + "-")).tuples())
            messages = [{"session": ids[f"{prefix}-{i}"], "external_id": f"{prefix}-{i}-{j}",
                         "role": "user" if j % 2 == 0 else "assistant",
                         "text_content": f"Question {j} of session {i}: why does the parser stop early?" if j % 2 == 0
                         else f"Answer {j} of session {i}: the loop ends one short; run it to len(text).",
                         "created_at": BASE + i * 1000 + j}
                        for i in range(sessions) for j in range(messages_per_session)]
            for start in range(0, len(messages), 2000):
                Message.insert_many(messages[start:start + 2000]).execute()
    return user_id
