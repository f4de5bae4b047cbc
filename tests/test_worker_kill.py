"""A real ``caseloop worker`` process killed with SIGKILL mid-batch loses nothing
and runs nothing twice. On a SQLite file and on PostgreSQL.

The child is the real console command (``caseloop.cli.main(["worker"])``, its
configuration from ``CASELOOP_*`` variables) with the test's handlers put in place
of the built-in ones, as ``tests/test_cli_jobs.py`` does in-process: ``count``
records that it ran in a table of the test's own, in the job's transaction;
``block`` records too, then says so in a marker file and hangs. The child claims
the whole due batch, runs the first job, hangs in the second, and is killed there.

Afterwards a worker of the test's own, on a fake clock, retakes the killed batch
only once its lease has expired. Nothing sleeps for time to pass: only the wait for
the child to reach the blocking handler polls, with a generous bound.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from caseloop.extension import state
from caseloop.jobs import JOBS, Context, Executor, enqueue
from caseloop.models import utcnow
from caseloop.worker import Worker

from .test_cases import build_app, dispose
from .test_machine import FILES

#: The child's lease: long, so that only the test's fake clock can see it expire.
LEASE = dt.timedelta(minutes=10)
#: How long the child may take to start and reach the blocking handler (imports on a
#: loaded machine are slow); it normally takes one or two seconds.
REACH = 120.0

CHILD = textwrap.dedent("""\
    import os
    import sys
    import threading

    from sqlalchemy import text

    import caseloop.handlers

    marker = sys.argv[1]


    def record(ctx):
        ctx.session.execute(text("INSERT INTO ran (job_id, worker) VALUES (:j, 'child')"),
                            {"j": ctx.job.id})


    def count(ctx):
        record(ctx)
        return "counted"


    def block(ctx):
        record(ctx)
        ctx.session.flush()  # the INSERT is sent: killed inside an open transaction
        with open(marker + ".tmp", "w") as fh:
            fh.write(str(ctx.job.id))
        os.replace(marker + ".tmp", marker)
        threading.Event().wait()  # until killed


    caseloop.handlers.builtin = lambda: {"count": count, "block": block}

    from caseloop.cli import main

    main(["worker", "--quiet"], prog_name="caseloop")
""")


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def db_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(request.param, tmp_path, FILES)
    yield app
    dispose(app)


def engine_of(app: Flask) -> Engine:
    with app.app_context():
        return state().db.engine


def add(engine: Engine, kind: str, run_at: dt.datetime) -> int:
    with Session(engine) as session:
        enqueue(session, kind, run_at=run_at)
        session.commit()
        return int(session.execute(select(func.max(JOBS.c.id))).scalar_one())


def rows(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.id: dict(r._mapping) for r in conn.execute(select(JOBS))}


def ran(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return sorted((int(j), w) for j, w in conn.execute(text("SELECT job_id, worker FROM ran")))


def start_child(app: Flask, tmp_path: Path, marker: Path) -> subprocess.Popen[bytes]:
    script = tmp_path / "killed_worker.py"
    script.write_text(CHILD, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASELOOP_")}
    env.update({
        "CASELOOP_DATABASE_URL": app.config["CASELOOP_DATABASE_URL"],
        "CASELOOP_DEFINITIONS": os.pathsep.join(app.config["CASELOOP_DEFINITIONS"]),
        "CASELOOP_SECRET_KEY": "test",
        "CASELOOP_JOB_LEASE": str(int(LEASE.total_seconds())),
        "CASELOOP_JOB_TIME_LIMIT": "300",  # never reached: the test kills it first
        "CASELOOP_WORKER_POLL": "0.1",
    })
    with open(tmp_path / "child.log", "wb") as log:
        return subprocess.Popen([sys.executable, str(script), str(marker)], cwd=tmp_path,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(reached: Callable[[], bool], child: subprocess.Popen[bytes], log: Path) -> None:
    """Poll until ``reached()``; fail with the child's output if it dies or takes too long."""
    deadline = time.monotonic() + REACH
    while not reached():
        if child.poll() is not None:
            pytest.fail(f"the worker exited with {child.returncode} before reaching the "
                        f"blocking job:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            child.kill()
            child.wait(timeout=30)
            pytest.fail(f"the worker did not reach the blocking job within {REACH:g} s:\n"
                        f"{log.read_text(errors='replace')}")
        time.sleep(0.05)


def test_a_worker_killed_mid_batch_loses_nothing_and_runs_nothing_twice(
        db_app: Flask, tmp_path: Path) -> None:
    app = db_app
    engine = engine_of(app)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE ran (job_id BIGINT NOT NULL, worker VARCHAR(10))"))
    now = utcnow()
    # One batch, run earliest first: 'first' completes, 'hung' blocks, 'second' and
    # 'third' are claimed with it but never started. 'later' is not due yet.
    first = add(engine, "count", now - dt.timedelta(seconds=40))
    hung = add(engine, "block", now - dt.timedelta(seconds=30))
    second = add(engine, "count", now - dt.timedelta(seconds=20))
    third = add(engine, "count", now - dt.timedelta(seconds=10))
    later = add(engine, "count", now + dt.timedelta(days=1))
    batch = (hung, second, third)

    marker, log = tmp_path / "blocked", tmp_path / "child.log"
    spawned = utcnow()
    child = start_child(app, tmp_path, marker)
    try:
        wait_for(marker.exists, child, log)
        assert int(marker.read_text()) == hung
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=60)
    killed_at = utcnow()

    # What the kill left: 'first' done; the batch still claimed by the dead worker, with
    # its lease and one attempt counted, neither lost nor done; 'later' untouched.
    jobs = rows(engine)
    worker = jobs[hung]["leased_by"]
    assert worker.startswith(f"{socket.gethostname()}:{child.pid}:"), worker
    assert (jobs[first]["status"], jobs[first]["attempts"], jobs[first]["result"]) == \
        ("done", 1, "counted")
    for job_id in batch:
        row = jobs[job_id]
        assert (row["status"], row["leased_by"], row["attempts"]) == ("running", worker, 1)
        assert (row["finished_at"], row["result"], row["last_error"]) == (None, None, None)
        assert spawned <= row["lease_until"] - LEASE <= killed_at  # claimed by the child
    assert (jobs[later]["status"], jobs[later]["attempts"], jobs[later]["leased_by"]) == \
        ("pending", 0, None)
    # The hung job's write died with its transaction; only 'first' left a mark.
    assert ran(engine) == [(first, "child")]

    calls: Counter[int] = Counter()

    def record(ctx: Context) -> str:
        calls[ctx.job.id] += 1
        ctx.session.execute(text("INSERT INTO ran (job_id, worker) VALUES (:j, 'rescuer')"),
                            {"j": ctx.job.id})
        return "counted"

    with app.app_context():
        registry = state().registry
    expiry = min(jobs[j]["lease_until"] for j in batch)
    clock = Clock(expiry - dt.timedelta(seconds=1))
    rescuer = Executor(engine, registry, {"count": record, "block": record},
                       worker_id="rescuer", clock=clock)

    # While the dead worker's lease holds, nobody retakes its jobs.
    assert rescuer.claim() == []
    # Once it has expired, the whole killed batch runs again, each job once.
    clock.now = max(jobs[j]["lease_until"] for j in batch) + dt.timedelta(seconds=1)
    assert Worker(rescuer).run(until_idle=True) == {"done": 3}
    assert calls == {job_id: 1 for job_id in batch}
    # 'later' runs when it is due, and then there is nothing left to run, ever.
    clock.now = jobs[later]["run_at"]
    assert Worker(rescuer).run(until_idle=True) == {"done": 1}
    clock.now += dt.timedelta(days=365)
    assert Worker(rescuer).run(until_idle=True) == {}
    assert calls == {hung: 1, second: 1, third: 1, later: 1}

    jobs = rows(engine)
    assert {j: (r["status"], r["attempts"], r["leased_by"]) for j, r in jobs.items()} == {
        first: ("done", 1, worker),
        hung: ("done", 2, "rescuer"),
        second: ("done", 2, "rescuer"),
        third: ("done", 2, "rescuer"),
        later: ("done", 1, "rescuer"),
    }
    # Every job's effect exactly once: the killed attempt's never, the completed one's
    # not again.
    assert ran(engine) == sorted([(first, "child"), (hung, "rescuer"), (second, "rescuer"),
                                  (third, "rescuer"), (later, "rescuer")])
