"""Outbound Messages: the URL key and OrganizationId checks, hostile XML,
several notifications in one message, the acknowledgement."""

from __future__ import annotations

import datetime as dt
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
from caseloop_salesforce import SalesforceConnector
from caseloop_salesforce.fake import FakeSalesforce
from caseloop_salesforce.outbound import OUTBOUND_NS, SOAP_NS

from caseloop.crm import InboundRequest, WebhookAuthError
from caseloop.testing import MemoryTokens, snapshot

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">
<OrganizationId>&lol9;</OrganizationId></notifications></soapenv:Body></soapenv:Envelope>"""

XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY f SYSTEM "file:///etc/passwd">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">
<OrganizationId>&f;</OrganizationId></notifications></soapenv:Body></soapenv:Envelope>"""


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as sf:
        yield sf


def make(fake: FakeSalesforce, http: httpx.Client, **more: str) -> SalesforceConnector:
    settings = {"login_url": fake.url, "client_id": fake.client_id,
                "client_secret": fake.client_secret, "refresh_token": "fake-refresh-token",
                "organization_id": fake.organization_id, "url_secret": fake.url_secret, **more}
    tokens = MemoryTokens()
    conn = SalesforceConnector(settings, http, tokens)
    tokens.connector = conn
    return conn


@pytest.fixture
def conn(fake: FakeSalesforce) -> Iterator[SalesforceConnector]:
    with httpx.Client() as http:
        yield make(fake, http)


def with_body(good: InboundRequest, body: bytes) -> InboundRequest:
    return InboundRequest(good.method, good.url, good.headers, body)


def test_a_message_from_another_org_is_refused(fake: FakeSalesforce,
                                               conn: SalesforceConnector) -> None:
    other = fake.outbound_message([("case", "500Qx0000000001AAA")],
                                  organization_id="00DQx0000000009AAA")
    with pytest.raises(WebhookAuthError, match="another Salesforce org"):
        conn.verify_webhook(other, now=NOW)


def test_the_url_key_is_required(fake: FakeSalesforce, conn: SalesforceConnector) -> None:
    good = fake.webhook("case", "500Qx0000000001AAA", "updated", now=NOW)
    base = good.url.split("?")[0]
    for url in (base, base + "?key=", base + "?key=nope", f"{good.url}&key={fake.url_secret}"):
        with pytest.raises(WebhookAuthError, match="key"):
            conn.verify_webhook(InboundRequest("POST", url, good.headers, good.body), now=NOW)
    with pytest.raises(WebhookAuthError, match="POST"):
        conn.verify_webhook(InboundRequest("GET", good.url, {}, b""), now=NOW)


def test_without_settings_every_message_is_refused(fake: FakeSalesforce) -> None:
    with httpx.Client() as http:
        conn = make(fake, http, organization_id="", url_secret="")
        good = fake.webhook("case", "500Qx0000000001AAA", "updated", now=NOW)
        with pytest.raises(WebhookAuthError, match="not set up"):
            conn.verify_webhook(good, now=NOW)


def test_a_15_character_org_id_setting_matches(fake: FakeSalesforce) -> None:
    with httpx.Client() as http:
        conn = make(fake, http, organization_id=fake.organization_id[:15])
        conn.verify_webhook(fake.webhook("contact", "003Qx0000000001AAA", "updated", now=NOW),
                            now=NOW)


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE])
def test_entity_tricks_are_refused_without_expanding(fake: FakeSalesforce,
                                                     conn: SalesforceConnector,
                                                     body: bytes) -> None:
    good = fake.webhook("case", "500Qx0000000001AAA", "updated", now=NOW)
    started = time.perf_counter()
    with pytest.raises(WebhookAuthError, match="DTD"):
        conn.verify_webhook(with_body(good, body), now=NOW)
    with pytest.raises(WebhookAuthError, match="DTD"):
        conn.parse_webhook(with_body(good, body))
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(("body", "reason"), [
    (b"<not xml", "well-formed"), (b"<a/>", "SOAP Envelope"),
    (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>',
     "notifications"),
    (b"x" * (4 * 1024 * 1024 + 1), "more than"),
])
def test_what_is_not_an_outbound_message_is_refused(fake: FakeSalesforce,
                                                    conn: SalesforceConnector, body: bytes,
                                                    reason: str) -> None:
    good = fake.webhook("case", "500Qx0000000001AAA", "updated", now=NOW)
    with pytest.raises(WebhookAuthError, match=reason):
        conn.verify_webhook(with_body(good, body), now=NOW)


def test_several_notifications_become_several_events(fake: FakeSalesforce,
                                                     conn: SalesforceConnector) -> None:
    contact = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                phone_e164="+8613800138000")
    case = conn.upsert_case(snapshot("4711")).external_id
    message = fake.outbound_message([("case", case), ("contact", contact), ("case", case)])
    conn.verify_webhook(message, now=NOW)
    events = conn.parse_webhook(message)
    assert [(e.object_type, e.external_ids) for e in events] == [
        ("case", (case,)), ("contact", (contact,)), ("case", (case,))]
    assert len({e.event_id for e in events}) == 3  # one per notification, not per record
    assert all(e.event_id.startswith("04l") and e.action == "updated" for e in events)
    assert events[0].raw["fields"]["Subject"] == "Parcel arrived damaged"
    assert events[0].raw["organization_id"] == fake.organization_id
    assert events[0].occurred_at is not None


def test_trailing_whitespace_is_the_same_message(fake: FakeSalesforce,
                                                 conn: SalesforceConnector) -> None:
    # No signature covers the bytes: whitespace after the envelope changes nothing.
    good = fake.webhook("contact", "003Qx0000000001AAA", "updated", now=NOW)
    conn.verify_webhook(with_body(good, good.body + b" \n"), now=NOW)
    assert conn.parse_webhook(with_body(good, good.body + b" ")) == conn.parse_webhook(good)


def test_the_acknowledgement_is_a_soap_ack(conn: SalesforceConnector) -> None:
    root = ET.fromstring(conn.acknowledgement())
    ack = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notificationsResponse/"
                    f"{{{OUTBOUND_NS}}}Ack")
    assert ack is not None and ack.text == "true"


def test_no_subscriptions_to_arm(conn: SalesforceConnector) -> None:
    from caseloop.crm import UnsupportedOperation

    with pytest.raises(UnsupportedOperation, match="Outbound Messages"):
        conn.ensure_subscriptions("https://caseloop.example/crm/salesforce/inbound")
