"""Zoho watch channels: arming and re-arming them, and checking and parsing callbacks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from caseloop_zoho import Zoho
from caseloop_zoho.fake import FakeZoho

from caseloop.crm import CRMValidationError, InboundRequest, WebhookAuthError, http_client
from caseloop.testing import MemoryTokens, snapshot

CALLBACK = "https://caseloop.example.com/crm/zoho/webhook"


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    with FakeZoho() as running:
        yield running


def make(fake: FakeZoho, **settings: Any) -> Iterator[Zoho]:
    tokens = MemoryTokens()
    with http_client(connect=1.0, read=2.0) as http:
        connector = Zoho({**fake.settings(), **settings}, http, tokens)
        tokens.connector = connector
        yield connector


@pytest.fixture
def zoho(fake: FakeZoho) -> Iterator[Zoho]:
    yield from make(fake)


def at(moment: dt.datetime) -> Any:
    return staticmethod(lambda: moment)


def test_settings_match_the_schema(fake: FakeZoho) -> None:
    schema = Zoho.config_schema
    jsonschema.Draft7Validator.check_schema(dict(schema))
    jsonschema.validate({**fake.settings(), "data_centre": "eu",
                         "profile_fields": {"segment": "Kundensegment"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**fake.settings(), "notify_token": "x" * 51}, schema)


# -- arming ----------------------------------------------------------------------------
def test_arming_and_re_arming_replace_the_expiry(zoho: Zoho, fake: FakeZoho) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    zoho.clock = at(start)  # type: ignore[method-assign]
    zoho.ensure_subscriptions(CALLBACK)
    watch = fake.watches[fake.channel_id]
    assert watch["events"] == ["Cases.all", "Contacts.edit"]
    assert watch["token"] == fake.notify_token
    assert watch["notify_url"] == f"{CALLBACK}?key={fake.url_secret}"
    assert watch["channel_expiry"] == start + dt.timedelta(hours=23)
    # The scheduled re-arm, a little later: the channel's expiry moves with it.
    zoho.clock = at(start + dt.timedelta(minutes=30))  # type: ignore[method-assign]
    zoho.ensure_subscriptions(CALLBACK)
    assert list(fake.watches) == [fake.channel_id]
    assert fake.watches[fake.channel_id]["channel_expiry"] == start + dt.timedelta(
        hours=23, minutes=30)


def test_a_channel_asked_for_longer_than_a_day_gets_one_hour(fake: FakeZoho) -> None:
    """Why the connector asks for 23 h: Zoho turns anything over a day into one hour."""
    for zoho in make(fake, channel_hours=30):
        zoho.ensure_subscriptions(CALLBACK)
    expiry = fake.watches[fake.channel_id]["channel_expiry"]
    assert expiry - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)


def test_the_key_joins_an_existing_query(zoho: Zoho, fake: FakeZoho) -> None:
    zoho.ensure_subscriptions(f"{CALLBACK}?tenant=acme")
    assert fake.watches[fake.channel_id]["notify_url"] == (
        f"{CALLBACK}?tenant=acme&key={fake.url_secret}")


def test_arming_needs_the_secrets(fake: FakeZoho) -> None:
    for zoho in make(fake, url_secret=None):
        with pytest.raises(CRMValidationError, match="url_secret"):
            zoho.ensure_subscriptions(CALLBACK)


def test_a_refused_watch_is_an_error(zoho: Zoho, fake: FakeZoho) -> None:
    zoho.find_customers(email="warm@example.com")
    fake.inject_response(400, {"watch": [{"code": "INVALID_DATA", "details": {
        "api_name": "events"}, "message": "invalid event", "status": "error"}]})
    with pytest.raises(CRMValidationError, match="INVALID_DATA"):
        zoho.ensure_subscriptions(CALLBACK)


# -- callbacks -------------------------------------------------------------------------
def test_the_armed_channel_calls_back_and_is_believed(zoho: Zoho, fake: FakeZoho) -> None:
    zoho.ensure_subscriptions(CALLBACK)
    now = dt.datetime.now(dt.UTC)
    case_id = zoho.upsert_case(snapshot("4830")).external_id
    request = fake.webhook("case", case_id, "created", now=now)
    assert request.url.startswith(CALLBACK)
    zoho.verify_webhook(request, now=now)
    [event] = zoho.parse_webhook(request)
    ms = int(now.timestamp() * 1000)
    assert event.event_id == f"{fake.channel_id}:{ms}:{case_id}"
    assert (event.object_type, event.external_ids, event.action) == ("case", (case_id,),
                                                                     "created")
    assert event.occurred_at is not None and abs(event.occurred_at - now) < dt.timedelta(
        milliseconds=2)


def tampered(request: InboundRequest, **changes: Any) -> InboundRequest:
    body = {**json.loads(request.body), **changes}
    return InboundRequest(request.method, request.url, request.headers, json.dumps(body).encode())


@pytest.mark.parametrize("forge", [
    lambda r: tampered(r, token="caseloop-notify-token-0123456788"),
    lambda r: tampered(r, token=None),
    lambda r: tampered(r, channel_id="1000000068002"),
    lambda r: InboundRequest(r.method, r.url.replace("key=", "key=x"), r.headers, r.body),
    lambda r: InboundRequest(r.method, r.url + "&key=again", r.headers, r.body),
    lambda r: InboundRequest(r.method, r.url, r.headers, b"token=caseloop"),
], ids=["forged-token", "no-token", "wrong-channel", "wrong-key", "two-keys", "not-json"])
def test_forgeries_are_refused(zoho: Zoho, fake: FakeZoho, forge: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    good = fake.webhook("contact", "4876876000000100001", "updated", now=now)
    zoho.verify_webhook(good, now=now)
    with pytest.raises(WebhookAuthError):
        zoho.verify_webhook(forge(good), now=now)


def test_stale_and_future_callbacks_are_refused(zoho: Zoho, fake: FakeZoho) -> None:
    now = dt.datetime.now(dt.UTC)
    old = fake.webhook("contact", "1", "updated", now=now - dt.timedelta(days=1, minutes=1))
    with pytest.raises(WebhookAuthError, match="older than"):
        zoho.verify_webhook(old, now=now)
    future = fake.webhook("contact", "1", "updated", now=now + dt.timedelta(minutes=10))
    with pytest.raises(WebhookAuthError, match="future"):
        zoho.verify_webhook(future, now=now)
    undated = tampered(old, server_time=None)
    zoho.verify_webhook(undated, now=now)  # no server_time: the token and key decide


def test_without_secrets_nothing_is_believed(fake: FakeZoho) -> None:
    now = dt.datetime.now(dt.UTC)
    for zoho in make(fake, notify_token=None):
        with pytest.raises(WebhookAuthError, match="must be set"):
            zoho.verify_webhook(fake.webhook("contact", "1", "updated", now=now), now=now)


def test_parse_maps_operations_and_fields(zoho: Zoho, fake: FakeZoho) -> None:
    now = dt.datetime.now(dt.UTC)
    updated = fake.webhook("contact", "7", "updated", now=now)
    [event] = zoho.parse_webhook(updated)
    assert (event.object_type, event.action, event.changed_fields) == (
        "contact", "updated", ("Description",))
    deleted = tampered(fake.webhook("case", "8", "deleted", now=now), ids=["8", "9"])
    [event] = zoho.parse_webhook(deleted)
    assert event.action == "deleted" and event.external_ids == ("8", "9")
    assert event.event_id.endswith(":8,9")
    other = tampered(updated, module="Deals", operation="merge")
    [event] = zoho.parse_webhook(other)
    assert (event.object_type, event.action) == ("deal", "other")
