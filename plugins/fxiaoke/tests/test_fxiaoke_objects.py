"""Fxiaoke specifics: the acting user, object paths, field mapping, activities, polling."""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

import caseloop_fxiaoke.connector
from caseloop.crm import (
    Activity,
    CRMAuthError,
    CRMNotFound,
    CustomerRef,
    InboundRequest,
    UnsupportedOperation,
    http_client,
)
from caseloop.testing import MemoryTokens, snapshot
from caseloop_fxiaoke import Fxiaoke
from caseloop_fxiaoke.fake import FakeFxiaoke

README = pathlib.Path(__file__).parent.parent / "README.md"


def settings(url: str, **more: Any) -> dict[str, Any]:
    return {"base_url": url, "app_id": "FSAID_caseloop", "app_secret": "app-secret",
            "permanent_code": "PERMANENT", "operator_mobile": "13800000000", **more}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with http_client(connect=1.0, read=1.0) as client:
        yield client


@pytest.fixture
def fake() -> Iterator[FakeFxiaoke]:
    with FakeFxiaoke() as fake:
        yield fake


def connect(url: str, http: httpx.Client, **more: Any) -> Fxiaoke:
    tokens = MemoryTokens()
    conn = Fxiaoke(settings(url, **more), http, tokens)
    tokens.connector = conn
    return conn


# -- the acting user --------------------------------------------------------------------
def test_the_operator_is_looked_up_by_mobile_once(fake: FakeFxiaoke,
                                                  http: httpx.Client) -> None:
    conn = connect(fake.url, http)
    conn.find_customers(email="a@example.com")
    conn.upsert_case(snapshot("1"))
    conn.find_customers(phone_e164="+8613800138000")
    assert fake.operator_lookups == 1
    assert {b["currentOpenUserId"] for p, b in fake.calls if "/crm/" in p} == {"FSUID_ADMIN"}


def test_a_configured_operator_needs_no_lookup(fake: FakeFxiaoke, http: httpx.Client) -> None:
    conn = connect(fake.url, http, operator_mobile=None, current_open_user_id="FSUID_ADMIN")
    conn.find_customers(email="a@example.com")
    assert fake.operator_lookups == 0


def test_an_unknown_operator_mobile_says_what_to_set(fake: FakeFxiaoke,
                                                     http: httpx.Client) -> None:
    conn = connect(fake.url, http, operator_mobile="13999999999")
    with pytest.raises(CRMAuthError) as info:
        conn.find_customers(email="a@example.com")
    assert "13999999999" in str(info.value) and "current_open_user_id" in str(info.value)


# -- object paths -----------------------------------------------------------------------
def test_standard_objects_use_the_v2_data_path(fake: FakeFxiaoke, http: httpx.Client) -> None:
    connect(fake.url, http).upsert_case(snapshot("1"))
    assert {p for p, _ in fake.calls if "/data/" in p} == {
        "/cgi/crm/v2/data/query", "/cgi/crm/v2/data/create"}


def test_custom_objects_use_the_custom_path(http: httpx.Client) -> None:
    with FakeFxiaoke(case_object="caseloop_case__c") as fake:
        conn = connect(fake.url, http, case_object="caseloop_case__c")
        first = conn.upsert_case(snapshot("4711"))
        again = conn.upsert_case(snapshot("4711", category="done", version=2))
        case = conn.get_case(first.external_id)
        paths = {p for p, _ in fake.calls if "/data/" in p}
        stored = fake.cases()
    # The custom create answers without a dataId: the connector finds the record by its key.
    assert first.created and not again.created and again.external_id == first.external_id
    assert case.caseloop_id == "4711" and len(stored) == 1
    assert paths == {"/cgi/crm/custom/v2/data/query", "/cgi/crm/custom/v2/data/create",
                     "/cgi/crm/custom/v2/data/update"}


# -- customers --------------------------------------------------------------------------
def test_a_phone_is_found_in_tel_when_not_in_mobile(fake: FakeFxiaoke,
                                                    http: httpx.Client) -> None:
    crm_id = fake.add_customer(name="Anna Berg", email="anna@example.com",
                               phone_e164="+8613700137000", properties={"tel": "030123456"})
    conn = connect(fake.url, http, phone_fields=["mobile", "tel"], default_region="DE")
    assert [r.external_id for r in conn.find_customers(phone_e164="+4930123456")] == [crm_id]


def test_a_profile_maps_the_configured_fields(fake: FakeFxiaoke, http: httpx.Client) -> None:
    crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                               phone_e164="+8613800138000",
                               properties={"level__c": "A", "segment__c": "retail"})
    conn = connect(fake.url, http, profile_fields={"value_tier": "level__c"})
    profile = conn.get_profile(CustomerRef("fxiaoke", "contact", crm_id))
    assert profile.phones_e164 == ("+8613800138000",)  # stored as 11 digits, given as E.164
    assert (profile.segment, profile.value_tier, profile.lifecycle_stage) == ("retail", "A", None)
    assert profile.raw["level__c"] == "A"


def test_a_missing_record_is_not_found(fake: FakeFxiaoke, http: httpx.Client) -> None:
    conn = connect(fake.url, http)
    with pytest.raises(CRMNotFound):
        conn.get_profile(CustomerRef("fxiaoke", "contact", "0" * 24))
    with pytest.raises(CRMNotFound):
        conn.get_case("0" * 24)


# -- cases and activities ---------------------------------------------------------------
def test_a_case_is_written_with_the_field_map(fake: FakeFxiaoke, http: httpx.Client) -> None:
    crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                               phone_e164="+8613800138000")
    conn = connect(fake.url, http, status_map={"done": "已关闭"}, priority_map={"high": "1"})
    contact = CustomerRef("fxiaoke", "contact", crm_id)
    conn.upsert_case(snapshot("7", customer=contact))
    conn.upsert_case(snapshot("8", category="done"))
    conn.upsert_case(snapshot("9", status="escalated"))
    rows = {r["caseloop_id__c"]: r for r in fake.cases()}
    assert rows["7"]["status"] == "open" and rows["7"]["contact_id"] == crm_id
    assert rows["7"]["priority"] == "1" and rows["7"]["name"] == "Parcel arrived damaged"
    assert rows["8"]["status"] == "已关闭" and "contact_id" not in rows["8"]
    assert rows["9"]["status"] == "escalated"  # the case's own status wins


def test_an_activity_is_linked_to_case_and_contact(fake: FakeFxiaoke,
                                                   http: httpx.Client) -> None:
    crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                               phone_e164="+8613800138000")
    conn = connect(fake.url, http)
    case = conn.upsert_case(snapshot("5"))
    note = Activity("5:1", "note", "Called back <b>twice</b> & left a message",
                    dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC),
                    (CustomerRef("fxiaoke", "case", case.external_id),
                     CustomerRef("fxiaoke", "contact", crm_id),
                     CustomerRef("hubspot", "contact", "99")))
    conn.add_activity(note)
    [row] = fake.activities()
    assert row["active_record_content"] == "Called back <b>twice</b> & left a message"
    assert row["related_object_data"] == [
        {"describe_api_name": "CasesObj", "id": case.external_id},
        {"describe_api_name": "ContactObj", "id": crm_id}]


# -- polling ----------------------------------------------------------------------------
def test_the_first_poll_replays_no_history(fake: FakeFxiaoke, http: httpx.Client) -> None:
    fake.add_customer(name="Old", email="old@example.com", phone_e164="+8613800138001")
    events, cursor = connect(fake.url, http).poll_changes(None)
    assert events == [] and int(cursor) > 0


def test_polled_case_changes_carry_object_id_and_time(fake: FakeFxiaoke,
                                                      http: httpx.Client) -> None:
    conn = connect(fake.url, http)
    _, cursor = conn.poll_changes(None)
    pushed = conn.upsert_case(snapshot("3"))
    fake.touch(pushed.external_id)
    events, _ = conn.poll_changes(cursor)
    [event] = events
    row = fake.cases()[0]
    assert event.object_type == "case" and event.external_ids == (pushed.external_id,)
    assert event.event_id == f"CasesObj:{pushed.external_id}:{row['last_modified_time']}"
    assert event.action == "updated"


def test_a_poll_cut_off_continues_where_it_stopped(fake: FakeFxiaoke, http: httpx.Client,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caseloop_fxiaoke.connector, "POLL_PAGES", 1)
    conn = connect(fake.url, http)
    _, cursor = conn.poll_changes(None)
    made = {fake.add_customer(name=f"C{i}", email=f"c{i}@example.com",
                              phone_e164=f"+86138001{i:05d}") for i in range(130)}
    seen: set[str] = set()
    for _ in range(3):
        events, cursor = conn.poll_changes(cursor)
        seen |= {i for e in events for i in e.external_ids}
    assert seen == made
    assert conn.poll_changes(cursor)[0] == []


# -- no webhooks, the settings, the README ----------------------------------------------
def test_webhooks_are_not_offered(fake: FakeFxiaoke, http: httpx.Client) -> None:
    conn = connect(fake.url, http)
    request = InboundRequest("POST", "http://caseloop.test/api/hooks/fxiaoke", {}, b"{}")
    with pytest.raises(UnsupportedOperation):
        conn.verify_webhook(request, now=dt.datetime.now(dt.UTC))
    with pytest.raises(UnsupportedOperation):
        conn.parse_webhook(request)
    assert "webhooks" not in conn.capabilities


def test_the_schema_wants_credentials_and_an_acting_user() -> None:
    schema = jsonschema.Draft7Validator(dict(Fxiaoke.config_schema))
    good = settings("https://open.fxiaoke.com")
    assert not list(schema.iter_errors(good))
    assert list(schema.iter_errors({**good, "operator_mobile": None}))
    no_user = {k: v for k, v in good.items() if k != "operator_mobile"}
    assert list(schema.iter_errors(no_user))
    assert list(schema.iter_errors({**good, "case_objetc": "CasesObj"}))  # typo caught


def test_the_readme_warns_never_to_commit_credentials() -> None:
    text = README.read_text(encoding="utf-8")
    assert "never commit" in text.lower() and "$env" in text
