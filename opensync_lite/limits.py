"""Billing blocks and weekly windows: usage cut into the windows a plan's limits count in.

The rule is ccusage 20's (``blocks``), so the two agree on the same transcripts: entries (each
counted response, its time and tokens) in time order; a block starts at the hour (UTC) of its
first entry and runs ``hours``; an entry past the block's end, or more than ``hours`` after the
previous entry, closes it and opens the next one, and a pause longer than ``hours`` between
two entries leaves a gap block (from the last entry + ``hours`` to the next entry). A block
is active while now is before its end and less than ``hours`` after its last entry; the
active block has a burn rate (its tokens and cost over the minutes from its first to its last
entry) and a projection to its end at that rate. Weekly windows are the same rule over 168 h.

Entries are what the session totals count (see ``entries``), read through ``queries.conditions``
so every stats filter applies. An entry's cost is the one its agent recorded (a transcript's
costUSD, telemetry's cost, a client's session cost) when there is one, else the price of its
tokens.
"""

import time
from datetime import datetime, timezone

from peewee import Tuple

from . import queries
from .models import ImportResponse, Message, Session

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
WEEK_HOURS = 168
KINDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
MAX_ENTRIES = 200_000  # a bound on one read: months of heavy use


def iso(ms):
    return None if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


# --- entries ----------------------------------------------------------------------------------

def entries(user_id, filters, since, until):
    """Each counted response from ``since`` to ``until`` (epoch ms) as a dict: at, source,
    model, the four kinds, cost, priced ("recorded", "estimated", "unpriced"). In time order;
    past MAX_ENTRIES the newest are kept (the active block is the one that matters).

    What counts is what the session totals count (ingest's one merge), so a budget sees every
    path: the messages that carry a transcript's responses; telemetry's responses, which a
    session holds (ingest._counted picks those the transcript does not hold); and, for a
    session no file or telemetry ever described, the client's session totals at its last
    activity."""
    session_filters = {k: v for k, v in filters.items() if k not in ("date_from", "date_to")}
    where = queries.conditions(user_id, session_filters)
    found = (_from_messages(user_id, where, since, until) + _from_telemetry(user_id, where, since, until)
             + _from_client_totals(user_id, where, since, until))
    found.sort(key=lambda e: e["at"])
    return found[-MAX_ENTRIES:]


def _described(user_id):
    """Sessions some file or telemetry described (they have responses): their client totals
    are not counted again."""
    return ImportResponse.select(ImportResponse.session_external_id).where(ImportResponse.user == user_id)


def _entry(at, source, model, kinds, cost=None):
    from .pricing import price  # the price data loads only when blocks are asked for

    status = "recorded"
    if cost is None:
        cost = price(model, *(kinds[k] for k in KINDS))
        status = "estimated" if cost is not None else "unpriced"
    return {"at": at, "source": source, "model": model, **{k: kinds[k] for k in KINDS}, "cost": cost or 0.0,
            "priced": status}


def _from_messages(user_id, where, since, until):
    """Messages that carry a transcript's responses: their four kinds, and the costUSD the
    transcript recorded when there is one."""
    kinds = Message.input_tokens + Message.output_tokens + Message.cache_write_tokens + Message.cache_read_tokens
    rows = list(Message.select(
        Message.created_at.alias("at"), Message.external_id.alias("message"), Message.model.alias("model"),
        *(getattr(Message, k).alias(k) for k in KINDS),
        Session.external_id.alias("session"), Session.source.alias("source"), Session.model.alias("session_model"),
    ).join(Session).where(
        *where, Message.created_at >= since, Message.created_at < until, kinds > 0,
    ).order_by(Message.created_at.desc(), Message.id.desc()).limit(MAX_ENTRIES).dicts())
    recorded = _recorded_costs(user_id, rows)
    return [_entry(r["at"], r["source"], r["model"] or r["session_model"], r, recorded.get((r["session"], r["message"])))
            for r in rows]


def _from_telemetry(user_id, where, since, until):
    """Responses a session holds (telemetry's requests and metric windows), as the merge
    counts them: only requests no transcript holds, metrics only with neither."""
    from .ingest import OTEL, OTEL_METRIC, _counted, _responses

    held = ImportResponse.response_key.startswith(OTEL) | ImportResponse.response_key.startswith(OTEL_METRIC)
    sessions = {e: (source, model) for e, source, model in Session.select(
        Session.external_id, Session.source, Session.model).where(*where, Session.external_id.in_(
            ImportResponse.select(ImportResponse.session_external_id).where(
                ImportResponse.user == user_id, held, ImportResponse.created_at >= since,
                ImportResponse.created_at < until))).limit(MAX_ENTRIES).tuples()}
    by_session = {}
    for r in _responses("session_responses", ImportResponse.session_external_id, user_id, list(sessions)):
        by_session.setdefault(r["session_external_id"], []).append(r)
    out = []
    for external_id, rows in by_session.items():
        source, session_model = sessions[external_id]
        for r in _counted(rows):
            if r["response_key"].startswith((OTEL, OTEL_METRIC)) and since <= r["created_at"] < until:
                out.append(_entry(r["created_at"], source, r["model"] or session_model, r, r["cost_usd"]))
    return out


def _from_client_totals(user_id, where, since, until):
    """Sessions only a client described: their totals (and the client's cost) at their last
    activity, as the session totals count them (a client's per-message counts are not)."""
    with_tokens = Message.select(Message.session).where(
        (Message.input_tokens + Message.output_tokens + Message.cache_write_tokens + Message.cache_read_tokens) > 0)
    rows = Session.select(
        Session.updated_at, Session.source, Session.model, Session.cost, Session.prompt_tokens,
        Session.completion_tokens, *(getattr(Session, k) for k in KINDS),
    ).where(*where, Session.updated_at >= since, Session.updated_at < until,
            (Session.total_tokens > 0) | (Session.cost > 0), Session.external_id.not_in(_described(user_id)),
            Session.id.not_in(with_tokens)).order_by(Session.updated_at.desc()).limit(MAX_ENTRIES).dicts()
    out = []
    for r in rows:
        if not any(r[k] for k in KINDS):
            r.update(input_tokens=r["prompt_tokens"], output_tokens=r["completion_tokens"])
        out.append(_entry(r["updated_at"], r["source"], r["model"], r, r["cost"] if r["cost"] else None))
    return out


def _recorded_costs(user_id, rows):
    """{(session externalId, message externalId): the costUSD its transcript recorded}."""
    keys = sorted({(r["session"], r["message"]) for r in rows})
    found = {}
    for start in range(0, len(keys), 400):
        chunk = keys[start:start + 400]
        query = ImportResponse.select(ImportResponse.session_external_id, ImportResponse.message_external_id,
                                      ImportResponse.cost_usd).where(
            ImportResponse.user == user_id, ImportResponse.cost_usd.is_null(False),
            Tuple(ImportResponse.session_external_id, ImportResponse.message_external_id).in_(chunk))
        for session, message, cost in query.tuples():
            found[(session, message)] = found.get((session, message), 0.0) + cost
    return found


# --- blocks -----------------------------------------------------------------------------------

def identify(items, hours, now):
    """ccusage's blocks over ``items`` (entries in time order): a list of block dicts."""
    length = int(hours * HOUR_MS)
    blocks, start, current = [], None, []
    for entry in items:
        at = entry["at"]
        if start is not None:
            last = current[-1]["at"] if current else start
            if at - start > length or at - last > length:
                blocks.append(_block(start, current, now, length))
                if at - last > length:
                    blocks.append(_gap(last + length, at))
                start, current = None, []
        if start is None:
            start = at - at % HOUR_MS
        current.append(entry)
    if current:
        blocks.append(_block(start, current, now, length))
    return blocks


def _tally(items):
    totals = {k: sum(e[k] for e in items) for k in KINDS}
    totals["total_tokens"] = sum(totals.values())
    totals["cost"] = sum(e["cost"] for e in items)
    return totals


def _cost_status(items):
    priced = {e["priced"] for e in items}
    return "unpriced" if "unpriced" in priced else ("estimated" if "estimated" in priced else None)


def _block(start, items, now, length):
    end, last = start + length, items[-1]["at"]
    active = now - last < length and now < end
    totals = _tally(items)
    models = list(dict.fromkeys(e["model"] for e in items if e["model"]))
    by_source = {}
    for e in items:
        by_source.setdefault(e["source"], []).append(e)
    block = {
        "id": iso(start), "start": start, "end": end, "actual_end": last, "is_active": active, "is_gap": False,
        "entries": len(items), **totals, "cost_status": _cost_status(items), "models": models,
        "sources": [{"source": s, **_tally(group), "cost_status": _cost_status(group)} for s, group in by_source.items()],
        "burn_rate": None, "projection": None,
    }
    if active:
        block["burn_rate"] = burn_rate(block, items[0]["at"])
        block["projection"] = projection(block, now)
    return block


def _gap(start, end):
    return {"id": f"gap-{iso(start)}", "start": start, "end": end, "actual_end": None, "is_active": False,
            "is_gap": True, "entries": 0, **dict.fromkeys(KINDS, 0), "total_tokens": 0, "cost": 0.0,
            "cost_status": None, "models": [], "sources": [], "burn_rate": None, "projection": None}


def burn_rate(block, first):
    """Tokens and cost per minute and hour from the block's first entry to its last (none
    when they are at one instant)."""
    minutes = (block["actual_end"] - first) / MINUTE_MS
    if minutes <= 0:
        return None
    return {"tokens_per_minute": block["total_tokens"] / minutes,
            "tokens_per_minute_for_indicator": (block["input_tokens"] + block["output_tokens"]) / minutes,
            "tokens_per_hour": block["total_tokens"] / minutes * 60,
            "cost_per_minute": block["cost"] / minutes, "cost_per_hour": block["cost"] / minutes * 60}


def projection(block, now):
    rate = block["burn_rate"]
    if rate is None:
        return None
    remaining = round(max(0, block["end"] - now) / MINUTE_MS)
    return {"total_tokens": round(block["total_tokens"] + rate["tokens_per_minute"] * remaining),
            "total_cost": round((block["cost"] + rate["cost_per_minute"] * remaining) * 100) / 100,
            "remaining_minutes": remaining}


# --- what the API and the Limits page show -------------------------------------------------------

def windows(user_id, filters, hours=5, days=7, now=None):
    """The blocks of ``hours`` and the weekly windows over the last ``days`` (or ``from`` /
    ``to``), each list oldest first, with the active ones picked out. Entries from a week
    before the range are read too, so a window that began before it starts where it began."""
    now = int(time.time() * 1000) if now is None else now
    until = filters.get("date_to") or now + 1
    since = filters.get("date_from") if filters.get("date_from") is not None else until - days * 86_400_000
    items = entries(user_id, filters, since - WEEK_HOURS * HOUR_MS, until)
    blocks = [b for b in identify(items, hours, now) if b["end"] > since]
    weeks = [w for w in identify(items, WEEK_HOURS, now) if w["end"] > since and not w["is_gap"]]
    return {
        "hours": hours, "since": since, "until": until, "now": now,
        "blocks": blocks, "active": next((b for b in blocks if b["is_active"]), None),
        "weeks": weeks, "active_week": next((w for w in weeks if w["is_active"]), None),
    }


# --- the real quota, from Claude Code's status line ---------------------------------------------

SNAPSHOT_EVERY_MS = 60_000  # an unchanged snapshot from one machine is kept once a minute
QUOTA_FIELDS = ("five_hour_used", "five_hour_resets_at", "seven_day_used", "seven_day_resets_at")


def record_snapshot(user_id, snapshot, now=None):
    """Keep what one status line run reported (limits_wire.SnapshotIn's load); returns whether
    it was stored (a copy of the machine's last one within a minute is not)."""
    from .db import write_transaction
    from .models import QuotaSnapshot

    now = int(time.time() * 1000) if now is None else now
    with write_transaction(user_id):
        last = (QuotaSnapshot.select().where(QuotaSnapshot.user == user_id, QuotaSnapshot.machine == snapshot["machine"])
                .order_by(QuotaSnapshot.created_at.desc()).limit(1).first())
        same = last is not None and all(getattr(last, k) == snapshot.get(k) for k in QUOTA_FIELDS) \
            and last.session_external_id == snapshot.get("session_external_id")
        if same and now - last.created_at < SNAPSHOT_EVERY_MS:
            if snapshot.get("session_cost") is not None:
                QuotaSnapshot.update(session_cost=snapshot["session_cost"]).where(QuotaSnapshot.id == last.id).execute()
            return False
        QuotaSnapshot.insert(user=user_id, created_at=now, **snapshot).execute()
        return True


def quota_history(user_id, since, until, limit=2000):
    """The status line's snapshots from ``since`` to ``until`` that carry quota figures, oldest
    first (the most recent ``limit`` of them)."""
    from .models import QuotaSnapshot

    rows = list(QuotaSnapshot.select(QuotaSnapshot.machine, QuotaSnapshot.model, QuotaSnapshot.session_cost,
                                     *(getattr(QuotaSnapshot, k) for k in QUOTA_FIELDS), QuotaSnapshot.created_at)
                .where(QuotaSnapshot.user == user_id, QuotaSnapshot.created_at >= since,
                       QuotaSnapshot.created_at < until,
                       QuotaSnapshot.five_hour_used.is_null(False) | QuotaSnapshot.seven_day_used.is_null(False))
                .order_by(QuotaSnapshot.created_at.desc()).limit(limit).dicts())
    return rows[::-1]


def spend(user_id, since, until, filters=None):
    """What every agent spent from ``since`` to ``until``: tokens, cost and its basis."""
    items = entries(user_id, filters or {}, since, until)
    return {**_tally(items), "cost_status": _cost_status(items)}


def day_start(now):
    return now - now % 86_400_000
