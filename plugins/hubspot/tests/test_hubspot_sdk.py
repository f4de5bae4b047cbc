"""HubSpot's own Python SDK (hubspot-api-client, Apache-2.0) as a test-only oracle:
its signature code agrees with ours, and it parses the fake's answers (so the
fake's shapes are what HubSpot's client expects)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from caseloop_hubspot.fake import FakeHubSpot
from caseloop_hubspot.webhooks import sign

hubspot = pytest.importorskip("hubspot", reason="hubspot-api-client is not installed "
                              "(pip install caseloop-hubspot[test])")
from hubspot.utils.signature import Signature  # noqa: E402


@pytest.mark.parametrize(("uri", "body"), [
    ("https://caseloop.test/crm/hubspot/webhook", '[{"eventId":1,"objectId":101}]'),
    ("https://support.example.com/hook?portal=62515&x=%2F", ""),
    ("https://caseloop.test/ünïcode", '[{"propertyValue":"Grüße, 你好"}]'),
])
def test_our_v3_signature_is_the_sdks(uri: str, body: str) -> None:
    stamp = str(int(dt.datetime.now(dt.UTC).timestamp() * 1000))  # the SDK checks the age
    ours = sign("the-client-secret", "POST", uri, body.encode(), stamp)
    assert Signature.is_valid(signature=ours, client_secret="the-client-secret",
                              request_body=body, http_uri=uri, http_method="POST",
                              signature_version="v3", timestamp=stamp)
    assert not Signature.is_valid(signature=ours, client_secret="another",
                                  request_body=body, http_uri=uri, http_method="POST",
                                  signature_version="v3", timestamp=stamp)


def test_the_fakes_signed_webhook_passes_the_sdk() -> None:
    fake = FakeHubSpot()
    request = fake.webhook("contact", "101", "updated", now=dt.datetime.now(dt.UTC))
    assert Signature.is_valid(
        signature=request.header("X-HubSpot-Signature-v3"), client_secret=fake.client_secret,
        request_body=request.body.decode(), http_uri=request.url, http_method=request.method,
        signature_version="v3", timestamp=request.header("X-HubSpot-Request-Timestamp"))


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


def _api(api: Any, fake: FakeHubSpot) -> Any:
    api.api_client.configuration.host = fake.url
    return api


def _close(*apis: Any) -> None:
    for api in apis:  # urllib3 keeps sockets pooled; close them (no ResourceWarning)
        api.api_client.rest_client.pool_manager.clear()
        api.api_client.close()


def test_the_sdk_parses_the_fakes_contact_search(fake: FakeHubSpot) -> None:
    from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest

    crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                               phone_e164="+8613800138000")
    client = hubspot.HubSpot(access_token=fake.static_token)
    api = _api(client.crm.contacts.search_api, fake)
    try:
        found = api.do_search(public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[Filter(property_name="email", operator="EQ",
                                                       value="li.wei@example.com")])],
            properties=["email", "firstname"], limit=10))
    finally:
        _close(api)
    assert found.total == 1 and found.results[0].id == crm_id
    assert found.results[0].properties["email"] == "li.wei@example.com"
    assert isinstance(found.results[0].created_at, dt.datetime)
    assert ("POST", "/crm/v3/objects/contacts/search") in fake.calls


def test_the_sdk_parses_the_fakes_ticket_upsert_and_get(fake: FakeHubSpot) -> None:
    from hubspot.crm.tickets import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        SimplePublicObjectBatchInputUpsert,
    )

    client = hubspot.HubSpot(access_token=fake.static_token)
    batch = _api(client.crm.tickets.batch_api, fake)
    basic = _api(client.crm.tickets.basic_api, fake)
    try:
        upserted = batch.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            SimplePublicObjectBatchInputUpsert(
                id_property="caseloop_id", id="4711",
                properties={"subject": "Broken vase", "hs_pipeline_stage": "1"})]))
        ticket = basic.get_by_id(upserted.results[0].id, properties=["subject", "caseloop_id"])
    finally:
        _close(batch, basic)
    assert upserted.status == "COMPLETE" and upserted.results[0].new is True
    assert ticket.properties["caseloop_id"] == "4711"
    assert ticket.properties["subject"] == "Broken vase"
