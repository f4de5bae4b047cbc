"""Salesforce's own ways of failing: the daily limit as 403, refused refreshes,
error arrays, external id set-up, old API versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from caseloop_salesforce import SalesforceConnector
from caseloop_salesforce._api import raise_for
from caseloop_salesforce.fake import FakeSalesforce

from caseloop.crm import (
    CRMAuthError,
    CRMBadResponse,
    CRMConflict,
    CRMNotFound,
    CRMPermissionError,
    CRMRateLimited,
    CRMTransientError,
    CRMValidationError,
    CustomerRef,
    Token,
    http_client,
)
from caseloop.testing import MemoryTokens, snapshot


def settings(fake: FakeSalesforce, **more: Any) -> dict[str, Any]:
    return {"login_url": fake.url, "client_id": fake.client_id,
            "client_secret": fake.client_secret, "refresh_token": "fake-refresh-token", **more}


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as sf:
        yield sf


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with http_client(connect=1.0, read=1.0) as client:
        yield client


def connect(fake: FakeSalesforce, http: httpx.Client, **more: Any
            ) -> tuple[SalesforceConnector, MemoryTokens]:
    tokens = MemoryTokens()
    conn = SalesforceConnector(settings(fake, **more), http, tokens)
    tokens.connector = conn
    return conn, tokens


def answer(status: int, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers,
                          request=httpx.Request("GET", "https://x.my.salesforce.com/"))


def test_request_limit_exceeded_is_a_daily_rate_limit(fake: FakeSalesforce,
                                                      http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    conn.find_customers(email="someone@example.com")
    fake.inject("rate_limit")
    with pytest.raises(CRMRateLimited) as info:
        conn.upsert_case(snapshot("1"))
    assert info.value.scope == "daily" and info.value.retryable
    assert "REQUEST_LIMIT_EXCEEDED" in str(info.value)


def test_api_usage_is_recorded_from_sforce_limit_info(fake: FakeSalesforce,
                                                      http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    assert conn.api_usage is None
    conn.upsert_case(snapshot("1"))
    conn.upsert_case(snapshot("2"))
    assert conn.api_usage == (2, fake.api_limit) == (fake.api_used, 15000)


def test_invalid_grant_says_reauthorise(fake: FakeSalesforce, http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    fake.revoke_refresh_tokens()
    with pytest.raises(CRMAuthError) as info:
        conn.find_customers(email="someone@example.com")
    assert not info.value.retryable
    assert "invalid_grant" in str(info.value) and "re-authorise" in str(info.value)


def test_wrong_client_secret_is_an_auth_error(fake: FakeSalesforce, http: httpx.Client) -> None:
    conn, _ = connect(fake, http, client_secret="wrong")
    with pytest.raises(CRMAuthError, match="client_secret"):
        conn.find_customers(email="someone@example.com")


def test_refused_twice_after_a_refresh_is_an_auth_error(fake: FakeSalesforce,
                                                        http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    conn.find_customers(email="someone@example.com")
    fake.inject("expired_token")
    fake.inject("expired_token")
    with pytest.raises(CRMAuthError, match="freshly refreshed"):
        conn.find_customers(email="someone@example.com")
    assert fake.token_refreshes == 2  # the first token and one refresh, not a loop


def test_rotated_refresh_tokens_are_kept(http: httpx.Client) -> None:
    with FakeSalesforce(rotate_refresh_tokens=True) as fake:
        conn, tokens = connect(fake, http)
        conn.find_customers(email="someone@example.com")
        first = tokens.token
        assert first is not None and first.refresh_token != "fake-refresh-token"
        assert first.extra["instance_url"] == fake.url
        fake.expire_sessions()
        conn.find_customers(email="someone@example.com")  # refreshed with the rotated one
        assert fake.token_refreshes == 2


def test_a_reauthorised_refresh_token_in_the_settings_is_used(fake: FakeSalesforce,
                                                              http: httpx.Client) -> None:
    conn, tokens = connect(fake, http)
    tokens.token = Token("stale", refresh_token="revoked-long-ago",
                         extra={"instance_url": fake.url})
    conn.find_customers(email="someone@example.com")  # 401, refresh: stored one refused
    assert tokens.token is not None and tokens.token.refresh_token == "fake-refresh-token"


def test_instance_url_must_be_https_for_a_real_login(http: httpx.Client) -> None:
    tokens = MemoryTokens(Token("t", extra={"instance_url": "http://evil.example"}))
    conn = SalesforceConnector({"client_id": "a", "client_secret": "b", "refresh_token": "c"},
                               http, tokens)
    with pytest.raises(CRMAuthError, match="instance_url"):
        conn.get_case("500Qx0000000001AAA")


def test_validation_rules_and_picklists_are_field_errors(fake: FakeSalesforce,
                                                         http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    fake.rules.append(("Type", "Pick a case type first"))
    with pytest.raises(CRMValidationError) as info:
        conn.upsert_case(snapshot("1"))
    assert info.value.field_errors == {"Type": "Pick a case type first"}
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in str(info.value)
    fake.rules.clear()
    with pytest.raises(CRMValidationError) as info:
        conn.upsert_case(snapshot("1", status="Waiting for Godot"))
    assert set(info.value.field_errors) == {"Status"}
    assert fake.cases() == []


def test_unknown_mapped_field_is_invalid_field(fake: FakeSalesforce, http: httpx.Client) -> None:
    conn, _ = connect(fake, http, field_map={"category": "Category__c"})
    with pytest.raises(CRMValidationError) as info:
        conn.upsert_case(snapshot("1"))
    assert "INVALID_FIELD" in str(info.value) and "Category__c" in info.value.field_errors


def test_mapped_fields_are_sent(http: httpx.Client) -> None:
    with FakeSalesforce(case_fields=("Category__c",)) as fake:
        conn, _ = connect(fake, http, field_map={"category": "Category__c"})
        conn.upsert_case(snapshot("1"))
        assert fake.cases()[0]["Category__c"] == "delivery"


def test_missing_external_id_field_is_not_found(fake: FakeSalesforce,
                                                http: httpx.Client) -> None:
    conn, _ = connect(fake, http, external_id_field="Other_Id__c")
    with pytest.raises(CRMNotFound, match="Other_Id__c"):
        conn.upsert_case(snapshot("1"))


def test_duplicate_external_ids_are_a_conflict(fake: FakeSalesforce, http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    conn.upsert_case(snapshot("1"))
    with fake._lock:  # an org whose field is not unique: two records share the value
        fake._insert("Case", {"Subject": "copy", "Caseloop_Id__c": "1"})
    with pytest.raises(CRMConflict, match="several records"):
        conn.upsert_case(snapshot("1"))


def test_before_v46_an_update_is_204_and_the_id_is_looked_up(fake: FakeSalesforce,
                                                             http: httpx.Client) -> None:
    conn, _ = connect(fake, http, api_version="v45.0")
    first = conn.upsert_case(snapshot("1"))
    again = conn.upsert_case(snapshot("1", category="done"))
    assert first.created and not again.created and again.external_id == first.external_id
    assert fake.cases()[0]["Status"] == "Closed" and fake.cases()[0]["IsClosed"]
    assert ("GET", "/services/data/v45.0/sobjects/Case/Caseloop_Id__c/1?fields=Id") \
        in fake.requests


def test_unknown_records_are_not_found(fake: FakeSalesforce, http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    with pytest.raises(CRMNotFound):
        conn.get_case("500Qx0000000999AAA")
    with pytest.raises(CRMNotFound):
        conn.get_profile(CustomerRef("salesforce", "contact", "003Qx0000000999AAA"))


def test_ids_are_checked_before_they_reach_a_path(fake: FakeSalesforce,
                                                  http: httpx.Client) -> None:
    conn, _ = connect(fake, http)
    for bad in ("../../limits", "500Qx' OR Id != '", ""):
        with pytest.raises(CRMValidationError):
            conn.get_case(bad)
    assert fake.requests == []


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, [{"errorCode": "DUPLICATE_VALUE", "message": "duplicate value found: "
            "Caseloop_Id__c duplicates value on record with id: 500...", "fields": []}],
     CRMConflict),
    (400, [{"errorCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: "
            "[Subject]", "fields": ["Subject"]}], CRMValidationError),
    (403, [{"errorCode": "INSUFFICIENT_ACCESS", "message": "no access"}], CRMPermissionError),
    (403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
     CRMRateLimited),
    (500, b"<html>oops</html>", CRMTransientError),
    (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}], CRMTransientError),
    (400, [{"errorCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}],
     CRMTransientError),
    (400, b"not json", CRMBadResponse),
    (404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
     CRMNotFound),
])
def test_error_bodies_map_to_the_hierarchy(status: int, body: Any, error: type) -> None:
    with pytest.raises(error) as info:
        raise_for(answer(status, body), "testing")
    assert str(info.value).startswith("testing")


def test_required_field_missing_names_the_field() -> None:
    body = [{"errorCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: "
             "[Subject]", "fields": ["Subject"]}]
    with pytest.raises(CRMValidationError) as info:
        raise_for(answer(400, body), "upserting")
    assert info.value.field_errors == {"Subject": "Required fields are missing: [Subject]"}


def test_retry_after_is_honoured_when_sent() -> None:
    body = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "limit"}]
    with pytest.raises(CRMRateLimited) as info:
        raise_for(answer(403, body, **{"Retry-After": "120"}), "x")
    assert info.value.retry_after == 120.0
