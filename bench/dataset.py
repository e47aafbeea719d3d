"""A deterministic data set for the benchmark: written with raw sqlite3 into a database
that opensync-lite created (so the schema, indexes and search triggers are the real ones)."""

import random
import sqlite3
import time

SOURCES = ["claude-code", "opencode", "cursor", "factory-droid", "pi"]
MODELS = [f"model-{i:02d}" for i in range(12)]
PROVIDERS = ["anthropic", "openai", "google", "xai"]
WORDS = ("parser test fix refactor build deploy cache token stream async index query schema "
         "migration router handler widget layout render config docker lint type error retry").split()
DAY_MS = 86_400_000
START = 1_764_547_200_000  # 2025-12-01T00:00:00Z


def generate(db_path, user_id, sessions=100_000, messages_per_session=10, seed=42):
    """Fill ``db_path`` for ``user_id``; returns (sessions, messages, seconds)."""
    rng = random.Random(seed)
    started = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    span = 90 * DAY_MS
    session_rows, message_rows = [], []
    message_id = 0
    for i in range(sessions):
        created = START + i * span // sessions
        prompt, completion = rng.randint(100, 200_000), rng.randint(10, 20_000)
        project = i * 37 % 200
        session_rows.append((
            i + 1, user_id, f"bench-{i}", SOURCES[i % 5], " ".join(rng.choices(WORDS, k=5)),
            f"/home/dev/project-{project}", f"project-{project}", MODELS[i * 7 % 12], PROVIDERS[i % 4],
            prompt, completion, prompt + completion, round(rng.uniform(0.001, 5.0), 6),
            rng.randint(1_000, 3_600_000), messages_per_session, rng.randint(0, 40), "exit",
            created, created + rng.randint(0, 3_600_000),
        ))
        for j in range(messages_per_session):
            message_id += 1
            message_rows.append((
                message_id, i + 1, f"bench-{i}-{j}", "user" if j % 2 == 0 else "assistant",
                " ".join(rng.choices(WORDS, k=12)), MODELS[i * 7 % 12], created + j * 1000,
            ))
        if len(message_rows) >= 50_000:
            _flush(conn, session_rows, message_rows)
    _flush(conn, session_rows, message_rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return sessions, message_id, time.perf_counter() - started


def _flush(conn, session_rows, message_rows):
    conn.executemany(
        "INSERT INTO sessions (id, user_id, external_id, source, title, project_path, project_name, model,"
        " provider, prompt_tokens, completion_tokens, total_tokens, cost, duration_ms, message_count,"
        " tool_call_count, end_reason, created_at, updated_at) VALUES (" + ",".join("?" * 19) + ")",
        session_rows,
    )
    conn.executemany(
        "INSERT INTO messages (id, session_id, external_id, role, text_content, model, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        message_rows,
    )
    session_rows.clear()
    message_rows.clear()
