"""A deterministic data set for the benchmark: written raw (sqlite3 executemany, or
PostgreSQL's COPY) into a database that opensync-lite created, so the schema, indexes and
search machinery are the real ones."""

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


SESSION_COLUMNS = ("id, user_id, external_id, source, title, project_path, project_name, model, provider, prompt_tokens,"
                   " completion_tokens, total_tokens, cost, duration_ms, message_count, tool_call_count, end_reason,"
                   " created_at, updated_at")
MESSAGE_COLUMNS = "id, session_id, external_id, role, text_content, model, created_at"
# With tools: an assistant message also carries a tool call's text and thinking, as the search
# index holds them for real sessions (issue 18's "larger index").
RICH_MESSAGE_COLUMNS = MESSAGE_COLUMNS + ", tool_text, thinking_text"


def generate(db_path, user_id, sessions=100_000, messages_per_session=10, seed=42, tools=False):
    """Fill ``db_path`` (a SQLite file or a postgresql:// URL) for ``user_id``; returns
    (sessions, messages, seconds). ``tools``: assistant messages get tool and thinking text
    (SQLite only)."""
    if db_path.startswith("postgresql://"):
        return _generate_postgres(db_path, user_id, sessions, messages_per_session, seed)
    started = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    count = 0
    for session_rows, message_rows in _rows(user_id, sessions, messages_per_session, seed, tools):
        _flush(conn, session_rows, message_rows)
        count += len(message_rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return sessions, count, time.perf_counter() - started


def _generate_postgres(url, user_id, sessions, messages_per_session, seed):
    import psycopg

    started = time.perf_counter()
    count = 0
    with psycopg.connect(url) as conn:
        for session_rows, message_rows in _rows(user_id, sessions, messages_per_session, seed):
            for table, columns, rows in (("sessions", SESSION_COLUMNS, session_rows),
                                         ("messages", MESSAGE_COLUMNS, message_rows)):
                with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            count += len(message_rows)
        for table in ("sessions", "messages"):  # explicit ids: move the identity past them
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return sessions, count, time.perf_counter() - started


def _rows(user_id, sessions, messages_per_session, seed, tools=False):
    """(session rows, message rows) in chunks of about 50,000 messages."""
    rng = random.Random(seed)
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
            row = (message_id, i + 1, f"bench-{i}-{j}", "user" if j % 2 == 0 else "assistant",
                   " ".join(rng.choices(WORDS, k=12)), MODELS[i * 7 % 12], created + j * 1000)
            if tools:
                row += ((f"Bash npm test src/{rng.choice(WORDS)}.ts " + " ".join(rng.choices(WORDS, k=20)),
                         " ".join(rng.choices(WORDS, k=10))) if j % 2 else ("", ""))
            message_rows.append(row)
        if len(message_rows) >= 50_000:
            yield session_rows, message_rows
            session_rows, message_rows = [], []
    yield session_rows, message_rows


def _flush(conn, session_rows, message_rows):
    conn.executemany(f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (" + ",".join("?" * 19) + ")", session_rows)
    if message_rows:
        columns = RICH_MESSAGE_COLUMNS if len(message_rows[0]) == 9 else MESSAGE_COLUMNS
        conn.executemany(f"INSERT INTO messages ({columns}) VALUES ({','.join('?' * len(message_rows[0]))})", message_rows)
