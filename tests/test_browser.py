"""The pages in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
nothing downloaded). Skipped, with the reason, when either is missing."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
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


@pytest.fixture
def live(app: Flask) -> Iterator[str]:
    """The app served over HTTP in a thread, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


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
