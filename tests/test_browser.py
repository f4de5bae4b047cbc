"""The pages in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
nothing downloaded). Skipped, with the reason, when either is missing."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from .test_views_admin import jobs, status_of
from .test_views_auth import PASSWORD, add

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium fonts-noto-cjk)")
    with sync_api.sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield found
        finally:
            found.close()


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """``app`` served over HTTP in a thread, for the browser; its address."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def live(app: Flask) -> Iterator[str]:
    """The app served over HTTP in a thread, for the browser."""
    with serve(app) as url:
        yield url


def test_an_admin_logs_in_retries_a_dead_letter_and_switches_to_chinese(
        app: Flask, browser: object, live: str) -> None:
    add(app, "ada", roles=["admin"])
    first, second = jobs(app)
    page = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live}/admin/jobs")
    assert page.url.endswith("/login?next=/admin/jobs")
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live}/admin/jobs")
    page.get_by_role("link", name="Dead 2").click()
    page.wait_for_url("**/admin/jobs?status=dead")
    assert page.locator(".job").count() == 2
    page.get_by_role("button", name=f"Retry #{first}").click()
    page.wait_for_load_state()
    assert f"Job {first} is queued again, due now." in page.locator(".flashes").inner_text()
    assert status_of(app, first) == "pending"
    # Discard asks first (caseloop.js); declining keeps the job.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name=f"Discard #{second}").click()
    assert status_of(app, second) == "dead"
    page.get_by_role("button", name="中文").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", level=1).inner_text() == "任务"
    assert page.get_by_role("button", name="重试").count() == 1
    # The error text with markup is shown as text; no CSP violation was reported.
    assert "<script>" in page.locator("pre.error-text").first.inner_text()
    assert errors == []


def test_a_customer_answers_the_survey_on_a_phone_in_chinese(
        app: Flask, browser: object, live: str) -> None:
    import re

    from caseloop.extension import state

    from .test_views_survey import case_of, revisit_link

    with app.app_context():
        db = state().db
    case_id, token = revisit_link(app, db, "zh")
    page = browser.new_page(  # type: ignore[attr-defined]
        locale="en-US", viewport={"width": 390, "height": 844}, has_touch=True)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live}/s/{token}")
    # The link's language (the customer's), not the browser's.
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", level=1).inner_text() == "满意度调查"
    # Made for the phone: nothing wider than the screen, scale buttons big enough to tap.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    nps = page.get_by_role("group", name=re.compile("您有多大可能向朋友或同事推荐我们"))
    box = nps.locator(".choice").first.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 44
    # The keyboard: into the NPS scale, arrows move the choice.
    nps.get_by_role("radio", name="0 – 完全不可能").focus()
    for _ in range(9):
        page.keyboard.press("ArrowRight")
    assert nps.get_by_role("radio", name="9").is_checked()
    ces = page.get_by_role("group", name=re.compile("公司让我很容易地解决了问题"))
    ces.get_by_role("radio", name="6").click()
    page.get_by_role("radio", name="是").click()
    page.get_by_role("checkbox", name="服务态度").check()
    page.get_by_label("客户意见").fill("<script>alert(1)</script> 处理得很好")
    # Sent without the required score: the message is next to it, in Chinese, and
    # what was entered is still there.
    page.get_by_role("button", name="提交").click()
    page.wait_for_load_state()
    csat = page.get_by_role("group", name=re.compile("您对本次处理的满意程度"))
    assert csat.locator(".field-error").inner_text() == "请回答此问题。"
    assert nps.get_by_role("radio", name="9").is_checked()
    assert page.get_by_label("客户意见").input_value() == "<script>alert(1)</script> 处理得很好"
    assert case_of(app, db, case_id)[0] == "survey_sent"
    csat.get_by_role("radio", name="5 – 非常满意").tap()
    page.get_by_role("button", name="提交").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "感谢您的反馈！"
    status, data = case_of(app, db, case_id)
    assert status == "answered"
    assert (data["csat"], data["nps"], data["ces"], data["issue_resolved"]) == (5, 9, 6, True)
    assert data["drivers"] == ["staff_attitude"]
    # Opened again: the link is spent, and the customer is thanked, not scolded.
    assert page.goto(f"{live}/s/{token}").status == 410  # type: ignore[union-attr]
    assert page.get_by_role("heading", level=1).inner_text() == "已经作答"
    # No CSP violation or failing asset; only the two pages' own statuses are reported.
    assert [e for e in errors if not re.match(
        r"Failed to load resource: .* status of (422|410) ", e)] == [], errors


def test_an_agent_claims_a_case_from_the_team_queue(
        app: Flask, browser: object, live: str) -> None:
    from .test_views_inbox import assignee_of, new_case, person

    case = new_case(app, person(app, "alice"), subject="Parcel lost")
    page = browser.new_page(  # type: ignore[attr-defined]
        locale="en-US", viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live}/login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live}/home")
    page.get_by_role("link", name="Inbox", exact=True).click()
    page.wait_for_url(f"{live}/inbox")
    assert page.get_by_role("link", name="Mine 0").get_attribute("aria-current") == "page"
    page.get_by_role("link", name="Team queue 1").click()
    page.wait_for_url("**/inbox?tab=team")
    # On a phone the table is a list of cards: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("button", name=f"Claim {case['reference']}").click()
    page.wait_for_load_state()
    assert page.url.endswith("/inbox?tab=team")
    assert f"You took {case['reference']}." in page.locator(".flashes").inner_text()
    assert assignee_of(app, case["id"]) is not None
    page.get_by_role("link", name="Mine 1").click()
    page.wait_for_url("**/inbox?tab=mine")
    row = page.locator(f"#case-{case['id']}")
    assert case["reference"] in row.inner_text() and "Parcel lost" in row.inner_text()
    # The filter form by keyboard: a search typed and sent with Enter.
    page.get_by_label("Search").fill("no such customer")
    page.get_by_label("Search").press("Enter")
    page.wait_for_url("**/inbox?tab=mine&q=no+such+customer**")
    assert page.get_by_text("No cases match these filters.").is_visible()
    assert errors == []


def test_an_agent_opens_a_complaint_takes_a_step_and_sees_the_history(
        app: Flask, browser: object, live: str) -> None:
    add(app, "amy", roles=["agent"], teams=["care"])
    page = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live}/cases/new/complaint")
    page.get_by_label("User name").fill("amy")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live}/cases/new/complaint")
    page.locator('[name="customer_name"]').fill("Li Wei")
    page.locator('[name="phone"]').fill("138 0013 8000")
    page.locator('[name="category"]').select_option("delivery")
    page.locator('[name="subject"]').fill("<b>Parcel</b> late")
    page.locator('[name="description"]').fill("The parcel arrived five days late.")
    page.get_by_role("button", name="Open the case").click()
    page.wait_for_url("**/cases/*")
    assert "opened" in page.locator(".flashes").inner_text()
    assert "<b>Parcel</b> late" in page.locator(".case-data").inner_text()
    page.get_by_role("button", name="Acknowledge to customer").click()
    page.wait_for_load_state()
    history = page.locator("#history .timeline").inner_text()
    assert "Acknowledge to customer: Received → Acknowledged" in history
    assert "Opened (Received)" in history
    page.get_by_role("link", name="Record assessment").click()
    page.wait_for_url("**/do/assess")
    page.locator('[name="severity"]').fill("2")
    page.locator('[name="impact"][value="single_customer"]').check()
    page.locator('[name="complexity"]').first.check()
    page.get_by_role("button", name="Record assessment").click()
    page.wait_for_url("**/cases/*")
    assert "Acknowledged → Assessed" in page.locator("#history").inner_text()
    assert errors == [], errors


def test_a_customer_sends_a_complaint_on_a_phone_in_chinese(
        app: Flask, browser: object, live: str) -> None:
    add(app, "amy", roles=["agent"], teams=["care"])
    page = browser.new_page(  # type: ignore[attr-defined]
        locale="zh-CN", viewport={"width": 390, "height": 844}, has_touch=True)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live}/intake/complaint")  # no login; the browser's language
    assert page.locator("h1").inner_text() == "客户投诉"
    assert page.locator('[name="priority"]').count() == 0
    honeypot = page.locator('[name="_website"]')
    box = honeypot.bounding_box()  # off-screen: no person sees or tabs to it
    assert honeypot.count() == 1 and (box is None or box["x"] + box["width"] <= 0)
    page.locator('[name="customer_name"]').fill("王芳")
    page.locator('[name="phone"]').fill("138 0013 8000")
    page.locator('[name="category"]').select_option("delivery")
    page.locator('[name="subject"]').fill("慢")
    page.locator('[name="description"]').fill('<img src=x onerror=alert(1)> 包裹晚到了五天。')
    page.get_by_role("button", name="提交").click()
    page.wait_for_load_state()
    subject = page.locator('div[data-field="subject"]').inner_text()
    assert "标题长度应为 4 到 120 个字符。" in subject
    assert page.locator('[name="description"]').input_value().startswith("<img src=x")
    # Nothing sticks out sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator('[name="subject"]').fill("包裹晚到五天")
    page.get_by_role("button", name="提交").click()
    page.wait_for_url("**/intake/complaint/thanks**")
    reference = page.locator("#intake-reference").inner_text()
    assert reference.startswith("CMP-")
    assert "请保留上面的编号" in page.locator("#intake-thanks").inner_text()
    # The form sent with an error is answered 422, which Chromium logs; nothing else.
    assert [e for e in errors if "status of 422" not in e] == [], errors
