"""`caseloop worker` and `caseloop jobs list|retry|discard` through Flask's CLI runner.

The worker runs on the real clock here (what is due is what is due now); most tests
give it handlers of their own (``builtin`` replaced), one runs the built-in ones.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import Engine, insert, select

import caseloop.handlers
from caseloop.extension import state
from caseloop.jobs import JOBS, Context, Fail, Handler, Skip
from caseloop.models import utcnow

from .test_cases import build_app, dispose, person
from .test_cli_commands import bare_app, fails
from .test_machine import FILES

DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _signals() -> Iterator[None]:
    """``caseloop worker`` in the main thread sets SIGINT/SIGTERM handlers: whatever it
    does, the test session gets its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(request.param, tmp_path, FILES)
    yield app
    dispose(app)


@pytest.fixture
def runner(cli_app: Flask) -> FlaskCliRunner:
    return cli_app.test_cli_runner()


def _skip(ctx: Context) -> str:
    raise Skip("nothing to do any more")


def _fail(ctx: Context) -> str:
    raise Fail("the address is malformed")


HANDLERS: dict[str, Handler] = {"ping": lambda ctx: "pong", "skip": _skip, "fail": _fail}


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Handler]:
    """The worker's handlers (``executor_for`` asks ``caseloop.handlers.builtin``)."""
    monkeypatch.setattr(caseloop.handlers, "builtin", lambda: dict(HANDLERS))
    return HANDLERS


def engine_of(app: Flask) -> Engine:
    with app.app_context():
        return state().db.engine


def add_job(app: Flask, kind: str, *, run_at: dt.datetime | None = None, **values: Any) -> int:
    """A job row as it would be at some point of its life (status, attempts, errors)."""
    with engine_of(app).begin() as conn:
        return int(conn.execute(insert(JOBS).values(
            kind=kind, run_at=run_at or utcnow() - dt.timedelta(seconds=1), payload={},
            **values).returning(JOBS.c.id)).scalar_one())


def job(app: Flask, job_id: int) -> dict[str, Any]:
    with engine_of(app).connect() as conn:
        return dict(conn.execute(select(JOBS).where(JOBS.c.id == job_id)).one()._mapping)


def statuses(app: Flask, *ids: int) -> list[str]:
    return [job(app, i)["status"] for i in ids]


def a_case(app: Flask) -> tuple[int, str]:
    """A case of the 'quiet' workflow (no jobs of its own): its id and reference."""
    with app.app_context():
        st = state()
        case = st.cases().create("quiet", {}, person(app, "ann", ["agent"], ["care"]))
        st.db.session.commit()
        found = case.id, case.reference
        st.db.session.remove()
    return found


def dead(app: Flask, kind: str = "ping", *, run_at: dt.datetime | None = None,
         **values: Any) -> int:
    """A dead letter: died a day ago after its eighth attempt."""
    values = {"status": "dead", "attempts": 8, "finished_at": utcnow() - DAY,
              "last_error": "ConnectionError: refused", **values}
    return add_job(app, kind, run_at=run_at or utcnow() - DAY, **values)


def ran(result: Any) -> dict[str, int]:
    """The worker's final summary ('stopped: 1 cancelled, 2 done'), without zeros."""
    assert result.exit_code == 0, result.output
    last = result.output.splitlines()[-1]
    assert last.startswith("stopped: "), result.output
    counts = {}
    for part in last.removeprefix("stopped: ").split(", "):
        n, what = part.split(" ", 1)
        if n != "0":
            counts[what] = int(n)
    return counts


# -- caseloop worker -----------------------------------------------------------------------


def test_worker_once_runs_the_due_jobs_and_prints_a_summary(
        cli_app: Flask, runner: FlaskCliRunner, handlers: dict[str, Handler]) -> None:
    pings = [add_job(cli_app, "ping") for _ in range(2)]
    skip, fail = add_job(cli_app, "skip"), add_job(cli_app, "fail")
    later = add_job(cli_app, "ping", run_at=utcnow() + dt.timedelta(hours=1))
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.fullmatch(r"worker \S+:\d+:[0-9a-f]{8} started \(until nothing is due\)",
                        lines[0]), lines[0]
    assert statuses(cli_app, *pings, skip, fail, later) == \
        ["done", "done", "cancelled", "dead", "pending"]
    assert [job(cli_app, i)["result"] for i in pings] == ["pong", "pong"]
    assert job(cli_app, skip)["result"] == "nothing to do any more"
    assert job(cli_app, fail)["last_error"] == "the address is malformed"
    assert job(cli_app, later)["attempts"] == 0
    assert ran(result) == {"cancelled": 1, "dead": 1, "done": 2}
    # One line per batch that did something, then the total; no zero counts.
    assert lines[1:] == ["1 cancelled, 1 dead, 2 done", "stopped: 1 cancelled, 1 dead, 2 done"]


def test_worker_once_with_nothing_due_says_so(
        runner: FlaskCliRunner, handlers: dict[str, Handler]) -> None:
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "stopped: nothing run"


def test_worker_quiet_prints_nothing(
        cli_app: Flask, runner: FlaskCliRunner, handlers: dict[str, Handler]) -> None:
    ping = add_job(cli_app, "ping")
    result = runner.invoke(args=["worker", "--once", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert statuses(cli_app, ping) == ["done"]


def test_worker_runs_the_builtin_handlers(cli_app: Flask, runner: FlaskCliRunner) -> None:
    crm, unknown = add_job(cli_app, "crm"), add_job(cli_app, "telegram")
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert ran(result) == {"cancelled": 1, "dead": 1}
    assert (job(cli_app, crm)["status"], job(cli_app, crm)["result"]) == \
        ("cancelled", "no CRM connector is configured")
    assert (job(cli_app, unknown)["status"], job(cli_app, unknown)["last_error"]) == \
        ("dead", "no handler for jobs of kind 'telegram'")


def test_worker_gives_back_the_signal_handlers_it_set(
        runner: FlaskCliRunner, handlers: dict[str, Handler]) -> None:
    """Run in-process (this runner, an embedding app), the command must not leave
    Ctrl+C bound to a worker that has stopped."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    assert runner.invoke(args=["worker", "--once", "--quiet"]).exit_code == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_job_commands_on_an_unmigrated_database_say_to_upgrade(tmp_path: Path) -> None:
    runner = bare_app(tmp_path).test_cli_runner()
    for args in (["worker", "--once"], ["worker", "--quiet"], ["jobs", "list"],
                 ["jobs", "retry", "1"], ["jobs", "retry", "--all-dead"],
                 ["jobs", "discard", "1"], ["jobs", "discard", "--all-dead"]):
        fails(runner.invoke(args=args), 1, "run 'caseloop db upgrade' first")


# -- caseloop jobs list --------------------------------------------------------------------


def test_jobs_list_counts_per_status_and_shows_the_rows(
        cli_app: Flask, runner: FlaskCliRunner) -> None:
    case_id, reference = a_case(cli_app)
    now = utcnow()
    timer = add_job(cli_app, "timer", case_id=case_id,
                    run_at=now + DAY + dt.timedelta(minutes=90))
    running = add_job(cli_app, "notify", case_id=case_id, run_at=now - dt.timedelta(hours=3),
                      status="running", attempts=2, leased_by="host:1:abc")
    died = dead(cli_app, "crm", case_id=case_id,
                last_error="ConnectionError: refused\nTraceback (most recent call last): ...")
    orphan = dead(cli_app, "webhook", run_at=now - 2 * DAY, attempts=1, max_attempts=1)
    for status in ("done", "done", "cancelled"):
        add_job(cli_app, "timer", status=status, case_id=case_id)

    result = runner.invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    head, *rows = result.output.splitlines()
    assert head == "1 pending, 1 running, 2 done, 2 dead, 1 cancelled"
    # Pending, running and dead by default, the earliest due first.
    assert [int(r.split()[0]) for r in rows] == [orphan, died, running, timer]
    by_id = {int(r.split()[0]): r for r in rows}
    assert by_id[died].split()[1:4] == ["dead", "crm", reference]
    assert "24h ago" in by_id[died] and "attempts 8/8" in by_id[died]
    assert by_id[died].endswith("  last error: ConnectionError: refused")  # its first line
    assert by_id[orphan].split()[1:4] == ["dead", "webhook", "-"]  # no case
    assert "2d ago" in by_id[orphan] and "attempts 1/1" in by_id[orphan]
    assert by_id[running].split()[1:4] == ["running", "notify", reference]
    assert "3h ago" in by_id[running] and "attempts 2/8" in by_id[running]
    assert "in 25h" in by_id[timer] and "last error" not in by_id[timer]

    def listed(*args: str) -> list[int]:
        out = runner.invoke(args=["jobs", "list", *args])
        assert out.exit_code == 0, out.output
        head_, *rows_ = out.output.splitlines()
        assert head_ == head  # the counts are always of every job
        return [int(r.split()[0]) for r in rows_]

    assert listed("--status", "dead") == [orphan, died]
    assert listed("--kind", "notify") == [running]
    assert listed("--kind", "crm", "--status", "dead") == [died]
    assert listed("--kind", "crm", "--status", "pending") == []
    assert len(listed("--status", "done", "--status", "cancelled")) == 3
    assert listed("--limit", "2") == [orphan, died]
    fails(runner.invoke(args=["jobs", "list", "--status", "failed"]), 2, "'failed' is not one of")
    fails(runner.invoke(args=["jobs", "list", "--limit", "0"]), 2, "--limit")


def test_jobs_list_of_an_empty_queue(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    assert result.output == "0 pending, 0 running, 0 done, 0 dead, 0 cancelled\n"


# -- caseloop jobs retry / discard ---------------------------------------------------------


def test_jobs_retry_queues_dead_letters_again(
        cli_app: Flask, runner: FlaskCliRunner, handlers: dict[str, Handler]) -> None:
    first, second = dead(cli_app), dead(cli_app)
    pending, done = add_job(cli_app, "ping", run_at=utcnow() + DAY), \
        add_job(cli_app, "ping", status="done")
    untouched = {i: job(cli_app, i) for i in (first, second, pending, done)}

    def unchanged() -> None:
        assert {i: job(cli_app, i) for i in untouched} == untouched

    # Only dead letters, and then nothing at all when one id is not one.
    fails(runner.invoke(args=["jobs", "retry", str(pending)]), 1,
          f"not dead letters: {pending} (see 'caseloop jobs list --status dead')",
          "nothing was changed")
    fails(runner.invoke(args=["jobs", "retry", str(first), str(done), "999999"]), 1,
          f"not dead letters: {done}, 999999")
    unchanged()
    fails(runner.invoke(args=["jobs", "retry"]), 2, "give job ids, or --all-dead")
    fails(runner.invoke(args=["jobs", "retry", str(first), "--all-dead"]), 2,
          "give job ids, or --all-dead")
    fails(runner.invoke(args=["jobs", "retry", "first"]), 2, "'first' is not a valid integer")
    unchanged()

    before = utcnow()
    result = runner.invoke(args=["jobs", "retry", str(first)])
    assert result.exit_code == 0, result.output
    assert result.output == "1 job queued again\n"
    row = job(cli_app, first)
    assert (row["status"], row["attempts"], row["finished_at"]) == ("pending", 0, None)
    assert before <= row["run_at"] <= utcnow()
    assert statuses(cli_app, second, pending, done) == ["dead", "pending", "done"]

    result = runner.invoke(args=["jobs", "retry", "--all-dead"])
    assert result.output == "1 job queued again\n", result.output
    assert statuses(cli_app, second) == ["pending"]
    assert runner.invoke(args=["jobs", "retry", "--all-dead"]).output == "0 jobs queued again\n"
    # The worker takes them: a full set of attempts again.
    result = runner.invoke(args=["worker", "--once"])
    assert ran(result) == {"done": 2}
    assert statuses(cli_app, first, second) == ["done", "done"]
    assert job(cli_app, first)["attempts"] == 1


def test_jobs_discard_gives_up_on_dead_letters(
        cli_app: Flask, runner: FlaskCliRunner) -> None:
    first, second, third = dead(cli_app), dead(cli_app), dead(cli_app)
    pending = add_job(cli_app, "ping")
    fails(runner.invoke(args=["jobs", "discard", str(first), str(pending)]), 1,
          f"not dead letters: {pending}", "nothing was changed")
    assert statuses(cli_app, first, pending) == ["dead", "pending"]
    fails(runner.invoke(args=["jobs", "discard"]), 2, "give job ids, or --all-dead")
    fails(runner.invoke(args=["jobs", "discard", "--all-dead", str(first)]), 2,
          "give job ids, or --all-dead")

    result = runner.invoke(args=["jobs", "discard", str(first)])
    assert result.exit_code == 0, result.output
    assert result.output == "1 job discarded\n"
    row = job(cli_app, first)
    assert (row["status"], row["result"]) == ("cancelled", "discarded by an operator")
    assert row["last_error"] == "ConnectionError: refused"  # why it died stays readable
    # A discarded job is no dead letter any more.
    fails(runner.invoke(args=["jobs", "retry", str(first)]), 1, f"not dead letters: {first}")

    result = runner.invoke(args=["jobs", "discard", "--all-dead"])
    assert result.output == "2 jobs discarded\n", result.output
    assert statuses(cli_app, first, second, third, pending) == \
        ["cancelled", "cancelled", "cancelled", "pending"]
    listed = runner.invoke(args=["jobs", "list"]).output.splitlines()
    assert listed[0] == "1 pending, 0 running, 0 done, 0 dead, 3 cancelled"
