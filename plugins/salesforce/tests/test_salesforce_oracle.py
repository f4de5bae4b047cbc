"""simple-salesforce (the community client, test-only) as an oracle for the fake:
if it parses the fake's answers and raises its own error classes on the fake's
error bodies, the fake speaks the shapes real clients are written against."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from caseloop_salesforce.fake import FakeSalesforce

requests = pytest.importorskip("requests", reason="simple-salesforce needs requests")
simple_salesforce = pytest.importorskip(
    "simple_salesforce", reason="simple-salesforce (the [test] extra) is not installed")
from simple_salesforce import Salesforce  # noqa: E402
from simple_salesforce.exceptions import (  # noqa: E402
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)


class PlainHTTP(requests.adapters.HTTPAdapter):  # type: ignore[misc]
    """simple-salesforce always builds https:// URLs from instance_url; the fake
    serves plain HTTP on loopback, so the scheme is swapped on the way out."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, **kwargs)


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as sf:
        yield sf


@pytest.fixture
def sf(fake: FakeSalesforce) -> Iterator[Any]:
    token = httpx.post(f"{fake.url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": fake.client_id,
        "client_secret": fake.client_secret, "refresh_token": "fake-refresh-token"}).json()
    with requests.Session() as session:
        session.mount(fake.url.replace("http://", "https://"), PlainHTTP())
        yield Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                         version="62.0", session=session)


def test_it_parses_upserts_and_their_created_flag(sf: Any, fake: FakeSalesforce) -> None:
    body = {"Subject": "Parcel arrived damaged", "Status": "New", "Origin": "Web"}
    created = sf.Case.upsert("Caseloop_Id__c/4711", body, raw_response=True)
    updated = sf.Case.upsert("Caseloop_Id__c/4711", {**body, "Status": "Closed"},
                             raw_response=True)
    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["created"] is True and updated.json()["created"] is False
    assert created.json()["id"] == updated.json()["id"] == fake.cases()[0]["Id"]
    record = sf.Case.get_by_custom_id("Caseloop_Id__c", "4711")
    assert record["Status"] == "Closed" and record["attributes"]["type"] == "Case"


def test_it_parses_queries_gets_and_searches(sf: Any, fake: FakeSalesforce) -> None:
    crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                               phone_e164="+8613800138000")
    contact = sf.Contact.get(crm_id)
    assert contact["Email"] == "li.wei@example.com" and contact["Id"] == crm_id
    result = sf.query(f"SELECT Id, SystemModstamp FROM Contact WHERE Id = '{crm_id}'")
    assert result["totalSize"] == 1 and result["done"] is True
    assert result["records"][0]["attributes"]["type"] == "Contact"
    found = sf.restful("parameterizedSearch/", params={
        "q": "li.wei@example.com", "sobject": "Contact", "in": "EMAIL",
        "Contact.fields": "Id,Name"})
    assert [r["Id"] for r in found["searchRecords"]] == [crm_id]
    # simple-salesforce reads the Sforce-Limit-Info header the fake sends
    assert sf.api_usage["api-usage"].used == fake.api_used


def test_its_error_classes_react_to_the_fake_error_bodies(sf: Any, fake: FakeSalesforce
                                                         ) -> None:
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Case.upsert("Caseloop_Id__c/1", {"Subject": "x", "Status": "Nonsense"})
    assert bad.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceMalformedRequest) as query:
        sf.query("SELECT Id FROM Case WHERE Subject LIKE 'x%'")
    assert query.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get("003Qx0000000999AAA")
    fake.inject("rate_limit")
    with pytest.raises(SalesforceRefusedRequest) as limit:
        sf.query("SELECT Id FROM Case")
    assert limit.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    fake.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Case")
    assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
