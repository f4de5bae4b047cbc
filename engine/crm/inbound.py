"""Changes coming from CRMs: stored once, turned into cases or profile refreshes
by the worker.

Webhooks (``POST /api/hooks/<crm>``) and polls both end in :func:`store`: one
row per event, the unique (crm, event_id) key dropping redeliveries, and a
``crm_event`` job per new row in the same transaction. The job re-fetches the
record from the CRM rather than trusting the payload.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..cases import Actor
from ..errors import CaseError
from ..jobs import Context, Fail, Retry, Skip, enqueue
from ..models import DbSession, Event, Job, append
from .connections import Connection, Connections, CRMSetupError
from .contract import CustomerProfile, CustomerRef, InboundEvent
from .errors import CRMError, CRMNotFound
from .tables import CRMCursor, CRMInbound, CRMLink, CRMProfile


def store(session: DbSession, events: Iterable[InboundEvent], source: str,
          now: dt.datetime) -> tuple[int, int]:
    """Keep each event once and queue its handling; (new, duplicates)."""
    new = dupes = 0
    for e in events:
        if session.execute(select(CRMInbound.id).where(
                CRMInbound.crm == e.crm, CRMInbound.event_id == e.event_id[:300])).first():
            dupes += 1
            continue
        row = CRMInbound(crm=e.crm, event_id=e.event_id[:300], object_type=e.object_type,
                         external_ids=list(e.external_ids), action=e.action,
                         occurred_at=e.occurred_at, received_at=now, source=source,
                         raw=_jsonable(e.raw))
        try:
            with session.begin_nested():  # a concurrent delivery of the same event
                session.add(row)
                session.flush()
        except IntegrityError:
            dupes += 1
            continue
        enqueue(session, "crm_event", dedupe_key=f"crm_event:{row.id}", inbound=row.id)
        new += 1
    return new, dupes


def handle(ctx: Context) -> str | None:
    """One stored event: a contact's profile refreshed, a CRM ticket opened as a
    case, a change noted on the linked case."""
    row = ctx.session.get(CRMInbound, ctx.payload.get("inbound"))
    if row is None:
        raise Skip("the inbound event is gone")
    conn = _connection(ctx, row.crm)
    try:
        if row.object_type == "contact":
            return _profiles(ctx, conn, row)
        if row.object_type in ("case", "ticket"):
            return _cases(ctx, conn, row)
    except CRMError as exc:
        if exc.retryable:
            after = dt.timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
            raise Retry(f"{row.crm}: {exc.message}", after=after) from None
        raise Fail(f"{row.crm}: {exc.message}") from None
    raise Skip(f"{row.crm} {row.object_type} events are not used")


def _profiles(ctx: Context, conn: Connection, row: CRMInbound) -> str:
    if "profile" not in conn.capabilities:
        raise Skip(f"{conn.name} gives no profiles")
    done = []
    for external_id in row.external_ids:
        if row.action == "deleted":
            continue
        try:
            profile = conn.connector.get_profile(_contact_ref(conn, external_id))
        except CRMNotFound:
            continue
        remember(ctx.session, conn, profile, ctx.now)
        done.append(external_id)
    return f"refreshed {len(done)} profile(s)"


def remember(session: DbSession, conn: Connection, profile: CustomerProfile,
             now: dt.datetime) -> CRMProfile:
    """Store a fetched profile with the deployment's values for its tiers."""
    mapped = map_profile(profile, conn.setting("profile", {}) or {})
    row = session.get(CRMProfile, (conn.name, profile.ref.external_id))
    if row is None:
        row = CRMProfile(crm=conn.name, external_id=profile.ref.external_id)
        session.add(row)
    row.display_name = profile.display_name
    row.segment, row.value_tier, row.lifecycle_stage = (
        mapped["segment"], mapped["value_tier"], mapped["lifecycle_stage"])
    row.url, row.fetched_at = profile.ref.url, now
    row.data = {"emails": list(profile.emails), "phones": list(profile.phones_e164),
                "open_tickets": profile.open_tickets}
    return row


def map_profile(profile: CustomerProfile, mapping: Mapping[str, Any]) -> dict[str, str | None]:
    """segment / value_tier / lifecycle_stage in the deployment's words. A mapping
    entry ``{field: <CRM property>, values: {<CRM value>: <ours>}}`` reads the
    property from the raw record; without ``field`` the connector's value is used.
    Values not listed pass through unchanged."""
    out: dict[str, str | None] = {}
    for key in ("segment", "value_tier", "lifecycle_stage"):
        rule = mapping.get(key) or {}
        value: Any = getattr(profile, key)
        if rule.get("field"):
            value = profile.raw.get(str(rule["field"]))
        if value is not None:
            value = (rule.get("values") or {}).get(str(value), str(value))
        out[key] = value
    return out


def _cases(ctx: Context, conn: Connection, row: CRMInbound) -> str:
    out = []
    for external_id in row.external_ids:
        linked = ctx.session.execute(select(CRMLink).where(
            CRMLink.crm == conn.name, CRMLink.object_type == "case",
            CRMLink.external_id == external_id)).scalars().first()
        if linked is not None:
            if row.action != "created":
                append(ctx.session, Event, case_id=linked.case_id, kind="crm",
                       actor_name="system", at=ctx.now,
                       payload={"crm": conn.name, "status": f"{row.action} in the CRM",
                                "external_id": external_id,
                                "fields": list(row.raw.get("changed_fields", []))})
            out.append(f"{external_id}: linked case noted")
            continue
        if row.action != "created":
            continue
        out.append(_open(ctx, conn, external_id))
    return "; ".join(out) or "nothing to do"


def _open(ctx: Context, conn: Connection, external_id: str) -> str:
    """A ticket raised in the CRM becomes a case of the configured workflow."""
    inbound = conn.setting("inbound") or {}
    if not inbound.get("workflow"):
        return f"{external_id}: not opened (no inbound workflow configured)"
    crm_case = conn.connector.get_case(external_id)
    if crm_case.caseloop_id:
        return f"{external_id}: pushed by Caseloop ({crm_case.caseloop_id})"
    values = {"subject": crm_case.subject, "description": crm_case.description,
              "priority": crm_case.priority, "status": crm_case.status, **crm_case.raw}
    fields: Mapping[str, str] = inbound.get("fields") or {"subject": "subject",
                                                          "description": "description"}
    data: dict[str, Any] = {ours: values[theirs] for theirs, ours in fields.items()
                            if values.get(theirs) not in (None, "")}
    data.update(inbound.get("set") or {})
    if crm_case.customer is not None and "profile" in conn.capabilities:
        profile = conn.connector.get_profile(crm_case.customer)
        remember(ctx.session, conn, profile, ctx.now)
        for theirs, ours in (inbound.get("customer") or {}).items():
            value = {"name": profile.display_name,
                     "email": profile.emails[0] if profile.emails else None,
                     "phone": profile.phones_e164[0] if profile.phones_e164 else None
                     }.get(theirs, profile.raw.get(theirs))
            if value not in (None, ""):
                data[ours] = value
    try:
        case = ctx.cases.create(str(inbound["workflow"]), data, Actor.system())
    except CaseError as exc:
        raise Fail(f"{conn.name} ticket {external_id} cannot open a case: {exc.message} "
                   f"{exc.fields or ''} (map more CRM fields in CASELOOP_CRM."
                   f"{conn.name}.inbound)") from None
    link = CRMLink(case_id=case.id, crm=conn.name, object_type="case", external_id=external_id,
                   url=crm_case.ref.url, status="synced", synced_at=ctx.now, updated_at=ctx.now)
    ctx.session.add(link)
    if crm_case.customer is not None:
        ctx.session.add(CRMLink(case_id=case.id, crm=conn.name, object_type="contact",
                                external_id=crm_case.customer.external_id,
                                url=crm_case.customer.url, status="synced", synced_at=ctx.now,
                                updated_at=ctx.now))
    ctx.session.flush()
    return f"{external_id}: opened {case.reference}"


def poll(ctx: Context) -> str | None:
    """Ask a CRM what changed since the cursor; store the events (deduplicated)."""
    conn = _connection(ctx, str(ctx.payload["crm"]))
    cursor = ctx.session.get(CRMCursor, conn.name) or CRMCursor(crm=conn.name)
    ctx.session.add(cursor)
    try:
        events, position = conn.connector.poll_changes(cursor.cursor)
    except CRMError as exc:
        if exc.retryable:
            raise Retry(f"{conn.name}: {exc.message}") from None
        raise Fail(f"{conn.name}: {exc.message}") from None
    new, dupes = store(ctx.session, events, "poll", ctx.now)
    cursor.cursor, cursor.polled_at = position, ctx.now
    return f"{new} new, {dupes} already seen"


def subscribe(ctx: Context) -> str | None:
    """Keep webhook subscriptions alive (Zoho's channels expire within a day)."""
    conn = _connection(ctx, str(ctx.payload["crm"]))
    public = str(ctx.settings.get("CASELOOP_PUBLIC_URL", "")).rstrip("/")
    callback = f"{public}/api/hooks/{conn.name}"
    try:
        conn.connector.ensure_subscriptions(callback)
    except CRMError as exc:
        if exc.retryable:
            raise Retry(f"{conn.name}: {exc.message}") from None
        raise Fail(f"{conn.name}: {exc.message}") from None
    cursor = ctx.session.get(CRMCursor, conn.name) or CRMCursor(crm=conn.name)
    cursor.subscribed_at = ctx.now
    ctx.session.add(cursor)
    return f"subscribed {callback}"


def ticker(conns: Connections) -> Callable[[Session, dt.datetime], int]:
    """The worker's periodic CRM work: a poll and a subscription renewal per CRM
    when due. Dedupe keys per time slot keep several workers from doubling them."""

    def crm_schedule(session: Session, now: dt.datetime) -> int:
        added = 0
        for name in conns.names():
            settings = conns.config[name]
            for kind, key, default in (("crm_poll", "poll_every", 300),
                                       ("crm_subscribe", "subscribe_every", 12 * 3600)):
                every = float(settings.get(key, default) or 0)
                if every <= 0:
                    continue
                cls = conns.classes.get(settings.get("connector", name))
                needed = "poll" if kind == "crm_poll" else "subscribe"
                if cls is None or needed not in getattr(cls, "capabilities", ()):
                    continue
                slot = int(now.timestamp() // every)
                key_ = f"{kind}:{name}:{slot}"
                if session.execute(select(Job.id).where(Job.dedupe_key == key_)).first():
                    continue
                try:
                    with session.begin_nested():  # another worker may queue it too
                        enqueue(session, kind, run_at=now, dedupe_key=key_, crm=name)
                    added += 1
                except IntegrityError:
                    pass
        return added

    return crm_schedule


def _connection(ctx: Context, name: str) -> Connection:
    if ctx.crm is None:
        raise Fail(f"CRM '{name}' is not configured any more")
    try:
        return ctx.crm.get(name)
    except CRMSetupError as exc:
        raise Retry(f"CRM '{name}' is not usable: {exc}") from None


def _contact_ref(conn: Connection, external_id: str) -> CustomerRef:
    return CustomerRef(conn.name, "contact", external_id)


def _jsonable(raw: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(dict(raw), default=str)))
