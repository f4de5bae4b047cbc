"""An agent's whole journey in a real browser (issue 4): log in, open a complaint from the
home page, a conditional field appears and becomes required, a form sent with errors is
fixed, the complaint is taken to resolution by its buttons and step forms, the revisit's
survey link is answered by the customer in Chinese, the staff pages speak Chinese, and
markup from user input and from a YAML label is shown as text.

Playwright driving Debian's Chromium, as tests/test_browser.py; skipped, with the reason,
when either is missing."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from .test_browser import browser, live, serve  # noqa: F401  (fixtures)
from .test_views_auth import PASSWORD, add

#: Generous: the suite runs on a loaded two-core machine.
WAIT = 15_000
XSS = "<img src=x onerror=alert(1)>"


def _expect() -> Any:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT)
    return expect


def _page(chromium: Any, dialogs: list[str], errors: list[str], **options: Any) -> Any:
    page = chromium.new_page(**options)
    page.set_default_timeout(WAIT)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page


def _choose(scope: Any, name: str, value: str) -> None:
    """Pick ``value`` of a choice field, drawn as a select or as radio buttons."""
    select = scope.locator(f'select[name="{name}"]')
    if select.count():
        select.select_option(value)
    else:
        scope.locator(f'[name="{name}"][value="{value}"]').check()


def _submit(page: Any, name: str) -> None:
    """Click a form's submit button and wait for the page it answers with."""
    with page.expect_navigation(timeout=WAIT):
        page.get_by_role("button", name=name, exact=True).click()


def _state_of(app: Flask, case_id: int) -> tuple[str, dict[str, Any]]:
    from caseloop.extension import state
    from caseloop.models import Case

    with app.app_context():
        session = state().db.session
        session.expire_all()
        case = session.get(Case, case_id)
        assert case is not None
        out = str(case.state), dict(case.data)
        session.remove()
        return out


def _work_at(app: Flask, now: dt.datetime) -> Any:
    """The app's job worker, run until idle at a fake ``now``."""
    from caseloop.extension import state
    from caseloop.handlers import builtin
    from caseloop.jobs import Executor
    from caseloop.worker import Worker

    with app.app_context():
        state().db.session.remove()
        executor = Executor(state().db.engine, state().registry, builtin(),
                            settings=app.config, clock=lambda: now)
        return Worker(executor).run(until_idle=True)


def _revisit_and_token(app: Flask, parent_id: int) -> tuple[int | None, str | None]:
    from caseloop.extension import state
    from caseloop.models import Case, Job

    with app.app_context():
        session = state().db.session
        revisit = session.execute(select(Case).where(
            Case.parent_id == parent_id, Case.workflow == "revisit")).scalar_one_or_none()
        if revisit is None:
            return None, None
        token = next((j.payload["survey"] for j in session.execute(select(Job).where(
            Job.case_id == revisit.id, Job.kind == "notify")).scalars()
            if j.payload.get("survey")), None)
        session.remove()
        return revisit.id, None if token is None else str(token)


def test_an_agent_takes_a_complaint_from_intake_to_an_answered_survey(
        app: Flask, browser: Any, live: str) -> None:  # noqa: F811
    expect = _expect()
    add(app, "amy", roles=["agent"], teams=["care"])
    dialogs: list[str] = []
    errors: list[str] = []
    page = _page(browser, dialogs, errors, locale="en-US",
                 viewport={"width": 1280, "height": 900})

    # Log in, by keyboard.
    page.goto(f"{live}/home")
    assert "/login" in page.url
    page.get_by_label("User name").fill("amy")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_label("Password").press("Enter")
    assert page.url == f"{live}/home"

    # A new complaint from the home page's link.
    with page.expect_navigation():
        page.get_by_role("link", name="Customer complaint").click()
    assert page.url == f"{live}/cases/new/complaint"
    form = page.locator("form.case-fields")
    phone, email = form.locator('[name="phone"]'), form.locator('[name="email"]')
    # Phone or email: with an email the phone is optional; without one (case.js asks
    # the server as the user types) it becomes required.
    email.fill("li.wei@example.com")
    expect(phone).not_to_have_attribute("required", "")
    email.fill("")
    expect(phone).to_have_attribute("required", "")
    form.locator('[name="customer_name"]').fill("Li Wei")
    phone.fill("138 0013 8000")
    _choose(form, "preferred_language", "en")
    form.locator('[name="category"]').select_option("delivery")
    form.locator('[name="subject"]').fill(XSS)
    form.locator('[name="description"]').fill("The parcel arrived five days late.")
    form.locator('[name="order_number"]').fill("#1")  # not an order number
    _submit(page, "Open the case")
    assert page.url == f"{live}/cases/new/complaint"  # nothing stored, errors shown
    order = page.locator('div[data-field="order_number"]')
    expect(order.locator(".field-error")).to_contain_text(
        "Use the order number as printed on the invoice")
    expect(order.locator('[name="order_number"]')).to_have_attribute("aria-invalid", "true")
    assert page.locator('[name="subject"]').input_value() == XSS  # input kept
    page.locator('[name="order_number"]').fill("SO-20261120-7")
    _submit(page, "Open the case")
    assert re.search(r"/cases/\d+$", page.url), page.url
    case_id = int(page.url.rsplit("/", 1)[1])
    reference = page.get_by_role("heading", level=1).inner_text()
    assert reference.startswith("CMP-")
    assert f"Case {reference} opened" in page.locator(".flashes").inner_text()
    # The markup typed as the subject is text, nothing ran.
    expect(page.locator(".case-data")).to_contain_text(XSS)
    assert page.locator(".case-data img").count() == 0

    # Acknowledge: a button.
    _submit(page, "Acknowledge to customer")
    expect(page.locator(".badge.state")).to_have_text("Acknowledged")

    # Assess: a step form with a conditional field.
    with page.expect_navigation():
        page.get_by_role("link", name="Record assessment").click()
    assert page.url.endswith(f"/cases/{case_id}/do/assess")
    action = page.locator('div[data-field="immediate_action"]')
    expect(action).to_be_hidden()
    page.locator('[name="severity"]').fill("2")
    page.locator('[name="impact"][value="single_customer"]').check()
    page.locator('[name="complexity"][value="moderate"]').check()
    page.locator('[name="immediate_action_needed"]').check()
    # Shown and required without a reload (case.js).
    expect(action).to_be_visible()
    expect(action.locator('[name="immediate_action"]')).to_have_attribute("required", "")
    _submit(page, "Record assessment")  # left empty: the server says so next to it
    assert page.url.endswith(f"/cases/{case_id}/do/assess")
    action = page.locator('div[data-field="immediate_action"]')
    expect(action.locator(".field-error")).to_have_text(
        'Describe the immediate action taken, or untick "Immediate action needed".')
    assert page.locator('[name="severity"]').input_value() == "2"
    action.locator('[name="immediate_action"]').fill("Re-sent the parcel by express.")
    _submit(page, "Record assessment")
    assert page.url.endswith(f"/cases/{case_id}")
    expect(page.locator(".badge.state")).to_have_text("Assessed")

    _submit(page, "Start investigation")
    expect(page.locator(".badge.state")).to_have_text("Investigating")

    with page.expect_navigation():
        page.get_by_role("link", name="Send response").click()
    page.locator('[name="root_cause"]').fill(
        "The carrier's depot in Wuxi was closed for two days.")
    page.locator('[name="response"]').fill(
        "We are sorry: the carrier's depot was closed. We refund the shipping.")
    _submit(page, "Send response")
    expect(page.locator(".badge.state")).to_have_text("Response sent")

    # Communicate the decision: a voucher asks for its amount.
    with page.expect_navigation():
        page.get_by_role("link", name="Communicate decision").click()
    amount = page.locator('div[data-field="compensation_amount"]')
    expect(amount).to_be_hidden()
    page.locator('[name="remedy_offered"][value="apology"]').check()
    page.locator('[name="remedy_offered"][value="voucher"]').check()
    expect(amount).to_be_visible()
    expect(amount.locator('[name="compensation_amount"]')).to_have_attribute("required", "")
    amount.locator('[name="compensation_amount"]').fill("25")
    page.locator('[name="resolution_summary"]').fill("Apology and a 25 CNY voucher.")
    _submit(page, "Communicate decision")
    expect(page.locator(".badge.state")).to_have_text("Decision communicated")

    # The staff pages in Chinese: labels, a guard's message and a flash.
    _submit(page, "中文")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".badge.state")).to_have_text("已告知处理决定")
    with page.expect_navigation():
        page.get_by_role("link", name="客户接受").click()
    alternative = page.locator('div[data-field="alternative"]')
    expect(alternative).to_be_hidden()
    _choose(page, "decision", "rejected")
    expect(alternative).to_be_visible()
    expect(alternative.locator('[name="alternative"]')).to_have_attribute("required", "")
    _submit(page, "客户接受")
    assert page.url.endswith(f"/cases/{case_id}/do/accept_decision")
    body = page.locator("main").inner_text()
    assert "客户不接受处理决定" in body, body
    _choose(page, "decision", "accepted")
    expect(page.locator('div[data-field="alternative"]')).to_be_hidden()
    _submit(page, "客户接受")
    assert page.url.endswith(f"/cases/{case_id}")
    expect(page.locator(".badge.state")).to_have_text("已解决")
    assert re.search(r"[\u4e00-\u9fff]", page.locator(".flashes").inner_text())
    assert "客户接受" in page.locator("#history").inner_text()
    assert _state_of(app, case_id)[0] == "resolved"

    # The revisit starts 3 days after resolution: the worker, at a clock moved forward.
    _work_at(app, dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=1))
    revisit_id, token = _revisit_and_token(app, case_id)
    assert revisit_id is not None, "no revisit was started"
    assert _state_of(app, revisit_id)[0] == "scheduled"
    with page.expect_navigation():
        page.goto(f"{live}/cases/{revisit_id}")
    _submit(page, "发送调查链接")
    expect(page.locator(".badge.state")).to_be_visible()
    assert _state_of(app, revisit_id)[0] == "survey_sent"
    revisit_id, token = _revisit_and_token(app, case_id)
    assert token, "the survey link's notify job holds no token"

    # The customer, not logged in: the link speaks English (their language), then 中文.
    customer = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844},
                                   has_touch=True)
    try:
        survey = customer.new_page()
        survey.set_default_timeout(WAIT)
        survey.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        survey.goto(f"{live}/s/{token}")
        expect(survey.locator("html")).to_have_attribute("lang", "en")
        with survey.expect_navigation():
            survey.get_by_role("link", name="中文").click()
        expect(survey.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(survey.get_by_role("heading", level=1)).to_have_text("满意度调查")
        csat = survey.get_by_role("group", name=re.compile("您对本次处理的满意程度"))
        csat.get_by_role("radio", name="5 – 非常满意").tap()
        nps = survey.get_by_role("group", name=re.compile("您有多大可能向朋友或同事推荐我们"))
        nps.get_by_role("radio", name="9").click()
        survey.get_by_label("客户意见").fill(f"{XSS} 处理得很好")
        _submit(survey, "提交")
        expect(survey.get_by_role("heading", level=1)).to_have_text("感谢您的反馈！")
    finally:
        customer.close()
    status, data = _state_of(app, revisit_id)
    assert status == "answered"
    assert (data["csat"], data["nps"]) == (5, 9)
    assert data["comment"] == f"{XSS} 处理得很好"

    assert dialogs == [], dialogs
    # Chromium logs the 422 of the forms sent with errors; nothing else.
    assert [e for e in errors if "status of 422" not in e] == [], errors


# -- a label from the definitions, with markup -------------------------------------------
SCRIPT_LABEL = '<script>alert("label")</script> Note'

FORM = f"""
form: memo
title: {{en: "<b>Memo</b>", zh: 备忘}}
fields:
  - name: note
    type: text
    required: true
    label: {{en: '{SCRIPT_LABEL}', zh: '{SCRIPT_LABEL}'}}
    help: {{en: '<i>help</i>', zh: '<i>help</i>'}}
"""

WORKFLOW = """
workflow: memo
title: {en: "<b>Memo</b>", zh: 备忘}
form: memo
reference_prefix: MEM
roles: [agent]
start: [agent]
initial: open
states:
  open:
    label: {en: "<em>Open</em>", zh: "<em>Open</em>"}
    category: open
    fields:
      default: editable
  done:
    label: {en: Done, zh: 完成}
    category: done
    final: true
transitions:
  - trigger: finish
    from: open
    to: done
    label: {en: Finish, zh: 完成}
    allow: [agent]
"""


def test_markup_in_a_yaml_label_is_shown_as_text(tmp_path: Path, browser: Any) -> None:  # noqa: F811
    from .test_cases import build_app, dispose

    expect = _expect()
    app = build_app("sqlite", tmp_path, {"memo.form.yaml": FORM, "memo.workflow.yaml": WORKFLOW})
    try:
        add(app, "amy", roles=["agent"])
        dialogs: list[str] = []
        errors: list[str] = []
        with serve(app) as url:
            page = _page(browser, dialogs, errors, locale="en-US")
            page.goto(f"{url}/login")
            page.get_by_label("User name").fill("amy")
            page.get_by_label("Password").fill(PASSWORD)
            _submit(page, "Log in")
            page.goto(f"{url}/cases/new/memo")
            expect(page.locator('label[for="note"]')).to_contain_text(SCRIPT_LABEL)
            expect(page.get_by_role("heading", level=1)).to_contain_text("<b>Memo</b>")
            assert page.locator("main script, main b, main i").count() == 0
            page.locator('[name="note"]').fill(XSS)
            _submit(page, "Open the case")
            assert re.search(r"/cases/\d+$", page.url), page.url
            main = page.locator("main").inner_text()
            assert SCRIPT_LABEL in main and XSS in main, main
            assert page.locator("main img, main script, main em").count() == 0
            page.close()
        assert dialogs == [], dialogs
        assert errors == [], errors
    finally:
        dispose(app)
