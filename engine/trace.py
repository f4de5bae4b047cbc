"""The trace of a simulation: what happened in the database since the last look,
as :class:`Happening` rows, in order.

A :class:`Tracer` watches the tables the engine writes — history events, jobs (run,
skipped, retried, dead, set for later) and each case's SLA clock — and turns every new
thing into a happening; the simulation's own steps (refusals, expectations, notes) are
added in between. :mod:`caseloop.cli.simulate` puts them into words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from .models import Case, Event, Job, Notification
from .registry import Registry


@dataclass
class Happening:
    """One line of the trace. ``kind`` is ``event:<kind>`` (a history event),
    ``job:<kind>`` (a job that ran: ``facts["status"]`` done, cancelled, retry or
    dead), ``scheduled:<kind>`` (a job set for later), ``sla:<what>`` (deadline, met,
    warning, paused, resumed) or ``step:<what>`` (refused, expect, note)."""

    at: dt.datetime
    case: str
    workflow: str
    kind: str
    facts: dict[str, Any]


class Tracer:
    """Happenings since the last look; names of users and teams for the lines."""

    def __init__(self, engine: Engine, registry: Registry, clock: Callable[[], dt.datetime]
                 ) -> None:
        self.engine, self.registry, self.clock = engine, registry, clock
        self.trace: list[Happening] = []
        self.users: dict[int, str] = {}
        self.teams: dict[int, str] = {}
        # What was told so far: events by id, jobs' (status, attempts), each case's SLA
        # targets and whether its clock was paused.
        self.last_event = 0
        self.jobs: dict[int, tuple[str, int]] = {}
        self.cases: dict[int, tuple[dict[str, Any], bool]] = {}

    def add(self, case: Case | None, kind: str, **facts: Any) -> None:
        self.trace.append(happening(self.clock(), case, kind, facts))

    def collect(self) -> None:
        """What happened since the last look: jobs that ended, history events, SLA
        changes, then jobs set for later, in that order."""
        with Session(self.engine) as session:
            cases = {c.id: c for c in session.execute(select(Case).order_by(Case.id)).scalars()}
            later = []
            for job in session.execute(select(Job).order_by(Job.id)).scalars():
                seen, now = self.jobs.get(job.id), (job.status, job.attempts)
                if seen == now:
                    continue
                self.jobs[job.id] = now
                if job.status in ("done", "cancelled", "dead") or (
                        job.status == "pending" and job.attempts):
                    self.job(session, cases.get(job.case_id or 0), job)
                elif job.status == "pending" and seen is None and job.run_at > self.clock():
                    later.append(job)
            for event in session.execute(select(Event).where(
                    Event.id > self.last_event).order_by(Event.id)).scalars():
                self.last_event = event.id
                self.event(session, cases[event.case_id], event)
            for case in cases.values():
                self.sla(session, case)
            for job in later:
                self.add(cases.get(job.case_id or 0), f"scheduled:{job.kind}", **job_facts(job))

    def job(self, session: Session, case: Case | None, job: Job) -> None:
        facts = job_facts(job)
        if job.status == "pending":
            facts["status"] = "retry"
        if job.kind == "notify":
            facts["sent"] = [{"channel": n.channel, "status": n.status,
                              "to": self.users.get(n.user_id or 0) or n.address}
                             for n in session.execute(select(Notification).where(
                                 Notification.job_id == job.id).order_by(Notification.id)
                             ).scalars()]
        self.add(case, f"job:{job.kind}", **facts)

    def event(self, session: Session, case: Case, event: Event) -> None:
        payload = dict(event.payload or {})
        facts: dict[str, Any] = {"actor": event.actor_name, "trigger": event.trigger,
                                 "from": event.from_state, "to": event.to_state,
                                 "payload": payload}
        if event.kind == "created":
            parent = session.get(Case, case.parent_id) if case.parent_id else None
            facts.update(team=self.teams.get(case.team_id or 0), priority=case.priority,
                         assignee=self.users.get(case.assignee_id or 0),
                         parent=parent.reference if parent else None)
        if event.kind == "sla":
            facts["label"] = self.labels(session, case).get(str(payload.get("sla")))
            if isinstance(payload.get("team"), int):
                payload["team"] = self.teams.get(payload["team"], payload["team"])
        self.add(case, f"event:{event.kind}", **facts)

    def sla(self, session: Session, case: Case) -> None:
        """Deadlines set or moved, targets met, warnings, the clock paused or resumed."""
        targets, paused = dict(case.sla or {}), case.paused_at is not None
        before, was_paused = self.cases.get(case.id, ({}, False))
        self.cases[case.id] = (targets, paused)
        if targets == before and paused == was_paused:
            return
        labels = self.labels(session, case)
        if paused != was_paused:
            self.add(case, "sla:paused" if paused else "sla:resumed")
        for name, rec in targets.items():
            old = before.get(name)
            what = ("deadline" if old is None else "met" if rec["met"] and not old["met"]
                    else "deadline" if rec["due"] != old["due"] and not rec["met"] else None)
            facts = {"target": name, "label": labels.get(name), "due": _dt(rec["due"]),
                     "breached": bool(rec.get("breached"))}
            if what is not None:
                self.add(case, f"sla:{what}", moved=old is not None, **facts)
            if rec.get("warned") and not (old or {}).get("warned"):
                self.add(case, "sla:warning", **facts)

    def labels(self, session: Session, case: Case) -> dict[str, dict[str, str]]:
        wf = self.registry.pinned(case.workflow, case.definition_version, session)
        policy = next((p for p in wf.sla.policies if p.name == case.sla_policy),
                      None) if wf.sla is not None else None
        return {t.name: {"en": t.label.en, "zh": t.label.zh}
                for t in (policy.targets if policy else ())}


def happening(at: dt.datetime, case: Case | None, kind: str, facts: dict[str, Any]
               ) -> Happening:
    return Happening(at, case.reference if case else "", case.workflow if case else "", kind,
                     facts)


def job_facts(job: Job) -> dict[str, Any]:
    return {"job": job.kind, "status": job.status, "result": job.result,
            "error": job.last_error, "attempts": job.attempts,
            "max_attempts": job.max_attempts, "run_at": job.run_at,
            "payload": dict(job.payload or {})}


def _dt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
