"""The job queue as operators see it: counts, keyset pages, and the retry or discard
of dead letters. Shared by the JSON API (``/api/jobs``) and the admin pages so both
list and change jobs the same way. Free of Flask; the caller commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, tuple_

from .errors import Conflict, NotFound
from .jobs import STATUSES
from .models import Case, DbSession, Job, utcnow

#: A job with its case (None for jobs without one, or whose case is gone).
Row = tuple[Job, Case | None]


class NotDead(Conflict):
    """Only dead letters may be retried or discarded; ``job_status`` says what it is."""

    def __init__(self, job_id: int, job_status: str) -> None:
        super().__init__(f"job {job_id} is {job_status}: only dead letters can be retried "
                         "or discarded", code="wrong_state")
        self.job_status = job_status


def counts(session: DbSession) -> dict[str, int]:
    """How many jobs are in each status (every status present, zeros included)."""
    found = {s: 0 for s in STATUSES}
    found.update({row[0]: row[1] for row in session.execute(
        select(Job.status, func.count()).group_by(Job.status))})
    return found


def page(session: DbSession, *, limit: int, status: str | None = None,
         kind: str | None = None, case_id: int | None = None,
         after: tuple[dt.datetime, int] | None = None) -> tuple[list[Row], Job | None]:
    """Jobs the next due first, after the keyset ``(run_at, id)``; with the last job of
    the page when another page follows (its ``run_at, id`` is the next keyset)."""
    stmt = select(Job, Case).outerjoin(Case, Case.id == Job.case_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    if case_id is not None:
        stmt = stmt.where(Job.case_id == case_id)
    if after is not None:
        stmt = stmt.where(tuple_(Job.run_at, Job.id) > after)
    rows: list[Row] = [(job, case) for job, case in
                       session.execute(stmt.order_by(Job.run_at, Job.id).limit(limit + 1))]
    last = rows[limit - 1][0] if len(rows) > limit else None
    return rows[:limit], last


def change(session: DbSession, job_id: int, how: Callable[[Job, dt.datetime], None]
           ) -> Row:
    """Apply :func:`~caseloop.jobs.requeue` or :func:`~caseloop.jobs.discard` to a
    dead letter, holding its row lock (a worker cannot take it meanwhile).

    :raises NotFound: no such job.
    :raises NotDead: the job is not a dead letter (nothing changed).
    """
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if job.status != "dead":
        raise NotDead(job_id, job.status)
    how(job, utcnow())
    session.flush()
    case = session.get(Case, job.case_id) if job.case_id is not None else None
    return job, case


def public_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """A job's payload fit to show: a survey link's token is the customer's
    credential, so it is replaced by an ellipsis."""
    return {k: ("…" if k == "survey" else v) for k, v in (payload or {}).items()}
