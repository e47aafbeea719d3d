"""The stats and list queries must use an index on sessions (SEARCH), never a full scan."""

import pytest

from opensync_lite import queries
from opensync_lite.db import database
from opensync_lite.schemas import SORTS

from factories import make_sessions, post_all

FILTERS = [{}, {"source": "cursor"}, {"source": "unknown"}, {"model": "gpt-5"}, {"date_from": 0, "date_to": 2**40}]


@pytest.fixture
def plan(app, api):
    post_all(api, make_sessions(40), messages_per_session=0)

    def explain(query):
        sql, params = query.sql()
        with app.app_context():
            return [row[3] for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()]

    with app.app_context():
        database.execute_sql("ANALYZE")
        yield explain


def assert_indexed(lines):
    on_sessions = [line for line in lines if " t1" in line]
    assert on_sessions, lines
    for line in on_sessions:
        assert line.startswith("SEARCH t1 USING"), lines


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("dimension", list(queries.DIMENSIONS))
def test_stats_queries_use_an_index(plan, filters, dimension):
    assert_indexed(plan(queries.stats_query(1, filters, dimension)))


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("sort", list(SORTS.values()))
@pytest.mark.parametrize("after", [None, (5, 10)])
def test_list_queries_use_an_index(plan, filters, sort, after):
    assert_indexed(plan(queries.page_query(1, filters, sort, True, 50, after)))


def test_the_subagent_rollup_walks_the_parent_index(plan, app, api):
    """The list's totals with subagents: every level down by (user, parent) index seeks, each
    session found by its (user, externalId) key; never a scan of sessions."""
    for i in range(60):  # statistics that know subagents: a parent has a few
        api.post("/sync/session", {"externalId": f"sub{i}", "parentExternalId": f"s{i % 20:03d}"})
    with app.app_context():
        database.execute_sql("ANALYZE")
        query = queries._under(1, ["s001", "s002"], lambda tree: queries._metrics())
    lines = plan(query)
    on_sessions = [line for line in lines if (" t1" in line or " child" in line or " t2" in line)
                   and not line.startswith("BLOOM FILTER")]  # a filter beside a SEARCH, no read of its own
    assert len(on_sessions) == 3, lines
    assert all(line.startswith("SEARCH") for line in on_sessions), lines
    assert sum("sessions_subagents_by_parent" in line for line in on_sessions) == 2, lines


def test_the_subagent_rollup_seeks_when_no_session_has_a_parent(plan):
    """Statistics over sessions none of which is a subagent (most users' lists) made the
    (user, parent) index look useless, and the rollup of a page scanned every session."""
    lines = plan(queries._under(1, ["s001", "s002"], lambda tree: queries._metrics()))
    on_sessions = [line for line in lines if (" t1" in line or " child" in line or " t2" in line)
                   and not line.startswith("BLOOM FILTER")]  # a filter beside a SEARCH, no read of its own
    assert len(on_sessions) == 3, lines
    assert all(line.startswith("SEARCH") for line in on_sessions), lines
    assert sum("sessions_subagents_by_parent" in line for line in on_sessions) == 2, lines


@pytest.mark.parametrize("filters", [{"source": "cursor"}, {"model": "gpt-5"}, {"source": "cursor", "model": "gpt-5"}])
def test_folded_counts_read_the_covering_index_alone(plan, filters):
    """The list's "1–50 of N" with subagents folded away: the parent is in the covering index,
    so no table row is read for it."""
    query = queries.Session.select(queries.fn.COUNT(queries.Session.id)).where(
        *queries.conditions(1, {**filters, "subagents": "fold"}))
    lines = plan(query)
    assert any("COVERING INDEX" in line for line in lines), lines


def test_the_connection_test_rule_keeps_the_stats_on_their_index(plan):
    assert_indexed(plan(queries.stats_query(1, {"tests": False}, *queries.BREAKDOWN)))
