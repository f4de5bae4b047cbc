"""The public intake page (views/intake.py, ``/intake/<workflow>``) through Flask's test
client: only the intake's fields, in English and Chinese; a case opened by the public
with the page's channel, landing in the care team's queue; errors with the input kept
and nothing stored; the honeypot; the rate limit on a fake clock; CSRF; fields the
public may not set; workflows that are not public."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from caseloop.cases import Actor
from caseloop.errors import Forbidden, Invalid
from caseloop.extension import state
from caseloop.models import Case, Team
from caseloop.views import CSP, intake

from .test_views_auth import add, login

XSS = '<script>alert("x")</script>'
#: What a customer's browser posts.
FORM = {"customer_name": "王芳", "phone": "138 0013 8000", "email": "",
        "preferred_language": "zh", "category": "delivery", "subject": "Parcel five days late",
        "description": "The parcel arrived five days late and the box was crushed.",
        "remedy_sought": "A refund of the delivery fee.", "order_number": "A2026-1104",
        "occurred_on": "2026-03-02"}
#: The fields the shipped complaint's intake lists, in order.
SHOWN = ["customer_name", "phone", "email", "preferred_language", "category", "subject",
         "description", "remedy_sought", "order_number", "occurred_on"]


def count(app: Flask) -> int:
    with app.app_context():
        return int(state().db.session.execute(select(func.count()).select_from(Case)).scalar())


def cases(app: Flask) -> list[Case]:
    with app.app_context():
        session = state().db.session
        found = list(session.execute(select(Case).order_by(Case.id)).scalars())
        for c in found:
            session.expunge(c)
        return found


def csrf(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return found.group(1)


def send(client: FlaskClient, form: dict[str, Any], lang: str = "en",
         workflow: str = "complaint") -> TestResponse:
    page = client.get(f"/intake/{workflow}?lang={lang}")
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(f"/intake/{workflow}",
                       data={"csrf_token": csrf(page), "lang": lang, **form})


@pytest.fixture
def care(app: Flask) -> Flask:
    """The app with an agent of team care (so the team exists)."""
    add(app, "amy", roles=["agent"], teams=["care"])
    return app


def test_the_page_shows_only_the_intake_fields_in_order(app: Flask) -> None:
    client = app.test_client()
    resp = client.get("/intake/complaint?lang=en")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Customer complaint" in page and "What happened?" in page
    names = re.findall(r'<(?:input|select|textarea)[^>]*\bname="([a-z][a-z_]*)"', page)
    assert [n for n in dict.fromkeys(names) if n not in ("csrf_token", "lang")] == SHOWN
    for internal in ("priority", "segment", "customer_id", "channel", "attachments",
                     "severity", "lifecycle_stage"):
        assert f'name="{internal}"' not in page
    # The honeypot: labelled, out of the tab order, hidden from screen readers.
    assert 'name="_website"' in page and 'tabindex="-1"' in page
    assert 'autocomplete="off"' in page and 'aria-hidden="true"' in page
    assert "Leave this empty" in page
    assert resp.headers["Content-Security-Policy"] == CSP
    # No inline script: only the live-conditions file, served by the app.
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script src="/assets/case.js" defer>']


def test_the_page_in_chinese(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/intake/complaint", headers={"Accept-Language": "zh-CN"}
                      ).get_data(as_text=True)
    assert "客户投诉" in page and "问题描述" in page and "提交" in page
    assert 'lang="zh-CN"' in page
    # The preferred language follows the page's
    assert re.search(r'value="zh"[^>]*checked|checked[^>]*value="zh"|'
                     r'<option selected value="zh"|value="zh" selected', page)
    english = client.get("/intake/complaint?lang=en").get_data(as_text=True)
    assert "What happened?" in english and "问题描述" not in english


def test_a_complaint_from_the_public(any_db_app: Flask) -> None:
    app = any_db_app
    add(app, "amy", roles=["agent"], teams=["care"])
    client = app.test_client()
    resp = send(client, FORM)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    thanks = client.get(resp.location)
    page = thanks.get_data(as_text=True)
    [case] = cases(app)
    assert thanks.status_code == 200
    assert case.reference in page and "Please keep the reference" in page
    assert case.data["channel"] == "web"  # set by the page (intake.set)
    assert case.data["subject"] == "Parcel five days late"
    assert case.data["priority"] == "normal"  # the form's default
    assert case.created_by is None and case.state == "received"
    with app.app_context():
        team = state().db.session.execute(select(Team).where(Team.name == "care")).scalar_one()
        assert case.team_id == team.id
    # Reloading the thank-you page shows no reference again, and sends nothing again.
    again = client.get(resp.location).get_data(as_text=True)
    assert case.reference not in again and count(app) == 1
    # The care team sees it in its queue.
    staff = app.test_client()
    assert login(staff, "amy").status_code == 302
    queue = staff.get("/inbox?tab=team").get_data(as_text=True)
    assert case.reference in queue


def test_the_thanks_in_chinese(care: Flask) -> None:
    client = care.test_client()
    resp = send(client, FORM, lang="zh")
    page = client.get(resp.location).get_data(as_text=True)
    [case] = cases(care)
    assert case.reference in page and "请保留上面的编号" in page and "您的受理编号" in page


def test_invalid_input_comes_back_with_errors_and_nothing_is_stored(any_db_app: Flask) -> None:
    client = any_db_app.test_client()
    resp = send(client, {**FORM, "subject": "x", "phone": "", "email": "",
                         "description": XSS + " and more text"}, lang="zh")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "标题长度应为 4 到 120 个字符。" in page  # next to the field, in their language
    assert "请修改下方标出的内容" in page
    assert XSS not in page and "&lt;script&gt;alert(" in page  # kept, as text
    assert 'value="x"' in page
    assert count(any_db_app) == 0


def test_a_filled_honeypot_pretends_and_stores_nothing(care: Flask) -> None:
    client = care.test_client()
    resp = send(client, {**FORM, "_website": "http://spam.example"})
    assert resp.status_code == 302
    page = client.get(resp.location).get_data(as_text=True)
    assert "Thank you!" in page and "Your reference" not in page
    assert count(care) == 0


def test_the_rate_limit_per_address(care: Flask) -> None:
    now = [1000.0]
    with care.app_context():
        intake.throttle().clock = lambda: now[0]
    client = care.test_client()
    limit = care.config["CASELOOP_INTAKE_ATTEMPTS"]
    for _ in range(limit):
        assert send(client, FORM).status_code == 302
    refused = send(client, FORM, lang="zh")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert "分钟后再试" in page and int(refused.headers["Retry-After"]) > 0
    assert count(care) == limit
    # Another address is not affected; after the window this one may send again.
    other = care.test_client()
    page_ = other.get("/intake/complaint", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.post("/intake/complaint", environ_base={"REMOTE_ADDR": "10.0.0.9"},
                      data={"csrf_token": csrf(page_), **FORM}).status_code == 302
    now[0] += care.config["CASELOOP_INTAKE_WINDOW"] + 1
    assert send(client, FORM).status_code == 302
    assert count(care) == limit + 2


def test_without_a_csrf_token_nothing_is_stored(care: Flask) -> None:
    client = care.test_client()
    client.get("/intake/complaint")
    resp = client.post("/intake/complaint", data={**FORM, "lang": "en"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "please check what you entered" in page and "Parcel five days late" in page
    assert 'name="csrf_token"' in page  # a fresh one: sending again works
    assert count(care) == 0
    forged = client.post("/intake/complaint", data={**FORM, "csrf_token": "forged"})
    assert forged.status_code == 400 and count(care) == 0


@pytest.mark.parametrize("extra", [{"priority": "urgent"}, {"channel": "phone"},
                                   {"segment": "high_value"}, {"severity": "5"},
                                   {"root_cause": XSS}])
def test_fields_outside_the_intake_are_refused_and_never_stored(care: Flask,
                                                                extra: dict[str, str]) -> None:
    """Tampering: a field the page does not show, posted anyway (internal, set by the
    page, or hidden in the state), is refused with a message; nothing is stored."""
    client = care.test_client()
    resp = send(client, {**FORM, **extra})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "This field cannot be changed now." in page
    assert XSS not in page
    assert count(care) == 0


def test_the_engine_refuses_the_public_what_the_intake_does_not_list(care: Flask) -> None:
    with care.app_context():
        engine = state().cases()
        with pytest.raises(Invalid) as caught:
            engine.create("complaint", {**{k: v for k, v in FORM.items() if v},
                                        "priority": "urgent"}, Actor.public())
        assert "priority" in caught.value.fields
        state().db.session.rollback()
        with pytest.raises(Forbidden):  # not a public workflow
            engine.create("improvement_plan", {}, Actor.public())
        state().db.session.rollback()


def test_unknown_and_private_workflows_are_not_found(app: Flask) -> None:
    client = app.test_client()
    for name in ("nosuch", "improvement_plan", "revisit"):
        resp = client.get(f"/intake/{name}?lang=en")
        assert resp.status_code == 404, name
        assert "There is no form at this address." in resp.get_data(as_text=True)
    assert client.post("/intake/nosuch", data={}).status_code in (400, 404)
    assert count(app) == 0


def test_the_form_reacts_as_the_customer_types(care: Flask) -> None:
    """The intake's live conditions: phone is required until an email is given (the
    contact form's required_if), by the server's own rules; nothing is stored."""
    client = care.test_client()
    token = csrf(client.get("/intake/complaint"))
    before = count(care)
    empty = client.post("/intake/complaint/live", data={"csrf_token": token})
    assert empty.status_code == 200
    assert empty.get_json()["phone"]["required"] is True
    typed = client.post("/intake/complaint/live", data={
        "csrf_token": token, "email": "li.wei@example.com"})
    assert typed.get_json()["phone"]["required"] is False
    assert count(care) == before
    assert client.post("/intake/complaint/live", data={}).status_code == 400  # no CSRF
    assert client.post("/intake/revisit/live", data={"csrf_token": token}).status_code == 404
    assert 'data-live="/intake/complaint/live"' in client.get("/intake/complaint").get_data(
        as_text=True)
