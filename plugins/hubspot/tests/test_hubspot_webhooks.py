"""Inbound HubSpot: v3 signatures (window, versions, proxies) and event parsing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from caseloop_hubspot import HubSpot
from caseloop_hubspot.fake import FakeHubSpot
from caseloop_hubspot.webhooks import SIGNATURE, TIMESTAMP, sign

from caseloop.crm import CRMBadResponse, InboundRequest, WebhookAuthError, http_client
from caseloop.testing import MemoryTokens

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def fake() -> FakeHubSpot:
    return FakeHubSpot()  # not served: webhooks need no HTTP


@pytest.fixture
def conn(fake: FakeHubSpot) -> Iterator[HubSpot]:
    with http_client() as http:
        yield HubSpot(fake.oauth_settings() | {"base_url": "http://127.0.0.1:9"}, http,
                      MemoryTokens())


def test_a_stale_or_future_timestamp_is_refused(fake: FakeHubSpot, conn: HubSpot) -> None:
    old = fake.webhook("contact", "101", "updated", now=NOW - dt.timedelta(minutes=5, seconds=1))
    with pytest.raises(WebhookAuthError, match="more than 5 minutes"):
        conn.verify_webhook(old, now=NOW)
    conn.verify_webhook(fake.webhook("contact", "101", "updated",
                                     now=NOW - dt.timedelta(minutes=4, seconds=59)), now=NOW)
    ahead = fake.webhook("contact", "101", "updated", now=NOW + dt.timedelta(minutes=6))
    with pytest.raises(WebhookAuthError):
        conn.verify_webhook(ahead, now=NOW)


def test_a_redelivered_event_keeps_its_event_id(fake: FakeHubSpot, conn: HubSpot) -> None:
    first = fake.webhook("case", "205", "created", now=NOW)
    events = json.loads(first.body)
    again = fake.signed_request([{**events[0], "attemptNumber": 1}],
                                now=NOW + dt.timedelta(minutes=2))
    conn.verify_webhook(again, now=NOW + dt.timedelta(minutes=2))
    ids = [[e.event_id for e in conn.parse_webhook(r)] for r in (first, again)]
    assert ids[0] == ids[1] == [str(events[0]["eventId"])]


def test_v1_and_v2_signatures_are_refused(fake: FakeHubSpot, conn: HubSpot) -> None:
    good = fake.webhook("contact", "101", "updated", now=NOW)
    for version in ("v1", "v2"):
        headers = {"X-HubSpot-Signature": "0" * 64, "X-HubSpot-Signature-Version": version,
                   "Content-Type": "application/json"}
        with pytest.raises(WebhookAuthError, match=f"only signature v3.*{version}"):
            conn.verify_webhook(InboundRequest("POST", good.url, headers, good.body), now=NOW)


def test_the_wrong_secret_or_url_fails_and_webhook_url_fixes_a_proxy(fake: FakeHubSpot) -> None:
    public = "https://support.example.com/crm/hubspot/webhook?k=1"
    signed = fake.signed_request([{"eventId": 1, "subscriptionType": "contact.creation",
                                   "objectId": 101, "occurredAt": 1}], now=NOW, url=public)
    behind = InboundRequest("POST", "http://10.0.0.5:8000/crm/hubspot/webhook?k=1",
                            signed.headers, signed.body)
    with http_client() as http:
        plain = HubSpot(fake.oauth_settings(), http, MemoryTokens())
        with pytest.raises(WebhookAuthError, match="webhook_url"):
            plain.verify_webhook(behind, now=NOW)
        proxied = HubSpot(fake.oauth_settings() | {
            "webhook_url": "https://support.example.com/crm/hubspot/webhook"}, http,
            MemoryTokens())
        proxied.verify_webhook(behind, now=NOW)  # the request's query is kept
        other = HubSpot(fake.oauth_settings() | {"client_secret": "another"}, http,
                        MemoryTokens())
        with pytest.raises(WebhookAuthError, match="does not match"):
            other.verify_webhook(signed, now=NOW)
        unset = HubSpot({"access_token": "x", "base_url": fake.url or "http://x"}, http,
                        MemoryTokens())
        with pytest.raises(WebhookAuthError, match="no client_secret"):
            unset.verify_webhook(signed, now=NOW)


def test_url_encoded_characters_in_the_uri_are_decoded(fake: FakeHubSpot, conn: HubSpot) -> None:
    body, stamp = b"[]", str(int(NOW.timestamp() * 1000))
    decoded = "https://caseloop.test/hook?at=a:b@c"
    headers = {SIGNATURE: sign(fake.client_secret, "POST", decoded, body, stamp),
               TIMESTAMP: stamp}
    conn.verify_webhook(InboundRequest("POST", "https://caseloop.test/hook?at=a%3Ab%40c",
                                       headers, body), now=NOW)


def test_events_are_normalised_and_ordered(conn: HubSpot) -> None:
    events = [
        {"eventId": 3, "subscriptionType": "contact.merge", "objectId": 11, "occurredAt": 3000,
         "primaryObjectId": 11, "mergedObjectIds": [12, 13]},
        {"eventId": 1, "subscriptionType": "ticket.creation", "objectId": 20, "occurredAt": 1000},
        {"eventId": 2, "subscriptionType": "contact.propertyChange", "objectId": 11,
         "occurredAt": 2000, "propertyName": "email", "propertyValue": "x@example.com"},
        {"eventId": 4, "subscriptionType": "object.deletion", "objectTypeId": "0-5",
         "objectId": 21, "occurredAt": 4000},
        {"eventId": 5, "subscriptionType": "deal.associationChange", "objectId": 30,
         "occurredAt": 5000},
    ]
    parsed = conn.parse_webhook(InboundRequest("POST", "https://x", {},
                                               json.dumps(events).encode()))
    assert [(e.event_id, e.object_type, e.action, e.external_ids, e.changed_fields)
            for e in parsed] == [
        ("1", "case", "created", ("20",), ()),
        ("2", "contact", "updated", ("11",), ("email",)),
        ("3", "contact", "merged", ("11", "12", "13"), ()),
        ("4", "case", "deleted", ("21",), ()),
        ("5", "deal", "other", ("30",), ()),
    ]
    assert parsed[0].occurred_at == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert parsed[1].raw["propertyValue"] == "x@example.com"


@pytest.mark.parametrize("body", [b"not json", b'{"eventId": 1}', b'[{"objectId": 1}]'])
def test_a_body_of_the_wrong_shape_is_a_bad_response(conn: HubSpot, body: bytes) -> None:
    with pytest.raises(CRMBadResponse):
        conn.parse_webhook(InboundRequest("POST", "https://x", {}, body))
