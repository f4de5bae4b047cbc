"""Zoho tokens: data centres, the token endpoint, one refresh for many callers, the
Accounts throttle (10 access tokens per refresh token per 10 minutes)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from caseloop_zoho import Zoho
from caseloop_zoho.fake import FakeZoho
from caseloop_zoho.settings import ACCOUNTS_URLS, accounts_url

from caseloop.crm import (
    CRMAuthError,
    CRMBadResponse,
    CRMRateLimited,
    CRMTransientError,
    Token,
    http_client,
)
from caseloop.testing import MemoryTokens

CREDENTIALS = {"client_id": "1000.X", "client_secret": "s", "refresh_token": "1000.r"}


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    with FakeZoho() as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with http_client(connect=1.0, read=2.0) as client:
        yield client


def connect(fake: FakeZoho, http: httpx.Client, tokens: MemoryTokens | None = None,
            **settings: Any) -> Zoho:
    tokens = tokens or MemoryTokens()
    connector = Zoho({**fake.settings(), **settings}, http, tokens)
    if tokens.connector is None:
        tokens.connector = connector
    return connector


@pytest.mark.parametrize(("dc", "expected"), [
    ("com", "https://accounts.zoho.com"), ("eu", "https://accounts.zoho.eu"),
    ("in", "https://accounts.zoho.in"), ("com.cn", "https://accounts.zoho.com.cn"),
    ("com.au", "https://accounts.zoho.com.au"), ("jp", "https://accounts.zoho.jp"),
    ("ca", "https://accounts.zohocloud.ca"), ("sa", "https://accounts.zoho.sa"),
])
def test_data_centre_picks_the_accounts_server(dc: str, expected: str) -> None:
    assert accounts_url(dc) == expected
    connector = Zoho({**CREDENTIALS, "data_centre": dc}, httpx.Client(), MemoryTokens())
    connector.http.close()
    assert connector.settings.accounts_url == expected
    assert connector.settings.api_domain is None  # from the token response, never derived


def test_accounts_url_override_and_unknown_data_centre() -> None:
    assert accounts_url("eu", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    with pytest.raises(ValueError, match="unknown data_centre 'us'"):
        accounts_url("us")


def test_data_centres_match_zohos_own_sdk() -> None:
    """Oracle: the accounts servers in Zoho's Python SDK (zohocrmsdk8-0, test extra)."""
    dc = pytest.importorskip("zohocrmsdk.src.com.zoho.crm.api.dc")
    classes = {"com": "USDataCenter", "eu": "EUDataCenter", "in": "INDataCenter",
               "com.cn": "CNDataCenter", "com.au": "AUDataCenter", "jp": "JPDataCenter",
               "ca": "CADataCenter", "sa": "SADataCenter"}
    assert set(classes) == set(ACCOUNTS_URLS)
    for key, cls in classes.items():
        iam = getattr(dc, cls)().get_iam_url()
        assert iam == f"{ACCOUNTS_URLS[key]}/oauth/v2/token", key


def test_token_carries_the_api_domain_and_calls_use_it(fake: FakeZoho,
                                                       http: httpx.Client) -> None:
    tokens = MemoryTokens()
    connector = connect(fake, http, tokens)
    assert connector.find_customers(email="nobody@example.com") == []
    assert tokens.token is not None
    assert tokens.token.extra["api_domain"] == fake.url
    assert tokens.token.refresh_token == fake.refresh_token
    assert tokens.token.expires_at is not None
    lifetime = tokens.token.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=59) < lifetime <= dt.timedelta(hours=1)
    assert fake.calls[-1][1] == "/crm/v8/Contacts/search"


def test_a_token_without_api_domain_is_refused(fake: FakeZoho, http: httpx.Client) -> None:
    tokens = MemoryTokens(Token("1000.old", expires_at=dt.datetime.now(dt.UTC)
                                + dt.timedelta(hours=1)))
    connector = connect(fake, http, tokens)
    with pytest.raises(CRMAuthError, match="api_domain"):
        connector.find_customers(email="a@example.com")


@pytest.mark.parametrize(("setting", "value", "said"), [
    ("refresh_token", "1000.revoked", "invalid_code"),
    ("client_secret", "wrong", "invalid_client"),
])
def test_a_refused_refresh_is_an_auth_error(fake: FakeZoho, http: httpx.Client, setting: str,
                                            value: str, said: str) -> None:
    connector = connect(fake, http, **{setting: value})
    with pytest.raises(CRMAuthError, match=said) as info:
        connector.find_customers(email="a@example.com")
    assert not info.value.retryable
    assert fake.token_refreshes == 0


def test_a_second_refusal_after_refresh_is_an_auth_error(fake: FakeZoho,
                                                         http: httpx.Client) -> None:
    connector = connect(fake, http)
    connector.find_customers(email="a@example.com")
    fake.inject("expired_token")
    fake.inject("expired_token")
    with pytest.raises(CRMAuthError, match="freshly minted"):
        connector.find_customers(email="a@example.com")
    assert fake.token_refreshes == 2  # the first one, and exactly one retry


def test_concurrent_callers_sharing_a_store_cause_one_refresh(fake: FakeZoho,
                                                               http: httpx.Client) -> None:
    tokens = MemoryTokens()
    connector = connect(fake, http, tokens)
    errors = run_threads(12, lambda: connector.find_customers(email="a@example.com"))
    assert errors == []
    assert fake.token_refreshes == 1


def test_concurrent_401s_share_one_refresh(fake: FakeZoho, http: httpx.Client) -> None:
    tokens = MemoryTokens()
    connector = connect(fake, http, tokens)
    connector.find_customers(email="a@example.com")
    fake.expire_tokens()  # an hour passes on Zoho's side: every caller gets INVALID_TOKEN
    errors = run_threads(12, lambda: connector.find_customers(email="a@example.com"))
    assert errors == []
    assert fake.token_refreshes == 2


def test_the_accounts_throttle_is_a_rate_limit(fake: FakeZoho, http: httpx.Client) -> None:
    """Zoho mints at most 10 access tokens per refresh token per 10 minutes; the 11th
    answer is HTTP 200 {"error": "Access Denied"}."""
    connector = connect(fake, http)
    for _ in range(10):
        connector.refresh_token(None)
    with pytest.raises(CRMRateLimited, match="shares the token store") as info:
        connector.refresh_token(None)
    assert info.value.retryable and info.value.retry_after == 600
    assert fake.token_refreshes == 10


def test_workers_with_their_own_stores_would_hit_the_throttle(fake: FakeZoho,
                                                              http: httpx.Client) -> None:
    """Why the store must be shared: 12 workers each refreshing for themselves."""
    workers = [connect(fake, http, MemoryTokens()) for _ in range(12)]
    outcomes: list[str] = []
    for worker in workers:
        try:
            worker.find_customers(email="a@example.com")
            outcomes.append("ok")
        except CRMRateLimited:
            outcomes.append("throttled")
    assert outcomes == ["ok"] * 10 + ["throttled"] * 2


def _token_transport(status: int, body: bytes) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth/v2/token"
        form = dict(httpx.QueryParams(request.content.decode()))
        assert form["grant_type"] == "refresh_token" and form["client_secret"] == "s"
        assert "client_secret" not in str(request.url)
        return httpx.Response(status, content=body)
    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("status", "body", "error"), [
    (503, b"<html>down</html>", CRMTransientError),
    (200, b"<html>captcha</html>", CRMBadResponse),
    (200, b'{"access_token": "1000.a", "expires_in": 3600}', CRMBadResponse),  # no api_domain
    (400, b'{"error": "invalid_client_secret"}', CRMAuthError),
])
def test_token_endpoint_answers_are_mapped(status: int, body: bytes, error: type) -> None:
    with httpx.Client(transport=_token_transport(status, body)) as client:
        connector = Zoho({**CREDENTIALS, "data_centre": "eu"}, client, MemoryTokens())
        with pytest.raises(error):
            connector.refresh_token(None)


def test_legacy_expires_in_milliseconds() -> None:
    body = (b'{"access_token": "1000.a", "expires_in_sec": 3600, "expires_in": 3600000, '
            b'"api_domain": "https://www.zohoapis.eu", "token_type": "Bearer"}')
    with httpx.Client(transport=_token_transport(200, body)) as client:
        token = Zoho({**CREDENTIALS, "data_centre": "eu"}, client,
                     MemoryTokens()).refresh_token(None)
    assert token.expires_at is not None
    assert token.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
    assert token.extra["api_domain"] == "https://www.zohoapis.eu"


def run_threads(count: int, call: Callable[[], object]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def work() -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
