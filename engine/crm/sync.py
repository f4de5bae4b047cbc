"""Pushing cases to CRMs: the ``crm`` job the workflow's ``crm:`` action writes.

The worker runs it after the case's transaction committed, so an agent never
waits on a CRM. A retryable error (429, 5xx, a timeout) becomes a retry at the
CRM's Retry-After or the executor's backoff; anything else dead-letters with
the CRM's answer as the reason. The case's link row says how the last sync
went, for agents and admins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ..jobs import Context, Fail, Retry, Skip, enqueue
from ..models import Case, Event, append
from ..spec import Workflow
from .connections import Connection, CRMSetupError
from .contract import Activity, CaseSnapshot, CustomerRef
from .errors import CRMError
from .tables import CRMLink

#: Scores a survey result reports, by field type.
SCORE_TYPES = ("nps", "rating", "ces")


def push(ctx: Context) -> str | None:
    """Send a case (``push: case``), a note (``activity``) or a survey result
    (``survey``) to each configured CRM: one job per CRM, so one CRM that is
    down does not hold back another."""
    p, conns = ctx.payload, ctx.crm
    if conns is None or not conns.names():
        # Nobody to tell; saying so in the case's history keeps the sync status honest.
        if ctx.case is not None:
            _event(ctx, ctx.case, None, "skipped", reason="no CRM connector is configured")
        raise Skip("no CRM connector is configured")
    case = _case(ctx)
    name = p.get("crm")
    if name is None and len(conns.names()) > 1:
        for each in conns.names():
            enqueue(ctx.session, "crm", case_id=case.id, dedupe_key=f"crm:{ctx.job.id}:{each}",
                    **{**p, "crm": each})
        return f"sent to {', '.join(conns.names())}"
    name = name or conns.names()[0]
    try:
        conn = conns.get(str(name))
    except CRMSetupError as exc:
        raise Retry(f"CRM '{name}' is not usable: {exc} (fix CASELOOP_CRM; retried)") from None
    if not conn.setting("push", True):
        raise Skip(f"pushing to {name} is switched off")
    try:
        return _push(ctx, conn, case, str(p.get("push", "case")))
    except CRMError as exc:
        _failed(ctx, conn, case, exc)
        if exc.retryable:
            after = dt.timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
            raise Retry(f"{name}: {exc.message}", after=after) from None
        raise Fail(f"{name}: {exc.message}") from None


def _push(ctx: Context, conn: Connection, case: Case, what: str) -> str:
    wf = ctx.cases.workflow_of(case)
    caps = conn.capabilities
    contact = _contact(ctx, conn, wf, case)
    link = _link(ctx, conn.name, case, "case")
    if what == "case" or (link is None or link.external_id is None) and "cases" in caps:
        if "cases" not in caps:
            raise Skip(f"{conn.name} does not take cases")
        result = conn.connector.upsert_case(snapshot(ctx, conn, wf, case, contact))
        link = _save(ctx, conn.name, case, "case", result.external_id, result.url)
        if what == "case":
            _event(ctx, case, conn.name, "synced", external_id=result.external_id,
                   url=result.url, push=what, created=result.created)
            return f"{conn.name} {'created' if result.created else 'updated'} " \
                   f"{result.external_id}"
    if "activities" not in caps:
        raise Skip(f"{conn.name} does not take activities")
    attach = [ref for ref in (_ref(conn.name, link), contact) if ref is not None]
    text = _note(ctx, wf, case) if what == "activity" else survey_text(wf, case.data)
    activity = Activity(f"{case.reference}:{ctx.job.id}",
                        "survey_result" if what == "survey" else "note", text, ctx.now,
                        tuple(attach))
    activity_id = conn.connector.add_activity(activity)
    _event(ctx, case, conn.name, "synced", push=what, activity=activity_id)
    return f"{conn.name} recorded {what} {activity_id}"


def snapshot(ctx: Context, conn: Connection, wf: Workflow, case: Case,
             customer: CustomerRef | None) -> CaseSnapshot:
    """The case as the CRM gets it: its reference as the idempotency key."""
    data = case.data or {}
    state = wf.states.get(case.state)
    subject = _first(data, conn.setting("subject_fields", ["subject", "summary", "title"]))
    description = "\n\n".join(str(data[f]) for f in conn.setting(
        "description_fields", ["description"]) if data.get(f) not in (None, ""))
    statuses: Mapping[str, str] = conn.setting("status", {}) or {}
    public = str(ctx.settings.get("CASELOOP_PUBLIC_URL", "")).rstrip("/")
    files = {f.name for f in wf.form.fields if f.type == "file"}
    return CaseSnapshot(
        caseloop_id=case.reference, reference=case.reference, version=case.version,
        subject=subject or f"{case.reference} {wf.title.en}", status=statuses.get(case.state),
        state=case.state, state_category=state.category if state is not None else "open",
        priority=case.priority, description=description or None, customer=customer,
        url=f"{public}/cases/{case.id}" if public else None,
        fields={k: v for k, v in data.items() if k not in files})


def survey_text(wf: Workflow, data: Mapping[str, Any]) -> str:
    """A survey answer as plain lines: each score with its label, then comments."""
    lines = []
    for f in wf.form.fields:
        value = data.get(f.name)
        if value in (None, "", []):
            continue
        if f.type in SCORE_TYPES or f.metric:
            lines.append(f"{f.label.en}: {value}")
        elif f.type == "textarea":
            lines.append(f"{f.label.en}: {value}")
    return "\n".join(lines) or "Survey answered without scores."


def _note(ctx: Context, wf: Workflow, case: Case) -> str:
    note = ctx.payload.get("note") or {}
    lang = str(ctx.settings.get("CASELOOP_DEFAULT_LANGUAGE", "en"))
    text = note.get(lang) or note.get("en") or ""
    return f"{case.reference}: {text}" if text else f"{case.reference}: {case.state}"


def _contact(ctx: Context, conn: Connection, wf: Workflow, case: Case) -> CustomerRef | None:
    """The customer's CRM record: linked before, or found by the case's email or
    phone (and linked, so the search runs once per case)."""
    link = _link(ctx, conn.name, case, "contact")
    if link is not None and link.external_id:
        return _ref(conn.name, link)
    if "find" not in conn.capabilities:
        return None
    data = case.data or {}
    for f in wf.form.fields:
        value = data.get(f.name)
        if f.type not in ("email", "phone") or not value:
            continue
        found = conn.connector.find_customers(
            email=str(value).lower() if f.type == "email" else None,
            phone_e164=str(value) if f.type == "phone" else None, limit=1)
        if found:
            _save(ctx, conn.name, case, "contact", found[0].external_id, found[0].url)
            return found[0]
    return None


def _link(ctx: Context, crm: str, case: Case, object_type: str) -> CRMLink | None:
    return ctx.session.execute(select(CRMLink).where(
        CRMLink.case_id == case.id, CRMLink.crm == crm, CRMLink.object_type == object_type)
    ).scalar_one_or_none()


def _save(ctx: Context, crm: str, case: Case, object_type: str, external_id: str,
          url: str | None) -> CRMLink:
    link = _link(ctx, crm, case, object_type)
    if link is None:
        link = CRMLink(case_id=case.id, crm=crm, object_type=object_type)
        ctx.session.add(link)
    link.external_id, link.url = external_id, url or link.url
    link.status, link.last_error, link.synced_at, link.updated_at = (
        "synced", None, ctx.now, ctx.now)
    ctx.session.flush()
    return link


def _ref(crm: str, link: CRMLink | None) -> CustomerRef | None:
    if link is None or not link.external_id:
        return None
    return CustomerRef(crm, link.object_type, link.external_id, link.url)


def _failed(ctx: Context, conn: Connection, case: Case, exc: CRMError) -> None:
    """Record the failure where agents see it. The job's work is rolled back (the
    executor would anyway), so this is its own small commit."""
    ctx.session.rollback()
    final = not exc.retryable or ctx.job.attempts >= ctx.job.max_attempts
    link = _link(ctx, conn.name, case, "case")
    if link is None:
        link = CRMLink(case_id=case.id, crm=conn.name, object_type="case")
        ctx.session.add(link)
    link.status = "failed" if final else "retrying"
    link.last_error, link.updated_at = exc.message[:2000], ctx.now
    if final:
        _event(ctx, case, conn.name, "failed", push=ctx.payload.get("push"),
               reason=exc.message[:500])
    ctx.session.commit()


def _event(ctx: Context, case: Case, crm: str | None, status: str, **extra: Any) -> None:
    payload = {"push": ctx.payload.get("push"), "crm": crm, "status": status,
               "job": ctx.job.id, **extra}
    append(ctx.session, Event, case_id=case.id, kind="crm", actor_name="system", at=ctx.now,
           payload={k: v for k, v in payload.items() if v is not None})


def _case(ctx: Context) -> Case:
    if ctx.case is None:
        raise Skip("the case no longer exists")
    return ctx.case


def _first(data: Mapping[str, Any], names: list[str]) -> str | None:
    for name in names:
        if data.get(name) not in (None, ""):
            return str(data[name])
    return None
