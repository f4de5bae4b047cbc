"""Inbound calls from the other system: the signature check and the event format.

The scheme is Caseloop's own outbound one (:func:`caseloop.notify.sign`): a header
``X-Caseloop-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Literal, cast

from caseloop.crm import CRMBadResponse, InboundEvent, InboundRequest, WebhookAuthError
from caseloop.crm.errors import excerpt
from caseloop.notify import verify_signature

HEADER = "X-Caseloop-Signature"
TYPES = ("contact", "case")
ACTIONS = ("created", "updated", "deleted", "merged", "other")
Action = Literal["created", "updated", "deleted", "merged", "other"]


def verify(request: InboundRequest, secret: str | None, *, now: dt.datetime,
           tolerance: int) -> None:
    """Raise WebhookAuthError unless ``request`` is signed with ``secret`` within
    ``tolerance`` seconds of ``now``."""
    if not secret:
        raise WebhookAuthError("no inbound_secret is configured, so no inbound call can be "
                               "trusted: set inbound_secret (shared with the sending system)")
    header = request.header(HEADER)
    if not header:
        raise WebhookAuthError(f"the call carries no {HEADER} header")
    stamp = int(now.timestamp())
    if verify_signature(secret, header, request.body, now=stamp, tolerance=tolerance):
        return
    stamps = [v for k, _, v in (p.strip().partition("=") for p in header.split(","))
              if k == "t"]
    if len(stamps) == 1 and stamps[0].isascii() and stamps[0].isdigit() \
            and abs(stamp - int(stamps[0])) > tolerance:
        raise WebhookAuthError(f"the call was signed at t={stamps[0]}, more than {tolerance} s "
                               f"from now ({stamp}): a replay, or a clock out of sync")
    raise WebhookAuthError(f"the {HEADER} header does not sign this body with inbound_secret "
                           "(forged, altered, or the secrets differ)")


def parse(request: InboundRequest, crm: str) -> list[InboundEvent]:
    """``{"events": [{"id", "type", "action", "ids", "occurred_at"}]}`` as events; any
    other shape is CRMBadResponse (answered 400: the sender must fix its call)."""
    try:
        body = json.loads(request.body)
    except ValueError:
        raise _bad("the body is not JSON", request.body) from None
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise _bad('expected {"events": [...]}', request.body)
    return [_event(item, i, crm) for i, item in enumerate(body["events"])]


def _event(item: Any, index: int, crm: str) -> InboundEvent:
    where = f"events[{index}]"
    if not isinstance(item, dict):
        raise _bad(f"{where} is not an object", json.dumps(item))
    event_id, kind, action, ids = (item.get(k) for k in ("id", "type", "action", "ids"))
    if not isinstance(event_id, str) or not event_id.strip():
        raise _bad(f"{where}.id must be a non-empty string (the deduplication key)", item)
    if kind not in TYPES:
        raise _bad(f"{where}.type must be one of {', '.join(TYPES)}", item)
    if action not in ACTIONS:
        raise _bad(f"{where}.action must be one of {', '.join(ACTIONS)}", item)
    if not isinstance(ids, list) or not ids or \
            not all(isinstance(i, str) and i for i in ids):
        raise _bad(f"{where}.ids must be a non-empty list of record ids (strings)", item)
    return InboundEvent(crm=crm, event_id=event_id, object_type=kind, external_ids=tuple(ids),
                        action=cast(Action, action),
                        occurred_at=_when(item.get("occurred_at"), where, item), raw=item)


def _when(value: Any, where: str, item: Mapping[str, Any]) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise _bad(f"{where}.occurred_at must be an ISO 8601 time with an offset "
                   "(2026-11-23T09:30:00Z) or null", item)
    return when.astimezone(dt.UTC)


def _bad(problem: str, got: Any) -> CRMBadResponse:
    text = got if isinstance(got, bytes | str) else json.dumps(got, default=str)
    return CRMBadResponse(f"inbound webhook: {problem}; got {excerpt(text)!r}")
