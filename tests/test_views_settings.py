"""A reader's own time zone (views/settings.py, users.timezone, migration 0004):
times on the pages follow it; unknown zones are refused; the CLI sets it too."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from sqlalchemy import update

from caseloop.extension import state
from caseloop.models import Case, User

from .test_views_auth import token
from .test_views_cases import agent, new_case


def _zone_of(app: Flask, name: str) -> str | None:
    with app.app_context():
        user = state().db.session.query(User).filter_by(name=name).one()
        return user.timezone


def test_a_user_chooses_a_zone_and_the_pages_show_times_in_it(app: Flask) -> None:
    amy = agent(app)
    case_id = new_case(amy)
    with app.app_context():  # a known instant: 2026-11-23 12:00 UTC
        state().db.session.execute(update(Case).where(Case.id == case_id).values(
            updated_at=dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)))
        state().db.session.commit()
    page = amy.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "23 Nov 2026, 20:00" in page and "Asia/Shanghai" in page  # the install's default
    resp = amy.post("/settings", data={"csrf_token": token(amy, "/settings"),
                                       "timezone": "Europe/Berlin"})
    assert resp.status_code == 302 and _zone_of(app, "amy") == "Europe/Berlin"
    page = amy.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "23 Nov 2026, 13:00" in page and "Times are shown in Europe/Berlin." in page
    # Back to the service's zone.
    amy.post("/settings", data={"csrf_token": token(amy, "/settings"), "timezone": ""})
    assert _zone_of(app, "amy") is None


def test_an_unknown_zone_is_refused_and_nothing_changes(app: Flask) -> None:
    amy = agent(app)
    for bad in ("Mars/Olympus", "../../etc/passwd", "x" * 100):
        resp = amy.post("/settings", data={"csrf_token": token(amy, "/settings"),
                                           "timezone": bad})
        assert resp.status_code == 422
        assert "Choose a time zone from the list." in resp.get_data(as_text=True)
    assert _zone_of(app, "amy") is None
    assert amy.post("/settings", data={"timezone": "UTC"}).status_code == 400  # no CSRF
    assert _zone_of(app, "amy") is None


def test_the_cli_sets_a_user_s_zone(app: Flask) -> None:
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["users", "add", "kai", "--role", "agent", "--timezone",
                             "America/New_York"])
    assert ok.exit_code == 0, ok.output
    assert _zone_of(app, "kai") == "America/New_York"
    bad = runner.invoke(args=["users", "add", "lee", "--role", "agent", "--timezone", "Nowhere"])
    assert bad.exit_code == 2 and "unknown time zone 'Nowhere'" in bad.output
