"""Jobs for operators: what is due, running and dead-lettered, and the retry or
discard of dead letters — the API of ``caseloop jobs`` (the admin pages build on
it). Only roles in ``CASELOOP_ADMIN_ROLES`` may use it: job payloads carry
customers' addresses and the outbox is an operations concern."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from .. import queue
from ..errors import Forbidden
from ..extension import state
from ..jobs import discard, requeue
from ..models import Case, Job
from . import blueprint
from .routes import MAX_ID, _cursor, _iso, _limit, _make_cursor, actor
from .schemas import JobQuery, load

JOB_ID = f"<int(max={MAX_ID}):job_id>"


JOB_QUERY = JobQuery()


def _admin() -> None:
    if not actor().roles & set(current_app.config["CASELOOP_ADMIN_ROLES"]):
        raise Forbidden("only administrators may see and change jobs "
                        "(roles in CASELOOP_ADMIN_ROLES)")


@blueprint.get("/jobs")
def list_jobs() -> Response:
    """Jobs, the next due first (keyset pages); with a count per status."""
    _admin()
    query = load(JOB_QUERY, request.args.to_dict())
    session = state().db.session
    rows, last = queue.page(session, limit=_limit(query), status=query.get("status"),
                            kind=query.get("kind"), case_id=query.get("case"),
                            after=_cursor(query["cursor"]) if "cursor" in query else None)
    return jsonify({"counts": queue.counts(session),
                    "items": [job_json(job, case) for job, case in rows],
                    "next_cursor": _make_cursor(last.run_at, last.id) if last else None})


@blueprint.post(f"/jobs/{JOB_ID}/retry")
def retry_job(job_id: int) -> Response:
    return _change(job_id, requeue)


@blueprint.post(f"/jobs/{JOB_ID}/discard")
def discard_job(job_id: int) -> Response:
    return _change(job_id, discard)


def _change(job_id: int, change: Any) -> Response:
    _admin()
    session = state().db.session
    job, case = queue.change(session, job_id, change)
    session.commit()
    return jsonify(job_json(job, case))


def job_json(job: Job, case: Case | None) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "case_id": job.case_id,
        "case_reference": case.reference if case is not None else None,
        "run_at": _iso(job.run_at), "attempts": job.attempts,
        "max_attempts": job.max_attempts, "last_error": job.last_error,
        "result": job.result, "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at) if job.finished_at else None,
        "leased_by": job.leased_by,
        # A survey link's token is the customer's credential: never shown.
        "payload": queue.public_payload(job.payload),
    }

