"""Zoho records: 204 searches, case upserts and their per-record errors, notes, polling,
and the mapping of Zoho's error answers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from caseloop_zoho import Zoho
from caseloop_zoho.fake import FakeZoho

from caseloop.crm import (
    Activity,
    CRMBadResponse,
    CRMConflict,
    CRMNotFound,
    CRMPermissionError,
    CRMRateLimited,
    CRMValidationError,
    CustomerRef,
    http_client,
)
from caseloop.testing import MemoryTokens, snapshot

WHEN = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def fake() -> Iterator[FakeZoho]:
    with FakeZoho() as running:
        yield running


@pytest.fixture
def tokens() -> MemoryTokens:
    return MemoryTokens()


@pytest.fixture
def zoho(fake: FakeZoho, tokens: MemoryTokens) -> Iterator[Zoho]:
    with http_client(connect=1.0, read=2.0) as http:
        connector = Zoho(fake.settings(), http, tokens)
        tokens.connector = connector
        yield connector


def contact(fake: FakeZoho, **properties: Any) -> CustomerRef:
    crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                               phone_e164="+8613800138000", properties=properties)
    return CustomerRef("zoho", "contact", crm_id)


# -- search and get ------------------------------------------------------------------
def test_an_empty_search_is_http_204_and_no_customers(zoho: Zoho, fake: FakeZoho,
                                                      tokens: MemoryTokens) -> None:
    assert zoho.find_customers(email="nobody@example.com") == []
    raw = httpx.get(f"{fake.url}/crm/v8/Contacts/search", params={"email": "nobody@example.com"},
                    headers={"Authorization": f"Zoho-oauthtoken {tokens.get().access_token}"})
    assert raw.status_code == 204 and raw.content == b""


def test_a_get_answered_204_is_not_found(zoho: Zoho) -> None:
    with pytest.raises(CRMNotFound, match="204"):
        zoho.get_profile(CustomerRef("zoho", "contact", "4876876000009999999"))
    with pytest.raises(CRMNotFound):
        zoho.get_case("4876876000009999999")


def test_finds_a_phone_stored_without_plus(zoho: Zoho, fake: FakeZoho) -> None:
    crm_id = fake.add_customer(name="Ana Lima", email="ana@example.com",
                               phone_e164="5511987654321")
    assert [r.external_id for r in zoho.find_customers(phone_e164="+5511987654321")] == [crm_id]
    searched = [q for m, p, q, _ in fake.calls if p.endswith("/search")]
    assert searched == ["phone=%2B5511987654321&per_page=5", "phone=5511987654321&per_page=5"]


def test_profile_reads_the_mapped_fields(zoho: Zoho, fake: FakeZoho) -> None:
    ref = contact(fake, Segment="Retail", Value_Tier="Gold", Mobile="+49 30 1234567",
                  Lifecycle_Stage="Customer")
    profile = zoho.get_profile(ref)
    assert profile.display_name == "Li Wei"
    assert (profile.segment, profile.value_tier, profile.lifecycle_stage) == (
        "Retail", "Gold", "Customer")
    assert profile.phones_e164 == ("+8613800138000", "+49301234567")
    assert profile.raw["Segment"] == "Retail"


# -- cases ---------------------------------------------------------------------------
def test_upsert_links_the_contact_and_derives_the_status(zoho: Zoho, fake: FakeZoho) -> None:
    ref = contact(fake)
    pushed = zoho.upsert_case(snapshot("4801", customer=ref))
    [stored] = fake.cases()
    assert stored["Caseloop_Id"] == "4801" and stored["Status"] == "New"
    assert stored["Related_To"]["id"] == ref.external_id
    assert stored["Priority"] == "High" and stored["Case_Origin"] == "Web"
    zoho.upsert_case(snapshot("4801", customer=ref, category="paused", version=2))
    assert fake.cases()[0]["Status"] == "On Hold"
    zoho.upsert_case(snapshot("4801", customer=ref, status="Escalated", version=3))
    case = zoho.get_case(pushed.external_id)
    assert case.status == "Escalated" and case.customer == ref and case.caseloop_id == "4801"


def test_status_map_is_a_setting(fake: FakeZoho, tokens: MemoryTokens) -> None:
    with http_client() as http:
        zoho = Zoho({**fake.settings(), "status_map": {"done": "Resolved"}}, http, tokens)
        tokens.connector = zoho
        zoho.upsert_case(snapshot("4802", category="done"))
    assert fake.cases()[0]["Status"] == "Resolved"


def test_missing_subject_is_a_validation_error(zoho: Zoho) -> None:
    with pytest.raises(CRMValidationError, match="MANDATORY_NOT_FOUND") as info:
        zoho.upsert_case(snapshot("4803", subject=""))
    assert "Subject" in info.value.field_errors


def test_an_unknown_contact_is_a_validation_error(zoho: Zoho) -> None:
    ghost = CustomerRef("zoho", "contact", "4876876000009999999")
    with pytest.raises(CRMValidationError) as info:
        zoho.upsert_case(snapshot("4804", customer=ghost))
    assert info.value.field_errors == {"Related_To": "the related id given seems to be invalid"}


def test_a_locked_case_is_a_conflict(zoho: Zoho, fake: FakeZoho) -> None:
    pushed = zoho.upsert_case(snapshot("4805"))
    fake.lock_record(pushed.external_id)
    with pytest.raises(CRMConflict, match="RECORD_LOCKED"):
        zoho.upsert_case(snapshot("4805", version=2))


@pytest.mark.parametrize(("status", "code", "error"), [
    (400, "DUPLICATE_DATA", CRMConflict), (400, "INVALID_DATA", CRMValidationError),
    (207, "RECORD_LOCKED", CRMConflict), (400, "NO_PERMISSION", CRMPermissionError),
])
def test_per_record_errors_are_mapped(zoho: Zoho, fake: FakeZoho, status: int, code: str,
                                      error: type) -> None:
    zoho.find_customers(email="warm@example.com")
    fake.inject_response(status, {"data": [{"code": code, "details": {"api_name": "Subject"},
                                            "message": "refused", "status": "error"}]})
    with pytest.raises(error, match=code):
        zoho.upsert_case(snapshot("4806"))


@pytest.mark.parametrize(("status", "code", "error"), [
    (401, "OAUTH_SCOPE_MISMATCH", CRMPermissionError), (403, "NO_PERMISSION", CRMPermissionError),
    (400, "LIMIT_EXCEEDED", CRMRateLimited), (404, "INVALID_URL_PATTERN", CRMNotFound),
    (400, "REQUIRED_PARAM_MISSING", CRMValidationError),
])
def test_top_level_errors_are_mapped(zoho: Zoho, fake: FakeZoho, status: int, code: str,
                                     error: type) -> None:
    zoho.find_customers(email="warm@example.com")
    refreshes = fake.token_refreshes
    fake.inject_response(status, {"code": code, "details": {}, "message": "no", "status": "error"})
    with pytest.raises(error, match=code):
        zoho.find_customers(email="a@example.com")
    assert fake.token_refreshes == refreshes  # only INVALID_TOKEN leads to a refresh


def test_credits_used_up_is_a_daily_limit(zoho: Zoho, fake: FakeZoho) -> None:
    fake.inject_response(400, {"code": "LIMIT_EXCEEDED", "details": {}, "message": "API limit "
                               "exceeded", "status": "error"})
    with pytest.raises(CRMRateLimited) as info:
        zoho.find_customers(email="a@example.com")
    assert info.value.scope == "daily"


@pytest.mark.parametrize(("headers", "wait"), [
    ({"X-RATELIMIT-RESET": "30"}, 30.0), ({"Retry-After": "7"}, 7.0),
    ({"X-RATELIMIT-RESET": "soon", "Retry-After": "4"}, 4.0), ({}, None),
])
def test_429_reads_the_reset_headers(zoho: Zoho, fake: FakeZoho, headers: dict[str, str],
                                     wait: float | None) -> None:
    fake.inject_response(429, {"code": "TOO_MANY_REQUESTS", "details": {}, "message": "slow",
                               "status": "error"}, headers)
    with pytest.raises(CRMRateLimited) as info:
        zoho.find_customers(email="a@example.com")
    assert info.value.retry_after == wait and info.value.scope == "burst"


def test_an_unexpected_error_body_is_a_bad_response(zoho: Zoho, fake: FakeZoho) -> None:
    fake.inject_response(400, {"oops": True})
    with pytest.raises(CRMBadResponse, match="oops"):
        zoho.find_customers(email="a@example.com")


# -- notes ---------------------------------------------------------------------------
def test_a_note_goes_on_the_case_with_its_key_in_the_title(zoho: Zoho, fake: FakeZoho) -> None:
    ref = contact(fake)
    case = CustomerRef("zoho", "case", zoho.upsert_case(snapshot("4810", customer=ref))
                       .external_id)
    note_id = zoho.add_activity(Activity("4810:3", "call", "Rang <b>twice</b> & left a message",
                                         WHEN, (ref, case)))
    [note] = fake.activities()
    assert note["id"] == note_id
    assert note["Note_Title"] == "[caseloop 4810:3] call, 2026-11-23 09:30 UTC"
    assert note["Note_Content"] == "Rang <b>twice</b> & left a message"  # plain text in Zoho
    assert note["Parent_Id"]["id"] == case.external_id
    assert note["Parent_Id"]["module"]["api_name"] == "Cases"


def test_a_note_on_a_contact_alone(zoho: Zoho, fake: FakeZoho) -> None:
    ref = contact(fake)
    first = zoho.add_activity(Activity("c:1", "survey_result", "NPS 9", WHEN, (ref,)))
    assert zoho.add_activity(Activity("c:1", "survey_result", "NPS 9", WHEN, (ref,))) == first
    assert fake.activities()[0]["Parent_Id"]["module"]["api_name"] == "Contacts"


def test_a_note_needs_somewhere_to_go(zoho: Zoho) -> None:
    with pytest.raises(CRMValidationError, match="no case or contact"):
        zoho.add_activity(Activity("x:1", "note", "text", WHEN, ()))


def test_the_idempotency_search_pages_through_notes(zoho: Zoho, fake: FakeZoho) -> None:
    ref = contact(fake)
    parent = {"module": {"api_name": "Contacts"}, "id": ref.external_id}
    note_id = fake.create("Notes", {"Note_Title": "[caseloop p:1] note", "Note_Content": "x",
                                    "Parent_Id": parent})
    for n in range(205):  # newer notes come first: the keyed one is on page 2
        fake.create("Notes", {"Note_Title": f"new {n}", "Note_Content": "x", "Parent_Id": parent})
    assert zoho.add_activity(Activity("p:1", "note", "x", WHEN, (ref,))) == note_id
    pages = [q for m, p, q, _ in fake.calls if p.endswith("/Notes") and m == "GET"]
    assert len(pages) == 2 and "page=2" in pages[1]


# -- polling -------------------------------------------------------------------------
def test_nothing_new_is_304_and_keeps_the_cursor(zoho: Zoho, fake: FakeZoho) -> None:
    ref = contact(fake)
    pushed = zoho.upsert_case(snapshot("4820", customer=ref))
    events, cursor = zoho.poll_changes(json.dumps({
        "Cases": {"t": "2020-01-01T00:00:00+00:00", "ids": []},
        "Contacts": {"t": "2020-01-01T00:00:00+00:00", "ids": []}}))
    kinds = {(e.object_type, e.external_ids[0], e.action) for e in events}
    assert kinds == {("case", pushed.external_id, "created"),
                     ("contact", ref.external_id, "created")}
    assert next(e for e in events if e.object_type == "case").raw["Caseloop_Id"] == "4820"
    again, cursor2 = zoho.poll_changes(cursor)
    assert again == [] and cursor2 == cursor
    assert all(ims for m, p, q, ims in fake.calls[-2:])  # If-Modified-Since was sent


def test_a_case_edit_is_polled_as_an_update(zoho: Zoho, fake: FakeZoho) -> None:
    pushed = zoho.upsert_case(snapshot("4821"))
    _, cursor = zoho.poll_changes(None)
    record = fake.records["Cases"][pushed.external_id]
    record["Modified_Time"] = (dt.datetime.fromisoformat(record["Modified_Time"])
                               + dt.timedelta(seconds=5)).isoformat()
    events, _ = zoho.poll_changes(cursor)
    assert [(e.object_type, e.action) for e in events] == [("case", "updated")]


def test_a_foreign_cursor_is_refused(zoho: Zoho) -> None:
    with pytest.raises(CRMBadResponse, match="cursor"):
        zoho.poll_changes("not-json")
