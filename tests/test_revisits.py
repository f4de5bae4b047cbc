"""Revisits under the worker, with a fake clock: a complaint reopened before its
revisit withdraws it (``cancel`` action), and a customer is not surveyed twice
within the cooldown. On SQLite and PostgreSQL (the ``loop`` fixture)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from caseloop.models import Case, Job

from . import test_loop
from .test_api import COMPLAINT, WALK
from .test_loop import Loop

RESOLVE = WALK[:-1]  # received ... resolved


#: The fixture, on SQLite and PostgreSQL.
loop = test_loop.loop


def _resolved(loop: Loop, data: dict[str, Any] | None = None) -> int:
    case_id = loop.create("complaint", data or COMPLAINT).id
    for trigger, _, step in RESOLVE:
        loop.fire(case_id, trigger, step)
    return case_id


def _children(loop: Loop, case_id: int) -> list[Case]:
    loop.session.expire_all()
    return list(loop.session.execute(select(Case).where(Case.parent_id == case_id)
                                     .order_by(Case.id)).scalars())


def _starts(loop: Loop, case_id: int) -> list[Job]:
    return list(loop.session.execute(select(Job).where(
        Job.case_id == case_id, Job.kind == "start").order_by(Job.id)).scalars())


def test_reopening_before_the_revisit_starts_drops_the_scheduled_revisit(loop: Loop) -> None:
    case_id = _resolved(loop)
    assert [j.status for j in _starts(loop, case_id)] == ["pending"]
    loop.clock.advance(days=1)
    assert loop.fire(case_id, "reopen", actor=loop.supervisor).state == "reopened"
    # Dropped in the reopening transaction: no worker can start it afterwards.
    loop.session.expire_all()
    [start] = _starts(loop, case_id)
    assert (start.status, start.result) == (
        "cancelled", f"withdrawn: {loop.get(case_id).reference} entered 'reopened'")
    loop.clock.advance(days=3)
    loop.work()
    assert _children(loop, case_id) == []
    note = [e.payload for e in loop.events(case_id, "action")
            if e.payload.get("action") == "cancel"]
    assert note == [{"action": "cancel", "workflow": "revisit", "scheduled_dropped": 1,
                     "cases": []}]


def test_reopening_cancels_a_revisit_not_yet_under_way_with_the_reason(loop: Loop) -> None:
    case_id = _resolved(loop)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    [revisit] = _children(loop, case_id)
    assert revisit.state == "scheduled"
    loop.fire(case_id, "reopen", actor=loop.supervisor)
    loop.work()
    [revisit] = _children(loop, case_id)
    assert revisit.state == "cancelled"
    assert "reopened" in revisit.data["cancel_reason"]
    transition = loop.events(revisit.id, "transition")[-1]
    assert (transition.trigger, transition.actor_name) == ("cancel", "system")


def test_a_revisit_on_the_phone_is_left_alone_and_the_history_says_so(loop: Loop) -> None:
    case_id = _resolved(loop)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    [revisit] = _children(loop, case_id)
    reference = revisit.reference
    loop.fire(revisit.id, "start_call")
    loop.fire(revisit.id, "customer_reached", {"call_outcome": "reached"})
    loop.fire(case_id, "reopen", actor=loop.supervisor)
    loop.work()
    assert _children(loop, case_id)[0].state == "reached"
    [note] = [e.payload for e in loop.events(case_id, "action")
              if e.payload.get("action") == "cancel"]
    assert note["cases"] == [] and f"{reference} (reached)" in note["note"]


def test_the_low_score_loop_does_not_try_to_cancel_the_answered_revisit(loop: Loop) -> None:
    case_id = _resolved(loop)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    [revisit] = _children(loop, case_id)
    loop.fire(revisit.id, "start_call")
    loop.fire(revisit.id, "customer_reached", {"call_outcome": "reached"})
    loop.fire(revisit.id, "complete_survey", {"csat": 1, "nps": 2, "issue_resolved": False})
    counts = loop.work()
    assert loop.get(case_id).state == "reopened" and counts["dead"] == 0
    assert _children(loop, case_id)[0].state == "answered"
    assert not [e for e in loop.events(case_id, "action") if e.payload.get("action") == "cancel"]


def test_a_customer_is_not_revisited_twice_within_the_cooldown(loop: Loop) -> None:
    known = {**COMPLAINT, "customer_id": "crm-1001"}
    first = _resolved(loop, known)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    assert len(_children(loop, first)) == 1
    # A second complaint of the same customer, resolved ten days later.
    loop.clock.advance(days=10)
    second = _resolved(loop, {**known, "subject": "Wrong size delivered"})
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    assert _children(loop, second) == []
    [start] = _starts(loop, second)
    assert start.status == "cancelled"
    assert "customer crm-1001 already had REV-" in (start.result or "")
    assert "no recontact within 30 days" in (start.result or "")
    notes = [e.payload.get("note", "") for e in loop.events(second, "action")]
    assert any(n.startswith("revisit not started: customer crm-1001") for n in notes)
    # Another customer, and a customer without a CRM id, are revisited as usual.
    other = _resolved(loop, {**COMPLAINT, "customer_id": "crm-2002"})
    anonymous = _resolved(loop)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    assert len(_children(loop, other)) == 1 and len(_children(loop, anonymous)) == 1


def test_a_cancelled_revisit_does_not_count_towards_the_cooldown(loop: Loop) -> None:
    known = {**COMPLAINT, "customer_id": "crm-1001"}
    first = _resolved(loop, known)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    [revisit] = _children(loop, first)
    loop.fire(revisit.id, "cancel", {"cancel_reason": "Customer asked not to be called."},
              actor=loop.supervisor)
    second = _resolved(loop, {**known, "subject": "Wrong size delivered"})
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    assert len(_children(loop, second)) == 1


def test_a_reopened_complaint_resolved_again_is_revisited_again(loop: Loop) -> None:
    """Closing the loop with a detractor is the point: the cooldown holds back
    surveys about other matters, not the follow-up on the same complaint."""
    case_id = _resolved(loop, {**COMPLAINT, "customer_id": "crm-1001"})
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    [first] = _children(loop, case_id)
    loop.fire(first.id, "start_call")
    loop.fire(first.id, "customer_reached", {"call_outcome": "reached"})
    loop.fire(first.id, "complete_survey", {"csat": 1, "nps": 2, "issue_resolved": False})
    loop.work()
    assert loop.get(case_id).state == "reopened"
    for trigger, _, step in WALK[2:6]:  # investigating ... resolved again
        loop.fire(case_id, trigger, step)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    assert [c.state for c in _children(loop, case_id)] == ["closed", "scheduled"]
