"""One project per folder, the synctest session as a test, parents with their subagents'
totals, the cumulative chart: through the API and the dashboard's HTML (Flask's test client on
a real database file)."""

import re
import threading
import time

import pytest

from test_dashboard import cards_of, html, sign_in

pytestmark = pytest.mark.both_databases

NOW = int(time.time() * 1000)

# (externalId, projectName, projectPath, cost): one folder reached five ways, one reached by
# name only, two folders that share a last component, and a bare name no folder fits.
PROJECT_SESSIONS = [
    ("a1", "api", "/home/u/src/api", 1.0),
    ("a2", None, "/home/u/src/api/", 2.0),
    ("a3", "api", None, 4.0),
    ("a4", "API service", "/home/u/src/api", 8.0),
    ("a5", "API service", None, 16.0),
    ("w1", None, "/home/u/src/web", 0.5),
    ("w2", "web", None, 0.25),
    ("l1", None, "/a/lib", 0.1),
    ("l2", None, "/b/lib", 0.1),
    ("l3", "lib", None, 0.1),
    ("t1", "tools", None, 0.1),
]
API = "/home/u/src/api"


@pytest.fixture
def browser(app, api):
    client = app.test_client()
    sign_in(client, api.headers["Authorization"].removeprefix("Bearer "))
    return client


@pytest.fixture
def projects(api):
    for i, (external_id, name, path, cost) in enumerate(PROJECT_SESSIONS):
        body = {"externalId": external_id, "source": "claude-code", "title": f"Session {external_id}",
                "cost": cost, "promptTokens": 100, "completionTokens": 10, "createdAt": NOW - 3_600_000 + i}
        if name:
            body["projectName"] = name
        if path:
            body["projectPath"] = path
        assert api.post("/sync/session", body).status_code == 200
    return PROJECT_SESSIONS


def listed(api, **query):
    body = api.get("/api/sessions", query_string={"limit": 100, **query}).get_json()
    return {s["externalId"] for s in body["sessions"]}


def test_one_folder_is_one_project_in_filters_and_stats(api, projects):
    options = {o["value"]: (o["count"], o["label"]) for o in api.get("/api/sessions/filters").get_json()["projects"]}
    assert options == {API: (5, "api"), "/home/u/src/web": (2, "web"), "/a/lib": (1, "/a/lib"),
                       "/b/lib": (1, "/b/lib"), "lib": (1, "lib"), "tools": (1, "tools")}
    rows = {r["project"]: r for r in api.get("/api/stats/projects").get_json()["projects"]}
    assert set(rows) == set(options)
    assert rows[API]["sessions"] == 5 and rows[API]["cost"] == pytest.approx(31.0) and rows[API]["label"] == "api"
    assert rows["/home/u/src/web"]["cost"] == pytest.approx(0.75)
    assert api.get("/api/stats").get_json()["uniqueProjects"] == 6


@pytest.mark.parametrize("value", [API, API + "/", "api", "API service"])
def test_any_name_of_a_folder_filters_to_the_whole_folder(api, projects, value):
    assert listed(api, project=value) == {"a1", "a2", "a3", "a4", "a5"}


def test_a_name_two_folders_share_stays_apart(api, projects):
    assert listed(api, project="lib") == {"l3"}
    assert listed(api, project="/a/lib") == {"l1"}
    assert listed(api, project="nowhere") == set()


def test_overview_and_list_show_a_folder_once_by_its_last_component(browser, projects):
    page = html(browser.get("/?range=7d"))
    top = page.split('id="top-projects"', 1)[1].split("</section>", 1)[0]
    names = re.findall(r'<a class="plain" href="[^"]+"(?: title="([^"]*)")?>([^<]+)</a>', top)
    assert names[0] == (API, "api") and [label for _, label in names].count("api") == 1
    assert "5 sessions" in top and "$31.00" in top
    assert cards_of(page)["Projects"] == "6"
    assert f'<option value="{API}" title="{API}">api (5)</option>' in page
    chart = html(browser.get("/?range=7d&stack=project"))
    legend = chart.split('class="legend"', 1)[1].split("</figcaption>", 1)[0]
    assert re.findall(r"</span>([^<]+)</span>", legend).count("api") == 1

    listing = html(browser.get("/sessions?project=api"))
    assert f'<option value="{API}" selected title="{API}">api (5)</option>' in listing
    cells = re.findall(r'<td class="project" title="([^"]*)">([^<]+)</td>', listing)
    assert sorted(cells) == sorted([(API, "api"), (API + "/", "api"), ("api", "api"), (API, "api"),
                                    ("API service", "API service")])


# --- the synctest session ---------------------------------------------------------------------

# What `claude-code-sync synctest` (0.1.15) posts, as captured on the wire.
SYNCTEST = {"externalId": "test-1795618533894", "source": "claude-code", "title": "Connection Test",
            "projectName": "synctest", "durationMs": 21}


@pytest.fixture
def with_synctest(api, projects):
    assert api.post("/sync/session", SYNCTEST).status_code == 200
    # Near misses are real work: a test title in a real folder, a "synctest" project of one's own.
    for body in ({"externalId": "test-1", "title": "Connection Test", "projectName": "synctest",
                  "projectPath": "/home/u/synctest"},
                 {"externalId": "n1", "title": "Connection Test", "projectName": "synctest"},
                 {"externalId": "test-2", "title": "Connection test of the VPN", "projectName": "synctest"}):
        assert api.post("/sync/session", {**body, "cost": 0.01, "createdAt": NOW - 60_000}).status_code == 200


def test_the_rule_matches_the_captured_request_only():
    from opensync_lite.queries import is_connection_test

    row = {"external_id": SYNCTEST["externalId"], "title": SYNCTEST["title"], "project_name": SYNCTEST["projectName"]}
    assert is_connection_test(row)
    assert not is_connection_test({**row, "project_path": "/home/u/synctest"})
    assert not is_connection_test({**row, "external_id": "n1"})
    assert not is_connection_test({**row, "title": "Connection test of the VPN"})


def test_the_connection_test_is_no_session_or_project_on_the_overview(browser, with_synctest):
    page = html(browser.get("/?range=7d"))
    real = len(PROJECT_SESSIONS) + 3
    assert cards_of(page)["Sessions"] == str(real)
    assert cards_of(page)["Projects"] == "7"  # the six above and /home/u/synctest (which the bare name joins)
    top = page.split('id="top-projects"', 1)[1].split("</section>", 1)[0]
    assert ">synctest</a>" in top  # the real ones ...
    recent = page.split('id="recent"', 1)[1].split("</section>", 1)[0]
    assert "Connection Test" in recent
    alone = html(browser.get("/?range=7d&project=synctest"))
    assert cards_of(alone)["Sessions"] == "3"  # ... test-1, n1 and test-2, not the connection test
    assert 'title="/home/u/synctest">synctest (3)</option>' in alone


def test_the_connection_test_is_listed_marked_and_deletable(app, api, browser, with_synctest):
    page = html(browser.get("/sessions?limit=100"))
    rows = re.findall(r'<a class="row-link" href="/sessions/(\d+)" title="(?:[^"]* · )?([^"]+)">[^<]*</a>(.*?)</td>', page, re.S)
    marked = {external_id for _, external_id, rest in rows if 'class="test-badge"' in rest}
    assert marked == {SYNCTEST["externalId"]}
    assert {external_id for _, external_id, _ in rows} >= {SYNCTEST["externalId"], "test-1", "n1", "test-2"}
    session_id = next(i for i, external_id, _ in rows if external_id == SYNCTEST["externalId"])
    csrf = re.search(r'name="csrf" value="([^"]+)"', html(browser.get(f"/sessions/{session_id}"))).group(1)
    assert browser.post(f"/sessions/{session_id}/delete", data={"csrf": csrf}).status_code == 302
    assert SYNCTEST["externalId"] not in html(browser.get("/sessions?limit=100"))


def test_stats_leave_the_connection_test_out_unless_asked(api, with_synctest):
    real = len(PROJECT_SESSIONS) + 3
    assert api.get("/api/stats").get_json()["sessionCount"] == real
    assert api.get("/api/stats?tests=true").get_json()["sessionCount"] == real + 1
    assert api.get("/api/stats?tests=false").get_json()["sessionCount"] == real
    daily = api.get("/api/stats/daily?days=7").get_json()["days"]
    assert sum(day["sessions"] for day in daily) == real
    assert api.get("/api/stats?tests=maybe").status_code == 400


def test_the_overviews_all_sessions_link_lists_what_it_counted(browser, with_synctest):
    page = html(browser.get("/?range=7d"))
    link = re.search(r'<a href="([^"]+)">All (\d+) sessions', page)
    assert int(link.group(2)) == len(PROJECT_SESSIONS) + 3
    listed = html(browser.get(link.group(1).replace("&amp;", "&") + "&limit=100"))
    assert SYNCTEST["externalId"] not in listed and "test-1" in listed
    assert "Connection tests left out" in listed
    shown = re.search(r'Connection tests left out: <a href="([^"]+)">show them', listed).group(1)
    assert SYNCTEST["externalId"] in html(browser.get(shown.replace("&amp;", "&") + "&limit=100"))


def test_a_server_with_only_the_connection_test_still_says_how_to_import(api, browser):
    assert api.post("/sync/session", SYNCTEST).status_code == 200
    page = html(browser.get("/"))
    assert "No sessions yet" in page and 'id="top-projects"' not in page
    assert 'class="test-badge"' in html(browser.get("/sessions"))


# --- parents with their subagents -------------------------------------------------------------

def family(api, parent, cost=1.0):
    """A parent, two subagents and a subagent of the first: 10 + 4 + 2 + 1 dollars' worth, scaled."""
    for external_id, up, share in ((parent, None, 10), (f"{parent}-c1", parent, 4), (f"{parent}-c2", parent, 2),
                                   (f"{parent}-c1-g", f"{parent}-c1", 1)):
        body = {"externalId": external_id, "title": external_id, "cost": share * cost,
                "promptTokens": share * 1000, "completionTokens": 0, "createdAt": NOW - 3_600_000}
        if up:
            body["parentExternalId"] = up
        assert api.post("/sync/session", body).status_code == 200


def row_of(page, title):
    return re.search(rf'<tr data-row>(?:(?!</tr>).)*?>{re.escape(title)}</a>.*?</tr>', page, re.S).group(0)


def test_a_folded_parent_shows_its_total_with_its_subagents(api, browser):
    family(api, "p")
    page = html(browser.get("/sessions"))
    row = row_of(page, "p")
    cost = re.search(r'<td class="num cost">(.*?)</td>', row, re.S).group(1)
    tokens = re.search(r'<td class="num tokens"[^>]*>(.*?)</td>', row, re.S).group(1)
    assert cost.startswith("$10.00") and "$17.00 with subagents" in cost
    assert tokens.startswith("10k") and '17k<span class="visually-hidden"> with subagents</span>' in tokens and "3 sessions, every level down" in tokens
    assert "↳ 2 subagents" in row  # the link lists the direct ones
    shown = html(browser.get("/sessions?subagents=show"))
    assert "with subagents" in row_of(shown, "p-c1") and "$5.00 with subagents" in row_of(shown, "p-c1")
    assert "with subagents" not in row_of(shown, "p-c2")


def test_a_subagent_loop_ends(api, browser):
    family(api, "q")
    api.post("/sync/session", {"externalId": "q", "parentExternalId": "q-c1-g"})  # q under its own grandchild
    page = html(browser.get("/sessions?subagents=show"))
    assert "$17.00 with subagents" in row_of(page, "q")


def test_the_subagent_totals_cost_one_query_for_any_number_of_rows(api, browser, monkeypatch):
    import peewee

    def statements(path):
        seen = []
        real = peewee.Database.execute_sql
        me = threading.get_ident()  # the request's queries (the test client runs it here), not a background job's

        def counting(self, sql, *args, **kwargs):
            if threading.get_ident() == me:
                seen.append(sql)
            return real(self, sql, *args, **kwargs)
        monkeypatch.setattr(peewee.Database, "execute_sql", counting)
        html(browser.get(path))
        monkeypatch.setattr(peewee.Database, "execute_sql", real)
        return seen

    family(api, "f0")
    few = statements("/sessions?limit=25")
    for i in range(1, 12):
        family(api, f"f{i}", cost=i)
    many = statements("/sessions?limit=25")
    assert html(browser.get("/sessions?limit=25")).count("with subagents</span>") == 2 * 12
    assert len(many) == len(few)
    assert sum("tree" in sql for sql in many) == 1


# --- the cumulative chart ---------------------------------------------------------------------

def columns_of(page):
    """(what the column is, its total) of each chart column with sessions, as screen readers hear it."""
    return re.findall(r'<span class="visually-hidden">([^<:]+): (\$[\d.,]+), \d+ sessions?(?: in all)?</span>', page)


def test_the_chart_per_bucket_or_cumulative(api, browser):
    from datetime import datetime, timedelta, timezone

    today = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    for days_ago, cost in ((5, 1.0), (5, 2.0), (3, 4.0), (0, 8.0)):
        at = int((today - timedelta(days=days_ago)).timestamp() * 1000)
        api.post("/sync/session", {"externalId": f"d{days_ago}-{cost}", "cost": cost, "createdAt": at, "source": "claude-code"})
    first = (today - timedelta(days=6)).date().isoformat()

    per = html(browser.get("/?range=7d&metric=cost"))
    assert "Cost per day by source" in per
    assert [total for _, total in columns_of(per)] == ["$3.00", "$4.00", "$8.00"]
    assert re.search(r'<a href="[^"]*view=cumulative[^"]*">Cumulative</a>', per)

    page = html(browser.get("/?range=7d&metric=cost&view=cumulative"))
    assert "Cost so far, by day and source" in page
    assert '<a href="/?range=7d&amp;metric=cost&amp;view=cumulative" aria-current="true">Cumulative</a>' in page
    columns = columns_of(page)
    assert [total for _, total in columns] == ["$3.00", "$3.00", "$7.00", "$7.00", "$7.00", "$15.00"]
    assert all(when.startswith(first + " – ") for when, _ in columns)
    assert f"from={first}" in re.findall(r'<a class="bar" href="([^"]+)"', page)[-1]
    # The filter form keeps the view when filters change, without scripts too.
    assert '<input type="hidden" name="view" value="cumulative">' in page
    bad = browser.get("/?view=sideways")
    assert bad.status_code == 400 and "view" in bad.get_data(as_text=True)
