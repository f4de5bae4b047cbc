"""The case pages (views/cases.py) through Flask's test client: a new case, the case
page (fields by permission, history, actions and their "why not"), step forms with
conflicts, the edit form, comments, and data shown as text."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from caseloop.extension import state
from caseloop.models import Case, Event

from .test_api import COMPLAINT
from .test_views_auth import add, login, token

XSS = '<script>alert("x")</script>'
#: What the browser posts for a new complaint: the data and the form's defaults.
NEW = {**COMPLAINT, "preferred_language": "zh", "segment": "regular", "channel": "web",
       "priority": "normal"}


def agent(app: Flask, name: str = "amy", lang: str = "en",
          roles: tuple[str, ...] = ("agent",)) -> FlaskClient:
    add(app, name, roles=roles, teams=["care"])
    client = app.test_client()
    client.set_cookie("caseloop_lang", lang)
    assert login(client, name).status_code == 302
    return client


def count(app: Flask) -> int:
    with app.app_context():
        return int(state().db.session.execute(select(func.count()).select_from(Case)).scalar())


def case_row(app: Flask, case_id: int) -> Case:
    with app.app_context():
        found = state().db.session.get(Case, case_id)
        assert found is not None
        state().db.session.expunge(found)
        return found


def new_case(client: FlaskClient, **data: Any) -> int:
    resp = client.post("/cases/new/complaint", data={
        "csrf_token": token(client, "/cases/new/complaint"), **NEW, **data})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    found = re.fullmatch(r"/cases/(\d+)", resp.location)
    assert found, resp.location
    return int(found.group(1))


def form_of(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    assert found, name
    return found.group(1)


def test_a_new_complaint_through_the_page(any_db_app: Flask) -> None:
    client = agent(any_db_app)
    page = client.get("/cases/new/complaint").get_data(as_text=True)
    assert "Customer complaint" in page and 'name="subject"' in page
    assert 'name="severity"' not in page  # hidden in the initial state
    resp = client.post("/cases/new/complaint", data={
        "csrf_token": token(client, "/cases/new/complaint"), **NEW})
    assert resp.status_code == 302
    case_id = int(resp.location.rsplit("/", 1)[1])
    shown = client.get(resp.location).get_data(as_text=True)
    reference = case_row(any_db_app, case_id).reference
    assert f"Case {reference} opened." in shown
    assert "Parcel five days late" in shown and "Received" in shown
    assert case_row(any_db_app, case_id).data["subject"] == "Parcel five days late"


def test_an_invalid_new_case_comes_back_with_errors_and_stores_nothing(app: Flask) -> None:
    client = agent(app)
    resp = client.post("/cases/new/complaint", data={
        "csrf_token": token(client, "/cases/new/complaint"), **NEW, "subject": "",
        "email": "not-an-email", "customer_name": "Keep me"})
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'class="field-error" id="email-error"' in page
    assert 'value="Keep me"' in page
    assert count(app) == 0
    # Without the CSRF token: refused before the view, nothing stored.
    assert client.post("/cases/new/complaint", data=NEW).status_code == 400
    assert count(app) == 0


def test_who_may_start_and_see_cases(app: Flask) -> None:
    quality = agent(app, "quinn", roles=("quality",))
    assert quality.get("/cases/new/complaint").status_code == 403
    assert quality.post("/cases/new/complaint", data={
        "csrf_token": token(quality, "/home"), **NEW}).status_code == 403
    assert quality.get("/cases/new/nope").status_code == 404
    amy = agent(app)
    case_id = new_case(amy)
    add(app, "bob", roles=["agent"], teams=["sales"])
    bob = app.test_client()
    bob.set_cookie("caseloop_lang", "en")
    login(bob, "bob")
    for path in (f"/cases/{case_id}", f"/cases/{case_id}/do/acknowledge",
                 f"/cases/{case_id}/edit", "/cases/999999"):
        resp = bob.get(path)
        assert resp.status_code == 404, path
        assert "Parcel" not in resp.get_data(as_text=True)
    assert app.test_client().get(f"/cases/{case_id}").status_code == 302  # to log in


def test_the_case_page_honours_permissions_and_shows_actions(app: Flask) -> None:
    client = agent(app)
    case_id = new_case(client)
    with app.app_context():
        found = state().db.session.get(Case, case_id)
        assert found is not None
        found.data = {**found.data, "root_cause": "HIDDEN-ROOT-CAUSE"}  # hidden in 'received'
        state().db.session.commit()
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "HIDDEN-ROOT-CAUSE" not in page
    assert "Li Wei" in page and ">Web form<" in page  # the choice label, not "web"
    assert "Acknowledge to customer" in page
    assert "Opened (Received)" in page
    # The step to acknowledge is a button: its effect lands in the history.
    resp = client.post(f"/cases/{case_id}/do/acknowledge", data={
        "csrf_token": form_of(page, "csrf_token"), "_quick": "1",
        "_version": form_of(page, "_version"), "_seen": form_of(page, "_seen")})
    assert resp.status_code == 302
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Acknowledge to customer: Received → Acknowledged" in page
    assert case_row(app, case_id).state == "acknowledged"
    # A system-only transition is not offered.
    assert "Escalate (assessment overdue)" not in page
    # A teammate whose role may not take the step sees it disabled, with why not.
    quinn = agent(app, "quinn", roles=("quality",))
    page = quinn.get(f"/cases/{case_id}").get_data(as_text=True)
    assert re.search(r"<button type=\"button\" disabled[^>]*>Record assessment</button>", page)
    assert "Your role may not do this." in page


def test_live_conditions(app: Flask) -> None:
    client = agent(app)
    csrf = token(client, "/cases/new/complaint")
    resp = client.post("/forms/live/complaint", data={"csrf_token": csrf, **NEW,
                                                      "segment": "high_value"})
    assert resp.status_code == 200
    assert resp.get_json()["is_vip"]["value"] is True
    assert client.post("/forms/live/complaint", data=NEW).status_code == 400


def test_a_step_form_and_its_errors(any_db_app: Flask) -> None:
    app = any_db_app
    client = agent(app)
    case_id = new_case(client)
    client.post(f"/cases/{case_id}/do/acknowledge", data={
        "csrf_token": token(client, f"/cases/{case_id}"), "_quick": "1"})
    page = client.get(f"/cases/{case_id}/do/assess").get_data(as_text=True)
    assert 'name="severity"' in page and 'name="_version" value="2"' in page
    assert re.search(r'name="severity"[^>]*required', page)
    base = {"csrf_token": form_of(page, "csrf_token"), "_version": "2",
            "_seen": form_of(page, "_seen"), "customer_name": "Li Wei", "phone": "138 0013 8000",
            "category": "delivery", "priority": "normal", "preferred_language": "zh",
            "segment": "regular"}
    # Required fields missing: errors next to them, nothing stored.
    resp = client.post(f"/cases/{case_id}/do/assess", data=base)
    assert resp.status_code == 422 and 'id="severity-error"' in resp.get_data(as_text=True)
    assert case_row(app, case_id).state == "acknowledged"
    # A read-only field (the subject, in 'acknowledged') posted anyway: refused.
    resp = client.post(f"/cases/{case_id}/do/assess", data={
        **base, "severity": "2", "impact": "single_customer", "complexity": "moderate",
        "subject": "tampered"})
    assert resp.status_code == 422
    assert case_row(app, case_id).data["subject"] == "Parcel five days late"
    resp = client.post(f"/cases/{case_id}/do/assess", data={
        **base, "severity": "2", "impact": "single_customer", "complexity": "moderate"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    found = case_row(app, case_id)
    assert found.state == "assessed" and found.data["severity"] == 2
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Record assessment: Acknowledged → Assessed" in page
    assert "This customer only" in page  # the choice's label, in the history and fields


def test_a_stale_step_keeps_the_input_and_lists_what_changed(any_db_app: Flask) -> None:
    app = any_db_app
    amy = agent(app)
    case_id = new_case(amy)
    amy.post(f"/cases/{case_id}/do/acknowledge", data={
        "csrf_token": token(amy, f"/cases/{case_id}"), "_quick": "1"})
    page = amy.get(f"/cases/{case_id}/do/assess").get_data(as_text=True)
    seen = form_of(page, "_seen")
    # Meanwhile Bea corrects the customer's name.
    bea = agent(app, "bea")
    edit = bea.get(f"/cases/{case_id}/edit").get_data(as_text=True)
    resp = bea.post(f"/cases/{case_id}/edit", data={
        "csrf_token": form_of(edit, "csrf_token"), "_version": "2", "_seen": seen,
        "customer_name": "Li Wei-Chen", "phone": "138 0013 8000", "category": "delivery",
        "priority": "normal", "preferred_language": "zh", "segment": "regular"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert case_row(app, case_id).version == 3
    data = {"csrf_token": form_of(page, "csrf_token"), "_version": "2", "_seen": seen,
            "customer_name": "Li Wei", "phone": "138 0013 8000", "category": "delivery",
            "priority": "normal", "preferred_language": "zh", "segment": "regular",
            "severity": "2", "impact": "single_customer", "complexity": "moderate",
            "assessment_notes": "My careful notes"}
    resp = amy.post(f"/cases/{case_id}/do/assess", data=data)
    assert resp.status_code == 409
    page = resp.get_data(as_text=True)
    assert "Someone else changed this case" in page
    assert "bea" in page and "Li Wei-Chen" in page and "Customer name" in page
    assert "My careful notes" in page  # the input is kept
    assert 'name="_version" value="3"' in page
    assert case_row(app, case_id).state == "acknowledged"
    # Submitted again (with the new version): applied on top.
    resp = amy.post(f"/cases/{case_id}/do/assess", data={
        **data, "_version": "3", "customer_name": "Li Wei-Chen"})
    assert resp.status_code == 302
    found = case_row(app, case_id)
    assert found.state == "assessed" and found.data["assessment_notes"] == "My careful notes"


def test_a_step_no_longer_possible_says_where_the_case_went(app: Flask) -> None:
    client = agent(app)
    case_id = new_case(client)
    csrf = token(client, f"/cases/{case_id}")
    client.post(f"/cases/{case_id}/do/acknowledge", data={"csrf_token": csrf, "_quick": "1"})
    resp = client.post(f"/cases/{case_id}/do/acknowledge", data={
        "csrf_token": csrf, "_quick": "1", "_version": "2"})
    assert resp.status_code == 409
    assert "moved to Acknowledged" in resp.get_data(as_text=True)
    resp = client.get(f"/cases/{case_id}/do/acknowledge")
    assert resp.status_code == 302
    assert client.get(f"/cases/{case_id}/do/nope").status_code == 404


def test_comments_are_added_and_shown_as_text(app: Flask) -> None:
    client = agent(app)
    case_id = new_case(client, subject=XSS)
    csrf = token(client, f"/cases/{case_id}")
    resp = client.post(f"/cases/{case_id}/comment", data={"csrf_token": csrf, "text": "  "})
    assert resp.status_code == 422 and 'id="comment-error"' in resp.get_data(as_text=True)
    assert client.post(f"/cases/{case_id}/comment", data={"text": "x"}).status_code == 400
    resp = client.post(f"/cases/{case_id}/comment", data={
        "csrf_token": csrf, "text": f"Called back {XSS}"})
    assert resp.status_code == 302
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert XSS not in page
    assert "Called back &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    with app.app_context():
        kinds = state().db.session.execute(select(Event.kind).where(
            Event.case_id == case_id)).scalars().all()
    assert "comment" in kinds


def test_chinese_labels(app: Flask) -> None:
    client = agent(app, lang="zh")
    page = client.get("/cases/new/complaint").get_data(as_text=True)
    assert "新建：客户投诉" in page and "创建案件" in page
    case_id = new_case(client)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "已受理" in page and "确认受理" in page and "处理记录" in page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_case_message_has_both_languages(lang: str) -> None:
    from caseloop.views import i18n

    for key, pair in i18n.MESSAGES.items():
        if key.startswith("case_"):
            assert all(pair), key


def test_home_offers_the_workflows_one_may_start_and_links_one_s_cases(app: Flask) -> None:
    client = agent(app)
    case_id = new_case(client)
    client.post(f"/inbox/claim/{case_id}", data={"csrf_token": token(client, "/inbox?tab=team")})
    home = client.get("/home").get_data(as_text=True)
    assert 'href="/cases/new/complaint"' in home and 'href="/cases/new/revisit"' in home
    assert "/cases/new/improvement_plan" not in home  # agents do not start plans
    assert f'href="/cases/{case_id}"' in home
    assert "being built" not in home


def test_the_history_shows_crm_sync_results(app: Flask) -> None:
    from caseloop.handlers import builtin
    from caseloop.jobs import Executor
    from caseloop.worker import Worker

    amy = agent(app)
    case_id = new_case(amy)
    page = amy.get(f"/cases/{case_id}").get_data(as_text=True)
    action = re.search(r'action="(/cases/\d+/do/acknowledge)"', page)
    assert action, page
    amy.post(action.group(1), data={"csrf_token": token(amy, f"/cases/{case_id}"),
                                    "_quick": "1", "_version": form_of(page, "_version"),
                                    "_seen": form_of(page, "_seen")})
    with app.app_context():
        Worker(Executor(state().db.engine, state().registry, builtin(),
                        settings=app.config)).run(until_idle=True)
    page = amy.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "CRM sync (case): skipped" in page and "no CRM connector is configured" in page
