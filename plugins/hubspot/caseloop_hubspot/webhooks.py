"""Inbound HubSpot: the v3 request signature, webhook event batches, and poll
cursors. Pure functions, so the fake signs with the same code the tests check
against HubSpot's SDK."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from caseloop.crm import CRMBadResponse, InboundEvent, InboundRequest, WebhookAuthError
from caseloop.crm.errors import excerpt

SIGNATURE = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
#: HubSpot's replay window for v3 signatures.
MAX_AGE = dt.timedelta(seconds=300)

#: Characters HubSpot's docs say to decode in the URI before signing (v3).
_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
           "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}

Action = Literal["created", "updated", "deleted", "merged", "other"]
ACTIONS: dict[str, Action] = {"creation": "created", "propertyChange": "updated",
                              "deletion": "deleted", "merge": "merged"}
#: HubSpot object names (subscription prefixes, objectTypeIds) → Caseloop's kinds.
OBJECTS = {"contact": "contact", "ticket": "case", "0-1": "contact", "0-5": "case"}


def sign(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client_secret, method + uri + body + timestamp))."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def decoded_uri(uri: str) -> str:
    for encoded, char in _DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def signed_uri(request_url: str, public_url: str | None) -> str:
    """The URI HubSpot signed: the configured public URL (behind a proxy that
    rewrites host or scheme), with the request's query when it names none."""
    if not public_url:
        return request_url
    query = urlsplit(request_url).query
    if query and not urlsplit(public_url).query:
        return f"{public_url}?{query}"
    return public_url


def verify(request: InboundRequest, *, client_secret: str | None, public_url: str | None,
           now: dt.datetime) -> None:
    """Accept a v3-signed call made within the last 5 minutes; raise otherwise."""
    if not client_secret:
        raise WebhookAuthError("HubSpot webhook refused: no client_secret is configured, so "
                               "the signature cannot be checked; set the app's client secret")
    signature = request.header(SIGNATURE)
    stamp = request.header(TIMESTAMP)
    if not signature or not stamp:
        if request.header("X-HubSpot-Signature"):
            version = request.header("X-HubSpot-Signature-Version") or "v1"
            raise WebhookAuthError(f"HubSpot webhook refused: only signature v3 is accepted, "
                                   f"this call carries {version} (no timestamp, replayable)")
        raise WebhookAuthError(f"HubSpot webhook refused: {SIGNATURE} or {TIMESTAMP} missing")
    try:
        sent = dt.datetime.fromtimestamp(int(stamp) / 1000, dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookAuthError(f"HubSpot webhook refused: {TIMESTAMP} is not epoch "
                               f"milliseconds: {stamp[:40]!r}") from None
    if abs(now - sent) > MAX_AGE:
        raise WebhookAuthError(f"HubSpot webhook refused: signed at {sent.isoformat()}, more "
                               "than 5 minutes from now (a replay, or a clock off)")
    uri = signed_uri(request.url, public_url)
    for candidate in dict.fromkeys((uri, decoded_uri(uri))):
        expected = sign(client_secret, request.method, candidate, request.body, stamp)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return
    raise WebhookAuthError("HubSpot webhook refused: the v3 signature does not match (wrong "
                           "client_secret, a changed body, or a proxy changed the URL: set "
                           "webhook_url to the URL HubSpot calls)")


def parse(crm: str, body: bytes) -> list[InboundEvent]:
    """A webhook batch (a JSON array of events) as Caseloop events, in the order
    they happened; ``event_id`` is HubSpot's eventId, so redeliveries dedupe."""
    try:
        events = json.loads(body)
    except ValueError:
        raise CRMBadResponse(f"HubSpot webhook body is not JSON: {excerpt(body)!r}") from None
    if not isinstance(events, list):
        raise CRMBadResponse(f"HubSpot webhook body is not an array of events: "
                             f"{excerpt(body)!r}")
    out = [_event(crm, item) for item in events]
    return sorted(out, key=lambda e: e.occurred_at or dt.datetime.min.replace(tzinfo=dt.UTC))


def _event(crm: str, item: Any) -> InboundEvent:
    if not isinstance(item, Mapping) or "eventId" not in item or "subscriptionType" not in item:
        raise CRMBadResponse(f"HubSpot webhook event without eventId/subscriptionType: "
                             f"{excerpt(json.dumps(item, default=str))!r}")
    kind, _, verb = str(item["subscriptionType"]).partition(".")
    if kind == "object":  # generic subscriptions name the type by objectTypeId
        kind = str(item.get("objectTypeId", "object"))
    ids = [str(item["objectId"])] if item.get("objectId") is not None else []
    if item.get("primaryObjectId") is not None:
        ids.insert(0, str(item["primaryObjectId"]))
    ids += [str(i) for i in item.get("mergedObjectIds") or ()]
    occurred = item.get("occurredAt")
    return InboundEvent(
        crm=crm, event_id=str(item["eventId"]), object_type=OBJECTS.get(kind, kind),
        external_ids=tuple(dict.fromkeys(ids)), action=ACTIONS.get(verb, "other"),
        occurred_at=(dt.datetime.fromtimestamp(int(occurred) / 1000, dt.UTC)
                     if isinstance(occurred, int) else None),
        changed_fields=(str(item["propertyName"]),) if item.get("propertyName") else (),
        raw=dict(item))


# -- poll cursors ---------------------------------------------------------------------
# One position per object: the last modification time seen (epoch ms) and the ids
# already reported at exactly that time (HubSpot sorts on one property only, so ties
# are told apart by remembering them).
Position = tuple[int, list[str]]


def load_cursor(cursor: str, objects: tuple[str, ...]) -> dict[str, Position]:
    try:
        data = json.loads(cursor)
        return {name: (int(data[name][0]), [str(i) for i in data[name][1]])
                for name in objects}
    except (ValueError, KeyError, TypeError, IndexError):
        raise CRMBadResponse(f"HubSpot poll cursor is not one this connector wrote: "
                             f"{excerpt(cursor)!r}; reset the cursor") from None


def dump_cursor(positions: Mapping[str, Position]) -> str:
    return json.dumps({k: [ms, ids] for k, (ms, ids) in positions.items()},
                      separators=(",", ":"))
