"""Durable jobs: claim due rows with a lease, run their handler, retry or dead-letter.

Free of Flask. Jobs are rows written in the transaction that causes them
(:mod:`caseloop.actions`); an :class:`Executor` claims the due ones in one
statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the statement
itself is atomic under the database's single writer), so several workers never
take the same job. Claiming counts an attempt and sets a lease: a worker killed
mid-job loses nothing, another takes the job when the lease has expired.

A handler runs in a session of its own, and the job is marked done *in that
same transaction*, only while this worker still holds the lease. So what a
handler changes in Caseloop's own tables (fire a transition, start a case)
happens exactly once, even when a slow worker lost its lease to another.
Handlers reaching outside (mail, webhooks, CRMs) are at-least-once and send
the job's dedupe key for the receiver to deduplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import signal
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pluggy
from sqlalchemy import Engine, Table, and_, or_, select, update
from sqlalchemy.orm import Session

from . import sla
from .cases import Actor, Cases
from .models import Case, DbSession, Job, append, utcnow
from .registry import Registry

if TYPE_CHECKING:
    from .crm.connections import Connections

log = logging.getLogger("caseloop.jobs")
JOBS = cast(Table, Job.__table__)


class Retry(Exception):
    """Try again later: after ``after`` when given (a CRM's Retry-After), else
    after the executor's exponential backoff."""

    def __init__(self, message: str, *, after: dt.timedelta | None = None) -> None:
        super().__init__(message)
        self.after = after


class Fail(Exception):
    """Give up now: the job cannot succeed however often it is tried (dead letter)."""


class Skip(Exception):
    """Nothing to do any more (the case left the state that set the timer): the job
    ends as ``cancelled`` with this reason, and what the handler wrote is kept."""


class TimeLimit(Exception):
    """The handler ran longer than the executor's time limit."""


@dataclass
class Context:
    """What a handler gets: its job, the job's case, and a system unit of work,
    all on one session whose transaction also marks the job done."""

    session: Session
    job: Job
    case: Case | None
    cases: Cases
    now: dt.datetime
    settings: Mapping[str, Any]
    #: The app's plugin manager (notification channels, listeners), when it has one.
    plugins: pluggy.PluginManager | None = None
    #: The app's CRM connections, when any are configured.
    crm: Connections | None = None

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload or {}

    @property
    def system(self) -> Actor:
        return Actor.system()


Handler = Callable[[Context], "str | None"]


#: A job's life: pending -> running -> done, or back to pending (retry), or dead
#: (dead letter, for an operator) or cancelled (skipped or discarded).
STATUSES = ("pending", "running", "done", "dead", "cancelled")


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Executor:
    engine: Engine
    registry: Registry
    handlers: Mapping[str, Handler]
    #: Settings handlers may read (SMTP, webhooks); the app's config when run by Flask.
    settings: Mapping[str, Any] = field(default_factory=dict)
    worker_id: str = field(default_factory=_worker_id)
    clock: Callable[[], dt.datetime] = utcnow
    #: How long a claim holds; must exceed ``time_limit`` (another worker retakes it after).
    lease: dt.timedelta = dt.timedelta(minutes=5)
    #: Longest a handler may run (enforced in a process's main thread; the lease elsewhere).
    time_limit: dt.timedelta = dt.timedelta(minutes=1)
    batch: int = 20
    backoff_base: dt.timedelta = dt.timedelta(seconds=30)
    backoff_cap: dt.timedelta = dt.timedelta(hours=6)
    region: str = "CN"
    zone: str = "UTC"
    jitter: Callable[[], float] = random.random
    plugins: pluggy.PluginManager | None = None
    crm: Connections | None = None
    #: More periodic work for :meth:`sweep` (CRM polls, plugin event listeners):
    #: each gets a session and the time, adds jobs, and says how many.
    tickers: Sequence[Callable[[Session, dt.datetime], int]] = ()

    # -- claiming ---------------------------------------------------------------------
    def claim(self, limit: int | None = None) -> list[int]:
        """Lease up to ``limit`` due jobs (pending and due, or running with an expired
        lease) to this worker, earliest first; returns their ids."""
        now = self.clock()
        due = or_(and_(JOBS.c.status == "pending", JOBS.c.run_at <= now),
                  and_(JOBS.c.status == "running", JOBS.c.lease_until < now))
        pick = select(JOBS.c.id).where(due).order_by(JOBS.c.run_at, JOBS.c.id)
        pick = pick.limit(limit or self.batch)
        if self.engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (update(JOBS).where(JOBS.c.id.in_(pick.scalar_subquery()))
                .values(status="running", leased_by=self.worker_id,
                        lease_until=now + self.lease, attempts=JOBS.c.attempts + 1)
                .returning(JOBS.c.id, JOBS.c.run_at))
        with self.engine.begin() as conn:
            claimed = conn.execute(stmt).all()
        # RETURNING keeps no order: run the earliest due first, as picked.
        return [row[0] for row in sorted(claimed, key=lambda row: (row[1], row[0]))]

    def release(self, ids: list[int]) -> None:
        """Give back jobs claimed but not started (a worker stopping): they run next
        time without counting the attempt."""
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(update(JOBS).where(
                JOBS.c.id.in_(ids), JOBS.c.leased_by == self.worker_id,
                JOBS.c.status == "running").values(
                status="pending", leased_by=None, lease_until=None,
                attempts=JOBS.c.attempts - 1))

    def sweep(self) -> int:
        """Act on the SLA moments (warnings, breaches, escalations) that have come."""
        with Session(self.engine) as session:
            # A definition published meanwhile (by the designer, in any process) is in
            # effect for the cases and revisits this worker starts from now on.
            self.registry.refresh(session)
            done = sla.sweep(session, self.registry, self.clock())
        for ticker in self.tickers:
            with Session(self.engine) as session:
                try:
                    done += ticker(session, self.clock())
                    session.commit()
                except Exception:  # noqa: BLE001 - one ticker failing must not stop jobs
                    session.rollback()
                    log.exception("periodic %s failed; trying again next round",
                                  getattr(ticker, "__name__", ticker))
        return done

    # -- running ----------------------------------------------------------------------
    def run_due(self, limit: int | None = None) -> Counter[str]:
        """Claim a batch and run it; how many ended done, retry, dead, cancelled, lost."""
        return Counter(self.run(job_id) for job_id in self.claim(limit))

    def run(self, job_id: int) -> str:
        """Run one job this worker has claimed: ``done``, ``cancelled``, ``retry``,
        ``dead``, or ``lost`` (another worker holds it now)."""
        with Session(self.engine) as session:
            job = session.get(Job, job_id)
            if job is None or job.status != "running" or job.leased_by != self.worker_id:
                return "lost"
            if job.attempts > job.max_attempts:
                # Claimed again after its last attempt never finished (killed, hung).
                return self._failed(session, job_id, "gave up: the last attempt never "
                                    "finished (the worker stopped or hung)", None, True)
            handler = self.handlers.get(job.kind)
            if handler is None:
                return self._failed(session, job_id, f"no handler for jobs of kind "
                                    f"'{job.kind}'", None, True)
            now = self.clock()
            case = session.get(Case, job.case_id) if job.case_id is not None else None
            ctx = Context(session, job, case, Cases(session, self.registry, self.region,
                                                    clock=self.clock, zone=self.zone),
                          now, self.settings,
                          self.plugins, self.crm)
            try:
                with _time_limit(self.time_limit):
                    result, status = handler(ctx), "done"
            except Skip as exc:
                result, status = str(exc), "cancelled"
            except Retry as exc:
                return self._failed(session, job_id, str(exc), exc.after, False)
            except Fail as exc:
                return self._failed(session, job_id, str(exc), None, True)
            except Exception as exc:  # noqa: BLE001 - any handler error is a retry
                log.warning("job %s (%s) failed: %s", job_id, job.kind, exc, exc_info=True)
                return self._failed(session, job_id, f"{type(exc).__name__}: {exc}", None,
                                    False)
            ended = session.connection().execute(update(JOBS).where(
                JOBS.c.id == job_id, JOBS.c.leased_by == self.worker_id,
                JOBS.c.status == "running").values(
                status=status, finished_at=self.clock(), result=result, lease_until=None))
            if ended.rowcount != 1:
                session.rollback()  # our lease ran out and another worker took the job
                return "lost"
            session.commit()
            return status

    def backoff(self, attempts: int) -> dt.timedelta:
        """Exponential (base x 2^(attempts-1), capped) with equal jitter: half fixed,
        half random, so failed jobs of one burst do not return together."""
        full: dt.timedelta = min(self.backoff_cap,
                                 self.backoff_base * 2 ** min(max(0, attempts - 1), 32))
        return full / 2 + full / 2 * self.jitter()

    def _failed(self, session: Session, job_id: int, error: str,
                after: dt.timedelta | None, permanent: bool) -> str:
        session.rollback()  # nothing the handler did survives a failure
        with self.engine.begin() as conn:
            row = conn.execute(select(JOBS.c.attempts, JOBS.c.max_attempts).where(
                JOBS.c.id == job_id, JOBS.c.leased_by == self.worker_id,
                JOBS.c.status == "running")).one_or_none()
            if row is None:
                return "lost"
            attempts, most = row
            mine = and_(JOBS.c.id == job_id, JOBS.c.leased_by == self.worker_id)
            now = self.clock()
            if permanent or attempts >= most:
                conn.execute(update(JOBS).where(mine).values(
                    status="dead", finished_at=now, last_error=error[:4000], lease_until=None))
                log.error("job %s dead after %s attempts: %s", job_id, attempts, error)
                return "dead"
            delay = after if after is not None else self.backoff(attempts)
            conn.execute(update(JOBS).where(mine).values(
                status="pending", run_at=now + delay, last_error=error[:4000],
                leased_by=None, lease_until=None))
            return "retry"


@contextmanager
def _time_limit(limit: dt.timedelta) -> Iterator[None]:
    """Raise :class:`TimeLimit` in a handler that runs too long. Signals only reach
    a process's main thread; in other threads (the in-process worker of ``serve``)
    the lease is the backstop and handlers set timeouts on their own I/O."""
    seconds = limit.total_seconds()
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise TimeLimit(f"the handler ran longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def enqueue(session: DbSession, kind: str, *, run_at: dt.datetime | None = None,
            case_id: int | None = None, dedupe_key: str | None = None,
            max_attempts: int | None = None, **payload: Any) -> None:
    """Add a job in the caller's transaction (tests, plugins, the SLA sweep)."""
    values: dict[str, Any] = {"kind": kind, "case_id": case_id, "payload": payload,
                              "run_at": run_at or utcnow(), "dedupe_key": dedupe_key}
    if max_attempts is not None:
        values["max_attempts"] = max_attempts
    append(session, Job, **values)


def requeue(job: Job, now: dt.datetime) -> None:
    """A dead letter queued again, due now, with its attempts reset (an operator's retry)."""
    job.status, job.attempts, job.run_at, job.finished_at = "pending", 0, now, None
    job.lease_until = job.leased_by = None


def discard(job: Job, now: dt.datetime) -> None:
    """A dead letter given up for good: it stays listed as cancelled."""
    job.status, job.result, job.finished_at = "cancelled", "discarded by an operator", now
