"""Inbound calls from the in-house system: Caseloop's signature scheme and the event format."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caseloop.crm import CRMBadResponse, InboundRequest, WebhookAuthError
from caseloop.notify import sign
from caseloop.testing import MemoryTokens
from caseloop_webhook import Webhook

SECRET = "inbound-secret-0123456789"
NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:  # never used: no call goes out in these tests
        yield client


@pytest.fixture
def conn(http: httpx.Client) -> Webhook:
    return Webhook({"cases_url": "http://in-house.test/cases", "secret": "o" * 20,
                    "inbound_secret": SECRET}, http, MemoryTokens())


def signed(body: Any, *, at: dt.datetime = NOW, secret: str = SECRET) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest("POST", "http://caseloop.test/api/hooks/webhook",
                          {"x-caseloop-signature": sign(secret, raw, int(at.timestamp()))}, raw)


EVENTS = {"events": [
    {"id": "e1", "type": "case", "action": "updated", "ids": ["T-1"],
     "occurred_at": "2026-11-23T09:29:00Z"},
    {"id": "e2", "type": "contact", "action": "merged", "ids": ["C-1", "C-2"],
     "occurred_at": None}]}


def test_a_signed_call_is_accepted_and_parsed(conn: Webhook) -> None:
    request = signed(EVENTS)
    conn.verify_webhook(request, now=NOW + dt.timedelta(seconds=299))
    first, second = conn.parse_webhook(request)
    assert (first.event_id, first.object_type, first.action, first.external_ids) == (
        "e1", "case", "updated", ("T-1",))
    assert first.occurred_at == dt.datetime(2026, 11, 23, 9, 29, tzinfo=dt.UTC)
    assert (second.event_id, second.external_ids, second.occurred_at) == (
        "e2", ("C-1", "C-2"), None)
    assert first.crm == "webhook" and first.raw["id"] == "e1"


def test_a_stale_call_is_refused(conn: Webhook) -> None:
    with pytest.raises(WebhookAuthError) as info:
        conn.verify_webhook(signed(EVENTS), now=NOW + dt.timedelta(seconds=301))
    assert "more than 300 s" in str(info.value)


def test_a_call_from_the_future_is_refused_too(conn: Webhook) -> None:
    with pytest.raises(WebhookAuthError):
        conn.verify_webhook(signed(EVENTS, at=NOW + dt.timedelta(minutes=6)), now=NOW)


@pytest.mark.parametrize("forge", ["other secret", "altered body", "no header", "bad header"])
def test_a_forged_call_is_refused(conn: Webhook, forge: str) -> None:
    good = signed(EVENTS)
    request = {
        "other secret": signed(EVENTS, secret="someone-elses-secret-0123"),
        "altered body": InboundRequest(good.method, good.url, good.headers,
                                       good.body.replace(b"T-1", b"T-9")),
        "no header": InboundRequest(good.method, good.url, {}, good.body),
        "bad header": InboundRequest(good.method, good.url,
                                     {"X-Caseloop-Signature": "v1=00"}, good.body),
    }[forge]
    with pytest.raises(WebhookAuthError):
        conn.verify_webhook(request, now=NOW)


def test_without_an_inbound_secret_nothing_is_trusted(http: httpx.Client) -> None:
    conn = Webhook({"cases_url": "http://in-house.test/cases", "secret": "o" * 20},
                   http, MemoryTokens())
    with pytest.raises(WebhookAuthError) as info:
        conn.verify_webhook(signed(EVENTS), now=NOW)
    assert "inbound_secret" in str(info.value)


def event(**change: Any) -> dict[str, Any]:
    return {"events": [{**EVENTS["events"][0], **change}]}


@pytest.mark.parametrize("body", [
    b"not json", b"[]", {"event": []}, {"events": {}}, {"events": ["e1"]},
    event(id=""), event(id=None), event(type="deal"), event(action="exploded"),
    event(ids=[]), event(ids="T-1"), event(ids=[1]), event(occurred_at="yesterday"),
    event(occurred_at="2026-11-23T09:29:00"),  # no offset: which time zone?
])
def test_another_shape_is_a_bad_response(conn: Webhook, body: Any) -> None:
    with pytest.raises(CRMBadResponse) as info:
        conn.parse_webhook(signed(body))
    assert "inbound webhook" in str(info.value)


def test_no_events_is_no_error(conn: Webhook) -> None:
    assert conn.parse_webhook(signed({"events": []})) == []
