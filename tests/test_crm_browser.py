"""The new-case page finds the customer in the CRM as the agent types (Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from .test_browser import browser, serve  # noqa: F401  (the browser fixture)
from .test_cases import dispose
from .test_crm import crm_app, hubspot
from .test_views_auth import PASSWORD, add


@pytest.fixture
def crm_live(tmp_path: Path) -> Iterator[tuple[Flask, str, Any]]:
    with hubspot.FakeHubSpot() as fake:
        # The connector reads the CRM's property; Caseloop maps its values to ours.
        app = crm_app("sqlite", tmp_path, fake,
                      profile_fields={"segment": "customer_segment"},
                      profile={"segment": {"values": {"A": "Key account"}}})
        try:
            with serve(app) as url:
                yield app, url, fake
        finally:
            dispose(app)


def test_typing_a_phone_number_shows_the_crm_customer_and_fills_the_name(
        crm_live: tuple[Flask, str, Any], browser: Any) -> None:  # noqa: F811
    app, url, fake = crm_live
    fake.add_customer(name="Li Wei", email="li.wei@example.com", phone_e164="+8613800138000",
                      properties={"customer_segment": "A"})
    add(app, "amy", roles=["agent"], teams=["care"])
    page = browser.new_page(locale="en-US")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{url}/login?next=/cases/new/complaint")
    page.get_by_label("User name").fill("amy")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/cases/new/complaint")
    name = page.locator("input[name=customer_name]")
    assert name.input_value() == ""
    page.locator("input[name=phone]").type("138 0013 8000")
    found = page.locator(".crm-found .crm-customer")
    found.wait_for(timeout=10_000)
    assert found.inner_text() == "hubspot: Li Wei · Key account · customer"
    assert name.input_value() == "Li Wei"
    assert errors == []
