"""Stats blueprint: usage totals grouped by source, model, provider, project and day.
Each route takes the session filters (source, model, provider, project, q, from, to)."""

from flask import Blueprint, g, request

from . import queries, schemas
from .auth import require_user

bp = Blueprint("stats", __name__, url_prefix="/api/stats")
bp.before_request(require_user)

GROUPS = {"sources": "source", "models": "model", "providers": "provider", "projects": "project"}
_group_out = {name: schemas.group_schema(name) for name in GROUPS.values()}


def _filters():
    return schemas.load(schemas.stats_query, request.args)


@bp.get("")
def summary():
    return schemas.summary_out.dump(queries.summary(g.user_id, _filters()))


@bp.get("/<any(sources, models, providers, projects):group>")
def grouped(group):
    dimension = GROUPS[group]
    rows = queries.grouped_stats(g.user_id, _filters(), dimension)
    return {group: _group_out[dimension].dump(rows)}


@bp.get("/daily")
def daily():
    args = _filters()
    return {"days": schemas.day_stats_out.dump(queries.daily_stats(g.user_id, args, args["days"]))}
