"""The connector contract test kit: what every CRM connector must pass.

A connector's tests subclass :class:`ConnectorContract` and say how to start the
connector's fake CRM (a real HTTP server on loopback speaking the CRM's request
and response shapes) and how to build the connector against it::

    class TestHubSpot(ConnectorContract):
        def make_fake(self):
            return FakeHubSpot()          # a context manager yielding a FakeCRM

        def make_connector(self, fake, http, tokens):
            return HubSpot({"base_url": fake.url, ...}, http, tokens)

pytest then runs every contract test below against it. Tests of a capability
the connector does not declare are skipped with that reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

import httpx
import jsonschema
import pytest
from werkzeug.serving import make_server

from .crm import (
    CAPABILITIES,
    Activity,
    CaseSnapshot,
    Connector,
    CRMBadResponse,
    CRMError,
    CRMRateLimited,
    CRMTransientError,
    CustomerRef,
    InboundRequest,
    Token,
    UnsupportedOperation,
    WebhookAuthError,
    http_client,
)

#: The faults every fake must be able to answer its next API call with.
FAULTS = ("rate_limit", "server_error", "garbage", "expired_token", "timeout")


class FakeCRM(Protocol):
    """What the contract tests need from a connector's fake CRM."""

    #: Base URL of the running fake (http://127.0.0.1:PORT).
    url: str
    #: How often the token endpoint minted a token.
    token_refreshes: int

    def add_customer(self, *, name: str, email: str, phone_e164: str,
                     properties: Mapping[str, Any] | None = None) -> str:
        """Store a contact; return its CRM id."""

    def cases(self) -> list[Mapping[str, Any]]:
        """The case/ticket records in the fake, as stored."""

    def activities(self) -> list[Mapping[str, Any]]:
        """The notes/comments/activities in the fake."""

    def inject(self, fault: str) -> None:
        """Answer the next API call (not the token endpoint) with ``fault``, one of
        :data:`FAULTS`, in the CRM's real shape. "timeout" sleeps past the read
        timeout the tests give the client (1 s)."""

    def touch(self, external_id: str) -> None:
        """Change a record (as a CRM user would), so a poll reports it (may raise
        UnsupportedOperation for a CRM that is not polled)."""

    def webhook(self, object_type: str, external_id: str, action: str,
                *, now: dt.datetime) -> InboundRequest:
        """The inbound call the CRM would make about the change, correctly signed
        (or carrying the right token) at ``now`` (UnsupportedOperation for a CRM
        without webhooks)."""


class MemoryTokens:
    """The token store for tests: one process, a lock instead of a row lock."""

    def __init__(self, initial: Token | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.token = initial
        self.clock = clock
        self.connector: Any = None
        self.lock = threading.Lock()

    def get(self) -> Token:
        with self.lock:
            if self.token is None or self.token.expired(self.clock()):
                self.token = self.connector.refresh_token(self.token)
            return self.token

    def refresh(self, stale: Token | None) -> Token:
        with self.lock:
            if self.token is not None and stale is not None and self.token != stale:
                return self.token  # someone refreshed meanwhile
            self.token = self.connector.refresh_token(self.token)
            return self.token


@contextlib.contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Run a WSGI app (a fake CRM) on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="fake-crm", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def snapshot(caseloop_id: str = "4711", *, subject: str = "Parcel arrived damaged",
             customer: CustomerRef | None = None, category: str = "open",
             status: str | None = None, version: int = 1) -> CaseSnapshot:
    """A case as Caseloop pushes it."""
    return CaseSnapshot(caseloop_id=caseloop_id, reference=f"C-{caseloop_id}", version=version,
                        subject=subject, status=status, state="received",
                        state_category=category, priority="high",
                        description="The box was crushed; the vase inside is broken.",
                        customer=customer, url=f"http://caseloop.test/cases/{caseloop_id}",
                        fields={"category": "delivery"})


class ConnectorContract:
    """Subclass in a connector's tests; implement the two ``make_*`` methods."""

    #: Read timeout the connector's client gets in the tests (the fake's "timeout"
    #: fault sleeps longer).
    read_timeout = 1.0
    #: Whether the connector works with refreshable tokens (False: a static key or a
    #: shared secret, and the "expired_token" contract test is skipped).
    refreshes_tokens = True
    #: Whether inbound calls are signed over the body (HubSpot, HMAC). False for CRMs
    #: that authenticate with a token or key only (Zoho, Salesforce Outbound Messages):
    #: a body changed in transit cannot be told apart, so that check is skipped.
    signs_body = True

    def make_fake(self) -> AbstractContextManager[FakeCRM]:
        raise NotImplementedError("return the fake CRM (a context manager)")

    def make_connector(self, fake: FakeCRM, http: httpx.Client, tokens: MemoryTokens
                       ) -> Connector:
        raise NotImplementedError("build the connector against fake.url")

    # -- fixtures ------------------------------------------------------------------
    @pytest.fixture
    def fake(self) -> Iterator[FakeCRM]:
        with self.make_fake() as fake:
            yield fake

    @pytest.fixture
    def tokens(self) -> MemoryTokens:
        return MemoryTokens()

    @pytest.fixture
    def connector(self, fake: FakeCRM, tokens: MemoryTokens) -> Iterator[Connector]:
        with http_client(connect=1.0, read=self.read_timeout) as http:
            conn = self.make_connector(fake, http, tokens)
            tokens.connector = conn
            yield conn

    def needs(self, connector: Connector, capability: str) -> None:
        if capability not in connector.capabilities:
            pytest.skip(f"{connector.name} does not offer '{capability}'")

    # -- the contract --------------------------------------------------------------
    def test_declares_the_contract(self, connector: Connector) -> None:
        assert isinstance(connector, Connector)
        assert connector.name and connector.name.isidentifier()
        assert connector.capabilities <= CAPABILITIES, connector.capabilities - CAPABILITIES
        jsonschema.Draft7Validator.check_schema(dict(connector.config_schema))

    def test_finds_a_customer_by_email_and_phone(self, connector: Connector,
                                                 fake: FakeCRM) -> None:
        self.needs(connector, "find")
        crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                   phone_e164="+8613800138000")
        fake.add_customer(name="Other", email="other@example.com", phone_e164="+8613900139000")
        by_email = connector.find_customers(email="Li.Wei@Example.com")
        assert [r.external_id for r in by_email] == [crm_id]
        assert by_email[0].crm == connector.name
        by_phone = connector.find_customers(phone_e164="+8613800138000")
        assert [r.external_id for r in by_phone] == [crm_id]

    def test_finds_nobody_without_an_error(self, connector: Connector, fake: FakeCRM) -> None:
        self.needs(connector, "find")
        assert connector.find_customers(email="nobody@example.com") == []
        assert connector.find_customers(phone_e164="+4930123456") == []

    def test_fetches_a_profile(self, connector: Connector, fake: FakeCRM) -> None:
        self.needs(connector, "profile")
        crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                   phone_e164="+8613800138000")
        ref = CustomerRef(connector.name, "contact", crm_id)
        profile = connector.get_profile(ref)
        assert profile.ref.external_id == crm_id
        assert profile.display_name and "Li" in profile.display_name
        assert "li.wei@example.com" in [e.lower() for e in profile.emails]
        assert profile.raw, "the CRM's properties are kept for the profile mapping"

    def test_upserts_a_case_idempotently(self, connector: Connector, fake: FakeCRM) -> None:
        self.needs(connector, "cases")
        first = connector.upsert_case(snapshot("4711"))
        again = connector.upsert_case(snapshot("4711", category="done", version=2))
        other = connector.upsert_case(snapshot("4712"))
        assert first.created and not again.created
        assert again.external_id == first.external_id != other.external_id
        assert len(fake.cases()) == 2

    def test_fetches_a_pushed_case(self, connector: Connector, fake: FakeCRM) -> None:
        self.needs(connector, "cases")
        pushed = connector.upsert_case(snapshot("4713", subject="Refund never arrived"))
        case = connector.get_case(pushed.external_id)
        assert case.ref.external_id == pushed.external_id
        assert case.subject == "Refund never arrived"
        assert case.caseloop_id == "4713"

    def test_adds_an_activity_once(self, connector: Connector, fake: FakeCRM) -> None:
        self.needs(connector, "activities")
        crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                   phone_e164="+8613800138000")
        contact = CustomerRef(connector.name, "contact", crm_id)
        pushed = connector.upsert_case(snapshot("4714", customer=contact))
        case_ref = CustomerRef(connector.name, "case", pushed.external_id)
        note = Activity("4714:9", "note", "Called back <b>twice</b> & left a message",
                        dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC), (case_ref, contact))
        first = connector.add_activity(note)
        assert connector.add_activity(note) == first
        assert len(fake.activities()) == 1

    def test_verifies_and_parses_webhooks(self, connector: Connector, fake: FakeCRM) -> None:
        self.needs(connector, "webhooks")
        now = dt.datetime.now(dt.UTC)
        crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                   phone_e164="+8613800138000")
        good = fake.webhook("contact", crm_id, "updated", now=now)
        connector.verify_webhook(good, now=now)
        events = connector.parse_webhook(good)
        assert events and all(e.crm == connector.name and e.event_id for e in events)
        assert crm_id in {i for e in events for i in e.external_ids}
        assert [e.event_id for e in connector.parse_webhook(good)] == [e.event_id
                                                                       for e in events]
        if self.signs_body:
            forged = InboundRequest(good.method, good.url, good.headers, good.body + b" ")
            with pytest.raises(WebhookAuthError):
                connector.verify_webhook(forged, now=now)
        unsigned = InboundRequest(good.method, good.url.split("?")[0], {}, good.body)
        with pytest.raises(WebhookAuthError):
            connector.verify_webhook(unsigned, now=now)

    def test_polls_changes_with_a_cursor(self, connector: Connector, fake: FakeCRM) -> None:
        self.needs(connector, "poll")
        _, cursor = connector.poll_changes(None)
        crm_id = fake.add_customer(name="Li Wei", email="li.wei@example.com",
                                   phone_e164="+8613800138000")
        fake.touch(crm_id)
        events, cursor2 = connector.poll_changes(cursor)
        assert crm_id in {i for e in events for i in e.external_ids}
        assert all(e.event_id for e in events)
        later, _ = connector.poll_changes(cursor2)
        assert crm_id not in {i for e in later for i in e.external_ids}

    # -- faults ----------------------------------------------------------------------
    def _call(self, connector: Connector, fake: FakeCRM) -> Any:
        """One API call the connector surely offers."""
        if "find" in connector.capabilities:
            return connector.find_customers(email="someone@example.com")
        if "cases" in connector.capabilities:
            return connector.upsert_case(snapshot("4799"))
        pytest.skip(f"{connector.name} offers neither 'find' nor 'cases'")

    def test_rate_limit_is_retryable_with_retry_after(self, connector: Connector,
                                                      fake: FakeCRM) -> None:
        self._call(connector, fake)  # warm up (a token, discovered settings)
        fake.inject("rate_limit")
        with pytest.raises(CRMRateLimited) as info:
            self._call(connector, fake)
        assert info.value.retryable
        assert info.value.retry_after is None or info.value.retry_after >= 0

    def test_server_error_is_transient(self, connector: Connector, fake: FakeCRM) -> None:
        self._call(connector, fake)
        fake.inject("server_error")
        with pytest.raises(CRMTransientError) as info:
            self._call(connector, fake)
        assert info.value.retryable

    def test_garbage_is_a_readable_permanent_error(self, connector: Connector,
                                                   fake: FakeCRM) -> None:
        self._call(connector, fake)
        fake.inject("garbage")
        with pytest.raises(CRMBadResponse) as info:
            self._call(connector, fake)
        assert not info.value.retryable
        assert str(info.value)

    def test_timeout_is_transient(self, connector: Connector, fake: FakeCRM) -> None:
        self._call(connector, fake)
        fake.inject("timeout")
        with pytest.raises(CRMTransientError):
            self._call(connector, fake)

    def test_expired_token_is_refreshed_once(self, connector: Connector, fake: FakeCRM
                                             ) -> None:
        if not self.refreshes_tokens:
            pytest.skip(f"{connector.name} uses no refreshable token")
        self._call(connector, fake)
        before = fake.token_refreshes
        fake.inject("expired_token")
        self._call(connector, fake)  # refreshed once and repeated: no error
        assert fake.token_refreshes == before + 1

    def test_unsupported_operations_say_so(self, connector: Connector) -> None:
        missing = CAPABILITIES - connector.capabilities
        calls: dict[str, Callable[[], Any]] = {
            "find": lambda: connector.find_customers(email="a@example.com"),
            "cases": lambda: connector.upsert_case(snapshot()),
            "poll": lambda: connector.poll_changes(None),
        }
        for capability in missing & calls.keys():
            with pytest.raises(UnsupportedOperation):
                calls[capability]()
        assert issubclass(UnsupportedOperation, CRMError)
