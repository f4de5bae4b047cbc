"""Plugin event listeners (the ``on_event`` hook), run by the worker, never in a request.

The worker's periodic sweep turns each new case event into a ``plugin_event``
job (the cursor and the jobs in one transaction), so a listener that fails is
retried with backoff and finally dead-lettered where operators see it, like any
outbox message; meanwhile the events after it are not held up. Delivery is at
least once: listeners make themselves idempotent on ``event["id"]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pluggy
from sqlalchemy import select
from sqlalchemy.orm import Session

from .jobs import Context, Skip, enqueue
from .models import Case, Cursor, Event

#: Events are picked up once they are this old: a transaction that wrote an event
#: with a lower id but committed later than a higher one is still seen (ids come
#: from a sequence, commits in any order).
SETTLE = dt.timedelta(seconds=5)
BATCH = 500


def ticker(pm: pluggy.PluginManager) -> Callable[[Session, dt.datetime], int]:
    def plugin_events(session: Session, now: dt.datetime) -> int:
        if not pm.hook.on_event.get_hookimpls():
            return 0
        cursor = session.get(Cursor, "on_event", with_for_update=True)
        if cursor is None:
            # Listeners start with what happens from now on, not the whole history.
            last = session.execute(select(Event.id).order_by(Event.id.desc()).limit(1)
                                   ).scalar_one_or_none()
            session.add(Cursor(name="on_event", position=last or 0, updated_at=now))
            return 0
        ids = list(session.execute(select(Event.id).where(
            Event.id > cursor.position, Event.at <= now - SETTLE).order_by(Event.id)
            .limit(BATCH)).scalars())
        for event_id in ids:
            enqueue(session, "plugin_event", dedupe_key=f"plugin_event:{event_id}",
                    event=event_id)
        if ids:
            cursor.position, cursor.updated_at = ids[-1], now
        return len(ids)

    return plugin_events


def dispatch(ctx: Context) -> str | None:
    """One event to every listener."""
    if ctx.plugins is None:
        raise Skip("no plugins are loaded")
    event = ctx.session.get(Event, ctx.payload.get("event"))
    if event is None:
        raise Skip("the event is gone (its case was deleted)")
    case = ctx.session.get(Case, event.case_id)
    ctx.plugins.hook.on_event(event=event_json(event), case=case_json(case),
                              settings=dict(ctx.settings))
    return f"event {event.id} ({event.kind}) to {len(ctx.plugins.hook.on_event.get_hookimpls())}" \
           " listener(s)"


def event_json(e: Event) -> dict[str, Any]:
    return {"id": e.id, "case_id": e.case_id, "kind": e.kind, "actor": e.actor_name,
            "trigger": e.trigger, "from_state": e.from_state, "to_state": e.to_state,
            "payload": e.payload or {}, "at": e.at.isoformat()}


def case_json(c: Case | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"id": c.id, "reference": c.reference, "workflow": c.workflow, "state": c.state,
            "closed": c.closed, "data": c.data or {}, "customer_ref": c.customer_ref,
            "priority": c.priority, "version": c.version}
