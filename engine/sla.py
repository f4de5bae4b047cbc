"""SLA clocks on cases: deadlines from the workflow's policy, pauses, breaches,
warnings and escalations.

The clock lives on the case row, not in timers: ``sla`` holds each target's
deadline and progress, ``due_at`` / ``sla_breached`` are what lists and
dashboards query, ``paused_at`` marks a stopped clock, and ``sla_next_at`` is
the next moment (a warning, a breach, an escalation) at which the worker's
:func:`sweep` acts. Starting, meeting and pausing targets happen in the
transaction that creates or moves the case, in the same UPDATE.

A target's ``within`` counts on the policy's calendar (see
:mod:`caseloop.worktime`); ``warn_before`` and an escalation's ``after`` are
plain elapsed time around the deadline (a warning 30 minutes before is meant
as 30 minutes, whatever the office hours).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import worktime
from .models import Case, Event, Job, append, team_named
from .registry import Registry
from .spec.model import Calendar, Escalation, Policy, Target, Workflow

log = logging.getLogger("caseloop.sla")
ALWAYS = "24x7"


def begin(wf: Workflow, case: Case, scope: Mapping[str, Any],
          calendars: Mapping[str, Calendar], now: dt.datetime) -> None:
    """Choose the policy (the first whose ``when`` holds) and start its targets."""
    if wf.sla is None:
        return
    policy = next((p for p in wf.sla.policies if p.when is None or p.when.test(scope)), None)
    if policy is None:
        return
    cal = _calendar(policy, calendars)
    targets: dict[str, Any] = {}
    for t in policy.targets:
        within = t.for_priority(case.priority)
        if within is None:
            continue
        try:
            due = worktime.add(cal, now, within)
        except worktime.NoWorkingTime as exc:  # holidays on every working day for years
            log.warning("case of '%s' gets no '%s' deadline: %s", wf.name, t.name, exc)
            continue
        targets[t.name] = {"due": _iso(due), "met": None, "breached": False, "warned": False,
                           "level": 0, "paused_s": 0}
    case.sla_policy, case.sla = policy.name, targets
    entered(wf, case, calendars, now)


def entered(wf: Workflow, case: Case, calendars: Mapping[str, Calendar],
            now: dt.datetime) -> None:
    """The case entered its current state: meet targets, pause or resume the clock."""
    policy = _policy(wf, case)
    if policy is None or wf.sla is None:
        return
    cal = _calendar(policy, calendars)
    sla = {name: dict(rec) for name, rec in (case.sla or {}).items()}
    for t in policy.targets:
        rec = sla.get(t.name)
        if rec is not None and rec["met"] is None and case.state in t.until:
            rec["met"] = _iso(now)
    paused = wf.states[case.state].category in wf.sla.pause
    if paused and case.paused_at is None:
        case.paused_at = now
    elif not paused and case.paused_at is not None:
        for name, rec in sla.items():
            if rec["met"] is not None:
                continue
            # What was left when the clock stopped is what is left now.
            due = _dt(rec["due"])
            try:
                if due > case.paused_at:
                    left = worktime.elapsed(cal, case.paused_at, due)
                    rec["due"] = _iso(worktime.add(
                        cal, now, worktime.WorkDuration(seconds=int(left.total_seconds()))))
                rec["paused_s"] = rec.get("paused_s", 0) + int(
                    worktime.elapsed(cal, case.paused_at, now).total_seconds())
            except worktime.NoWorkingTime as exc:  # keep the old deadline: never a 500
                log.warning("case %s keeps its '%s' deadline: %s", case.id, name, exc)
        case.paused_at = None
    case.sla = sla
    _summarise(policy, case)


def sweep(session: Session, registry: Registry, now: dt.datetime, *, limit: int = 100) -> int:
    """Act on every case whose next SLA moment has come; returns how many."""
    stmt = (select(Case).where(Case.sla_next_at <= now, Case.closed.is_(False))
            .order_by(Case.sla_next_at, Case.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=Case)
    done = 0
    for case in list(session.execute(stmt).scalars()):
        wf = registry.pinned(case.workflow, case.definition_version, session)
        policy = _policy(wf, case)
        if policy is None:
            case.sla_next_at = None
            continue
        cal = _calendar(policy, registry.current.calendars)
        _act(session, wf, policy, case, now, cal.timezone if cal is not None else "UTC")
        done += 1
    try:
        session.commit()
    except StaleDataError:  # a case moved meanwhile: its next sweep sees the new state
        session.rollback()
        return 0
    return done


# -- acting ------------------------------------------------------------------------------
def _act(session: Session, wf: Workflow, policy: Policy, case: Case, now: dt.datetime,
         zone: str) -> None:
    sla = {name: dict(rec) for name, rec in (case.sla or {}).items()}
    for t in policy.targets:
        rec = sla.get(t.name)
        while rec is not None:
            moment, what = _next(t, rec)
            if moment is None or moment > now:
                break
            if what == "warn":
                rec["warned"] = True
                _event(session, case, now, {"sla": t.name, "warned": rec["due"]})
                _notify(session, case, now, ["assignee", "team"], t,
                        "is due at {due}", "将于 {due} 到期", rec, zone)
            elif what == "breach":
                rec["breached"] = case.sla_breached = True
                _event(session, case, now, {"sla": t.name, "breached": rec["due"]})
            else:
                _escalate(session, wf, case, t, t.escalate[rec["level"]], rec, now, zone)
                rec["level"] += 1
    case.sla = sla
    _summarise(policy, case)


def _escalate(session: Session, wf: Workflow, case: Case, t: Target, esc: Escalation,
              rec: dict[str, Any], now: dt.datetime, zone: str) -> None:
    did: dict[str, Any] = {"sla": t.name, "escalation": rec["level"] + 1}
    if esc.notify:
        _notify(session, case, now, list(esc.notify), t, "was due at {due} and is overdue",
                "已于 {due} 超时", rec, zone)
        did["notify"] = list(esc.notify)
    if esc.raise_priority and wf.priority_field:
        field = wf.form.field(wf.priority_field)
        order = list(field.choice_values()) if field is not None else []
        if case.priority in order and order.index(case.priority) > 0:
            higher = order[order.index(case.priority) - 1]
            did["priority"] = [case.priority, higher]
            case.data = {**case.data, wf.priority_field: higher}
            case.priority = higher
    if esc.assign is not None:
        if esc.assign.team:
            team = team_named(session, esc.assign.team)
            if team is not None:
                case.team_id = did["team"] = team.id
        if esc.assign.role:
            append(session, Job, kind="assign", case_id=case.id, run_at=now, created_at=now,
                   payload={"role": esc.assign.role})
            did["role"] = esc.assign.role
    if esc.fire:
        append(session, Job, kind="fire", case_id=case.id, run_at=now, created_at=now,
               payload={"case": "self", "trigger": esc.fire})
        did["fire"] = esc.fire
    _event(session, case, now, did)


def _notify(session: Session, case: Case, now: dt.datetime, to: list[str], t: Target,
            en: str, zh: str, rec: dict[str, Any], zone: str) -> None:
    # The deadline on the clock of the office that works it, named, not in UTC.
    due = f"{_dt(rec['due']).astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"
    append(session, Job, kind="notify", case_id=case.id, run_at=now, created_at=now, payload={
        "to": to, "channel": "inbox", "state": case.state, "message": {
            "en": f"SLA '{t.label.get('en')}' of {case.reference} " + en.format(due=due),
            "zh": f"{case.reference} 的时限「{t.label.get('zh')}」" + zh.format(due=due)}})


def _event(session: Session, case: Case, now: dt.datetime, payload: dict[str, Any]) -> None:
    append(session, Event, case_id=case.id, kind="sla", actor_name="system", at=now,
           payload=payload)


# -- bookkeeping -------------------------------------------------------------------------
def _next(t: Target, rec: Mapping[str, Any]) -> tuple[dt.datetime | None, str]:
    """The target's next moment and what happens then."""
    if rec["met"] is not None:
        return None, ""
    due = _dt(rec["due"])
    if not rec["warned"] and not rec["breached"] and t.warn_before:
        return due - t.warn_before, "warn"
    if not rec["breached"]:
        return due, "breach"
    if rec["level"] < len(t.escalate):
        return due + t.escalate[rec["level"]].after, "escalate"
    return None, ""


def _summarise(policy: Policy, case: Case) -> None:
    sla = case.sla or {}
    unmet = [_dt(r["due"]) for r in sla.values() if r["met"] is None]
    case.due_at = min(unmet) if unmet else None
    case.sla_breached = any(r["breached"] for r in sla.values())
    moments = [m for t in policy.targets if t.name in sla
               for m in [_next(t, sla[t.name])[0]] if m is not None]
    case.sla_next_at = None if case.closed or case.paused_at or not moments else min(moments)


def _policy(wf: Workflow, case: Case) -> Policy | None:
    if wf.sla is None or not case.sla_policy:
        return None
    return next((p for p in wf.sla.policies if p.name == case.sla_policy), None)


def _calendar(policy: Policy, calendars: Mapping[str, Calendar]) -> Calendar | None:
    # An unknown name cannot pass 'caseloop check'; 24x7 is the built-in.
    return None if policy.calendar == ALWAYS else calendars.get(policy.calendar)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _dt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
