"""Metrics against hand-computed fixtures, through the API (SQLite and PostgreSQL):
NPS / CSAT / CES with their intervals, empty periods, period boundaries in the
caller's time zone, groupings, operations figures, who may see them."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, update

from caseloop import rollup
from caseloop.cases import Cases
from caseloop.extension import state
from caseloop.facts import ANSWERS
from caseloop.models import Case
from caseloop.users import add_user, issue_token

from .test_api import COMPLAINT
from .test_cases import build_app, dispose, person

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(request.param, tmp_path, CASELOOP_TIMEZONE="Asia/Shanghai")
    yield app
    dispose(app)


def client_for(app: Flask, name: str, roles: list[str]) -> FlaskClient:
    with app.app_context():
        session = state().db.session
        token = issue_token(session, add_user(session, name, roles=roles, teams=["care"]))
        session.commit()
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def a_case(app: Flask, **data: Any) -> int:
    with app.app_context():
        agent = person(app, f"a{id(data)}", ["agent"], ["care"])
        case = Cases(state().db.session, state().registry).create(
            "complaint", {**COMPLAINT, **data}, agent)
        state().db.session.commit()
        return case.id


def answers(app: Flask, case_id: int, metric: str, values: list[int], at: dt.datetime,
            *, report: str | None = None, low: int = 0, high: int = 10,
            **dims: Any) -> None:
    """Scored answers as the facts keep them (one field each)."""
    with app.app_context():
        session = state().db.session
        start = session.execute(ANSWERS.select().where(ANSWERS.c.case_id == case_id)).all()
        for i, value in enumerate(values, start=len(start)):
            session.execute(insert(ANSWERS).values(
                case_id=case_id, workflow="revisit", parent_workflow="complaint",
                field=f"q{i}", metric=metric, report=report, value=value, low=low, high=high,
                answered_at=at.astimezone(dt.UTC), **dims))
        rollup.rebuild(session)  # written by hand: sum their hours as the facts would
        session.commit()


def get(client: FlaskClient, path: str, **args: str) -> dict[str, Any]:
    reply = client.get(path, query_string=args)
    assert reply.status_code == 200, reply.get_json()
    body: dict[str, Any] = reply.get_json()
    return body


OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
MID_OCTOBER = dt.datetime(2026, 10, 15, 10, 0, tzinfo=SHANGHAI)


def test_nps_of_ten_answers_with_its_interval(app: Flask) -> None:
    case_id = a_case(app)
    answers(app, case_id, "nps", [9, 10, 9, 10, 9, 7, 8, 7, 3, 6], MID_OCTOBER)
    manager = client_for(app, "mia", ["manager"])
    body = get(manager, "/api/metrics/satisfaction", **OCTOBER)
    [group] = body["groups"]
    nps = group["metrics"]["nps"]
    # 5 promoters, 3 passives, 2 detractors: NPS 30; Var = (0.5 + 0.2 - 0.3²) / 10.
    half = 1.96 * 100 * math.sqrt((0.5 + 0.2 - 0.09) / 10)
    assert nps["value"] == 30 and nps["n"] == 10
    assert nps["counts"] == {"promoters": 5, "passives": 3, "detractors": 2}
    assert nps["ci95"] == pytest.approx([30 - half, 30 + half], abs=1e-4)
    assert nps["small_sample"] is True
    assert body["timezone"] == "Asia/Shanghai" and body["minimum"] == 30


def test_an_empty_period_is_null_with_n_zero(app: Flask) -> None:
    manager = client_for(app, "mia", ["manager"])
    body = get(manager, "/api/metrics/satisfaction", **OCTOBER)
    [group] = body["groups"]
    for name in ("nps", "csat", "ces", "response_rate"):
        assert group["metrics"][name]["value"] is None
        assert group["metrics"][name]["n"] == 0


def test_csat_as_declared_and_ces(app: Flask) -> None:
    case_id = a_case(app)
    answers(app, case_id, "csat", [5, 4, 4, 3, 1], MID_OCTOBER, report="top2box", low=1,
            high=5)
    answers(app, case_id, "ces", [7, 6, 5, 3], MID_OCTOBER, low=1, high=7)
    manager = client_for(app, "mia", ["manager"])
    metrics = get(manager, "/api/metrics/satisfaction", **OCTOBER)["groups"][0]["metrics"]
    csat = metrics["csat"]
    assert (csat["value"], csat["n"], csat["report"]) == (60, 5, "top2box")
    z, p, n = 1.959963984540054, 0.6, 5  # Wilson, computed here independently
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert csat["ci95"] == pytest.approx([100 * (centre - half), 100 * (centre + half)],
                                         abs=1e-3)
    ces = metrics["ces"]
    assert ces["value"] == pytest.approx(5.25) and ces["n"] == 4
    assert metrics["ces_agree"]["value"] == 75  # 3 of 4 answered 5-7


def test_period_edges_are_days_in_the_callers_zone(app: Flask) -> None:
    case_id = a_case(app)
    # 00:30 on 1 October in Shanghai is still 30 September in UTC: October.
    answers(app, case_id, "nps", [10], dt.datetime(2026, 10, 1, 0, 30, tzinfo=SHANGHAI))
    # 00:30 on 1 November in Shanghai is 31 October in UTC: November.
    answers(app, case_id, "nps", [0], dt.datetime(2026, 11, 1, 0, 30, tzinfo=SHANGHAI))
    manager = client_for(app, "mia", ["manager"])
    nps = get(manager, "/api/metrics/satisfaction", **OCTOBER)["groups"][0]["metrics"]["nps"]
    assert (nps["value"], nps["n"]) == (100, 1)
    utc = get(manager, "/api/metrics/satisfaction", tz="UTC", **OCTOBER)
    assert utc["groups"][0]["metrics"]["nps"]["n"] == 1  # the November one, by UTC
    assert utc["groups"][0]["metrics"]["nps"]["value"] == -100


def test_grouped_by_week_and_by_category(app: Flask) -> None:
    case_id = a_case(app)
    week1 = dt.datetime(2026, 10, 6, 12, tzinfo=SHANGHAI)   # Tuesday of ISO week 41
    week2 = dt.datetime(2026, 10, 13, 12, tzinfo=SHANGHAI)  # ISO week 42
    answers(app, case_id, "nps", [10, 10], week1, category="delivery")
    answers(app, case_id, "nps", [0], week2, category="billing")
    manager = client_for(app, "mia", ["manager"])
    weeks = get(manager, "/api/metrics/satisfaction", group_by="week", **OCTOBER)["groups"]
    assert [(g["key"], g["metrics"]["nps"]["value"]) for g in weeks] == [
        ("2026-W41", 100), ("2026-W42", -100)]
    by_category = get(manager, "/api/metrics/satisfaction", group_by="category",
                      **OCTOBER)["groups"]
    assert {g["key"]: g["metrics"]["nps"]["n"] for g in by_category} == {
        "billing": 1, "delivery": 2}
    only = get(manager, "/api/metrics/satisfaction", category="billing", **OCTOBER)
    assert only["groups"][0]["metrics"]["nps"]["value"] == -100


def test_operations_times_rates_and_backlog(app: Flask) -> None:
    ids = [a_case(app, customer_id=f"C-{i}") for i in range(4)]
    created = dt.datetime(2026, 10, 10, 9, tzinfo=SHANGHAI).astimezone(dt.UTC)
    hours = [1, 2, 3, 10]  # first responses: median (nearest rank) 2 h, p90 10 h
    with app.app_context():
        session = state().db.session
        for i, (case_id, h) in enumerate(zip(ids, hours, strict=True)):
            session.execute(update(Case).where(Case.id == case_id).values(
                created_at=created, first_response_at=created + dt.timedelta(hours=h),
                resolved_at=created + dt.timedelta(hours=24 * (i + 1)) if i < 3 else None,
                reopened=1 if i == 0 else 0, sla_policy="standard",
                sla_breached=i == 3, repeat=i == 1, closed=i < 3))
        session.commit()
    manager = client_for(app, "mia", ["manager"])
    body = get(manager, "/api/metrics/operations", workflow="complaint", **OCTOBER)
    m = body["groups"][0]["metrics"]
    assert m["volume"]["value"] == 4
    assert (m["first_response"]["value"], m["first_response"]["p90"]) == (2, 10)
    assert (m["resolution"]["value"], m["resolution"]["p90"]) == (48, 72)
    assert (m["sla_compliance"]["value"], m["sla_compliance"]["n"]) == (75, 4)
    assert (m["reopen_rate"]["value"], m["reopen_rate"]["n"]) == (pytest.approx(100 / 3,
                                                                                abs=1e-3), 3)
    assert m["repeat_rate"]["value"] == 25
    assert sum(body["backlog"].values()) == 1 and body["backlog"][">30d"] == 1


def test_who_may_see_metrics_and_bad_queries(app: Flask) -> None:
    agent = client_for(app, "ann", ["agent"])
    assert agent.get("/api/metrics/satisfaction").status_code == 403
    manager = client_for(app, "mia", ["manager"])
    bad = manager.get("/api/metrics/satisfaction?group_by=colour")
    assert bad.status_code == 422 and "group_by" in bad.get_json()["error"]["fields"]
    backwards = manager.get("/api/metrics/operations?from=2026-10-31&to=2026-10-01")
    assert backwards.status_code == 422
    assert manager.get("/api/metrics/satisfaction?tz=Mars/Base").status_code == 422
    assert manager.get("/api/metrics/satisfaction?team=nobody").status_code == 422
    too_many = manager.get("/api/metrics/satisfaction?group_by=day&from=2020-01-01")
    assert too_many.status_code == 422
    assert manager.get("/api/metrics/satisfaction").status_code == 200  # last 30 days
