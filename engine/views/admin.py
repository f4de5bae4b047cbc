"""The administrators' pages: the job queue (retry or discard dead letters, as
``caseloop jobs`` and ``/api/jobs`` do) and the mail log (what was sent, or only
logged when no SMTP server is configured).

A reader without an administrator's role gets a 403 page, not a 404: these
addresses are documented and the same for every install, so hiding them would
protect nothing, and the API answers 403 for the same question. (Cases are
different: their ids are secrets of a kind, and unseen ones answer 404.)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from .. import queue
from ..errors import NotFound
from ..extension import state
from ..jobs import STATUSES, discard, requeue
from ..models import Case, Job, Notification
from ..surveys import PATH
from . import admin_required, blueprint, local_path, t
from .forms import ButtonForm

#: Channels whose messages stay inside Caseloop or are not messages to people; every
#: other one (email, sms, a plugin's channel) leaves for a customer: the mail log shows it.
INTERNAL = ("inbox", "webhook")
MAX_ID = 2**63 - 1
#: A survey link inside a message: its token is the customer's credential.
SURVEY_LINK = re.compile(re.escape(PATH) + r"[A-Za-z0-9_-]+")


@blueprint.get("/admin/jobs")
@admin_required
def jobs() -> str:
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    kind = request.args.get("kind", "").strip()[:32]
    after = None
    if raw := request.args.get("cursor"):
        after = _decode(raw)
        if after is None:
            flash(t("bad_cursor"), "error")
    session = state().db.session
    rows, last = queue.page(session, limit=int(current_app.config["CASELOOP_PAGE_SIZE"]),
                            status=status or None, kind=kind or None, after=after)
    items = [_job_row(job, case) for job, case in rows]
    filters: dict[str, Any] = {k: v for k, v in (("status", status), ("kind", kind)) if v}
    return render_template(
        "caseloop/jobs.html", counts=queue.counts(session), statuses=STATUSES,
        status=status, kind=kind, items=items, filters=filters, paged=after is not None,
        next_url=url_for("caseloop_views.jobs", **filters, cursor=_encode(last))
        if last is not None else None, button=ButtonForm())


@blueprint.post("/admin/jobs/<int:job_id>/retry")
@admin_required
def retry_job(job_id: int) -> Response:
    return _change(job_id, requeue, "retried")


@blueprint.post("/admin/jobs/<int:job_id>/discard")
@admin_required
def discard_job(job_id: int) -> Response:
    return _change(job_id, discard, "discarded")


@blueprint.get("/admin/mail")
@admin_required
def mail() -> str:
    limit = int(current_app.config["CASELOOP_PAGE_SIZE"])
    before = request.args.get("before", "")
    stmt = (select(Notification, Case).outerjoin(Case, Case.id == Notification.case_id)
            .where(Notification.channel.not_in(INTERNAL)))
    if before.isdigit() and int(before) <= MAX_ID:
        stmt = stmt.where(Notification.id < int(before))
    rows = state().db.session.execute(
        stmt.order_by(Notification.id.desc()).limit(limit + 1)).all()
    items = [{"n": n, "case": c, "body": SURVEY_LINK.sub(PATH + "…", n.body)}
             for n, c in rows[:limit]]
    older = (url_for("caseloop_views.mail", before=rows[limit - 1][0].id)
             if len(rows) > limit else None)
    return render_template("caseloop/mail.html", items=items, older=older,
                           paged=bool(before))


def _change(job_id: int, how: Any, done: str) -> Response:
    form = ButtonForm()  # the CSRF token was checked before the view ran
    back = local_path(form.next.data, url_for("caseloop_views.jobs"))
    session = state().db.session
    try:
        queue.change(session, job_id, how)
    except NotFound:
        session.rollback()
        flash(t("job_missing", id=job_id), "error")
    except queue.NotDead as exc:
        session.rollback()
        flash(t("job_not_dead", id=job_id, status=t(exc.job_status)), "error")
    else:
        session.commit()
        flash(t(done, id=job_id), "info")
    return redirect(back)


def _job_row(job: Job, case: Case | None) -> dict[str, Any]:
    payload = queue.public_payload(job.payload)
    return {"job": job, "case": case.reference if case is not None else None,
            "payload": json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
            if payload else ""}


def _encode(job: Job) -> str:
    raw = f"{job.run_at.astimezone(dt.UTC).isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(raw: str) -> tuple[dt.datetime, int] | None:
    """The keyset of a cursor this page gave out; None for anything else."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, _, job_id = text.partition("|")
        found = dt.datetime.fromisoformat(at), int(job_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None
    if found[0].tzinfo is None or not 0 <= found[1] <= MAX_ID:
        return None
    return found
