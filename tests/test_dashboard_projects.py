"""One project per folder, the synctest session as a test, parents with their subagents'
totals, the cumulative chart: through the API and the dashboard's HTML (Flask's test client on
a real database file)."""

import re
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
