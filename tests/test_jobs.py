"""Durable jobs (caseloop.jobs) and the worker loop (caseloop.worker), on SQLite and PostgreSQL.

Executors get small handlers of the test's own (they record their calls, write an
event, raise Retry/Fail/Skip, loop) and a fake clock, so nothing here sleeps or
depends on the time of day. Worker A and worker B are two executors with their own
``worker_id`` on one database, as two processes would be.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caseloop.extension import state
from caseloop.jobs import JOBS, Context, Executor, Fail, Handler, Retry, Skip, enqueue
from caseloop.models import Event, append
from caseloop.registry import Registry
from caseloop.worker import Worker

from .test_cases import NOW, build_app, dispose, person
from .test_machine import FILES

LEASE = dt.timedelta(minutes=5)


class Clock:
    """The executors' clock: stands still until the test moves it."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@dataclass
class Env:
    """An app with one case (of the 'quiet' workflow: it writes no jobs of its own)."""

    app: Flask
    engine: Engine
    registry: Registry
    case_id: int
    clock: Clock = field(default_factory=Clock)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def executor(self, handlers: dict[str, Handler], worker_id: str = "a",
                 **options: Any) -> Executor:
        options.setdefault("jitter", lambda: 0.0)
        return Executor(self.engine, self.registry, handlers, worker_id=worker_id,
                        clock=self.clock, lease=LEASE, **options)

    def enqueue(self, kind: str = "test", *, run_at: dt.datetime | None = None,
                case: bool = True, **options: Any) -> int:
        """One job, committed; its id."""
        with Session(self.engine) as session:
            enqueue(session, kind, run_at=run_at or self.clock(),
                    case_id=self.case_id if case else None, **options)
            session.commit()
            return int(session.execute(select(func.max(JOBS.c.id))).scalar_one())

    def job(self, job_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(JOBS).where(JOBS.c.id == job_id)).one()._mapping)

    def events(self) -> list[dict[str, Any]]:
        """The notes handlers left on the case (see :func:`note`)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(Event.payload).where(
                Event.case_id == self.case_id, Event.kind == "action").order_by(Event.id)
            ).scalars().all())


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    app = build_app(request.param, tmp_path, FILES)
    with app.app_context():
        st = state()
        agent = person(app, "ann", ["agent"], ["care"])
        case_id = st.cases().create("quiet", {}, agent).id
        st.db.session.commit()
        st.db.session.remove()
        engine, registry = st.db.engine, st.registry
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(JOBS)).scalar_one() == 0
    yield Env(app, engine, registry, case_id)
    dispose(app)


def note(ctx: Context, text_: str) -> None:
    """What a handler writes in Caseloop's own tables: a note on the job's case."""
    assert ctx.case is not None
    append(ctx.session, Event, case_id=ctx.case.id, kind="action", actor_name="system",
           at=ctx.now, payload={"note": text_, "job": ctx.job.id})


# -- claiming ------------------------------------------------------------------------------


def test_claim_leases_due_pending_jobs_earliest_first(env: Env) -> None:
    late = env.enqueue(run_at=NOW - dt.timedelta(minutes=1))
    early = env.enqueue(run_at=NOW - dt.timedelta(minutes=10))
    middle = env.enqueue(run_at=NOW - dt.timedelta(minutes=5))
    exactly_now = env.enqueue(run_at=NOW)
    future = env.enqueue(run_at=NOW + dt.timedelta(seconds=1))
    ended = {status: env.enqueue(run_at=NOW - dt.timedelta(hours=1))
             for status in ("done", "dead", "cancelled")}
    with env.engine.begin() as conn:
        for status, job_id in ended.items():
            conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(status=status))

    a = env.executor({}, "a", batch=2)
    b = env.executor({}, "b", batch=2)
    claimed = a.claim()
    assert claimed == [early, middle]  # the batch: the two due the longest, earliest first
    for job_id in claimed:
        row = env.job(job_id)
        assert (row["status"], row["leased_by"], row["attempts"]) == ("running", "a", 1)
        assert row["lease_until"] == NOW + LEASE
    # Another worker takes what is left and due, never A's; an explicit limit wins.
    assert b.claim(limit=1) == [late]
    assert sorted(b.claim(limit=5)) == [exactly_now]
    assert a.claim() == [] and b.claim() == []
    for job_id in (future, *ended.values()):
        row = env.job(job_id)
        assert row["attempts"] == 0 and row["leased_by"] is None
    assert env.job(future)["status"] == "pending"
    # The clock reaches the future job: now it is due.
    env.clock.advance(dt.timedelta(seconds=1))
    assert a.claim() == [future]


def test_a_batch_runs_the_earliest_due_job_first(env: Env) -> None:
    """Jobs created later may be due earlier (a 1 h timer after a 3-day revisit):
    a worker back from an outage runs them in the order they fell due."""
    ran: list[int] = []
    first_made = env.enqueue(run_at=NOW - dt.timedelta(minutes=1))
    second_made = env.enqueue(run_at=NOW - dt.timedelta(minutes=30))
    third_made = env.enqueue(run_at=NOW - dt.timedelta(minutes=10))
    ex = env.executor({"test": lambda ctx: ran.append(ctx.job.id) or None})
    assert ex.run_due() == {"done": 3}
    assert ran == [second_made, third_made, first_made]


# -- running -------------------------------------------------------------------------------


def test_done_keeps_the_result_and_what_the_handler_wrote(env: Env) -> None:
    seen: list[tuple[Any, ...]] = []

    def handler(ctx: Context) -> str:
        seen.append((ctx.job.id, ctx.case.id if ctx.case else None, ctx.now, ctx.settings,
                     ctx.system.is_system, ctx.cases.session is ctx.session))
        note(ctx, "sent")
        return f"sent to {ctx.payload['to']}"

    job_id = env.enqueue("mail", to="ann")
    ex = env.executor({"mail": handler}, settings={"SMTP": "mail.example"})
    assert ex.run_due() == {"done": 1}
    row = env.job(job_id)
    assert row["status"] == "done" and row["result"] == "sent to ann"
    assert row["finished_at"] == NOW and row["lease_until"] is None
    assert row["attempts"] == 1 and row["last_error"] is None
    assert env.events() == [{"note": "sent", "job": job_id}]
    assert seen == [(job_id, env.case_id, NOW, {"SMTP": "mail.example"}, True, True)]
    # Done is done: nobody claims it again.
    env.clock.advance(dt.timedelta(days=1))
    assert ex.claim() == []


def test_skip_cancels_with_the_reason_and_keeps_what_the_handler_wrote(env: Env) -> None:
    def handler(ctx: Context) -> str:
        note(ctx, "the case moved on")
        raise Skip("the case left state 'new'")

    job_id = env.enqueue()
    assert env.executor({"test": handler}).run_due() == {"cancelled": 1}
    row = env.job(job_id)
    assert row["status"] == "cancelled" and row["result"] == "the case left state 'new'"
    assert row["finished_at"] == NOW and row["last_error"] is None
    assert env.events() == [{"note": "the case moved on", "job": job_id}]


def test_retry_comes_back_after_an_exponential_backoff(env: Env) -> None:
    calls: list[int] = []

    def handler(ctx: Context) -> str:
        calls.append(ctx.job.attempts)
        note(ctx, "half done")
        raise Retry(f"the CRM is down (attempt {ctx.job.attempts})")

    job_id = env.enqueue()
    ex = env.executor({"test": handler}, jitter=lambda: 1.0)  # the whole backoff
    for attempt, wait in enumerate([30, 60, 120], start=1):
        assert ex.run_due() == {"retry": 1}
        row = env.job(job_id)
        assert row["status"] == "pending" and row["attempts"] == attempt
        assert row["run_at"] == env.clock() + dt.timedelta(seconds=wait)
        assert row["last_error"] == f"the CRM is down (attempt {attempt})"
        assert row["leased_by"] is None and row["lease_until"] is None
        assert row["finished_at"] is None
        # Not due a second early, due right on time.
        env.clock.advance(dt.timedelta(seconds=wait - 1))
        assert ex.claim() == []
        env.clock.advance(dt.timedelta(seconds=1))
    assert calls == [1, 2, 3]
    assert env.events() == []  # what a failed attempt wrote is rolled back

    # With no jitter the wait is half the backoff (equal jitter: half fixed).
    half = env.executor({"test": handler}, "b", jitter=lambda: 0.0)
    assert half.run_due() == {"retry": 1}
    assert env.job(job_id)["run_at"] == env.clock() + dt.timedelta(seconds=120)


def test_retry_after_is_honoured_exactly(env: Env) -> None:
    def handler(ctx: Context) -> str:
        raise Retry("429 Too Many Requests", after=dt.timedelta(seconds=120))

    job_id = env.enqueue()
    ex = env.executor({"test": handler}, jitter=lambda: 0.73)
    assert ex.run_due() == {"retry": 1}
    row = env.job(job_id)
    assert row["run_at"] == NOW + dt.timedelta(seconds=120)
    assert row["last_error"] == "429 Too Many Requests" and row["status"] == "pending"


def test_an_error_is_retried_with_its_type_and_nothing_it_wrote_survives(env: Env) -> None:
    def handler(ctx: Context) -> str:
        note(ctx, "written before the error")
        raise ValueError("no field 'phone' in the payload")

    job_id = env.enqueue()
    assert env.executor({"test": handler}).run_due() == {"retry": 1}
    row = env.job(job_id)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "ValueError: no field 'phone' in the payload"
    assert row["run_at"] == NOW + dt.timedelta(seconds=15)
    assert env.events() == []


def test_fail_is_a_dead_letter_at_once(env: Env) -> None:
    def handler(ctx: Context) -> str:
        note(ctx, "written before giving up")
        raise Fail("no workflow 'revisit' is loaded any more")

    job_id = env.enqueue()
    assert env.executor({"test": handler}).run_due() == {"dead": 1}
    row = env.job(job_id)
    assert row["status"] == "dead" and row["attempts"] == 1 and row["max_attempts"] == 8
    assert row["last_error"] == "no workflow 'revisit' is loaded any more"
    assert row["finished_at"] == NOW and row["lease_until"] is None
    assert env.events() == []
    env.clock.advance(dt.timedelta(days=30))
    assert env.executor({"test": handler}, "b").claim() == []


def test_the_last_of_max_attempts_failures_is_a_dead_letter(env: Env) -> None:
    def handler(ctx: Context) -> str:
        raise ConnectionError(f"refused ({ctx.job.attempts})")

    job_id = env.enqueue(max_attempts=3)
    ex = env.executor({"test": handler})
    outcomes = []
    for _ in range(3):
        outcomes.append(ex.run(ex.claim()[0]))
        env.clock.now = env.job(job_id)["run_at"]
    assert outcomes == ["retry", "retry", "dead"]
    row = env.job(job_id)
    assert row["status"] == "dead" and row["attempts"] == 3
    assert row["last_error"] == "ConnectionError: refused (3)"
    assert ex.claim() == []


def test_a_job_of_an_unknown_kind_is_a_dead_letter(env: Env) -> None:
    job_id = env.enqueue("telegram", case=False)
    assert env.executor({"test": lambda ctx: None}).run_due() == {"dead": 1}
    row = env.job(job_id)
    assert row["status"] == "dead" and row["attempts"] == 1
    assert row["last_error"] == "no handler for jobs of kind 'telegram'"


def test_a_job_without_a_case_gets_none(env: Env) -> None:
    seen: list[Any] = []
    job_id = env.enqueue(case=False)
    assert env.executor({"test": lambda ctx: seen.append(ctx.case) or "ok"}).run_due() \
        == {"done": 1}
    assert seen == [None] and env.job(job_id)["result"] == "ok"


def test_backoff_grows_exponentially_and_is_capped() -> None:
    def executor(jitter: float, **options: Any) -> Executor:
        return Executor(cast(Engine, None), cast(Registry, None), {},
                        jitter=lambda: jitter, **options)

    full, half = executor(1.0), executor(0.0)
    cap = dt.timedelta(hours=6)
    waits = [full.backoff(n) for n in range(1, 41)]
    for n, wait in enumerate(waits, start=1):
        expected = min(cap, dt.timedelta(seconds=30 * 2 ** (n - 1)))
        assert wait == expected, n
        assert half.backoff(n) == expected / 2, n
    assert waits[:4] == [dt.timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits[9] == dt.timedelta(seconds=15360) and waits[10] == cap  # capped from 11 on
    assert waits == sorted(waits)
    # Far beyond any max_attempts, and with a cap far beyond any real one: no overflow.
    for n in (0, 41, 64, 1000, 10**9):
        assert dt.timedelta(seconds=15) <= half.backoff(n) <= cap
    huge = executor(1.0, backoff_base=dt.timedelta(minutes=1), backoff_cap=dt.timedelta.max)
    assert huge.backoff(40) == dt.timedelta(minutes=2 ** 32)
    # Jitter spreads the wait between half and all of it.
    assert executor(0.5).backoff(3) == dt.timedelta(seconds=90)


# -- leases --------------------------------------------------------------------------------


def test_a_worker_that_dies_loses_its_job_to_another_when_the_lease_expires(env: Env) -> None:
    ran: list[str] = []

    def handler_of(worker: str) -> Handler:
        def handler(ctx: Context) -> str:
            ran.append(worker)
            note(ctx, f"by {worker}")
            return f"done by {worker}"
        return handler

    job_id = env.enqueue()
    a = env.executor({"test": handler_of("a")}, "a")
    b = env.executor({"test": handler_of("b")}, "b")
    assert a.claim() == [job_id]
    # A dies here, before running the job. Until the lease ends, nobody else takes it.
    env.clock.advance(LEASE)
    assert b.claim() == []
    env.clock.advance(dt.timedelta(microseconds=1))
    assert b.claim() == [job_id]
    row = env.job(job_id)
    assert (row["leased_by"], row["attempts"]) == ("b", 2)
    assert row["lease_until"] == env.clock() + LEASE
    assert b.run(job_id) == "done"
    after_b = env.job(job_id)
    assert after_b["status"] == "done" and after_b["result"] == "done by b"
    # A comes back to life and runs the job it claimed: lost, and nothing changes.
    assert a.run(job_id) == "lost"
    assert env.job(job_id) == after_b
    assert ran == ["b"]
    assert env.events() == [{"note": "by b", "job": job_id}]


def test_a_reclaimed_job_that_is_not_done_is_lost_to_its_first_worker(env: Env) -> None:
    """A's lease expired and B holds the job (not yet run): A's run changes nothing."""
    ran: list[str] = []
    job_id = env.enqueue()
    a = env.executor({"test": lambda ctx: ran.append("a") or None}, "a")
    b = env.executor({"test": lambda ctx: ran.append("b") or None}, "b")
    assert a.claim() == [job_id]
    env.clock.advance(LEASE + dt.timedelta(seconds=1))
    assert b.claim() == [job_id]
    held = env.job(job_id)
    assert a.run(job_id) == "lost"
    assert env.job(job_id) == held and ran == []
    a.release([job_id])  # not A's to give back either
    assert env.job(job_id) == held


def test_a_job_whose_last_attempt_never_finished_is_a_dead_letter(env: Env) -> None:
    ran: list[int] = []
    job_id = env.enqueue(max_attempts=2)
    a = env.executor({"test": lambda ctx: ran.append(ctx.job.id) or None}, "a")
    b = env.executor({"test": lambda ctx: ran.append(ctx.job.id) or None}, "b")
    for worker in (a, b):  # attempt 1 and attempt 2 (the last) both hang
        assert worker.claim() == [job_id]
        env.clock.advance(LEASE + dt.timedelta(seconds=1))
    assert a.claim() == [job_id]
    assert env.job(job_id)["attempts"] == 3
    assert a.run(job_id) == "dead"
    row = env.job(job_id)
    assert row["status"] == "dead" and ran == []
    assert "the last attempt never finished" in row["last_error"]
    assert row["finished_at"] == env.clock()


@pytest.mark.parametrize("then", ["returns", "raises"])
def test_a_handler_that_loses_its_lease_while_running_commits_nothing(
        env: Env, then: str) -> None:
    """Exactly once for Caseloop's own tables: a slow handler whose job another worker
    took over meanwhile writes nothing, whatever it ends with."""

    def take_over() -> None:
        with env.engine.begin() as conn:  # another worker, its own connection
            conn.execute(update(JOBS).where(JOBS.c.status == "running").values(
                leased_by="thief", attempts=JOBS.c.attempts + 1))

    def handler(ctx: Context) -> str:
        # SQLite has one writer: the takeover must come before this transaction writes
        # (it would wait for it otherwise). PostgreSQL shows the later takeover too.
        if env.dialect == "sqlite":
            take_over()
        note(ctx, "written by the slow worker")
        if env.dialect != "sqlite":
            take_over()
        if then == "raises":
            raise Retry("and then it failed")
        return "done late"

    job_id = env.enqueue()
    ex = env.executor({"test": handler})
    assert ex.run_due() == {"lost": 1}
    row = env.job(job_id)
    assert (row["status"], row["leased_by"], row["attempts"]) == ("running", "thief", 2)
    assert row["result"] is None and row["last_error"] is None and row["finished_at"] is None
    assert env.events() == []


def test_release_gives_back_unstarted_jobs_without_counting_the_attempt(env: Env) -> None:
    ids = [env.enqueue() for _ in range(3)]
    a = env.executor({}, "a")
    assert sorted(a.claim()) == ids
    a.release(ids[:2])
    a.release([])
    for job_id in ids[:2]:
        row = env.job(job_id)
        assert (row["status"], row["attempts"], row["leased_by"], row["lease_until"]) == \
            ("pending", 0, None, None)
        assert row["run_at"] == NOW
    assert env.job(ids[2])["status"] == "running"
    env.executor({}, "b").release([ids[2]])  # not B's: unchanged
    assert env.job(ids[2])["leased_by"] == "a"
    assert sorted(env.executor({}, "b").claim()) == ids[:2]
    assert [env.job(i)["attempts"] for i in ids] == [1, 1, 1]


# -- the time limit ------------------------------------------------------------------------


def test_a_handler_over_the_time_limit_is_stopped_and_retried(env: Env) -> None:
    assert threading.current_thread() is threading.main_thread()
    looped: list[float] = []

    def handler(ctx: Context) -> str:
        started = time.monotonic()
        deadline = started + 5  # a safety net: the test can never hang
        while time.monotonic() < deadline:
            pass
        looped.append(time.monotonic() - started)
        return "never interrupted"

    before = signal.getsignal(signal.SIGALRM)
    job_id = env.enqueue()
    ex = env.executor({"test": handler}, time_limit=dt.timedelta(seconds=0.2))
    assert ex.run_due() == {"retry": 1}
    assert looped == []
    row = env.job(job_id)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "TimeLimit: the handler ran longer than 0.2 s"
    # The alarm is off and the previous handler back.
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == before


def test_a_quick_handler_is_not_bothered_by_the_time_limit(env: Env) -> None:
    env.enqueue()
    ex = env.executor({"test": lambda ctx: "quick"}, time_limit=dt.timedelta(seconds=30))
    assert ex.run_due() == {"done": 1}
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_outside_the_main_thread_the_time_limit_is_left_to_the_lease(env: Env) -> None:
    """The in-process worker of 'serve' runs in a thread, where signals cannot reach."""
    job_id = env.enqueue()
    ex = env.executor({"test": lambda ctx: "in a thread"}, time_limit=dt.timedelta(seconds=1))
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(ex.run_due())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert outcome == [Counter(done=1)]
    assert env.job(job_id)["result"] == "in a thread"


# -- the worker loop -----------------------------------------------------------------------


def test_a_worker_until_idle_drains_jobs_that_handlers_keep_adding(env: Env) -> None:
    """Each job of generation g < 4 adds two for now: 1 + 2 + 4 + 8 + 16 = 31 jobs, in
    batches of 3; a job due later does not keep the worker busy."""
    generations: Counter[int] = Counter()

    def spawn(ctx: Context) -> str:
        g = int(ctx.payload["g"])
        generations[g] += 1
        if g < 4:
            for _ in range(2):
                enqueue(ctx.session, "spawn", run_at=ctx.now, case_id=ctx.job.case_id,
                        g=g + 1)
        return f"generation {g}"

    env.enqueue("spawn", g=0)
    later = env.enqueue("spawn", run_at=NOW + dt.timedelta(hours=1), g=99)
    worker = Worker(env.executor({"spawn": spawn}, batch=3), poll=60)
    assert +worker.run(until_idle=True) == Counter(done=31)
    assert generations == {0: 1, 1: 2, 2: 4, 3: 8, 4: 16}
    with env.engine.connect() as conn:
        statuses = dict(conn.execute(select(JOBS.c.status, func.count())
                                     .group_by(JOBS.c.status)).all())
    assert statuses == {"done": 31, "pending": 1}
    assert env.job(later)["attempts"] == 0


def test_stopping_a_worker_mid_batch_gives_back_the_jobs_it_did_not_start(env: Env) -> None:
    ids = [env.enqueue() for _ in range(5)]
    ran: list[int] = []
    worker: Worker

    def handler(ctx: Context) -> str:
        ran.append(ctx.job.id)
        worker.stop.set()  # Ctrl+C while the first job runs
        return "finished anyway"

    worker = Worker(env.executor({"test": handler}, batch=5), poll=60)
    assert +worker.run(until_idle=True) == Counter(done=1)
    assert ran == [ids[0]]
    assert env.job(ids[0])["status"] == "done"
    for job_id in ids[1:]:
        row = env.job(job_id)
        assert (row["status"], row["attempts"], row["leased_by"]) == ("pending", 0, None)
    # A worker stopped before it starts claims nothing.
    assert +worker.run() == Counter(done=1)
    assert len(ran) == 1 and env.job(ids[1])["attempts"] == 0


def test_a_worker_survives_a_database_error_while_claiming(env: Env) -> None:
    ex = env.executor({"test": lambda ctx: "ok"})
    worker = Worker(ex, poll=60, on_error_wait=60)
    real_claim, calls = ex.claim, []

    def flaky_claim(limit: int | None = None) -> list[int]:
        calls.append(limit)
        if len(calls) == 1:
            worker.stop.set()  # stop.wait(on_error_wait) returns at once
            raise OSError("connection reset")
        return real_claim(limit)

    ex.claim = flaky_claim  # type: ignore[method-assign]
    env.enqueue()
    assert +worker.run(until_idle=True) == Counter()
    worker.stop.clear()
    assert +worker.run(until_idle=True) == Counter(done=1)


# -- several workers at once ---------------------------------------------------------------


@pytest.mark.parametrize(("kind", "workers", "jobs"),
                         [("sqlite", 2, 500), ("postgresql", 4, 10_000)])
def test_concurrent_workers_run_every_job_exactly_once(
        tmp_path: Path, kind: str, workers: int, jobs: int) -> None:
    app = build_app(kind, tmp_path, FILES)
    try:
        with app.app_context():
            engine, registry = state().db.engine, state().registry
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE ran (job_id BIGINT NOT NULL, worker VARCHAR(10))"))
            conn.execute(insert(JOBS), [{"kind": "mark", "run_at": NOW, "payload": {"n": i}}
                                        for i in range(jobs)])
            all_ids = set(conn.execute(select(JOBS.c.id)).scalars())
        assert len(all_ids) == jobs

        def mark(ctx: Context) -> str:
            ctx.session.execute(text("INSERT INTO ran (job_id, worker) VALUES (:j, :w)"),
                                {"j": ctx.job.id, "w": ctx.job.leased_by})
            return "marked"

        errors: list[BaseException] = []
        claims: list[int] = []
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        start = threading.Barrier(workers)

        def work(i: int) -> None:
            ex = Executor(engine, registry, {"mark": mark}, worker_id=f"w{i}",
                          clock=lambda: NOW, batch=50)
            try:
                start.wait(timeout=30)
                while True:
                    got = ex.run_due()
                    with lock:
                        claims.append(sum(got.values()))
                        outcomes.update(got)
                    if not got:
                        break
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                with lock:
                    errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a worker hung"
        assert errors == []
        assert outcomes == {"done": jobs}
        assert max(claims) <= 50
        with engine.connect() as conn:
            ran = list(conn.execute(text("SELECT job_id FROM ran")).scalars())
            statuses = dict(conn.execute(select(JOBS.c.status, func.count())
                                         .group_by(JOBS.c.status)).all())
            attempts = set(conn.execute(select(JOBS.c.attempts).distinct()).scalars())
        assert len(ran) == jobs and set(ran) == all_ids  # each exactly once
        assert statuses == {"done": jobs} and attempts == {1}
    finally:
        dispose(app)


# -- deduplication -------------------------------------------------------------------------


def test_a_dedupe_key_is_unique(env: Env) -> None:
    """How handlers and plugins deduplicate: give the job a dedupe key; a second job
    with the key fails the unique constraint (in a savepoint, the transaction goes on)."""
    with Session(env.engine) as session:
        enqueue(session, "notify", dedupe_key="case-1:breach:first_response", to="ann")
        with pytest.raises(IntegrityError):
            enqueue(session, "notify", dedupe_key="case-1:breach:first_response", to="bob")
        session.rollback()
    with Session(env.engine) as session:
        enqueue(session, "notify", dedupe_key="k", to="ann")
        enqueue(session, "notify", to="anyone")  # no key: never a duplicate
        enqueue(session, "notify", to="anyone")
        session.commit()
        with pytest.raises(IntegrityError), session.begin_nested():
            enqueue(session, "notify", dedupe_key="k", to="bob")  # in a later transaction
        enqueue(session, "notify", dedupe_key="k2", to="carl")
        session.commit()
    with env.engine.connect() as conn:
        payloads = conn.execute(select(JOBS.c.dedupe_key, JOBS.c.payload)
                                .order_by(JOBS.c.id)).all()
    assert [tuple(p) for p in payloads] == [("k", {"to": "ann"}), (None, {"to": "anyone"}),
                                            (None, {"to": "anyone"}), ("k2", {"to": "carl"})]


def test_enqueue_sets_the_columns(env: Env) -> None:
    job_id = env.enqueue("start", run_at=NOW + dt.timedelta(days=3), max_attempts=2,
                         workflow="revisit", data={"score": 5})
    row = env.job(job_id)
    assert row["kind"] == "start" and row["case_id"] == env.case_id
    assert row["run_at"] == NOW + dt.timedelta(days=3)
    assert row["payload"] == {"workflow": "revisit", "data": {"score": 5}}
    assert (row["status"], row["attempts"], row["max_attempts"]) == ("pending", 0, 2)
    assert env.job(env.enqueue())["max_attempts"] == 8
