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
