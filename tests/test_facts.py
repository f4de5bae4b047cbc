"""Reporting facts kept with each change: dimensions, response and resolution times,
reopen counts, repeats, and the answers table (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select

from caseloop.facts import Answer
from caseloop.models import Case

from . import test_loop
from .test_api import COMPLAINT
from .test_loop import Loop
from .test_revisits import _children, _resolved

loop = test_loop.loop


def _case(loop: Loop, case_id: int) -> Case:
    return loop.get(case_id)


def _reached(loop: Loop, data: dict[str, Any] | None = None) -> tuple[int, Case]:
    """A resolved complaint and its revisit, started days later, with the customer on
    the phone."""
    case_id = _resolved(loop, data)
    loop.clock.advance(days=4)
    loop.work()
    [revisit] = _children(loop, case_id)
    loop.fire(revisit.id, "start_call")
    loop.fire(revisit.id, "customer_reached", {"call_outcome": "reached"})
    return case_id, revisit


def test_a_complaint_carries_its_dimensions_and_times(loop: Loop) -> None:
    data = {**COMPLAINT, "channel": "phone", "segment": "high_value"}
    case_id = loop.create("complaint", data).id
    case = _case(loop, case_id)
    assert (case.channel, case.category, case.segment) == ("phone", "delivery", "high_value")
    assert case.first_response_at is None and case.resolved_at is None
    loop.clock.advance(hours=2)
    loop.cases().comment(case_id, "Called the customer back.", loop.agent)
    loop.session.commit()
    case = _case(loop, case_id)
    assert case.first_response_at == loop.clock.now
    assert case.version == 1  # a comment never makes someone's open form stale
    loop.clock.advance(hours=1)
    loop.fire(case_id, "acknowledge")
    assert _case(loop, case_id).first_response_at == loop.clock.now - dt.timedelta(hours=1)


def test_resolution_reopening_and_repeats(loop: Loop) -> None:
    known = {**COMPLAINT, "customer_id": "C-1001"}  # a repeat is the same CRM customer
    case_id = _resolved(loop, known)
    case = _case(loop, case_id)
    assert case.resolved_at == loop.clock.now and case.reopened == 0
    assert case.first_response_at is not None
    loop.fire(case_id, "reopen", actor=loop.supervisor)
    case = _case(loop, case_id)
    assert (case.resolved_at, case.reopened) == (None, 1)
    assert case.repeat is False
    again = loop.create("complaint", known).id  # same customer, same category
    other = loop.create("complaint", {**known, "category": "billing"}).id
    unknown = loop.create("complaint", COMPLAINT).id  # no customer id: never a repeat
    assert _case(loop, again).repeat is True
    assert _case(loop, other).repeat is False
    assert _case(loop, unknown).repeat is False


def test_revisit_answers_are_kept_with_the_complaints_dimensions(loop: Loop) -> None:
    case_id = _resolved(loop, {**COMPLAINT, "channel": "email", "segment": "high_value"})
    loop.clock.advance(days=4)
    loop.work()
    [revisit] = _children(loop, case_id)
    assert (revisit.channel, revisit.category, revisit.segment) == (
        "email", "delivery", "high_value")
    loop.fire(revisit.id, "start_call")
    loop.fire(revisit.id, "customer_reached", {"call_outcome": "reached"})
    loop.fire(revisit.id, "complete_survey", {"csat": 4, "nps": 9, "ces": 6,
                                              "issue_resolved": True})
    rows = {a.field: a for a in loop.session.execute(
        select(Answer).where(Answer.case_id == revisit.id)).scalars()}
    assert {f: (a.metric, a.report, a.value, a.low, a.high) for f, a in rows.items()} == {
        "csat": ("csat", "top2box", 4, 1, 5), "nps": ("nps", None, 9, 0, 10),
        "ces": ("ces", None, 6, 1, 7)}
    nps = rows["nps"]
    assert (nps.workflow, nps.parent_workflow) == ("revisit", "complaint")
    assert (nps.channel, nps.category, nps.segment) == ("email", "delivery", "high_value")


def test_metrics_rebuild_recomputes_the_facts_from_history(loop: Loop) -> None:
    from sqlalchemy import delete, update

    case_id, revisit = _reached(loop, {**COMPLAINT, "channel": "email"})
    answered = loop.clock.now
    loop.fire(revisit.id, "complete_survey", {"csat": 2, "nps": 4, "issue_resolved": False})
    before = {c: (c.channel, c.first_response_at, c.resolved_at, c.reopened) for c in
              (_case(loop, case_id), _case(loop, revisit.id))}
    expected = [(c.channel, *rest) for c, (_, *rest) in before.items()]
    # As a database from before the facts existed would be:
    loop.session.execute(delete(Answer))
    loop.session.execute(update(Case).values(channel=None, first_response_at=None,
                                             resolved_at=None, reopened=0))
    loop.session.commit()
    result = loop.app.test_cli_runner().invoke(args=["metrics", "rebuild", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "Rebuilt the facts of" in result.output
    loop.session.expire_all()
    again = [(c.channel, c.first_response_at, c.resolved_at, c.reopened)
             for c in (_case(loop, case_id), _case(loop, revisit.id))]
    assert again == expected
    rows = {a.field: (a.value, a.answered_at, a.channel) for a in loop.session.execute(
        select(Answer).where(Answer.case_id == revisit.id)).scalars()}
    assert rows == {"csat": (2, answered, "email"), "nps": (4, answered, "email")}


def test_action_rows_remember_the_day_they_were_done(loop: Loop) -> None:
    from caseloop.facts import ActionRow
    from caseloop.metrics import Filters
    from caseloop.metrics.operations import improvement

    from .test_improvement_loop import ACTIONS, _approved, _people

    quality, manager = _people(loop)
    case_id = _approved(loop, quality, manager)

    def rows() -> list[tuple[int, str | None, Any, Any]]:
        loop.session.expire_all()
        return [(r.row, r.status, r.due, r.done_on) for r in loop.session.execute(
            select(ActionRow).where(ActionRow.case_id == case_id).order_by(ActionRow.row)
        ).scalars()]

    assert rows() == [(0, "planned", dt.date(2026, 11, 22), None),
                      (1, "in_progress", dt.date(2026, 12, 10), None)]
    done = [dict(r) for r in ACTIONS]
    done[0]["status"] = "done"
    loop.cases().update(case_id, {"actions": done}, quality)
    loop.session.commit()
    loop.clock.advance(days=3)
    done[1]["due"] = "2026-12-01"
    loop.cases().update(case_id, {"actions": done}, quality)
    loop.session.commit()
    assert rows() == [(0, "done", dt.date(2026, 11, 22), dt.date(2026, 11, 20)),
                      (1, "in_progress", dt.date(2026, 12, 1), None)]
    figures = improvement(loop.session, Filters(end=dt.date(2026, 12, 31), zone="UTC",
                                                start=dt.date(2026, 11, 1),
                                                workflow="improvement_plan"))
    assert (figures["actions_on_time"]["value"], figures["actions_on_time"]["n"]) == (50, 2)
    assert figures["plans_effective"]["n"] == 0  # not checked yet


def test_the_hourly_rollup_follows_every_answer_and_correction(loop: Loop) -> None:
    from sqlalchemy import delete

    from caseloop import facts, rollup
    from caseloop.rollup import AnswerHour

    def hours() -> list[tuple[Any, ...]]:
        loop.session.expire_all()
        return sorted((h.hour, h.metric, h.report, h.workflow, h.parent_workflow, h.n,
                       h.nine_up, h.six_down, h.total, h.total_sq, h.top2, h.agree)
                      for h in loop.session.execute(select(AnswerHour)).scalars())

    case_id, revisit = _reached(loop)
    loop.fire(revisit.id, "complete_survey", {"csat": 4, "nps": 9, "issue_resolved": True})
    kept = hours()
    assert [(m, n, nine, total) for _, m, _, _, _, n, nine, _, total, *_ in kept] == [
        ("csat", 1, 0, 4), ("nps", 1, 1, 9)]
    loop.session.execute(delete(AnswerHour))
    rollup.rebuild(loop.session)  # the same sums computed from the answers at once
    loop.session.commit()
    assert hours() == kept
    # A corrected score leaves its hour's sums; its new hour gets it.
    loop.clock.advance(hours=2)
    case = loop.get(revisit.id)
    before = dict(case.data)
    case.data = {**case.data, "nps": 3}
    facts.answers(loop.session, loop.cases().workflow_of(case), case, before, loop.clock.now)
    loop.session.commit()
    after = hours()
    assert sum(h[5] for h in after if h[1] == "nps") == 1
    assert [h[6:9] for h in after if h[1] == "nps" and h[5]] == [(0, 1, 3)]


def test_the_reach_rate_from_hourly_counts_equals_the_one_from_cases(loop: Loop) -> None:
    from caseloop.metrics import Filters
    from caseloop.metrics.satisfaction import satisfaction

    case_id, revisit = _reached(loop, {**COMPLAINT, "channel": "email"})
    day = loop.clock.now.date()
    whole = Filters(end=day, zone="UTC", start=day - dt.timedelta(days=10),
                    workflow="complaint")
    by_hours = satisfaction(loop.session, whole)["groups"][0]["metrics"]["reach_rate"]
    by_cases = satisfaction(loop.session, dataclasses.replace(whole, channel="email"))
    assert by_hours["counts"] == {"reached": 1, "total": 1} and by_hours["value"] == 100
    assert by_cases["groups"][0]["metrics"]["reach_rate"] == by_hours
