"""Fxiaoke answers errors with HTTP 200 and an errorCode: how each kind is mapped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caseloop.crm import (
    CRMAuthError,
    CRMBadResponse,
    CRMError,
    CRMPermissionError,
    CRMRateLimited,
    CRMTransientError,
    http_client,
)
from caseloop.testing import MemoryTokens
from caseloop_fxiaoke import Fxiaoke
from caseloop_fxiaoke.fake import FakeFxiaoke


def settings(url: str, **more: Any) -> dict[str, Any]:
    return {"base_url": url, "app_id": "FSAID_caseloop", "app_secret": "app-secret",
            "permanent_code": "PERMANENT", "operator_mobile": "13800000000", **more}


@pytest.fixture(scope="module")  # each test consumes the faults it injects
def fake() -> Iterator[FakeFxiaoke]:
    with FakeFxiaoke() as fake:
        yield fake


def connect(url: str, http: httpx.Client, **more: Any) -> Fxiaoke:
    tokens = MemoryTokens()
    conn = Fxiaoke(settings(url, **more), http, tokens)
    tokens.connector = conn
    return conn


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with http_client(connect=1.0, read=1.0) as client:
        yield client


@pytest.fixture
def conn(fake: FakeFxiaoke, http: httpx.Client) -> Fxiaoke:
    conn = connect(fake.url, http)
    conn.find_customers(email="warm@example.com")  # a token and the acting user
    return conn


@pytest.mark.parametrize(("code", "kind"), [
    (-1, CRMTransientError), (50009, CRMTransientError), (30004, CRMRateLimited),
    (14001, CRMRateLimited), (20021, CRMPermissionError), (30003, CRMPermissionError)])
def test_error_codes_in_200_answers(conn: Fxiaoke, fake: FakeFxiaoke, code: int,
                                    kind: type[CRMError]) -> None:
    fake.answer_next(code, "系统繁忙" if code == -1 else "nope")
    with pytest.raises(kind) as info:
        conn.find_customers(email="li.wei@example.com")
    assert f"errorCode {code}" in str(info.value)
    assert "traceId E-O.fake." in str(info.value)


def test_an_unknown_code_is_a_permanent_error_with_message_and_trace(
        conn: Fxiaoke, fake: FakeFxiaoke) -> None:
    fake.answer_next(32000, "字段 foo 不存在")
    with pytest.raises(CRMError) as info:
        conn.find_customers(email="li.wei@example.com")
    assert type(info.value) is CRMError and not info.value.retryable
    assert "字段 foo 不存在" in str(info.value) and "traceId E-O.fake." in str(info.value)


def test_the_daily_allowance_waits_until_midnight_in_china(conn: Fxiaoke,
                                                          fake: FakeFxiaoke) -> None:
    fake.answer_next(30002, "当天访问频次超限")
    with pytest.raises(CRMRateLimited) as info:
        conn.find_customers(email="li.wei@example.com")
    assert info.value.scope == "daily"
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 86400


def test_a_token_refused_twice_is_an_auth_error(conn: Fxiaoke, fake: FakeFxiaoke) -> None:
    before = fake.token_refreshes
    fake.answer_next(20016, "the cropId,cropAccessToken or authorization is error")
    fake.answer_next(20016, "the cropId,cropAccessToken or authorization is error")
    with pytest.raises(CRMAuthError) as info:
        conn.find_customers(email="li.wei@example.com")
    assert not info.value.retryable
    assert fake.token_refreshes == before + 1  # refreshed once, not in a loop


def test_token_codes_are_a_setting(fake: FakeFxiaoke, http: httpx.Client) -> None:
    conn = connect(fake.url, http, token_error_codes=[20016, 77777])
    conn.find_customers(email="a@example.com")
    before = fake.token_refreshes
    fake.answer_next(77777, "token gone")
    assert conn.find_customers(email="a@example.com") == []
    assert fake.token_refreshes == before + 1


def test_busy_codes_are_a_setting(fake: FakeFxiaoke, http: httpx.Client) -> None:
    conn = connect(fake.url, http, busy_error_codes=[88888])
    fake.answer_next(88888, "busy")
    with pytest.raises(CRMTransientError):
        conn.find_customers(email="a@example.com")


def test_expired_token_is_minted_again(conn: Fxiaoke, fake: FakeFxiaoke) -> None:
    before = fake.token_refreshes
    fake.expire_tokens()
    assert conn.find_customers(email="a@example.com") == []
    assert fake.token_refreshes == before + 1


def test_wrong_credentials_are_an_auth_error(fake: FakeFxiaoke, http: httpx.Client) -> None:
    conn = connect(fake.url, http, app_secret="leaked-and-rotated")
    with pytest.raises(CRMAuthError) as info:
        conn.find_customers(email="a@example.com")
    assert "10006" in str(info.value) and "app_secret" in str(info.value)


def test_every_call_carries_token_corp_and_acting_user(conn: Fxiaoke,
                                                       fake: FakeFxiaoke) -> None:
    token = conn.tokens.get()
    assert token.extra["corpId"] == fake.corp_id
    path, body = fake.calls[-1]
    assert path == "/cgi/crm/v2/data/query"
    assert body["corpAccessToken"] == token.access_token
    assert body["corpId"] == fake.corp_id and body["currentOpenUserId"] == "FSUID_ADMIN"


def mock(handler: Any) -> httpx.Client:
    return http_client(transport=httpx.MockTransport(handler))


def answer(body: Any, status: int = 200) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/get/V2"):
            return httpx.Response(200, json={"errorCode": 0, "corpAccessToken": "T",
                                             "corpId": "C", "expiresIn": 7200})
        return httpx.Response(status, content=json.dumps(body).encode())
    return handler


def test_an_answer_without_error_code_is_a_bad_response() -> None:
    with mock(answer({"data": {"dataList": []}})) as http:
        conn = connect("http://fx.test", http, current_open_user_id="FSUID_1")
        with pytest.raises(CRMBadResponse) as info:
            conn.find_customers(email="a@example.com")
    assert "no errorCode" in str(info.value)


def test_a_query_answer_of_the_wrong_shape_is_a_bad_response() -> None:
    with mock(answer({"errorCode": 0, "data": {"dataList": "none"}})) as http:
        conn = connect("http://fx.test", http, current_open_user_id="FSUID_1")
        with pytest.raises(CRMBadResponse) as info:
            conn.find_customers(email="a@example.com")
    assert "dataList" in str(info.value)


def test_a_redirect_points_at_the_base_url() -> None:
    with mock(answer({}, status=302)) as http:
        conn = connect("http://www.fxiaoke.test", http, current_open_user_id="FSUID_1")
        with pytest.raises(CRMBadResponse) as info:
            conn.find_customers(email="a@example.com")
    assert "base_url" in str(info.value)
