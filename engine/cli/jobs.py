"""``caseloop worker`` runs jobs; ``caseloop jobs`` shows them and handles dead letters."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from .. import queue
from ..jobs import STATUSES, discard, requeue
from ..models import Case, Job, utcnow
from ..worker import Worker, executor_for
from .common import _count, _database, _session


@click.command("worker")
@click.option("--once", is_flag=True, help="Run what is due now, then stop.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@with_appcontext
@_database
def worker_command(once: bool, quiet: bool) -> None:
    """Run due jobs (timers, delayed cases, notifications, CRM pushes) until stopped.

    Several workers may run at once: each claims jobs with a lease, so none is run
    twice, and a worker that dies loses nothing (its jobs are retaken when the lease
    expires). Ctrl+C or SIGTERM stops after the job in hand.
    """
    _session()  # refuses an unmigrated database with the usual message
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = Worker(executor_for(app), poll=float(app.config["CASELOOP_WORKER_POLL"]))
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: worker.stop.set())
    if not quiet:
        click.echo(f"worker {worker.executor.worker_id} started"
                   + (" (until nothing is due)" if once else "; Ctrl+C stops it"))

    def tick(counts: Any) -> None:
        if not quiet:
            click.echo(_summary(counts))

    try:
        counts = worker.run(until_idle=once, tick=tick)
    finally:
        for signum, handler in previous.items():  # an embedding process keeps its own
            signal.signal(signum, handler)
    if not quiet:
        click.echo(f"stopped: {_summary(counts)}")


@click.group("jobs")
def jobs_group() -> None:
    """List jobs; retry or discard dead letters."""


@jobs_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), multiple=True,
              help="Only these (repeatable). Default: pending, running and dead.")
@click.option("--kind", help="Only jobs of this kind (timer, start, notify, crm, fire, …).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@with_appcontext
@_database
def list_command(status: tuple[str, ...], kind: str | None, limit: int) -> None:
    """Jobs, the next due first; and a count per status."""
    session = _session()
    wanted = status or ("pending", "running", "dead")
    counts = queue.counts(session)
    click.echo(", ".join(f"{counts[s]} {s}" for s in STATUSES))
    stmt = (select(Job, Case).outerjoin(Case, Case.id == Job.case_id)
            .where(Job.status.in_(wanted)).order_by(Job.run_at, Job.id).limit(limit))
    if kind:
        stmt = stmt.where(Job.kind == kind)
    now = utcnow()
    for job, case in session.execute(stmt):
        when = _when(job.run_at, now)
        ref = case.reference if case is not None else "-"
        line = (f"{job.id:>7}  {job.status:<9} {job.kind:<8} {ref:<18} {when:<16} "
                f"attempts {job.attempts}/{job.max_attempts}")
        if job.last_error:
            line += f"  last error: {job.last_error.splitlines()[0][:120]}"
        click.echo(line)


@jobs_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="Every dead letter.")
@with_appcontext
@_database
def retry_command(ids: tuple[int, ...], all_dead: bool) -> None:
    """Queue dead letters again, now, with their attempts reset."""
    jobs = _dead(ids, all_dead)
    now = utcnow()
    for job in jobs:
        requeue(job, now)
    _session().commit()
    click.echo(f"{_count(len(jobs), 'job')} queued again")


@jobs_group.command("discard")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="Every dead letter.")
@with_appcontext
@_database
def discard_command(ids: tuple[int, ...], all_dead: bool) -> None:
    """Give up on dead letters for good (they stay listed as cancelled)."""
    jobs = _dead(ids, all_dead)
    now = utcnow()
    for job in jobs:
        discard(job, now)
    _session().commit()
    click.echo(f"{_count(len(jobs), 'job')} discarded")


def _dead(ids: tuple[int, ...], all_dead: bool) -> list[Job]:
    if bool(ids) == all_dead:
        raise click.UsageError("give job ids, or --all-dead")
    stmt = select(Job).where(Job.status == "dead").order_by(Job.id)
    if ids:
        stmt = stmt.where(Job.id.in_(ids))
    jobs = list(_session().execute(stmt).scalars())
    missing = sorted(set(ids) - {j.id for j in jobs})
    if missing:
        raise click.ClickException(
            f"not dead letters: {', '.join(map(str, missing))} (see 'caseloop jobs list "
            "--status dead'); nothing was changed")
    return jobs


def _when(moment: dt.datetime, now: dt.datetime) -> str:
    seconds = int((moment - now).total_seconds())
    if abs(seconds) < 60:
        return "now" if seconds <= 0 else f"in {seconds}s"
    minutes = abs(seconds) // 60
    text = f"{minutes}m" if minutes < 120 else f"{minutes // 60}h" if minutes < 2880 \
        else f"{minutes // 1440}d"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _summary(counts: Any) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing run"
