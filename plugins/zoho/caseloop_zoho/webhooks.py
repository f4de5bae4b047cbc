"""Zoho's Notification API callbacks: checking and parsing them.

Zoho signs nothing. A callback is believed only when the body's ``token`` (echoed from
the watch subscription) and the ``key`` in the notify URL's query string both match,
compared in constant time, and the ``channel_id`` is ours. Callers should re-fetch
records by id rather than trust the payload. The payload's field names (``module``,
``ids``, ``operation``, ``channel_id``, ``token``, ``server_time``,
``affected_fields``) come from Zoho's documentation pages, not from the OpenAPI files:
confirm them in a sandbox.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from caseloop.crm import CRMBadResponse, InboundEvent, InboundRequest, WebhookAuthError
from caseloop.crm.errors import excerpt

Action = Literal["created", "updated", "deleted", "merged", "other"]
ACTIONS: Mapping[str, Action] = {"insert": "created", "create": "created",
                                 "update": "updated", "edit": "updated", "delete": "deleted"}
OBJECT_TYPES: Mapping[str, str] = {"Cases": "case", "Contacts": "contact", "Accounts": "account",
                                   "Leads": "lead", "Deals": "deal"}
#: A callback dated this far in the future is refused (clock skew allowance).
FUTURE_SKEW = dt.timedelta(minutes=5)


def verify(request: InboundRequest, *, now: dt.datetime, token: str | None,
           url_secret: str | None, channel_id: str | None, max_age: dt.timedelta) -> None:
    """Raise WebhookAuthError unless the callback carries our token, key and channel."""
    if not token or not url_secret or not channel_id:
        raise WebhookAuthError("zoho: notify_token, url_secret and channel_id must be set to "
                               "accept Zoho notifications")
    keys = parse_qs(urlsplit(request.url).query).get("key", [])
    if len(keys) != 1 or not _same(keys[0], url_secret):
        raise WebhookAuthError("zoho: the notify URL's key is missing or wrong; the callback "
                               "is not from the watch channel Caseloop armed")
    body = _body(request, WebhookAuthError)
    if not isinstance(body.get("token"), str) or not _same(body["token"], token):
        raise WebhookAuthError("zoho: the notification's token does not match notify_token")
    if str(body.get("channel_id")) != channel_id:
        raise WebhookAuthError(f"zoho: notification for channel {body.get('channel_id')!r}, "
                               f"expected {channel_id}")
    sent = server_time(body)
    if sent is not None:
        if now - sent > max_age:
            raise WebhookAuthError(f"zoho: notification sent at {sent.isoformat()} is older "
                                   f"than {max_age}; refused as a possible replay")
        if sent - now > FUTURE_SKEW:
            raise WebhookAuthError(f"zoho: notification dated {sent.isoformat()}, in the future")


def parse(request: InboundRequest, crm: str) -> list[InboundEvent]:
    """One event per callback, naming every record id it carries."""
    body = _body(request, CRMBadResponse)
    module, ids = body.get("module"), body.get("ids")
    if not isinstance(module, str) or not isinstance(ids, list) or not ids:
        raise CRMBadResponse(f"zoho notification without module/ids: "
                             f"{excerpt(request.body)!r}")
    ids_ = tuple(str(i) for i in ids)
    event_id = f"{body.get('channel_id')}:{body.get('server_time')}:{','.join(ids_)}"
    return [InboundEvent(
        crm=crm, event_id=event_id,
        object_type=OBJECT_TYPES.get(module, module.lower()),
        external_ids=ids_,
        action=ACTIONS.get(str(body.get("operation", "")).lower(), "other"),
        occurred_at=server_time(body),
        changed_fields=_affected(body.get("affected_fields")),
        raw=body,
    )]


def server_time(body: Mapping[str, Any]) -> dt.datetime | None:
    """``server_time`` (epoch milliseconds) as a datetime, when present and numeric."""
    value = body.get("server_time")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return dt.datetime.fromtimestamp(float(value) / 1000, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _affected(value: Any) -> tuple[str, ...]:
    # Seen as [{"<record id>": ["Field", ...]}] or a flat list of names (unverified).
    names: list[str] = []
    for item in value if isinstance(value, list) else ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Mapping):
            for fields in item.values():
                if isinstance(fields, list):
                    names.extend(str(f) for f in fields)
    return tuple(dict.fromkeys(names))


def _body(request: InboundRequest, error: type[Exception]) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except ValueError:
        raise error(f"zoho notification body is not JSON: {excerpt(request.body)!r}") from None
    if not isinstance(body, dict):
        raise error(f"zoho notification body is not an object: {excerpt(request.body)!r}")
    return body


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
