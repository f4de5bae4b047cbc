"""The definitions shipped in forms/ and workflows/: clean, complete, and meaning what they say."""

from __future__ import annotations

from caseloop import spec
from caseloop.spec import Definitions

from .conftest import SHIPPED


def shipped() -> Definitions:
    definitions, problems = spec.check(SHIPPED)
    assert [p.format() for p in problems] == []
    return definitions


def test_shipped_definitions_have_no_problem_at_all() -> None:
    d = shipped()
    assert {"complaint", "revisit", "improvement_plan"} <= set(d.workflows)
    assert {"complaint", "revisit", "improvement_plan", "customer_contact"} <= set(d.forms)
    assert "cn_office" in d.calendars


def test_complaint_follows_the_iso_10002_journey() -> None:
    wf = shipped().workflows["complaint"]
    assert wf.public and wf.reference_prefix == "CMP"
    assert wf.priority_field and wf.form.field(wf.priority_field) is not None
    channel = wf.form.field("channel")
    assert channel is not None
    assert {"phone", "email", "web", "chat", "social", "store", "crm"} <= set(
        channel.choice_values())
    assert wf.form.field("segment") is not None  # included from customer_contact
    finals = [s for s in wf.states.values() if s.final]
    assert finals and all(s.category == "done" for s in finals)
    assert any(s.category == "paused" for s in wf.states.values())
    triggers = {t.trigger for t in wf.transitions}
    assert {"acknowledge", "escalate", "reopen"} <= triggers
    reopen = [t for t in wf.transitions if t.trigger == "reopen"]
    assert any("system" in t.allow for t in reopen)  # a revisit may reopen the complaint
    starts = {a.workflow for s in wf.states.values() for a in s.on_enter if a.kind == "start"}
    assert "revisit" in starts
    assert wf.sla is not None and {p.name for p in wf.sla.policies} >= {"standard"}


def test_revisit_closes_the_loop() -> None:
    wf = shipped().workflows["revisit"]
    types = {f.type for f in wf.form.fields}
    assert {"nps", "ces", "rating"} <= types
    outcome = wf.form.field("call_outcome")
    assert outcome is not None
    assert {"reached", "unreachable", "refused", "call_back_later"} <= set(
        outcome.choice_values())
    fires = [a for s in wf.states.values() for a in s.on_enter if a.kind == "fire"]
    assert any(a.case == "parent" and a.trigger == "reopen" and a.when for a in fires)


def test_improvement_plan_has_owned_dated_actions() -> None:
    wf = shipped().workflows["improvement_plan"]
    actions = next(f for f in wf.form.fields if f.type == "group")
    sub = {f.name: f.type for f in actions.fields}
    assert sub.get("owner") == "user" and sub.get("due") == "date" and "status" in sub
    assert actions.min_rows and actions.min_rows >= 1


def test_every_shipped_expression_evaluates_on_an_empty_case() -> None:
    """Conditions never blow up on a fresh case: an empty field makes them false."""
    d = shipped()
    empty: dict[str, object] = {"now": None}
    for form in d.forms.values():
        values = {f.name: None for f in form.fields}
        for f in form.fields:
            for expr in (f.visible_if, f.required_if, f.readonly_if):
                if expr is not None:
                    assert expr.test({**empty, **values}) in (True, False)
