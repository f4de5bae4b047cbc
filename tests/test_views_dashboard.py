"""The dashboard page (views/dashboard.py): who may see it, hand-computed tiles with
their n and interval, Chinese, filters kept in the address, bad filters shown back
with what to fix, data shown as text, and a number of queries that does not grow
with the data. On SQLite and PostgreSQL where the SQL differs."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, insert, update

from caseloop import rollup
from caseloop.extension import state
from caseloop.facts import ANSWERS
from caseloop.models import Case, Team

from .test_views_auth import add
from .test_views_inbox import html_of, new_case, page_client, person

XSS = '<script>alert("x")</script>'
#: 10 NPS answers: 5 promoters, 3 passives, 2 detractors. NPS = 100 * (5 - 2) / 10 = 30;
#: Var = (0.5 + 0.2 - 0.3**2) / 10 = 0.061; half width 1.96 * 100 * sqrt(0.061) = 48.41,
#: so the interval is -18.41 to 78.41.
NPS_ANSWERS = (10, 10, 9, 9, 9, 8, 7, 7, 3, 6)
#: 4 ratings on 1-5 reported as a mean: 4.0; s = sqrt(2/3), t(0.975, 3) = 3.1824, half
#: width 3.1824 * 0.8165 / 2 = 1.299: 2.70 to 5.30, clipped to the scale's 5.
CSAT_ANSWERS = (5, 4, 4, 3)


def answer(app: Flask, case_id: int, metric: str, values: tuple[int, ...], *,
           days_ago: float = 1, category: str | None = "delivery",
           channel: str | None = "web", report: str | None = None,
           field: str | None = None) -> None:
    """Scored answers tied to a real case, as facts.py writes them for a revisit (one
    field each: a case has one row per field)."""
    low, high = {"nps": (0, 10), "ces": (1, 7), "csat": (1, 5)}[metric]
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    with app.app_context():
        session = state().db.session
        session.execute(insert(ANSWERS), [{
            "case_id": case_id, "workflow": "revisit", "parent_workflow": "complaint",
            "field": f"{field or metric}_{i}", "metric": metric, "report": report, "value": v,
            "low": low, "high": high, "answered_at": at, "channel": channel,
            "category": category} for i, v in enumerate(values)])
        rollup.rebuild(session)  # written by hand: sum their hours as the facts would
        session.commit()


def manager(app: Flask, lang: str = "en") -> FlaskClient:
    add(app, "maria", roles=["manager"], teams=["care"])
    return page_client(app, "maria", lang)


def tile(page: str, name: str) -> str:
    found = re.search(rf'id="tile-{name}">(.*?)</li>', page, re.S)
    assert found, page
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def charts(page: str) -> dict[str, dict[str, Any]]:
    found = re.search(r'<script type="application/json" id="dash-data">(.*?)</script>',
                      page, re.S)
    assert found, page
    return {c["id"]: c for c in json.loads(found.group(1))}


def table(page: str, chart_id: str) -> list[list[str]]:
    found = re.search(rf'<table id="table-{chart_id}">(.*?)</table>', page, re.S)
    assert found, page
    return [[htmllib.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)]


def test_who_may_see_the_dashboard(app: Flask) -> None:
    resp = app.test_client().get("/dashboard?group_by=month")
    assert resp.status_code == 302
    assert resp.location == "/login?next=/dashboard?group_by%3Dmonth"
    person(app, "alice")  # an agent: a 403 page that says why, and no link to it
    agent = page_client(app, "alice")
    page = html_of(agent, "/dashboard", 403)
    assert "CASELOOP_METRICS_ROLES" in page and "<canvas" not in page
    assert 'href="/dashboard"' not in html_of(agent, "/home")
    boss = manager(app)
    assert 'href="/dashboard"' in html_of(boss, "/home")
    page = html_of(boss, "/dashboard")
    assert re.search(r'href="/dashboard" aria-current="page"', page)
    app.config["CASELOOP_METRICS_ROLES"] = ["analyst"]  # the roles are configurable
    html_of(boss, "/dashboard", 403)


def test_tiles_show_hand_computed_figures(any_db_app: Flask) -> None:
    app = any_db_app
    case = new_case(app, person(app, "alice"))
    answer(app, case["id"], "nps", NPS_ANSWERS)
    answer(app, case["id"], "csat", CSAT_ANSWERS, report="mean")
    page = html_of(manager(app), "/dashboard")
    assert tile(page, "nps") == "NPS 30 n = 10, 95% CI −18 to 78 small sample"
    assert tile(page, "csat") == ("CSAT 4.0 average rating n = 4, 95% CI 2.7 to 5.0 "
                                  "small sample")
    # An empty metric is a dash with n = 0, not 0 and not a 'small sample' warning.
    assert tile(page, "ces") == "CES — n = 0"
    assert tile(page, "response_rate") == "Survey response rate — n = 0"
    assert "fewer than 30 answers or cases" in page
    # The one complaint: its SLA is not missed yet; no first response, never resolved.
    assert tile(page, "sla_compliance").startswith("SLA compliance 100% n = 1, 95% CI 21%")
    assert tile(page, "first_response") == "First response (median) — n = 0"
    # The trend has the week of the answers; its table the same numbers.
    nps = charts(page)["nps-trend"]
    assert 30.0 in nps["values"] and "30 (n = 10, 95% CI −18 to 78)" in nps["tips"]
    week = nps["labels"][nps["values"].index(30.0)]
    assert [week, "30", "10", "−18 – 78"] in table(page, "nps-trend")
    # Breakdowns by category and channel, with the choices' labels.
    assert ["Delivery", "30", "10", "−18 – 78"] in table(page, "nps-category")
    assert table(page, "volume-category")[1:] == [["Delivery", "1"]]
    assert ["Web form", "30", "10", "−18 – 78"] in table(page, "nps-channel")
    # The backlog: one open case, under a day old. Plans: none yet, panel shown empty.
    assert table(page, "backlog")[1] == ["under 1 day", "1"]
    assert 'id="fig-plans"' in page and 'id="chart-plans"' not in page
    # Every chart is drawn from the JSON block by the vendored library, no CDN.
    assert 'src="/assets/vendor/chart.umd.js"' in page and "https://" not in page
    for name in ("nps-trend", "volume-trend", "backlog"):
        assert re.search(rf'<canvas id="chart-{name}" role="img" aria-label="Chart: ', page)


def test_the_page_in_chinese(app: Flask) -> None:
    case = new_case(app, person(app, "alice"))
    answer(app, case["id"], "nps", NPS_ANSWERS)
    page = html_of(manager(app, "zh"), "/dashboard")
    assert '<html lang="zh-CN">' in page and "<h1>数据看板</h1>" in page
    assert tile(page, "nps") == "NPS 净推荐值 30 n = 10，95% 置信区间 −18 至 78 样本量小"
    assert "NPS 净推荐值（按周）" in page and "以表格显示" in page
    assert ["物流配送", "30", "10", "−18 – 78"] in table(page, "nps-category")


def test_filters_round_trip_in_the_address(app: Flask) -> None:
    case = new_case(app, person(app, "alice"))
    answer(app, case["id"], "nps", NPS_ANSWERS)
    client = manager(app)
    # Without filters: the complaints of the last 30 days.
    page = html_of(client, "/dashboard")
    assert re.search(r'<option value="complaint" selected>', page)
    today = dt.date.fromisoformat(re.findall(r'name="to" type="date" value="([\d-]+)"',
                                             page)[0])
    assert f'name="from" type="date" value="{today - dt.timedelta(days=29)}"' in page
    query = ("workflow=complaint&from=2026-01-05&to=2026-02-15&team=care&agent=alice"
             "&channel=phone&category=delivery&segment=&group_by=month")
    page = html_of(client, f"/dashboard?{query}")
    for name, value in (("workflow", "complaint"), ("team", "care"), ("agent", "alice"),
                        ("channel", "phone"), ("category", "delivery"),
                        ("group_by", "month")):
        select = re.search(rf'<select id="f-{name}" name="{name}"\s*>(.*?)</select>', page, re.S)
        assert select and re.search(rf'<option value="{value}" selected>', select.group(1))
    assert 'name="from" type="date" value="2026-01-05"' in page
    assert 'name="to" type="date" value="2026-02-15"' in page
    assert charts(page)["volume-trend"]["labels"] == ["2026-01", "2026-02"]
    assert "2026-01-05 to 2026-02-15" in page
    # Nothing matched these filters: every chart says so, nothing is drawn.
    assert "No data in this period." in page and 'id="chart-' not in page
    # 'All workflows' is an empty workflow, not the default one.
    page = html_of(client, "/dashboard?workflow=&group_by=team")
    assert '<option value="" >' not in page and re.search(r'<option value="">All workflows', page)
    assert not re.search(r'<option value="complaint" selected>', page)
    assert "Cases by team" in page  # a dimension adds its breakdown; the trend stays weekly
    assert "NPS by week" in page


@pytest.mark.parametrize(("query", "field", "message"), [
    ("from=2026-13-01", "from", "Enter the first day as a date, such as 2026-03-01."),
    ("from=2026-03-10&to=2026-03-01", "from", "The first day is after the last day"),
    ("to=yesterday", "to", "Enter the last day as a date"),
    ("to=0001-01-02", "from", "These dates are out of range"),
    ("team=nobody", "team", "There is no team called &#39;nobody&#39;"),
    ("agent=%3Cb%3Ebob", "agent", "There is no user called &#39;&lt;b&gt;bob&#39;"),
    ("group_by=colour", "group_by", "Choose a grouping from the list."),
    ("group_by=day&from=2020-01-01&to=2026-01-01", "group_by", "too many periods"),
    ("category=" + "x" * 65, "category", "at most 64 characters"),
    ("category=a%00b", "category", "This value is not valid"),
])
def test_bad_filters_show_the_form_again(app: Flask, query: str, field: str,
                                         message: str) -> None:
    client = manager(app)
    page = html_of(client, f"/dashboard?{query}", 400)
    assert 'role="alert" id="dash-problems"' in page and message in page
    assert f'aria-describedby="e-{field}"' in page and f'id="e-{field}"' in page
    assert '<form class="dash-filters"' in page and 'id="tile-' not in page
    # Fixed, the same page answers.
    html_of(client, "/dashboard?from=2026-03-01&to=2026-03-10&group_by=day")


def test_values_are_shown_as_text(any_db_app: Flask) -> None:
    app = any_db_app
    case = new_case(app, person(app, "alice"))
    with app.app_context():
        session = state().db.session
        session.execute(update(Case).where(Case.id == case["id"]).values(category=XSS))
        session.commit()
    answer(app, case["id"], "nps", NPS_ANSWERS, category=XSS)
    client = manager(app)
    for url in ("/dashboard", f"/dashboard?category={XSS}"):
        page = html_of(client, url)
        assert XSS not in page and "alert(" in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    # In the JSON block too (tojson escapes '<'): the browser never ends the block early.
    assert "\\u003cscript\\u003e" in page
    assert [XSS, "30", "10", "−18 – 78"] in table(page, "nps-category")
    assert charts(page)["nps-category"]["labels"] == [XSS]


def cases(app: Flask, workflow: str, states: list[str], *, days_ago: float = 0) -> None:
    """Cases written straight to the table (no transitions: only the counts matter)."""
    made = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    with app.app_context():
        session = state().db.session
        version = state().registry.current.workflows[workflow].version
        session.execute(insert(Case), [{
            "workflow": workflow, "definition_version": version, "reference_prefix": "T",
            "state": st, "closed": st == "closed", "data": {}, "created_at": made,
            "updated_at": made, "version": 1} for st in states])
        session.commit()


def test_improvement_plans_by_state(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    cases(app, "improvement_plan", ["draft", "draft", "implementing"], days_ago=2)
    cases(app, "improvement_plan", ["draft"], days_ago=60)  # before the period
    client = manager(app)
    rows = table(html_of(client, "/dashboard"), "plans")
    assert rows[0] == ["State", "Plans"]
    assert ["Plan (D0-D2)", "2"] in rows and ["Implementing (D6, Do)", "1"] in rows
    assert sum(int(n) for _, n in rows[1:]) == 3  # every state listed, in the flow's order
    assert rows[1] == ["Plan (D0-D2)", "2"]
    assert ["Plan (D0-D2)", "3"] in table(html_of(client, "/dashboard?all=1"), "plans")
    # Without an improvement plan workflow loaded, no panel (and no query for it).
    from caseloop.views import dashboard

    monkeypatch.setattr(dashboard, "PLAN", "retired_plans")
    page = html_of(client, "/dashboard")
    assert 'id="h-plans"' not in page and "plans" not in charts(page)


def seed(app: Flask, size: int) -> None:
    """``size`` complaints and as many plans, with answers, over the last 60 days:
    every panel has data, whatever the size."""
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        session = state().db.session
        team = session.query(Team).filter_by(name="care").one()
        wf = state().registry.current.workflows
        rows = []
        for i in range(size):
            made = now - dt.timedelta(days=i % 60, hours=i % 24)
            for name, st in (("complaint", ("received", "resolved", "closed")[i % 3]),
                             ("improvement_plan", ("draft", "implementing", "closed")[i % 3])):
                rows.append({
                    "workflow": name, "definition_version": wf[name].version,
                    "reference_prefix": "T", "state": st, "closed": st == "closed",
                    "data": {}, "created_at": made, "updated_at": made, "version": 1,
                    "team_id": team.id, "channel": ("web", "phone")[i % 2],
                    "category": ("delivery", "billing", "product_quality")[i % 3],
                    "sla_policy": "standard" if i % 2 else None, "sla_breached": i % 4 == 1,
                    "first_response_at": made + dt.timedelta(hours=1 + i % 5),
                    "resolved_at": made + dt.timedelta(days=1) if st != "received" else None,
                    "reopened": i % 7 == 0})
        session.execute(insert(Case), rows)
        session.commit()
        ids = [c.id for c in session.query(Case).filter_by(workflow="complaint")]
    for i, case_id in enumerate(ids):
        answer(app, case_id, "nps", (i % 11,), days_ago=i % 60,
               channel=("web", "phone")[i % 2])
        answer(app, case_id, "ces", (1 + i % 7,), days_ago=i % 60)


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs."""
    found: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        found.append(sql)

    with app.app_context():
        engine = state().db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", count)


def queries_for(app: Flask, size: int, url: str) -> int:
    seed(app, size)
    with app.app_context():
        # Every request looks for a new publication (one query), not once a second:
        # the count must not depend on how fast the machine is.
        state().registry.poll = 0
    client = manager(app)
    html_of(client, url)  # warm: first-use lookups are not the page's cost
    with statements(app) as found:
        page = html_of(client, url)
    assert tile(page, "nps").startswith("NPS ") and "n = 0" not in tile(page, "nps")
    return len(found)


@pytest.mark.parametrize("url", ["/dashboard", "/dashboard?workflow=&group_by=agent&all=1"])
def test_a_fixed_number_of_queries_whatever_the_data(tmp_path: Any, url: str) -> None:
    from .conftest import make_app

    small = make_app(f"sqlite:///{tmp_path / 'small.sqlite3'}", tmp_path)
    large = make_app(f"sqlite:///{tmp_path / 'large.sqlite3'}", tmp_path)
    for app in (small, large):
        person(app, "alice")  # makes team 'care'
    counted = queries_for(small, 10, url), queries_for(large, 200, url)
    assert counted[0] == counted[1], counted
    # Eight metrics calls of a few aggregates each (ten with a breakdown by agent, and
    # the first row's time for all time), the plans, the form's teams and people.
    assert counted[0] < 60


def test_the_dashboard_offers_its_figures_and_cases_as_files(app: Flask) -> None:
    from .test_views_auth import add, login

    add(app, "mona", roles=["manager"], teams=["care"])
    add(app, "ann2", roles=["agent"], teams=["care"])
    client = app.test_client()
    assert login(client, "mona").status_code == 302
    page = client.get("/dashboard?from=2026-10-01&to=2026-10-31").get_data(as_text=True)
    assert 'href="/dashboard/metrics.csv?from=2026-10-01&amp;to=2026-10-31"' in page
    figures = client.get("/dashboard/metrics.csv?from=2026-10-01&to=2026-10-31")
    assert figures.status_code == 200
    assert figures.headers["Content-Disposition"].startswith("attachment;")
    assert figures.get_data().startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Chinese
    cases = client.get("/dashboard/cases.xlsx?workflow=complaint&group_by=week&agent=mona")
    assert cases.status_code == 200 and cases.get_data()[:2] == b"PK"  # a zip: XLSX
    assert client.get("/dashboard/cases.csv?team=nobody").status_code == 400
    agent = app.test_client()
    assert login(agent, "ann2").status_code == 302
    assert agent.get("/dashboard/metrics.csv").status_code == 403
