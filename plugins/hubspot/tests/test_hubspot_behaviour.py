"""HubSpot-specific behaviour beyond the contract kit: API versions, auth modes,
error mapping, tickets, notes and polling details."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from caseloop_hubspot import HubSpot
from caseloop_hubspot.api import NOTE_BODY_LIMIT, api_path, note_html
from caseloop_hubspot.fake import FakeHubSpot

from caseloop.crm import (
    Activity,
    CRMAuthError,
    CRMConflict,
    CRMNotFound,
    CRMPermissionError,
    CRMRateLimited,
    CRMValidationError,
    CustomerRef,
    http_client,
)
from caseloop.testing import MemoryTokens, snapshot


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def make(fake: FakeHubSpot) -> Iterator[Any]:
    """Build a connector against the fake with extra settings (OAuth by default)."""
    with http_client(connect=1.0, read=1.0) as http:
        def build(**settings: Any) -> HubSpot:
            tokens = MemoryTokens()
            config = {**fake.oauth_settings(), "poll_settle_seconds": 0, **settings}
            conn = HubSpot(config, http, tokens)
            tokens.connector = conn
            return conn
        yield build


def test_the_api_version_setting_changes_every_path(fake: FakeHubSpot, make: Any) -> None:
    assert api_path("2026-03", "contacts", "search") == "/crm/objects/2026-03/contacts/search"
    assert api_path("v3", "contacts", "search") == "/crm/v3/objects/contacts/search"
    assert (api_path("v3", "tickets", "7", "associations", "default", "contacts", "9")
            == "/crm/v4/objects/tickets/7/associations/default/contacts/9")
    contact = fake.add_customer(name="Li Wei", email="li@example.com", phone_e164="+8613800138000")
    ref = CustomerRef("hubspot", "contact", contact)
    for version, prefix in (("2026-03", "/crm/objects/2026-03/"), ("v3", "/crm/v3/objects/")):
        fake.calls.clear()
        conn = make(api_version=version)
        assert [r.external_id for r in conn.find_customers(email="li@example.com")] == [contact]
        conn.get_profile(ref)
        pushed = conn.upsert_case(snapshot(f"v-{version}", customer=ref))
        conn.get_case(pushed.external_id)
        conn.add_activity(Activity(f"v-{version}:1", "note", "hello", dt.datetime.now(dt.UTC),
                                   (ref,)))
        paths = [path for _, path in fake.calls]
        assoc = [p for p in paths if "/associations/" in p]
        assert assoc and all(p.startswith("/crm/v4/" if version == "v3" else prefix)
                             for p in assoc)
        assert all(p.startswith(prefix) for p in paths if p not in assoc), paths
    assert fake.cases()[0]["associations"] == {"contacts": [contact]}


def test_static_private_app_token_needs_no_refresh(fake: FakeHubSpot) -> None:
    with http_client(connect=1.0, read=1.0) as http:
        tokens = MemoryTokens()
        conn = HubSpot({"base_url": fake.url, "access_token": fake.static_token}, http, tokens)
        tokens.connector = conn
        assert conn.find_customers(email="nobody@example.com") == []
        fake.inject("unauthorized")
        with pytest.raises(CRMAuthError, match="replace access_token"):
            conn.find_customers(email="nobody@example.com")
        assert fake.token_refreshes == 0 and tokens.token is None  # the store is not used
        assert conn.refresh_token(None).access_token == fake.static_token
        with pytest.raises(CRMAuthError, match="cannot be refreshed"):
            conn.refresh_token(conn.refresh_token(None))


def test_a_second_401_after_refreshing_is_an_auth_error(fake: FakeHubSpot, make: Any) -> None:
    conn = make()
    conn.find_customers(email="a@example.com")
    fake.inject("expired_token")
    fake.inject("unauthorized")
    with pytest.raises(CRMAuthError) as info:
        conn.find_customers(email="a@example.com")
    assert not info.value.retryable
    assert fake.token_refreshes == 2  # the first token, and exactly one refresh


def test_a_refused_refresh_token_asks_for_reauthorisation(fake: FakeHubSpot, make: Any) -> None:
    conn = make(refresh_token="revoked")
    with pytest.raises(CRMAuthError, match="BAD_REFRESH_TOKEN|unknown refresh token"):
        conn.find_customers(email="a@example.com")


def test_an_expired_token_is_refreshed_before_use(fake: FakeHubSpot, make: Any) -> None:
    conn = make()
    conn.find_customers(email="a@example.com")
    fake.expire_tokens()  # HubSpot answers 401; the connector refreshes and repeats
    assert conn.find_customers(email="a@example.com") == []
    assert fake.token_refreshes == 2


@pytest.mark.parametrize(("fault", "scope", "wait"), [("rate_limit", "burst", 10.0),
                                                      ("rate_limit_daily", "daily", None)])
def test_daily_and_burst_limits_are_told_apart(fake: FakeHubSpot, make: Any, fault: str,
                                               scope: str, wait: float | None) -> None:
    conn = make()
    fake.inject(fault)
    with pytest.raises(CRMRateLimited) as info:
        conn.find_customers(email="a@example.com")
    assert info.value.scope == scope and info.value.retry_after == wait
    assert info.value.retryable


@pytest.mark.parametrize(("fault", "error"), [("forbidden", CRMPermissionError),
                                              ("conflict", CRMConflict),
                                              ("validation", CRMValidationError)])
def test_refusals_are_permanent_errors(fake: FakeHubSpot, make: Any, fault: str,
                                       error: type[Exception]) -> None:
    conn = make()
    fake.inject(fault)
    with pytest.raises(error) as info:
        conn.upsert_case(snapshot("9001"))
    assert not info.value.retryable  # type: ignore[attr-defined]
    assert "HubSpot answered" in str(info.value) and "correlationId" in str(info.value)
    if fault == "validation":
        assert info.value.field_errors == {  # type: ignore[attr-defined]
            "hs_pipeline_stage": "hs_pipeline_stage was not a valid stage"}


def test_a_stage_the_pipeline_lacks_is_a_validation_error(fake: FakeHubSpot, make: Any
                                                          ) -> None:
    with pytest.raises(CRMValidationError) as info:
        make().upsert_case(snapshot("9002", status="99"))
    assert "hs_pipeline_stage" in info.value.field_errors


def test_a_missing_record_is_not_found(make: Any) -> None:
    with pytest.raises(CRMNotFound):
        make().get_profile(CustomerRef("hubspot", "contact", "424242"))


def test_ticket_properties_follow_the_case_and_the_settings(fake: FakeHubSpot, make: Any
                                                            ) -> None:
    conn = make(pipeline_stages={"paused": "3"}, portal_id=62515)
    first = conn.upsert_case(snapshot("77", category="paused"))
    props = fake.cases()[0]["properties"]
    assert props["caseloop_id"] == "77" and props["hs_pipeline_stage"] == "3"
    assert props["hs_ticket_priority"] == "HIGH" and props["hs_pipeline"] == "0"
    assert first.url == f"https://app.hubspot.com/contacts/62515/record/0-5/{first.external_id}"
    conn.upsert_case(snapshot("77", category="done"))
    assert fake.cases()[0]["properties"]["hs_pipeline_stage"] == "4"
    conn.upsert_case(snapshot("77", status="2"))  # the deployment's status map wins
    assert fake.cases()[0]["properties"]["hs_pipeline_stage"] == "2"


def test_a_fetched_case_names_its_contact(fake: FakeHubSpot, make: Any) -> None:
    conn = make()
    contact = fake.add_customer(name="Li Wei", email="li@example.com", phone_e164="+8613800138000")
    pushed = conn.upsert_case(snapshot("78", customer=CustomerRef("hubspot", "contact", contact)))
    case = conn.get_case(pushed.external_id)
    assert case.customer is not None and case.customer.external_id == contact
    assert case.status == "1" and case.priority == "HIGH"


def test_phones_match_however_they_are_stored(fake: FakeHubSpot, make: Any) -> None:
    mobile = fake.add_customer(name="A B", email="a@example.com", phone_e164="",
                               properties={"mobilephone": "+86 138 0013 8000"})
    national = fake.add_customer(name="C D", email="c@example.com", phone_e164="030 1234567")
    conn = make(default_region="DE")
    assert [r.external_id for r in conn.find_customers(phone_e164="+8613800138000")] == [mobile]
    assert [r.external_id for r in conn.find_customers(phone_e164="+49301234567")] == [national]
    profile = conn.get_profile(CustomerRef("hubspot", "contact", national))
    assert profile.phones_e164 == ("+49301234567",)


def test_profile_fields_come_from_configured_properties(fake: FakeHubSpot, make: Any) -> None:
    contact = fake.add_customer(name="Li Wei", email="li@example.com", phone_e164="+8613800138000",
                                properties={"tier": "gold", "caseloop_segment": "retail",
                                            "hs_additional_emails": "wei@example.org"})
    profile = make(profile_fields={"value_tier": "tier"}).get_profile(
        CustomerRef("hubspot", "contact", contact))
    assert (profile.segment, profile.value_tier, profile.lifecycle_stage) == (
        "retail", "gold", "customer")
    assert profile.emails == ("li@example.com", "wei@example.org")
    assert profile.raw["tier"] == "gold" and profile.display_name == "Li Wei"


def test_notes_are_escaped_html_with_their_key(fake: FakeHubSpot, make: Any) -> None:
    contact = fake.add_customer(name="Li Wei", email="li@example.com", phone_e164="+8613800138000")
    ref = CustomerRef("hubspot", "contact", contact)
    when = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    make().add_activity(Activity("k:1", "call", "<script>x</script>\nline 2", when, (ref,)))
    note = fake.activities()[0]
    props = note["properties"]
    assert props["hs_note_body"] == ("<p><strong>Call</strong></p>"
                                     "<p>&lt;script&gt;x&lt;/script&gt;<br>line 2</p>")
    assert props["hs_timestamp"] == "2026-11-23T09:30:00.000Z"
    assert props["caseloop_activity_id"] == "k:1"
    assert note["associations"] == {"contacts": [contact]}


def test_long_note_bodies_are_cut_without_breaking_an_entity() -> None:
    out = note_html("note", "&" * NOTE_BODY_LIMIT)
    assert len(out) <= NOTE_BODY_LIMIT and out.endswith("&amp;…</p>")


def test_a_note_cannot_go_elsewhere(make: Any) -> None:
    with pytest.raises(CRMValidationError, match="deal"):
        make().add_activity(Activity("k:2", "note", "x", dt.datetime.now(dt.UTC),
                                     (CustomerRef("hubspot", "deal", "1"),)))


def test_polling_pages_and_ties_and_ticket_changes(fake: FakeHubSpot, make: Any) -> None:
    conn = make()
    _, cursor = conn.poll_changes(None)
    ids = [fake.add_customer(name=f"P {i}", email=f"p{i}@example.com",
                             phone_e164="+8613800138000") for i in range(120)]
    pushed = conn.upsert_case(snapshot("poll-1"))
    events, cursor = conn.poll_changes(cursor)
    assert [e.external_ids[0] for e in events if e.object_type == "contact"] == ids
    assert {e.action for e in events if e.object_type == "contact"} == {"created"}
    assert [e.external_ids[0] for e in events if e.object_type == "case"] == [
        pushed.external_id]
    assert len({e.event_id for e in events}) == len(events)
    fake.touch(ids[5])
    events, cursor = conn.poll_changes(cursor)
    assert [(e.object_type, e.external_ids, e.action) for e in events] == [
        ("contact", (ids[5],), "updated")]
    assert conn.poll_changes(cursor)[0] == []


def test_the_settle_delay_holds_back_fresh_changes(fake: FakeHubSpot, make: Any) -> None:
    conn = make(poll_settle_seconds=60)
    _, cursor = conn.poll_changes(None)
    fake.add_customer(name="Li Wei", email="li@example.com", phone_e164="+8613800138000")
    events, later = conn.poll_changes(cursor)
    assert events == [] and later == cursor


def test_bad_settings_are_refused() -> None:
    with http_client() as http, pytest.raises(ValueError, match="hubspot settings"):
        HubSpot({"client_id": "only"}, http, MemoryTokens())
    with http_client() as http, pytest.raises(ValueError, match="api_version|does not match"):
        HubSpot({"access_token": "x", "api_version": "v9"}, http, MemoryTokens())


def test_email_decides_and_the_phone_is_the_fallback(fake: FakeHubSpot, make: Any) -> None:
    by_mail = fake.add_customer(name="A B", email="a@example.com", phone_e164="+8613900139000")
    by_phone = fake.add_customer(name="C D", email="c@example.com", phone_e164="+8613800138000")
    conn = make()
    found = conn.find_customers(email="A@example.com", phone_e164="+8613800138000")
    assert [r.external_id for r in found] == [by_mail]
    found = conn.find_customers(email="x@example.com", phone_e164="+8613800138000")
    assert [r.external_id for r in found] == [by_phone]
