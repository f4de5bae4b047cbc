"""Finding contacts (SOSL escaping), profiles from Account fields, case
comments, and polling with a keyset cursor."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from caseloop_salesforce import SalesforceConnector
from caseloop_salesforce._api import soql_string, sosl_escape
from caseloop_salesforce.fake import FakeSalesforce

from caseloop.crm import Activity, CRMValidationError, CustomerRef, http_client
from caseloop.testing import MemoryTokens, snapshot

HOSTILE = "a'b\"c{d}@x.com"


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as sf:
        yield sf


@pytest.fixture
def conn(fake: FakeSalesforce) -> Iterator[SalesforceConnector]:
    with http_client(connect=1.0, read=1.0) as http:
        yield make(fake, http)


def make(fake: FakeSalesforce, http: httpx.Client, **more: Any) -> SalesforceConnector:
    tokens = MemoryTokens()
    connector = SalesforceConnector({"login_url": fake.url, "client_id": fake.client_id,
                                     "client_secret": fake.client_secret,
                                     "refresh_token": "fake-refresh-token", **more},
                                    http, tokens)
    tokens.connector = connector
    return connector


def test_sosl_escaping_of_reserved_characters() -> None:
    assert sosl_escape(HOSTILE) == "a\\'b\\\"c\\{d\\}@x.com"
    assert sosl_escape("+49 (30) 1-2*3?") == "\\+49 \\(30\\) 1\\-2\\*3\\?"
    assert sosl_escape("a&b|c!d[e]^f~g:h\\i") == "a\\&b\\|c\\!d\\[e\\]\\^f\\~g\\:h\\\\i"


def test_soql_string_literals_are_escaped() -> None:
    assert soql_string("Bob's \\ \"BBQ\"\n") == "'Bob\\'s \\\\ \\\"BBQ\\\"\\n'"


def test_a_hostile_email_is_searched_as_one_escaped_term(fake: FakeSalesforce,
                                                         conn: SalesforceConnector) -> None:
    crm_id = fake.add_customer(name="Odd Address", email=HOSTILE, phone_e164="+4930123456")
    fake.add_customer(name="Plain", email="ab@x.com", phone_e164="+4930999999")
    assert [r.external_id for r in conn.find_customers(email=HOSTILE.upper())] == [crm_id]
    method, path = fake.requests[-1]
    assert method == "GET" and "parameterizedSearch/" in path
    sent = httpx.URL(path).params
    assert sent["q"] == sosl_escape(HOSTILE.lower()) and sent["in"] == "EMAIL"
    assert sent["sobject"] == "Contact" and sent["Contact.fields"].startswith("Id,")


def test_the_fake_refuses_unescaped_search_terms(fake: FakeSalesforce,
                                                 conn: SalesforceConnector) -> None:
    conn.find_customers(email="someone@example.com")  # a session
    with pytest.raises(CRMValidationError, match="MALFORMED_SEARCH"):
        conn._call("GET", "parameterizedSearch/", "raw search",
                   params={"q": HOSTILE, "sobject": "Contact", "in": "EMAIL"})


def test_phones_match_whatever_their_format(fake: FakeSalesforce) -> None:
    a = fake.add_customer(name="Formatted", email="f@example.com",
                          phone_e164="+86 138-0013-8000")
    b = fake.add_customer(name="National", email="n@example.com", phone_e164="138 0013 8000")
    c = fake.add_customer(name="Suffix only", email="s@example.com",
                          phone_e164="+1 713 800 138 000")
    with http_client() as http:
        plain, in_china = make(fake, http), make(fake, http, phone_region="CN")
        assert [r.external_id for r in plain.find_customers(phone_e164="+8613800138000")] == [a]
        found = in_china.find_customers(phone_e164="+8613800138000")
        assert [r.external_id for r in found] == [a, b]  # c ends in the same digits: checked
    assert c not in {r.external_id for r in found}
    assert httpx.URL(fake.requests[-1][1]).params["q"] == "13800138000"


def test_profile_takes_segment_and_tier_from_the_account(fake: FakeSalesforce,
                                                         conn: SalesforceConnector) -> None:
    crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                               phone_e164="+8613800138000",
                               properties={"Account.Type": "Customer - Direct",
                                           "Account.Rating": "Hot",
                                           "MobilePhone": "+86 139 0013 9000"})
    profile = conn.get_profile(CustomerRef("salesforce", "contact", crm_id))
    assert (profile.segment, profile.value_tier, profile.lifecycle_stage) == \
        ("Customer - Direct", "Hot", None)
    assert profile.phones_e164 == ("+8613800138000", "+8613900139000")
    assert profile.raw["Account"]["Rating"] == "Hot" and profile.raw["Email"]
    assert profile.ref.url == f"{fake.url}/lightning/r/Contact/{crm_id}/view"


def test_profile_fields_are_configurable(fake: FakeSalesforce) -> None:
    crm_id = fake.add_customer(name="Ann", email="ann@example.com", phone_e164="+4930123456",
                               properties={"LeadSource": "Partner", "Title": "Gold"})
    with http_client() as http:
        conn = make(fake, http, profile_fields={"segment": "LeadSource", "value_tier": "Title",
                                                "lifecycle_stage": "Account.Type"})
        profile = conn.get_profile(CustomerRef("salesforce", "contact", crm_id))
    assert (profile.segment, profile.value_tier, profile.lifecycle_stage) == \
        ("Partner", "Gold", None)
    assert not any("sobjects/Account" in path for _, path in fake.requests)  # no account


def test_a_comment_is_plain_text_with_its_marker(fake: FakeSalesforce,
                                                 conn: SalesforceConnector) -> None:
    pushed = conn.upsert_case(snapshot("9"))
    case = CustomerRef("salesforce", "case", pushed.external_id)
    when = dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    first = conn.add_activity(Activity("9:1", "call", "<b>Rang</b> & left a message", when,
                                       (case,)))
    long = conn.add_activity(Activity("9:2", "note", "x" * 5000, when, (case,)))
    assert conn.add_activity(Activity("9:1", "call", "changed text", when, (case,))) == first
    by_id = {a["Id"]: a for a in fake.activities()}
    assert by_id[first]["CommentBody"] == ("Call from Caseloop, 2026-11-23 09:30 UTC\n\n"
                                          "<b>Rang</b> & left a message\n\n[caseloop:9:1]")
    assert len(by_id[long]["CommentBody"]) == 4000
    assert by_id[long]["CommentBody"].endswith("…\n\n[caseloop:9:2]")
    assert by_id[first]["IsPublished"] is False and len(by_id) == 2


def test_an_activity_needs_a_case(fake: FakeSalesforce, conn: SalesforceConnector) -> None:
    contact = CustomerRef("salesforce", "contact",
                          fake.add_customer(name="A B", email="a@b.c", phone_e164="+4930123456"))
    with pytest.raises(CRMValidationError, match="needs a Salesforce case"):
        conn.add_activity(Activity("1:1", "note", "hi", dt.datetime.now(dt.UTC), (contact,)))
    assert fake.activities() == []


def test_poll_keeps_records_that_share_a_second(fake: FakeSalesforce,
                                                conn: SalesforceConnector) -> None:
    now = dt.datetime(2026, 11, 23, 9, 30, 0, tzinfo=dt.UTC)
    fake.clock = conn.clock = lambda: now
    _, cursor = conn.poll_changes(None)
    ids = [fake.add_customer(name=f"P {i}", email=f"p{i}@x.com", phone_e164="+4930123456")
           for i in range(3)]
    case = conn.upsert_case(snapshot("7")).external_id
    events, cursor = conn.poll_changes(cursor)
    assert [e.external_ids[0] for e in events] == [case, *ids]
    assert events[0].event_id == f"Case:{case}:2026-11-23T09:30:00.000+0000"
    assert events[0].object_type == "case" and events[0].occurred_at == now
    assert json.loads(cursor)["Contact"] == ["2026-11-23T09:30:00Z", ids[-1]]
    assert conn.poll_changes(cursor)[0] == []  # same second, nothing new: nothing again
    fake.add_customer(name="P 3", email="p3@x.com", phone_e164="+4930123456")  # same second
    events, cursor = conn.poll_changes(cursor)
    assert len(events) == 1
    soql = httpx.URL(fake.requests[-1][1]).params["q"]
    assert soql.startswith("SELECT Id, SystemModstamp FROM Contact WHERE (SystemModstamp > "
                           "2026-11-23T09:30:00Z OR (SystemModstamp = 2026-11-23T09:30:00Z "
                           "AND Id > '")


@pytest.mark.parametrize("cursor", [
    "not json", '{"Case": ["2026-11-23T09:30:00Z OR Id != null", ""]}',
    '{"Case": ["2026-11-23T09:30:00Z", "x\' OR Id != \'"]}', '["a"]'])
def test_a_foreign_cursor_is_refused(conn: SalesforceConnector, fake: FakeSalesforce,
                                     cursor: str) -> None:
    with pytest.raises(CRMValidationError):
        conn.poll_changes(cursor)
    assert fake.requests == []


def test_a_quoted_marker_in_the_text_is_no_match(fake: FakeSalesforce,
                                                 conn: SalesforceConnector) -> None:
    case = CustomerRef("salesforce", "case", conn.upsert_case(snapshot("9")).external_id)
    when = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    quoting = conn.add_activity(Activity("9:1", "note", "The customer wrote:\n[caseloop:9:2]",
                                         when, (case,)))
    real = conn.add_activity(Activity("9:2", "note", "A real note", when, (case,)))
    assert real != quoting and len(fake.activities()) == 2
    assert conn.add_activity(Activity("9:2", "note", "A real note", when, (case,))) == real


def test_the_schema_accepts_a_full_config_and_refuses_injection() -> None:
    import jsonschema

    validator = jsonschema.Draft7Validator(SalesforceConnector.config_schema)
    good = {"login_url": "https://example.my.salesforce.com", "client_id": "a",
            "client_secret": "b", "refresh_token": "c", "api_version": "v62.0",
            "external_id_field": "Caseloop_Id__c", "status_map": {"paused": "On Hold"},
            "priority_map": {"urgent": "High"}, "origin": "Email",
            "field_map": {"category": "Category__c"},
            "profile_fields": {"segment": "Account.Industry", "lifecycle_stage": None},
            "phone_region": "DE", "organization_id": "00DQx0000000001AAA",
            "url_secret": "0123456789abcdef", "poll_objects": ["Case"],
            "poll_lookback_seconds": 0}
    assert list(validator.iter_errors(good)) == []
    for bad in ({"external_id_field": "Id/../x"}, {"poll_objects": ["Case WHERE"]},
                {"api_version": "latest"}, {"url_secret": "short"},
                {"profile_fields": {"segment": "Account.Type OR"}}, {"unknown": 1}):
        assert list(validator.iter_errors({**good, **bad})), bad
