"""Stats blueprint: usage totals grouped by source, model, provider, project and day.
Each route takes the session filters (source, model, provider, project, q, from, to)."""

from flask import Blueprint, g

from . import queries, responses, schemas
from .auth import require_user

bp = Blueprint("stats", __name__, url_prefix="/api/stats")
bp.before_request(require_user)

GROUPS = {"sources": "source", "models": "model", "providers": "provider", "projects": "project"}
_group_out = {group: responses.group_schema(name, group)() for group, name in GROUPS.items()}


def _filters():
    return schemas.read_query(schemas.stats_query)


@bp.get("")
def summary():
    return responses.summary_out.dump(queries.summary(g.user_id, _filters()))


@bp.get("/<any(sources, models, providers, projects):group>")
def grouped(group):
    rows = queries.grouped_stats(g.user_id, _filters(), GROUPS[group])
    return _group_out[group].dump({group: rows})


@bp.get("/daily")
def daily():
    """Per UTC day, or per week or month with ``bucket``: ``days`` days up to ``to`` (or from ``from``)."""
    args = _filters()
    return {"days": responses.day_stats_out.dump(queries.daily_stats(g.user_id, args, args["days"], args["bucket"]))}


@bp.get("/blocks")
def blocks():
    """5-hour billing blocks (``hours``) and weekly windows, computed as ccusage 20 does (limits)."""
    from . import limits, limits_wire

    args = schemas.read_query(limits_wire.blocks_query)
    return limits_wire.windows_out.dump(limits.windows(g.user_id, args, args.pop("hours"), args.pop("days")))
