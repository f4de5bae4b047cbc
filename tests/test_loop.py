"""The closed loop under the worker, with a fake clock: SLA deadlines on the
office calendar, timers, a revisit started days later, and a low score that
reopens the complaint. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from caseloop.cases import Actor, Cases
from caseloop.extension import state
from caseloop.handlers import builtin
from caseloop.jobs import Executor
from caseloop.models import Case, Event, Job, User
from caseloop.worker import Worker

from .test_api import COMPLAINT, WALK
from .test_cases import build_app, dispose, person

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
#: Friday 20 November 2026, 17:00 in Beijing: one working hour left that day.
FRIDAY_5PM = dt.datetime(2026, 11, 20, 17, 0, tzinfo=SHANGHAI)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Loop:
    app: Flask
    clock: Clock
    agent: Actor
    supervisor: Actor

    @property
    def session(self) -> Any:
        return state().db.session

    def cases(self) -> Cases:
        return Cases(self.session, state().registry, clock=self.clock)

    def create(self, workflow: str, data: dict[str, Any]) -> Case:
        case = self.cases().create(workflow, data, self.agent)
        self.session.commit()
        return case

    def fire(self, case_id: int, trigger: str, data: dict[str, Any] | None = None,
             actor: Actor | None = None) -> Case:
        case = self.cases().fire(case_id, trigger, data or {}, actor or self.agent)
        self.session.commit()
        return case

    def work(self) -> Counter[str]:
        """Run the worker until nothing is due at the fake clock's time."""
        self.session.remove()
        executor = Executor(state().db.engine, state().registry, builtin(),
                            settings=self.app.config, clock=self.clock)
        return Worker(executor).run(until_idle=True)

    def get(self, case_id: int) -> Case:
        self.session.expire_all()
        case = self.session.get(Case, case_id)
        assert case is not None
        return case

    def events(self, case_id: int, kind: str) -> list[Event]:
        return list(self.session.execute(select(Event).where(
            Event.case_id == case_id, Event.kind == kind).order_by(Event.id)).scalars())


@pytest.fixture(params=["sqlite", "postgresql"])
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    app = build_app(request.param, tmp_path)
    with app.app_context():
        agent = person(app, "ann", ["agent"], ["care"])
        supervisor = person(app, "sam", ["supervisor"], ["care"])
        person(app, "quinn", ["quality"], ["care"])
        yield Loop(app, Clock(FRIDAY_5PM), agent, supervisor)
        state().db.session.remove()
    dispose(app)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def test_deadlines_count_office_hours_and_pause_while_waiting(loop: Loop) -> None:
    case = loop.create("complaint", COMPLAINT)
    case_id = case.id
    # Standard policy, normal priority: first response within 4 working hours: one on
    # Friday (17-18), three on Monday (9-12) -> Monday 12:00 Beijing.
    monday_noon = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)
    assert case.sla_policy == "standard"
    assert _utc(case.due_at) == monday_noon
    assert dt.datetime.fromisoformat(case.sla["first_response"]["due"]) == monday_noon
    # Warned 30 minutes before, then breached, then escalated 2 h after the deadline.
    assert _utc(case.sla_next_at) == monday_noon - dt.timedelta(minutes=30)

    loop.clock.now = monday_noon - dt.timedelta(minutes=29)
    loop.work()
    stored = loop.get(case_id)
    assert stored.sla["first_response"]["warned"] and not stored.sla_breached
    loop.clock.now = monday_noon + dt.timedelta(minutes=1)
    loop.work()
    stored = loop.get(case_id)
    assert stored.sla_breached and stored.sla["first_response"]["breached"]
    assert stored.sla["first_response"]["level"] == 1  # the first escalation is at the deadline
    loop.clock.now = monday_noon + dt.timedelta(hours=2, minutes=1)
    loop.work()
    stored = loop.get(case_id)
    assert stored.priority == "high" and stored.data["priority"] == "high"  # raised one step
    sla_events = [e.payload for e in loop.events(case_id, "sla")]
    assert {"sla": "first_response", "breached": stored.sla["first_response"]["due"]} in sla_events
    notes = loop.session.execute(select(Job).where(Job.case_id == case_id,
                                                   Job.kind == "notify")).scalars().all()
    assert any("overdue" in j.payload["message"]["en"] for j in notes)

    # Acknowledging meets the first-response target; the resolution clock runs on.
    acknowledged = loop.fire(case_id, "acknowledge")
    assert acknowledged.sla["first_response"]["met"] is not None
    resolution_due = dt.datetime.fromisoformat(acknowledged.sla["resolution"]["due"])
    assert _utc(acknowledged.due_at) == resolution_due


def test_a_paused_state_stops_the_clock_and_resuming_keeps_what_was_left(loop: Loop) -> None:
    case = loop.create("complaint", COMPLAINT)
    for trigger, _, data in WALK[:3]:  # acknowledged, assessed, investigating
        loop.fire(case.id, trigger, data)
    before = loop.get(case.id)
    due = dt.datetime.fromisoformat(before.sla["resolution"]["due"])
    # Put on hold on Friday 17:00; resumed the next Wednesday 17:00 (three working days later).
    held = loop.fire(case.id, "hold", {"hold_reason": "waiting for the delivery note"})
    assert held.paused_at is not None and held.sla_next_at is None
    loop.clock.advance(days=5)
    resumed = loop.fire(case.id, "resume")
    assert resumed.paused_at is None
    new_due = dt.datetime.fromisoformat(resumed.sla["resolution"]["due"])
    # The working time left at the pause is left after it: the deadline moved by the three
    # working days spent on hold (Mon, Tue, Wed), not by the weekend.
    assert new_due - due == dt.timedelta(days=5)
    assert resumed.sla["resolution"]["paused_s"] == 3 * int(7.5 * 3600)


def test_the_loop_closes_by_itself_a_low_revisit_score_reopens_the_complaint(
        loop: Loop) -> None:
    case = loop.create("complaint", COMPLAINT)
    case_id, reference = case.id, case.reference
    for trigger, to, data in WALK[:-1]:  # ... resolved
        assert loop.fire(case_id, trigger, data).state == to
    # Resolved: a revisit starts three days later, by itself.
    assert loop.session.execute(select(Case).where(Case.parent_id == case_id)).first() is None
    loop.clock.advance(days=3, minutes=1)
    counts = loop.work()
    assert counts["done"] >= 1 and counts["dead"] == 0
    revisit = loop.session.execute(select(Case).where(Case.parent_id == case_id)).scalar_one()
    assert (revisit.workflow, revisit.state) == ("revisit", "scheduled")
    assert revisit.data["complaint_reference"] == reference

    loop.fire(revisit.id, "start_call")
    loop.fire(revisit.id, "customer_reached", {"call_outcome": "reached"})
    answered = loop.fire(revisit.id, "complete_survey", {"csat": 2, "nps": 3,
                                                         "issue_resolved": False})
    assert answered.state == "answered" and answered.data["low_score"] is True
    # The answer's on-enter 'fire: parent reopen' is a job: the worker closes the loop.
    revisit_id = revisit.id
    loop.work()
    complaint = loop.get(case_id)
    assert complaint.state == "reopened"
    assert complaint.data["reopen_count"] == 1
    fired = loop.session.execute(select(Job).where(
        Job.case_id == revisit_id, Job.kind == "fire")).scalars().all()
    assert [j.status for j in fired] == ["done"]
    transition = loop.events(case_id, "transition")[-1]
    assert (transition.trigger, transition.actor_name) == ("reopen", "system")


def test_a_timer_set_in_a_state_the_case_left_does_not_fire(loop: Loop) -> None:
    case_id = loop.create("complaint", COMPLAINT).id
    loop.fire(case_id, "acknowledge")  # sets a 1-day 'assessment_overdue' timer
    loop.fire(case_id, "assess", WALK[1][2])
    loop.clock.advance(days=2)
    loop.work()
    timers = loop.session.execute(select(Job).where(Job.case_id == case_id,
                                                    Job.kind == "timer")).scalars().all()
    assert [(j.status, j.result) for j in timers] == [
        ("cancelled", "the case left state 'acknowledged'; timer 'assessment_overdue' not fired")]
    assert loop.get(case_id).state == "assessed"


def test_the_whole_loop_runs_by_itself_complaint_revisit_improvement_plan(
        loop: Loop) -> None:
    """The shipped complaint -> revisit -> improvement plan loop under the worker:
    a poor revisit reopens the complaint; fixed again and marked for improvement,
    its follow-up revisit is answered through a survey link; the closed complaint
    starts an 8D plan whose actions are reminded, and which 30 days after they
    are in place measures the complaints of its category and standardises."""
    from caseloop import surveys

    from .test_cases import person

    manager = person(loop.app, "mona", ["manager"], ["care"])
    quality = person(loop.app, "quinn2", ["quality"], ["care"])
    data = {**COMPLAINT, "customer_id": "C-1001", "email": "li.wei@example.com"}
    case_id = loop.create("complaint", data).id
    for trigger, _, step in WALK[:-1]:
        loop.fire(case_id, trigger, step)

    def children(workflow: str) -> list[Case]:
        loop.session.expire_all()
        return list(loop.session.execute(select(Case).where(
            Case.parent_id == case_id, Case.workflow == workflow).order_by(Case.id)).scalars())

    # A poor revisit three days later reopens it.
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    first = children("revisit")[0].id
    loop.fire(first, "start_call")
    loop.fire(first, "customer_reached", {"call_outcome": "reached"})
    loop.fire(first, "complete_survey", {"csat": 2, "nps": 3, "issue_resolved": False})
    loop.work()
    assert loop.get(case_id).state == "reopened"

    # Fixed again and marked for an improvement plan; the follow-up revisit (not held
    # back by the recontact cooldown: same complaint) goes out as a survey link.
    loop.fire(case_id, "investigate")
    loop.fire(case_id, "respond", {**WALK[3][2], "improvement_needed": True})
    loop.fire(case_id, "communicate_decision", WALK[4][2])
    loop.fire(case_id, "accept_decision", WALK[5][2])
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    second = children("revisit")[1].id
    loop.fire(second, "send_survey")
    token = next(p["survey"] for p in loop.session.execute(select(Job.payload).where(
        Job.case_id == second, Job.kind == "notify")).scalars() if p.get("survey"))
    loop.clock.advance(hours=30)
    surveys.answer(loop.cases(), token, {"csat": 5, "nps": 9, "issue_resolved": True}, "zh")
    loop.session.commit()
    loop.work()
    assert loop.get(case_id).state == "closed"

    # The closed complaint started an improvement plan, assigned to quality.
    [plan] = children("improvement_plan")
    plan_id = plan.id
    assert plan.state == "draft" and plan.data["category"] == "delivery"
    assignee = loop.session.get(User, plan.assignee_id)
    assert assignee is not None and "quality" in assignee.roles
    loop.fire(plan_id, "contain", {"plan_owner": "quinn2", "team": "care"}, actor=quality)
    loop.fire(plan_id, "analyse", {"containment": "Second carrier on the Wuxi route."},
              actor=quality)
    loop.fire(plan_id, "plan_actions", {
        "root_cause_method": "five_whys",
        "root_cause": "One carrier serves the depot with no spare capacity."}, actor=quality)
    today = loop.clock().astimezone(SHANGHAI).date()
    actions = [{"title": "Sign a second carrier", "owner": "ann",
                "due": (today + dt.timedelta(days=1)).isoformat(), "status": "planned"}]
    loop.fire(plan_id, "approve", {"actions": actions, "effectiveness_target": 0,
                                   "effectiveness_metric": "Delivery complaints"},
              actor=manager)
    loop.work()
    reminded = [e.payload for e in loop.events(plan_id, "action")
                if e.payload.get("action") == "remind"]
    assert [(r["level"], r["owner"]) for r in reminded] == [("reminder", "ann")]
    loop.cases().update(plan_id, {"actions": [{**actions[0], "status": "done"}]}, quality)
    loop.session.commit()
    loop.fire(plan_id, "verify", {"verification": "Audited on site."}, actor=quality)
    assert loop.get(plan_id).data["effectiveness_baseline"] == 1  # this complaint

    # Thirty days on, no delivery complaint: measured, target met, standardised.
    loop.clock.advance(days=30, minutes=1)
    counts = loop.work()
    assert counts["dead"] == 0
    standardised = loop.get(plan_id)
    assert standardised.state == "standardised"
    assert standardised.data["effectiveness_result"] == 0
    assert standardised.data["target_met"] is True


def test_crm_pushes_without_a_connector_are_told_in_the_history(loop: Loop) -> None:
    """Until a CRM connector is configured (issue 6), each push is skipped and the
    case's history says so: the 'CRM sync results' the case page shows."""
    case_id = loop.create("complaint", COMPLAINT).id
    loop.fire(case_id, "acknowledge")  # acknowledged: 'crm: push case'
    loop.work()
    [event] = loop.events(case_id, "crm")
    assert (event.payload["push"], event.payload["status"], event.payload["reason"]) == (
        "case", "skipped", "no CRM connector is configured")
    job = loop.session.execute(select(Job).where(Job.case_id == case_id,
                                                 Job.kind == "crm")).scalar_one()
    assert (job.status, job.result) == ("cancelled", "no CRM connector is configured")
