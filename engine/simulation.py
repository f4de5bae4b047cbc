"""Simulate a workflow: a scenario's steps against a fake clock, and the trace of what happened.

:func:`simulate` runs a scenario (:mod:`caseloop.scenario`) with the real engine, job
handlers and SLA clocks on a throw-away SQLite database in a temporary folder, removed
afterwards. The clock moves only when the scenario says so; then it stops at each job and
SLA moment due on the way and the worker runs until nothing more is due, so a timer or an
escalation shows in the trace when it happens. Nothing leaves the process: SMTP is off
(mail goes to the mail log) and jobs of any kind that could reach outside (webhooks, CRM
pushes, a plugin's) are recorded as not sent. :mod:`caseloop.cli.simulate` prints the trace.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import surveys
from .cases import Actor, Cases
from .errors import CaseError
from .handlers import builtin
from .hints import suggest
from .jobs import Context, Executor, Handler
from .models import Case, Job, Team, User
from .scenario import REFERENCE, Scenario, ScenarioError, Step, read_scenario
from .spec.schema import CHANNELS
from .trace import Happening, Tracer, happening, job_facts
from .users import actor_for, add_user

__all__ = ["Happening", "Result", "ScenarioError", "SimulationError", "simulate"]

#: Job kinds that reach outside Caseloop (with SMTP off, 'notify' only writes the inbox
#: and the mail log). These, and any kind without a built-in handler (a plugin's), are
#: recorded as not sent; every other kind runs as in the service.
OUTSIDE = frozenset({"webhook", "crm"})
#: More rounds of work than this at one moment, or moments in one wait: a timer loop.
MAX_ROUNDS = 10_000


class SimulationError(Exception):
    """The simulation cannot start (an unknown workflow, broken definitions)."""


@dataclass
class Result:
    scenario: Scenario
    trace: list[Happening]
    #: Every case at the end: reference, workflow, state, assignee, team, priority, …
    cases: list[dict[str, Any]]
    #: Jobs still waiting when the scenario ended.
    pending: list[Happening]
    end: dt.datetime
    #: ``path:line:col: message`` of the step that failed, or None.
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class Clock:
    """The fake clock: an aware UTC datetime that moves only when told."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class _Handlers(dict[str, Handler]):
    def get(self, kind: str, default: Any = None) -> Handler:
        return super().get(kind, _not_sent)


def handlers() -> dict[str, Handler]:
    """The built-in handlers, with those that reach outside replaced by a recorder."""
    out = _Handlers({kind: _not_sent if kind in OUTSIDE else handler
                     for kind, handler in builtin().items()})
    if "notify" in out:
        out["notify"] = _inside_only(out["notify"])
    return out


def _inside_only(notify: Handler) -> Handler:
    """A plugin's notification channel reaches outside (a pager, a chat): recorded, not
    sent; the built-in ones write the inbox and the mail log as in the service."""
    def handle(ctx: Context) -> str | None:
        channel = str(ctx.payload.get("channel") or "inbox")
        if channel not in CHANNELS:
            return f"not sent (simulation): {channel}"
        return notify(ctx)
    return handle


def _not_sent(ctx: Context) -> str:
    what = ctx.payload.get("url") or ctx.payload.get("push") or ""
    return "not sent (simulation)" + (f": {what}" if what else "")


def simulate(workflow: str, path: str, *, config: Mapping[str, Any] | None = None,
             lang: str = "en") -> Result:
    """Run the scenario at ``path`` against ``workflow``. ``config`` is the calling app's:
    its ``CASELOOP_*`` settings (definitions, phone region, …) apply, except the
    database, the secret and SMTP. Raises :class:`ScenarioError` for a scenario that
    cannot run, :class:`SimulationError` when the definitions cannot be used."""
    from .app import create_app
    from .extension import state
    from .migrations import upgrade

    folder = tempfile.mkdtemp(prefix="caseloop-simulate-")
    # A failing job is a line of the trace, not a logged traceback.
    logger = logging.getLogger("caseloop")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        settings = {k: v for k, v in (config or {}).items() if k.startswith("CASELOOP_")}
        app = create_app({**settings, "CASELOOP_DATABASE_URL": f"sqlite:///{folder}/sim.db",
                          "CASELOOP_SECRET_KEY": secrets.token_hex(16),
                          "CASELOOP_SMTP_URL": ""})
        app.instance_path = folder
        with app.app_context():
            st = state()
            try:
                if st.load_error is not None:
                    first = next(p for p in st.load_error.problems if p.is_error)
                    raise SimulationError(f"the definitions have errors, e.g. "
                                          f"{first.format().splitlines()[0]}; run "
                                          "'caseloop check'")
                known = st.registry.current.workflows
                if workflow not in known:
                    raise SimulationError(
                        f"unknown workflow '{workflow}'{suggest(workflow, known)}; "
                        f"loaded: {', '.join(sorted(known)) or 'none'}")
                see_all = list(app.config["CASELOOP_SEE_ALL_ROLES"])
                scenario = read_scenario(path, st.registry.current, workflow,
                                         roles=frozenset(see_all))
                upgrade(st.db.engine)
                with Session(st.db.engine) as session:
                    st.registry.record(session)
                    session.commit()
                clock = Clock(scenario.start)
                executor = Executor(st.db.engine, st.registry, handlers(),
                                    settings=app.config, clock=clock, jitter=lambda: 0.5,
                                    region=app.config["CASELOOP_PHONE_REGION"])
                return _Run(scenario, executor, clock, lang, see_all).run()
            finally:
                st.db.session.remove()
                st.db.engine.dispose()
    finally:
        logger.setLevel(level)
        shutil.rmtree(folder, ignore_errors=True)


class _Failed(Exception):
    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


class _Run:
    def __init__(self, scenario: Scenario, executor: Executor, clock: Clock, lang: str,
                 see_all: list[str]) -> None:
        self.s, self.executor, self.clock, self.lang = scenario, executor, clock, lang
        self.engine, self.see_all = executor.engine, see_all
        self.actors: dict[str, Actor] = {}
        self.main: int | None = None
        self.path: tuple[str | int, ...] = ("steps",)
        self.tracer = Tracer(self.engine, executor.registry, clock)
        # Shared with the tracer, which names people and teams in its lines.
        self.users, self.teams = self.tracer.users, self.tracer.teams

    def run(self) -> Result:
        self.people()
        failure = None
        try:
            for step in self.s.steps:
                self.path = step.path
                getattr(self, f"do_{step.do}")(step)
        except _Failed as exc:
            failure = f"{self.s.where(exc.path)}: {exc}"
        return self.result(failure)

    def people(self) -> None:
        with Session(self.engine) as session:
            for p in self.s.people:
                user = add_user(session, p.name, roles=p.roles, teams=p.teams,
                                locale=p.lang or self.lang)
                self.actors[p.name] = actor_for(session, user, sees_all_roles=self.see_all)
            session.commit()
            self.users.update({i: n for i, n in session.execute(select(User.id, User.name))})
            self.teams.update({i: n for i, n in session.execute(select(Team.id, Team.name))})

    # -- steps -----------------------------------------------------------------------------
    def do_note(self, step: Step) -> None:
        self.tracer.add(None, "step:note", text=step.arg)

    def do_create(self, step: Step) -> None:
        actor = self.actor(step)
        with Session(self.engine) as session:
            try:
                case = self.unit(session).create(self.s.workflow, step.data, actor)
                session.commit()
            except CaseError as exc:
                session.rollback()
                return self.refused(step, actor, "create", exc, None)
            self.main = case.id
        self.succeeded(step, "create")

    def do_fire(self, step: Step) -> None:
        actor = self.actor(step)
        with Session(self.engine) as session:
            case = self.find(session, step)
            try:
                self.unit(session).fire(case.id, step.arg, step.data, actor)
                session.commit()
            except CaseError as exc:
                session.rollback()
                return self.refused(step, actor, step.arg, exc, case)
        self.succeeded(step, step.arg)

    def do_update(self, step: Step) -> None:
        actor = self.actor(step)
        with Session(self.engine) as session:
            case = self.find(session, step)
            try:
                self.unit(session).update(case.id, step.data, actor)
                session.commit()
            except CaseError as exc:
                session.rollback()
                return self.refused(step, actor, "update", exc, case)
        self.succeeded(step, "update")

    def do_answer(self, step: Step) -> None:
        """The customer answers the case's newest survey link, as through its page."""
        customer = Actor("customer")
        with Session(self.engine) as session:
            case = self.find(session, step)
            token = session.execute(select(Job.payload).where(
                Job.case_id == case.id, Job.kind == "notify").order_by(Job.id.desc())).scalars()
            found = next((p["survey"] for p in token if (p or {}).get("survey")), None)
            if found is None:
                raise _Failed(f"{case.reference} has no survey link to answer", step.path)
            try:
                surveys.answer(self.unit(session), found, dict(step.data), self.lang)
                session.commit()
            except CaseError as exc:
                session.rollback()
                return self.refused(step, customer, "answer", exc, case)
        self.succeeded(step, "answer")

    def do_wait(self, step: Step) -> None:
        self.advance(step.arg)

    do_until = do_wait

    def do_expect(self, step: Step) -> None:
        with Session(self.engine) as session:
            case = self.find(session, step)
            found = {"state": case.state, "assignee": self.users.get(case.assignee_id or 0),
                     "team": self.teams.get(case.team_id or 0), "priority": case.priority,
                     "breached": case.sla_breached}
            wrong = []
            for key, want in step.checks.items():
                pairs = want.items() if key == "fields" else [(key, want)]
                for name, value in pairs:
                    got = case.data.get(name) if key == "fields" else found[name]
                    if not (got == value or got is not None and str(got) == str(value)):
                        wrong.append(f"{name} {_show(value)}, found {_show(got)}")
            self.tracer.add(case, "step:expect", checks=dict(step.checks), wrong=wrong)
            if wrong:
                raise _Failed(f"{case.reference}: expected " + "; ".join(wrong), step.path)

    def refused(self, step: Step, actor: Actor, what: str, exc: CaseError,
                case: Case | None) -> None:
        self.tracer.add(case, "step:refused", trigger=what, by=actor.name, reason=exc.message,
                 fields=dict(exc.fields), expected=step.refused)
        if not step.refused:
            why = exc.message + "".join(f"; {f}: {' '.join(m)}" for f, m in exc.fields.items())
            raise _Failed(f"'{what}' was refused: {why} (if that is what you expect, add "
                          "'refused: true' to the step)", step.path)

    def succeeded(self, step: Step, what: str) -> None:
        self.tracer.collect()
        self.work()  # what the step made due now (notifications, linked cases)
        if step.refused:
            raise _Failed(f"expected '{what}' to be refused, but it was done", step.path)

    def actor(self, step: Step) -> Actor:
        return self.actors[step.person or self.s.people[0].name]

    def unit(self, session: Session) -> Cases:
        return Cases(session, self.executor.registry, self.executor.region, clock=self.clock)

    def find(self, session: Session, step: Step) -> Case:
        """``main``, the newest case of a workflow (open ones first), or a reference."""
        found: Case | None = None
        if step.case == "main":
            found = session.get(Case, self.main) if self.main is not None else None
        elif REFERENCE.match(step.case):
            found = next((c for c in session.execute(select(Case)).scalars()
                          if c.reference == step.case), None)
        else:
            found = session.execute(select(Case).where(Case.workflow == step.case).order_by(
                Case.closed, Case.id.desc()).limit(1)).scalar_one_or_none()
        if found is None:
            when = self.clock.now.astimezone(self.s.zone).strftime("%Y-%m-%d %H:%M")
            raise _Failed(f"there is no {step.case} case yet (at {when})", step.path)
        return found

    # -- time and the worker -------------------------------------------------------------------
    def advance(self, target: dt.datetime) -> None:
        """Move to ``target``, stopping at each job and SLA moment due on the way."""
        for _ in range(MAX_ROUNDS):
            with Session(self.engine) as session:
                moments = [session.scalar(select(func.min(Job.run_at)).where(
                               Job.status == "pending")),
                           session.scalar(select(func.min(Case.sla_next_at)).where(
                               Case.closed.is_(False)))]
            due = min((m for m in moments if m is not None), default=None)
            if due is None or due > target:
                self.clock.now = max(self.clock.now, target)
                return
            self.clock.now = max(self.clock.now, due)
            self.work()
        raise _Failed(f"stopped after {MAX_ROUNDS} rounds of jobs: do timers set each "
                      "other in a loop?", self.path)

    def work(self) -> None:
        """The worker's rounds until nothing is due now, telling after each job."""
        for _ in range(MAX_ROUNDS):
            swept = self.executor.sweep()
            if swept:
                self.tracer.collect()
            ids = self.executor.claim(1)
            for job_id in ids:
                self.executor.run(job_id)
                self.tracer.collect()
            if not swept and not ids:
                return
        raise _Failed(f"stopped after {MAX_ROUNDS} jobs at one moment: do jobs start "
                      "each other in a loop?", self.path)

    def result(self, failure: str | None) -> Result:
        with Session(self.engine) as session:
            cases = list(session.execute(select(Case).order_by(Case.id)).scalars())
            by_id = {c.id: c for c in cases}
            summary = [{"reference": c.reference, "workflow": c.workflow, "state": c.state,
                        "closed": c.closed, "assignee": self.users.get(c.assignee_id or 0),
                        "team": self.teams.get(c.team_id or 0), "priority": c.priority,
                        "due": c.due_at, "breached": c.sla_breached} for c in cases]
            pending = [happening(j.run_at, by_id.get(j.case_id or 0), f"scheduled:{j.kind}",
                                 job_facts(j))
                       for j in session.execute(select(Job).where(Job.status == "pending")
                                                .order_by(Job.run_at, Job.id)).scalars()]
        return Result(self.s, self.tracer.trace, summary, pending, self.clock.now, failure)


def _show(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'" if isinstance(value, str) else str(value)
