"""The improvement plan under the worker, with a fake clock: reminders before an
action's due date and escalation after it (reminders.py), the measured
effectiveness review (indicators.py) that standardises or re-plans by itself.
On SQLite and PostgreSQL (the ``loop`` fixture of test_loop)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from caseloop.cases import Actor
from caseloop.models import Case, Job, Notification

from . import test_loop
from .test_api import COMPLAINT
from .test_cases import person
from .test_loop import SHANGHAI, Loop

PLAN: dict[str, Any] = {
    "method": "pdca", "title": "Late parcels from the Wuxi depot", "category": "delivery",
    "plan_owner": "quinn", "team": "care",
    "problem_statement": "Parcels routed through the Wuxi depot arrive 3-5 days late "
                         "since October; 14 complaints in 30 days.",
}
#: Friday 20 November 2026 17:00 Beijing is the fixture's clock; due dates around it.
ACTIONS = [
    {"title": "Switch the Wuxi route to the second carrier", "owner": "ann",
     "due": "2026-11-22", "status": "planned"},
    {"title": "Daily depot backlog report", "owner": "sam", "due": "2026-12-10",
     "status": "in_progress"},
]


#: The fixture, on SQLite and PostgreSQL.
loop = test_loop.loop


def _people(loop: Loop) -> tuple[Actor, Actor]:
    quality = person(loop.app, "quinn2", ["quality"], ["care"])
    manager = person(loop.app, "mona", ["manager"], ["care"])
    return quality, manager


def _approved(loop: Loop, quality: Actor, manager: Actor, target: float = 3,
              plan: dict[str, Any] | None = None) -> int:
    case = loop.cases().create("improvement_plan", plan or PLAN, quality)
    loop.session.commit()
    loop.fire(case.id, "analyse", actor=quality)
    loop.fire(case.id, "plan_actions", {"root_cause_method": "five_whys",
                                        "root_cause": "One carrier serves the depot and "
                                                      "has no spare capacity in peaks."},
              actor=quality)
    approved = loop.fire(case.id, "approve", {
        "actions": ACTIONS, "effectiveness_metric": "Delivery complaints in 30 days",
        "effectiveness_target": target}, actor=manager)
    assert approved.state == "implementing"
    return case.id


def _reminders(loop: Loop, case_id: int) -> list[dict[str, Any]]:
    return [e.payload for e in loop.events(case_id, "action")
            if e.payload.get("action") == "remind"]


def _inbox(loop: Loop, user: str) -> list[str]:
    from caseloop.models import User

    uid = loop.session.execute(select(User.id).where(User.name == user)).scalar_one()
    return [n.body for n in loop.session.execute(
        select(Notification).where(Notification.user_id == uid).order_by(Notification.id)
    ).scalars()]


def test_owners_are_reminded_before_the_due_date_and_escalated_after(loop: Loop) -> None:
    quality, manager = _people(loop)
    case_id = _approved(loop, quality, manager)
    loop.work()
    # Friday 17:00: the first action is due on Sunday (within 2 days): its owner is
    # reminded at once; the second (10 December) is not due for reminding yet.
    assert [(r["level"], r["owner"]) for r in _reminders(loop, case_id)] == [("reminder", "ann")]
    assert any("Switch the Wuxi route" in body and "2026-11-22" in body
               for body in _inbox(loop, "ann"))
    assert not any("Daily depot backlog" in body for body in _inbox(loop, "sam"))

    # The daily check runs at 09:00 Beijing; nothing new on Saturday and Sunday.
    loop.clock.now = dt.datetime(2026, 11, 22, 9, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    loop.work()
    assert len(_reminders(loop, case_id)) == 1
    # Monday 09:00 (due + 1 day): overdue; the owner and the plan's assignee are told.
    loop.clock.now = dt.datetime(2026, 11, 23, 9, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    loop.work()
    overdue = _reminders(loop, case_id)[-1]
    assert (overdue["level"], overdue["escalation"], overdue["to"]) == (
        "overdue", 1, ["user:ann", "assignee"])
    # Friday 27th 09:00 (due + 5 days): the managers as well; once, not once per day.
    loop.clock.now = dt.datetime(2026, 11, 27, 9, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    loop.work()
    loop.clock.now = dt.datetime(2026, 11, 28, 9, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    loop.work()
    levels = [(r["level"], r.get("escalation")) for r in _reminders(loop, case_id)]
    assert levels == [("reminder", None), ("overdue", 1), ("overdue", 2)]
    assert any("overdue" in body.lower() or "逾期" in body for body in _inbox(loop, "mona"))
    # One chain of checks: exactly one pending check at any time.
    pending = loop.session.execute(select(Job).where(
        Job.case_id == case_id, Job.kind == "remind", Job.status == "pending")).scalars().all()
    assert len(pending) == 1
    assert pending[0].run_at.astimezone(SHANGHAI).time() == dt.time(9, 0)


def test_a_done_row_stops_and_a_moved_due_date_restarts_its_reminders(loop: Loop) -> None:
    quality, manager = _people(loop)
    case_id = _approved(loop, quality, manager)
    loop.work()
    rows = [dict(r) for r in ACTIONS]
    rows[0]["status"] = "done"
    rows[1]["due"] = "2026-11-24"  # brought forward: due in two days from Sunday
    loop.cases().update(case_id, {"actions": rows}, quality)
    loop.session.commit()
    loop.clock.now = dt.datetime(2026, 11, 22, 9, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    loop.work()
    loop.clock.now = dt.datetime(2026, 11, 24, 9, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    loop.work()
    assert [(r["level"], r["owner"], r["due"]) for r in _reminders(loop, case_id)] == [
        ("reminder", "ann", "2026-11-22"), ("reminder", "sam", "2026-11-24")]


def test_reminders_stop_when_the_plan_leaves_implementation(loop: Loop) -> None:
    quality, manager = _people(loop)
    case_id = _approved(loop, quality, manager)
    loop.work()
    loop.fire(case_id, "cancel", {"cancel_reason": "Merged into the carrier review."},
              actor=quality)
    loop.clock.advance(days=10)
    loop.work()
    jobs = loop.session.execute(select(Job).where(
        Job.case_id == case_id, Job.kind == "remind").order_by(Job.id)).scalars().all()
    assert [j.status for j in jobs] == ["done", "cancelled"]
    assert "left state 'implementing'" in (jobs[-1].result or "")
    assert len(_reminders(loop, case_id)) == 1


def _complaints(loop: Loop, n: int, category: str = "delivery") -> None:
    for i in range(n):
        loop.create("complaint", {**COMPLAINT, "category": category,
                                  "subject": f"Late parcel {i}"})


def _verified(loop: Loop, quality: Actor, manager: Actor, target: float,
              plan: dict[str, Any] | None = None) -> int:
    case_id = _approved(loop, quality, manager, target, plan)
    rows = [{**r, "status": "done"} for r in ACTIONS]
    loop.cases().update(case_id, {"actions": rows}, quality)
    loop.session.commit()
    verifying = loop.fire(case_id, "verify", {"verification": "Audited on site on 1 Dec."},
                          actor=quality)
    assert verifying.state == "verifying"
    return case_id


def test_the_review_measures_complaints_and_standardises_when_the_target_is_met(
        loop: Loop) -> None:
    quality, manager = _people(loop)
    _complaints(loop, 5)  # before: 5 delivery complaints
    _complaints(loop, 2, "billing")  # other categories do not count
    loop.clock.advance(hours=1)
    case_id = _verified(loop, quality, manager, target=3)
    assert loop.get(case_id).data["effectiveness_baseline"] == 5
    loop.clock.advance(days=10)
    _complaints(loop, 2)  # after: 2 delivery complaints in the window
    loop.clock.advance(days=20, minutes=1)
    loop.work()  # the 30-day timer -> review -> measured -> standardise
    plan = loop.get(case_id)
    assert plan.state == "standardised"
    assert plan.data["effectiveness_result"] == 2 and plan.data["target_met"] is True
    measured = next(e.payload for e in loop.events(case_id, "action")
                    if e.payload.get("action") == "measure" and "effectiveness_result" in
                    e.payload["changes"])
    assert measured["value"] == 2 and measured["where"] == {"category": "delivery"}
    assert [t.trigger for t in loop.events(case_id, "transition")][-2:] == [
        "review_effectiveness", "standardise"]


def test_a_missed_target_sends_the_plan_back_to_root_cause_with_the_figures(
        loop: Loop) -> None:
    quality, manager = _people(loop)
    case_id = _verified(loop, quality, manager, target=1)
    loop.clock.advance(days=5)
    _complaints(loop, 3)
    loop.clock.advance(days=25, minutes=1)
    loop.work()
    plan = loop.get(case_id)
    assert plan.state == "root_cause"
    assert plan.data["effectiveness_result"] == 3 and plan.data["target_met"] is False
    assert "complaint cases where category = delivery: 3" in plan.data["replan_reason"]
    told = loop.session.execute(select(Job).where(Job.case_id == case_id,
                                                  Job.kind == "notify")).scalars().all()
    assert any("not met" in (j.payload["message"].get("en") or "") for j in told)


def test_a_plan_without_a_problem_area_is_left_for_people_to_review(loop: Loop) -> None:
    quality, manager = _people(loop)
    plan = {k: v for k, v in PLAN.items() if k != "category"}
    case_id = _verified(loop, quality, manager, target=1, plan=plan)
    loop.clock.advance(days=30, minutes=1)
    loop.work()
    stored = loop.get(case_id)
    assert stored.state == "effectiveness_review"
    assert "effectiveness_result" not in stored.data
    notes = [e.payload.get("note") for e in loop.events(case_id, "action")]
    assert "not measured: 'category' has no value to compare with" in notes
    told = loop.session.execute(select(Job).where(Job.case_id == case_id,
                                                  Job.kind == "notify")).scalars().all()
    assert any("could not be measured" in j.payload["message"]["en"] for j in told)


def test_measure_averages_a_field_in_sql(loop: Loop) -> None:
    """``aggregate: mean`` over revisits: one aggregate query, rows not loaded."""
    from caseloop.indicators import measure
    from caseloop.spec.model import Measure

    from .test_cases import count

    for score in (2, 4, 5, None):
        case = loop.cases().create("revisit", {"reason": "periodic_care",
                                               "customer_name": "Li Wei"}, Actor.system())
        if score is not None:  # answered (csat is hidden until the customer is reached)
            case.data = {**case.data, "csat": score}
    loop.session.commit()
    assert count(loop.session, Case, workflow="revisit") == 4
    m = Measure("revisit", "mean", dt.timedelta(days=1), "x", "csat")
    figure = measure(loop.session, m, {}, loop.clock() + dt.timedelta(seconds=1))
    assert (figure.value, figure.n) == (round(11 / 3, 4), 3)
    assert "mean csat of 3 revisit cases" in figure.describe()
    assert "回访" not in figure.describe("zh") and "平均值" in figure.describe("zh")
    # Cases outside the window do not count.
    later = measure(loop.session, m, {}, loop.clock() + dt.timedelta(days=2))
    assert (later.value, later.n) == (None, 0)
