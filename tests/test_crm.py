"""CRMs end to end: pushes from the outbox, sync status, inbound webhooks, polls,
lookups, faults. Against HubSpot's fake CRM (plugins/hubspot: a real HTTP server on
loopback speaking HubSpot's shapes), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from caseloop.cases import Actor, Cases
from caseloop.crm.tables import CRMInbound, CRMLink, CRMProfile
from caseloop.extension import state
from caseloop.jobs import enqueue
from caseloop.models import Case, Event, Job
from caseloop.users import add_user, issue_token
from caseloop.worker import Worker, executor_for

from .test_api import COMPLAINT
from .test_cases import build_app, dispose, person

hubspot = pytest.importorskip("caseloop_hubspot.fake",
                              reason="the HubSpot connector is not installed "
                                     "(pip install -e plugins/hubspot)")
HOOK = "http://localhost/api/hooks/hubspot"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def fake() -> Iterator[Any]:
    with hubspot.FakeHubSpot() as crm:
        yield crm


def crm_app(kind: str, tmp_path: Path, fake: Any, **settings: Any) -> Flask:
    config = {**fake.oauth_settings(), "portal_id": fake.portal_id, "webhook_url": HOOK,
              "poll_every": 0, "subscribe_every": 0, **settings}
    return build_app(kind, tmp_path, CASELOOP_PLUGINS=["caseloop_hubspot"],
                     CASELOOP_CRM={"hubspot": config})


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path, fake: Any) -> Iterator[Flask]:
    app = crm_app(request.param, tmp_path, fake)
    yield app
    dispose(app)


def work(app: Flask, clock: Clock | None = None) -> Counter[str]:
    state().db.session.remove()
    executor = executor_for(app)
    if clock is not None:
        executor.clock = clock
    return Worker(executor).run(until_idle=True)


class Made:
    def __init__(self, case: Case) -> None:
        self.id, self.reference, self.state = case.id, case.reference, case.state


def create(app: Flask, agent: Actor, **data: Any) -> Made:
    """A complaint, acknowledged: entering 'acknowledged' pushes it to the CRM."""
    session = state().db.session
    cases = Cases(session, state().registry)
    case = cases.create("complaint", {**COMPLAINT, **data}, agent)
    cases.fire(case.id, "acknowledge", {}, agent)
    session.commit()
    return Made(case)


def crm_jobs(status: str | None = None) -> list[Job]:
    stmt = select(Job).where(Job.kind == "crm").order_by(Job.id)
    if status:
        stmt = stmt.where(Job.status == status)
    state().db.session.expire_all()
    return list(state().db.session.execute(stmt).scalars())


def test_a_new_case_is_pushed_with_its_contact_and_shows_its_sync_status(
        app: Flask, fake: Any) -> None:
    contact = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                phone_e164="+8613800138000")
    with app.app_context():
        agent = person(app, "ana", ["agent"], ["service"])
        case = create(app, agent)
        assert fake.cases() == []  # nothing is sent inside the transaction
        work(app)
        [ticket] = fake.cases()
        assert ticket["properties"]["caseloop_id"] == case.reference
        assert ticket["properties"]["subject"] == COMPLAINT["subject"]
        links = {link.object_type: link for link in state().db.session.execute(
            select(CRMLink).where(CRMLink.case_id == case.id)).scalars()}
        assert links["contact"].external_id == contact
        assert (links["case"].status, links["case"].external_id) == ("synced",
                                                                    str(ticket["id"]))
        events = [e.payload for e in state().db.session.execute(
            select(Event).where(Event.case_id == case.id, Event.kind == "crm")).scalars()]
        assert events[-1]["status"] == "synced" and events[-1]["crm"] == "hubspot"
        token = issue_token(state().db.session, add_user(state().db.session, "bo",
                                                       roles=["manager"]))
        state().db.session.commit()
    reply = app.test_client().get(f"/api/cases/{case.id}/crm",
                                  headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200
    by_type = {link["object_type"]: link for link in reply.get_json()["links"]}
    assert by_type["case"]["status"] == "synced"
    assert by_type["case"]["url"].startswith("https://app.hubspot.com/")
    assert by_type["contact"]["external_id"] == contact


def test_pushing_again_updates_the_same_ticket(app: Flask, fake: Any) -> None:
    with app.app_context():
        agent = person(app, "ana", ["agent"], ["service"])
        case = create(app, agent)
        work(app)
        enqueue(state().db.session, "crm", case_id=case.id, push="case", state=case.state)
        state().db.session.commit()
        work(app)
        assert len(fake.cases()) == 1
        assert [j.status for j in crm_jobs()] == ["done", "done"]


def test_garbage_from_the_crm_dead_letters_with_a_readable_reason(app: Flask,
                                                                   fake: Any) -> None:
    with app.app_context():
        agent = person(app, "ana", ["agent"], ["service"])
        work(app)  # nothing yet; warms the token
        case = create(app, agent)
        fake.inject("garbage")
        work(app)
        [job] = crm_jobs()
        assert job.status == "dead"
        assert "not JSON" in (job.last_error or "") and job.last_error.startswith("hubspot:")
        link = state().db.session.execute(select(CRMLink).where(
            CRMLink.case_id == case.id, CRMLink.object_type == "case")).scalar_one()
        assert link.status == "failed" and "not JSON" in (link.last_error or "")
        failed = state().db.session.execute(select(Event).where(
            Event.case_id == case.id, Event.kind == "crm")).scalars().all()
        assert failed[-1].payload["status"] == "failed"


def test_a_rate_limit_retries_at_the_crms_retry_after(app: Flask, fake: Any) -> None:
    with app.app_context():
        agent = person(app, "ana", ["agent"], ["service"])
        create(app, agent)
        clock = Clock()
        fake.inject("rate_limit")
        work(app, clock)
        [job] = crm_jobs()
        assert job.status == "pending" and "hubspot:" in (job.last_error or "")
        assert job.run_at > clock.now
        clock.now = job.run_at + dt.timedelta(seconds=1)
        work(app, clock)
        assert [j.status for j in crm_jobs()] == ["done"]
        assert len(fake.cases()) == 1


def test_a_crm_down_for_half_of_1000_pushes_delivers_each_once(tmp_path: Path,
                                                              fake: Any) -> None:
    app = crm_app("sqlite", tmp_path, fake)
    try:
        with app.app_context():
            agent = person(app, "ana", ["agent"], ["service"])
            session = state().db.session
            cases = Cases(session, state().registry)
            for i in range(1000):
                case = cases.create("complaint", {**COMPLAINT,
                                                  "subject": f"Complaint {i}"}, agent)
                cases.fire(case.id, "acknowledge", {}, agent)
                if i % 100 == 99:
                    session.commit()
            session.commit()
            clock = Clock()
            for _ in range(500):  # the next 500 calls answer 500: the CRM is down
                fake.inject("server_error")
            rounds = 0
            while crm_jobs("pending") or rounds == 0:
                work(app, clock)
                clock.now += dt.timedelta(hours=7)  # past any backoff
                rounds += 1
                assert rounds < 10
            statuses = Counter(j.status for j in crm_jobs())
            assert statuses == {"done": 1000}
            assert sum(1 for j in crm_jobs() if (j.attempts or 0) > 1) >= 400
        ids = [t["properties"]["caseloop_id"] for t in fake.cases()]
        assert len(ids) == len(set(ids)) == 1000
    finally:
        dispose(app)


# -- inbound -------------------------------------------------------------------------
def _post(app: Flask, request: Any) -> Any:
    return app.test_client().post("/api/hooks/hubspot", data=request.body,
                                  headers=dict(request.headers),
                                  content_type="application/json")


def test_webhooks_are_verified_deduplicated_and_refresh_profiles(app: Flask, fake: Any) -> None:
    contact = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                phone_e164="+8613800138000",
                                properties={"customer_segment": "A"})
    now = dt.datetime.now(dt.UTC)
    event = {"eventId": 77, "subscriptionId": 1, "portalId": fake.portal_id, "appId": 1,
             "occurredAt": int(now.timestamp() * 1000),
             "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
             "objectId": int(contact), "propertyName": "email", "propertyValue": "x",
             "changeSource": "CRM"}
    signed = fake.signed_request([event], now=now, url=HOOK)
    first = _post(app, signed)
    assert first.status_code == 200 and first.get_json() == {"accepted": 1, "duplicates": 0}
    again = _post(app, signed)  # HubSpot delivers at least once
    assert again.get_json() == {"accepted": 0, "duplicates": 1}
    forged = type(signed)(signed.method, signed.url, signed.headers,
                          signed.body.replace(b'"x"', b'"y"'))
    assert _post(app, forged).status_code == 401
    stale = fake.signed_request([{**event, "eventId": 78}], url=HOOK,
                                now=now - dt.timedelta(minutes=6))
    reply = _post(app, stale)
    assert reply.status_code == 401
    assert reply.get_json()["error"]["code"] == "webhook_rejected"
    with app.app_context():
        assert state().db.session.execute(select(func.count()).select_from(CRMInbound)
                                          ).scalar() == 1
        work(app)
        profile = state().db.session.get(CRMProfile, ("hubspot", contact))
        assert profile is not None and profile.display_name == "Li Wei"


def test_a_ticket_raised_in_the_crm_opens_a_case(tmp_path: Path, fake: Any) -> None:
    app = crm_app("sqlite", tmp_path, fake, inbound={
        "workflow": "complaint", "fields": {"subject": "subject", "content": "description"},
        "set": {"category": "other", "customer_name": "HubSpot customer"}})
    try:
        ticket = fake.create("tickets", {"subject": "Broken lamp", "content": "It flickers.",
                                         "hs_pipeline": "0", "hs_pipeline_stage": "1"})
        now = dt.datetime.now(dt.UTC)
        created = {"eventId": 90, "subscriptionId": 2, "portalId": fake.portal_id,
                   "appId": 1, "occurredAt": int(now.timestamp() * 1000),
                   "subscriptionType": "ticket.creation", "attemptNumber": 0,
                   "objectId": int(ticket["id"]), "changeSource": "CRM"}
        assert _post(app, fake.signed_request([created], now=now, url=HOOK)).status_code == 200
        with app.app_context():
            work(app)
            opened = state().db.session.execute(select(Case)).scalars().all()
            assert [(c.data["subject"], c.data["description"]) for c in opened] == [
                ("Broken lamp", "It flickers.")]
            link = state().db.session.execute(select(CRMLink)).scalars().first()
            assert link is not None and link.external_id == str(ticket["id"])
        # The same ticket announced again (a redelivery with a new id): no second case.
        again = {**created, "eventId": 91}
        assert _post(app, fake.signed_request([again], now=now, url=HOOK)).status_code == 200
        with app.app_context():
            work(app)
            assert state().db.session.execute(select(func.count()).select_from(Case)
                                              ).scalar() == 1
    finally:
        dispose(app)


def test_polling_stores_each_change_once(tmp_path: Path, fake: Any) -> None:
    app = crm_app("sqlite", tmp_path, fake, poll_every=60, poll_settle_seconds=0)
    clock = Clock()
    try:
        contact = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                    phone_e164="+8613800138000")
        with app.app_context():
            work(app, clock)
            polls = state().db.session.execute(select(Job).where(Job.kind == "crm_poll")
                                               ).scalars().all()
            assert [p.status for p in polls] == ["done"]
            fake.touch(contact)
            clock.now += dt.timedelta(seconds=61)
            work(app, clock)
            work(app, clock)  # same time slot: no second poll
            state().db.session.expire_all()
            rows = state().db.session.execute(select(CRMInbound)).scalars().all()
            assert contact in {i for r in rows for i in r.external_ids}
            assert state().db.session.execute(select(func.count()).select_from(Job).where(
                Job.kind == "crm_poll")).scalar() == 2
    finally:
        dispose(app)


# -- lookup --------------------------------------------------------------------------
def test_the_intake_lookup_finds_the_customer_and_degrades_when_the_crm_is_slow(
        tmp_path: Path, fake: Any) -> None:
    app = crm_app("sqlite", tmp_path, fake, lookup_timeout=0.5)
    try:
        fake.add_customer(name="Li Wei", email="li.wei@example.com",
                          phone_e164="+8613800138000", properties={"lifecyclestage": "customer"})
        with app.app_context():
            token = issue_token(state().db.session, add_user(state().db.session, "ana",
                                                           roles=["agent"]))
            state().db.session.commit()
        client, auth = app.test_client(), {"Authorization": f"Bearer {token}"}
        reply = client.get("/api/crm/customers?phone=138%200013%208000", headers=auth)
        [found] = reply.get_json()["customers"]
        assert found["display_name"] == "Li Wei" and found["lifecycle_stage"] == "customer"
        fake.inject("timeout")
        started = dt.datetime.now()
        slow = client.get("/api/crm/customers?email=li.wei@example.com", headers=auth)
        assert (dt.datetime.now() - started).total_seconds() < 5
        assert slow.status_code == 200
        body = slow.get_json()
        assert body["customers"] == [] and body["unavailable"][0]["crm"] == "hubspot"
        assert client.get("/api/crm/customers", headers=auth).status_code == 400
        assert client.get("/api/crm/customers?email=a@b.c").status_code == 401
    finally:
        dispose(app)


# -- pages ---------------------------------------------------------------------------
def test_the_case_page_shows_crm_records_and_the_new_case_page_finds_the_customer(
        tmp_path: Path, fake: Any) -> None:
    from .test_views_cases import agent, new_case

    app = crm_app("sqlite", tmp_path, fake, profile={
        "lifecycle_stage": {"values": {"customer": "Existing customer"}}})
    try:
        fake.add_customer(name="Li Wei", email="li.wei@example.com",
                          phone_e164="+8613800138000")
        amy = agent(app)
        form = amy.get("/cases/new/complaint").get_data(as_text=True)
        assert 'data-customers="/forms/customers"' in form
        found = amy.get("/forms/customers?phone=138%200013%208000").get_json()
        assert found["customers"][0]["display_name"] == "Li Wei"
        assert found["customers"][0]["lifecycle_stage"] == "Existing customer"
        assert amy.get("/forms/customers?phone=nonsense").get_json()["customers"] == []
        assert app.test_client().get("/forms/customers?phone=1").status_code in (302, 401)
        case_id = new_case(amy)
        with app.app_context():
            agent_actor = person(app, "ana", ["agent"], ["care"])
            Cases(state().db.session, state().registry).fire(case_id, "acknowledge", {},
                                                             agent_actor)
            state().db.session.commit()
            work(app)
            # A CRM answering a dangerous link: shown as text, never as a link.
            contact = state().db.session.execute(select(CRMLink).where(
                CRMLink.case_id == case_id, CRMLink.object_type == "contact")).scalar_one()
            contact.url = "javascript:alert(1)"
            state().db.session.commit()
        page = amy.get(f"/cases/{case_id}").get_data(as_text=True)
        assert "hubspot case" in page and "Open in hubspot" in page and "synced" in page
        assert "Existing customer" in page
        assert "javascript:" not in page
        assert 'href="https://app.hubspot.com/' in page
    finally:
        dispose(app)


def test_zoho_channels_are_renewed_by_the_worker(tmp_path: Path) -> None:
    zoho = pytest.importorskip("caseloop_zoho.fake",
                               reason="the Zoho connector is not installed "
                                      "(pip install -e plugins/zoho)")
    with zoho.FakeZoho() as fake:
        app = build_app("sqlite", tmp_path, CASELOOP_PLUGINS=["caseloop_zoho"],
                        CASELOOP_PUBLIC_URL="https://care.example.com",
                        CASELOOP_CRM={"zoho": {**fake.settings(), "poll_every": 0,
                                               "subscribe_every": 3600}})
        clock = Clock()
        try:
            with app.app_context():
                work(app, clock)
                [watch] = fake.watches.values()
                assert watch["notify_url"].startswith(
                    "https://care.example.com/api/hooks/zoho?key=")
                first = watch["channel_expiry"]
                work(app, clock)  # same hour: not renewed again
                assert state().db.session.execute(select(func.count()).select_from(Job).where(
                    Job.kind == "crm_subscribe")).scalar() == 1
                clock.now += dt.timedelta(hours=1, seconds=1)
                work(app, clock)
                assert state().db.session.execute(select(func.count()).select_from(Job).where(
                    Job.kind == "crm_subscribe", Job.status == "done")).scalar() == 2
                assert list(fake.watches.values())[0]["channel_expiry"] >= first
        finally:
            dispose(app)
