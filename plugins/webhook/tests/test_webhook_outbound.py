"""Pushes to the in-house system: signatures, idempotency keys, answers and errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caseloop.crm import (
    Activity,
    CRMAuthError,
    CRMBadResponse,
    CRMNotFound,
    CRMRateLimited,
    CRMValidationError,
    CustomerRef,
    UnsupportedOperation,
    http_client,
)
from caseloop.notify import sign, verify_signature
from caseloop.testing import MemoryTokens, snapshot
from caseloop_webhook import Webhook
from caseloop_webhook.fake import FakeReceiver


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeReceiver]:
    with FakeReceiver() as fake:
        yield fake


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with http_client(connect=1.0, read=1.0) as client:
        yield client


def connect(fake: FakeReceiver, http: httpx.Client, **more: Any) -> Webhook:
    config = {"cases_url": f"{fake.url}/cases", "lookup_url": f"{fake.url}/customers",
              "secret": fake.secret, "inbound_secret": fake.inbound_secret, **more}
    return Webhook({k: v for k, v in config.items() if v is not None}, http, MemoryTokens())


def note(key: str, *refs: CustomerRef) -> Activity:
    return Activity(key, "note", "Called back <b>twice</b> & left a message",
                    dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC), refs)


def test_the_receiver_sees_caseloops_own_signature(fake: FakeReceiver,
                                                   http: httpx.Client) -> None:
    start = len(fake.received)
    connect(fake, http).upsert_case(snapshot("sig-1"))
    [(method, path, headers, raw)] = fake.received[start:]
    assert (method, path) == ("POST", "/cases")
    header = headers["X-Caseloop-Signature"]
    stamp = int(header.split(",")[0].removeprefix("t="))
    # The very format caseloop.notify signs its workflow webhooks with.
    assert header == sign(fake.secret, raw, stamp)
    assert verify_signature(fake.secret, header, raw, now=stamp)
    assert not verify_signature("another-secret-0123456", header, raw, now=stamp)
    assert headers["Idempotency-Key"] == "sig-1"
    body = json.loads(raw)
    assert body["type"] == "case" and body["caseloop_id"] == "sig-1"
    assert body["status"] == "open" and body["caseloop_url"].endswith("/cases/sig-1")


def test_the_same_idempotency_key_twice_is_one_record(fake: FakeReceiver,
                                                      http: httpx.Client) -> None:
    conn = connect(fake, http)
    first = conn.add_activity(note("idem:1"))
    again = conn.add_activity(note("idem:1"))
    assert first == again
    assert len([a for a in fake.activities() if a["caseloop_id"] == "idem:1"]) == 1
    pushed = conn.upsert_case(snapshot("idem-case"))
    updated = conn.upsert_case(snapshot("idem-case", category="done", version=2))
    assert pushed.created and not updated.created and pushed.external_id == updated.external_id
    [case] = [c for c in fake.cases() if c["caseloop_id"] == "idem-case"]
    assert case["status"] == "done" and case["version"] == 2


def test_activities_go_to_their_own_url_when_set(fake: FakeReceiver,
                                                 http: httpx.Client) -> None:
    conn = connect(fake, http, activities_url=f"{fake.url}/activities")
    case = conn.upsert_case(snapshot("own-url"))
    conn.add_activity(note("own-url:1", CustomerRef("webhook", "case", case.external_id)))
    method, path, _, raw = fake.received[-1]
    body = json.loads(raw)
    assert (method, path, body["type"]) == ("POST", "/activities", "activity")
    assert body["attach_to"] == [{"crm": "webhook", "object_type": "case",
                                  "external_id": case.external_id}]
    assert body["body_text"] == "Called back <b>twice</b> & left a message"  # as it is


def test_a_wrong_secret_is_an_auth_error(fake: FakeReceiver, http: httpx.Client) -> None:
    conn = connect(fake, http, secret="not-the-shared-secret")
    with pytest.raises(CRMAuthError) as info:
        conn.upsert_case(snapshot("bad-secret"))
    assert "secret" in str(info.value)


def test_429_carries_retry_after(fake: FakeReceiver, http: httpx.Client) -> None:
    fake.inject("rate_limit")
    with pytest.raises(CRMRateLimited) as info:
        connect(fake, http).upsert_case(snapshot("slow"))
    assert info.value.retry_after == 3.0


def test_a_4xx_is_a_validation_error_showing_the_body(fake: FakeReceiver,
                                                      http: httpx.Client) -> None:
    fake.answer_next(422, '{"error": "subject too long for our ticket table"}')
    with pytest.raises(CRMValidationError) as info:
        connect(fake, http).upsert_case(snapshot("long"))
    assert "422" in str(info.value) and "subject too long" in str(info.value)


@pytest.mark.parametrize("answer", ['{"ok": true}', '{"id": "x", "created": "yes"}',
                                    '{"id": "", "created": true}', '[1, 2]',
                                    '{"id": "x", "created": false, "url": 7}'])
def test_an_answer_of_another_shape_is_a_bad_response(fake: FakeReceiver, http: httpx.Client,
                                                      answer: str) -> None:
    fake.answer_next(200, answer)
    with pytest.raises(CRMBadResponse):
        connect(fake, http).upsert_case(snapshot("shape"))


def test_an_unknown_case_is_not_found(fake: FakeReceiver, http: httpx.Client) -> None:
    with pytest.raises(CRMNotFound):
        connect(fake, http).get_case("case-does-not-exist")


def test_a_lookup_keeps_the_urls_own_query(fake: FakeReceiver, http: httpx.Client) -> None:
    conn = connect(fake, http, lookup_url=f"{fake.url}/customers?tenant=7")
    fake.add_customer(name="Q", email="q@example.com", phone_e164="+8613800138009")
    assert len(conn.find_customers(email="Q@example.com")) == 1
    _, _, headers, _ = fake.received[-1]
    assert headers["X-Caseloop-Signature"].startswith("t=")


def test_the_profile_fields_are_mapped(fake: FakeReceiver, http: httpx.Client) -> None:
    cid = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                            phone_e164="+8613800138000",
                            properties={"tier": "gold", "segment": "retail"})
    profile = connect(fake, http, profile_fields={"value_tier": "tier"}).get_profile(
        CustomerRef("webhook", "contact", cid))
    assert (profile.segment, profile.value_tier, profile.lifecycle_stage) == (
        "retail", "gold", None)
    assert profile.phones_e164 == ("+8613800138000",) and profile.raw["tier"] == "gold"


def test_without_a_lookup_url_find_says_what_to_set(fake: FakeReceiver,
                                                    http: httpx.Client) -> None:
    conn = connect(fake, http, lookup_url=None)
    with pytest.raises(UnsupportedOperation) as info:
        conn.find_customers(email="a@example.com")
    assert "lookup_url" in str(info.value)


def test_no_tokens_no_polling(fake: FakeReceiver, http: httpx.Client) -> None:
    conn = connect(fake, http)
    with pytest.raises(UnsupportedOperation):
        conn.refresh_token(None)
    with pytest.raises(UnsupportedOperation):
        conn.poll_changes(None)
