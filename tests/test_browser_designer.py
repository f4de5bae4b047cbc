"""The designer in a real browser (issue 8): a form built with the guided builder and its
preview following a condition; the shipped complaint changed in the browser — a field
with a condition added to its form, a state renamed — with the YAML broken on the way
(the positioned error), a simulation, a publish with a state map after the dry run;
frontline staff see the change on new cases while old ones are intact.

Playwright driving Debian's Chromium, as tests/test_browser.py; skipped, with the reason,
when either is missing."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from caseloop.cases import Cases
from caseloop.extension import state
from caseloop.models import Case, User
from caseloop.users import actor_for

from .test_api import COMPLAINT, WALK
from .test_browser import browser, live  # noqa: F401  (fixtures)
from .test_browser_journey import _choose, _expect, _page, _submit
from .test_views_auth import PASSWORD, add

RENAMED = re.compile(r"\bassessed\b")


def _login(page: Any, live: str, name: str) -> None:  # noqa: F811
    page.goto(f"{live}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    _submit(page, "Log in")


def _complaint(app: Flask, steps: int) -> int:
    """A complaint taken ``steps`` steps along the shipped walk; its id."""
    with app.app_context():
        session = state().db.session
        user = session.query(User).filter_by(name="amy").one()
        who = actor_for(session, user)
        cases = Cases(session, state().registry)
        case = cases.create("complaint", dict(COMPLAINT), who)
        for trigger, _, data in WALK[:steps]:
            cases.fire(case.id, trigger, data, who)
        session.commit()
        return case.id


def _row(app: Flask, case_id: int) -> tuple[str, str, bool]:
    with app.app_context():
        session = state().db.session
        session.expire_all()
        case = session.get(Case, case_id)
        assert case is not None
        return case.definition_version, case.state, case.closed


def _replace_text(page: Any, text: str) -> None:
    """Everything in the YAML editor replaced by ``text``, pasted. (Typing it with
    ``keyboard.insert_text`` edits the page's DOM under CodeMirror, which styles the
    line inline: a CSP violation no person's paste or typing causes.)"""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+V")


def _saved(page: Any) -> None:
    _expect()(page.locator("#save-status")).to_contain_text("Draft saved")


def test_a_form_built_with_the_guided_builder_and_its_preview_follows_the_condition(
        app: Flask, browser: Any, live: str) -> None:  # noqa: F811
    add(app, "dora", roles=["designer"])
    errors: list[str] = []
    page = _page(browser, [], errors, locale="en-US")
    expect = _expect()
    _login(page, live, "dora")
    page.get_by_role("link", name="Designer").click()
    page.locator("#new-kind").select_option("form")
    page.locator("#new-name").fill("warranty")
    _submit(page, "Create draft")
    assert page.url.endswith("/designer/form/warranty")

    page.get_by_role("tab", name="Builder").click()
    builder = page.locator("#builder")
    expect(builder.locator('[data-field="summary"]')).to_be_visible()
    page.get_by_role("button", name="Add field").click()
    first = builder.locator(".builder-field").nth(1)
    first.get_by_label("name", exact=True).fill("in_warranty")
    first.get_by_label("type", exact=True).select_option("choice")
    first = builder.locator(".builder-field").nth(1)
    first.get_by_label("label en", exact=True).fill("In warranty?")
    first.get_by_label("label zh", exact=True).fill("是否在保修期内？")
    first.get_by_label("choices (value | en | zh)").fill("yes | Yes | 是\nno | No | 否")
    page.get_by_role("button", name="Add field").click()
    second = builder.locator(".builder-field").nth(2)
    second.get_by_label("name", exact=True).fill("receipt")
    second.get_by_label("label en", exact=True).fill("Receipt number")
    second.get_by_label("label zh", exact=True).fill("发票号")
    second.get_by_label("visible_if: field").select_option("in_warranty")
    second = builder.locator(".builder-field").nth(2)
    second.get_by_label("visible_if: value").fill("yes")
    _saved(page)
    # The builder wrote YAML: the editor shows it, and the draft passes the check.
    page.get_by_role("tab", name="YAML").click()
    expect(page.locator(".cm-content")).to_contain_text("name: receipt")
    expect(page.locator(".cm-content")).to_contain_text("visible_if: \"in_warranty == 'yes'\"")
    expect(page.locator("#problems")).to_contain_text("No problems.")

    page.get_by_role("tab", name="Preview").click()
    for lang, label, yes in (("en", "Receipt number", "Yes"), ("zh", "发票号", "是")):
        frame = page.frame_locator(f"#preview-{lang}")
        expect(frame.get_by_text(label)).to_be_hidden()
        frame.get_by_label(yes, exact=True).check()
        expect(frame.get_by_text(label)).to_be_visible()
    assert errors == []


def test_the_shipped_complaint_changed_in_the_browser_reaches_new_cases_only(
        app: Flask, browser: Any, live: str) -> None:  # noqa: F811
    add(app, "dora", roles=["designer"])
    add(app, "amy", roles=["agent"], teams=["care"])
    assessed, closed = _complaint(app, 2), _complaint(app, len(WALK))
    before = {assessed: _row(app, assessed), closed: _row(app, closed)}
    assert before[assessed][1] == "assessed" and before[closed][2]
    errors: list[str] = []
    page = _page(browser, [], errors, locale="en-US")
    expect = _expect()
    _login(page, live, "dora")

    # 1. The complaint form gets a field with a condition, through the builder.
    page.goto(f"{live}/designer/form/complaint")
    page.get_by_role("tab", name="Builder").click()
    page.get_by_role("button", name="Add field").click()
    field = page.locator(".builder-field").last
    field.get_by_label("name", exact=True).fill("courier")
    field = page.locator(".builder-field").last
    field.get_by_label("label en", exact=True).fill("Courier")
    field.get_by_label("label zh", exact=True).fill("快递公司")
    field.get_by_label("visible_if: field").select_option("category")
    field = page.locator(".builder-field").last
    field.get_by_label("visible_if: value").fill("delivery")
    _saved(page)
    page.get_by_role("tab", name="Preview").click()
    frame = page.frame_locator("#preview-en")
    _choose(frame.locator("form"), "category", "product_quality")
    expect(frame.get_by_text("Courier", exact=True)).to_be_hidden()
    _choose(frame.locator("form"), "category", "delivery")
    expect(frame.get_by_text("Courier", exact=True)).to_be_visible()
    page.get_by_role("link", name="Publish…").click()
    expect(page.locator("#diff")).to_contain_text("+  - name: courier")
    _submit(page, "Publish")
    expect(page.locator(".flashes")).to_contain_text("Published form 'complaint'")

    # 2. The workflow: a typo shows where it is; then the change itself.
    page.goto(f"{live}/designer/workflow/complaint")
    source = page.locator("#yaml-text").input_value()
    broken = source.replace("to: investigating", "to: investigatin", 1)
    _replace_text(page, broken)
    problem = page.locator("#problems li.error button").first
    line = next(i for i, text in enumerate(broken.splitlines(), 1)
                if text.rstrip().endswith("to: investigatin"))
    expect(problem).to_have_text(re.compile(rf"workflows/complaint\.yaml:{line}:\d+"))
    expect(page.locator("#problems")).to_contain_text("investigatin")
    problem.click()
    expect(page.locator(".cm-activeLine")).to_contain_text("to: investigatin")
    # The new field is editable on new complaints ('received'); 'assessed' is renamed.
    changed = RENAMED.sub("triaged", source).replace(
        "attachments, priority, withdrawal_reason]",
        "attachments, priority, withdrawal_reason, courier]", 1)
    _replace_text(page, changed)
    _saved(page)
    expect(page.locator("#problems")).to_contain_text("No problems.")

    # 3. Simulate the draft with the shipped scenario, adapted to the new name.
    page.get_by_role("tab", name="Simulate").click()
    scenario = page.locator("#scenario")
    scenario.fill(RENAMED.sub("triaged", scenario.input_value()))
    page.get_by_role("button", name="Run against the draft").click()
    expect(page.locator("#sim-status")).to_have_text("The scenario passed.", timeout=60_000)
    expect(page.locator("#trace")).to_contain_text("triaged")

    # 4. Publish: the dry run shows the stranded case; the map moves it.
    page.get_by_role("link", name="Publish…").click()
    expect(page.locator(".state-map")).to_contain_text("States this version removes: assessed")
    expect(page.locator(".moves")).to_contain_text("cannot move")
    _submit(page, "Publish")
    expect(page.locator(".flashes")).to_contain_text(
        "Not published: 1 open 'complaint' case(s) are in a state this version removes")
    page.get_by_label("Cases in 'assessed' go to").select_option("triaged")
    _submit(page, "Check the map")
    expect(page.locator(".moves")).to_contain_text("in 'assessed' → triaged")
    page.get_by_label("Move the open cases to the new version now").check()
    page.get_by_label("Note (why this change)").fill("assessed is called triaged now")
    _submit(page, "Publish")
    expect(page.locator(".flashes")).to_contain_text("Published workflow 'complaint'")
    expect(page.locator(".flashes")).to_contain_text("1 open case(s) moved")
    expect(page.locator(".publications")).to_contain_text("assessed is called triaged now")
    # The refused publish answered 422 (the browser logs that); nothing else went wrong.
    assert [e for e in errors if "status of 422" not in e] == []

    moved, kept = _row(app, assessed), _row(app, closed)
    assert moved[1] == "triaged" and moved[0] != before[assessed][0]
    assert kept == before[closed]  # a closed case keeps its version

    # 5. Frontline: a new complaint has the new field and lands on the new version.
    agent = _page(browser, [], errors, locale="en-US")
    _login(agent, live, "amy")
    agent.goto(f"{live}/cases/new/complaint")
    form = agent.locator("form.case-fields")
    _choose(form, "category", "delivery")
    expect(agent.get_by_text("Courier", exact=True)).to_be_visible()
