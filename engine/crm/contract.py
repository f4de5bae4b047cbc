"""The connector contract: what a CRM plugin implements and the values it trades.

Connectors are stateless adapters. Caseloop owns the outbox, retries, backoff,
dead letters, the token store, deduplication and logging; a connector turns
one call into the CRM's requests and the CRM's answers (or errors, see
:mod:`caseloop.crm.errors`) into these values. It is a :class:`typing.Protocol`,
so a plugin need not import a base class to satisfy it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import httpx

log = logging.getLogger("caseloop.crm")

#: What a connector may offer; Caseloop only calls what is listed.
CAPABILITIES = frozenset({"find", "profile", "cases", "activities", "webhooks", "poll",
                          "subscribe"})


@dataclass(frozen=True)
class CustomerRef:
    """A record in a CRM (a contact, a ticket): which CRM, which kind, its id."""

    crm: str
    object_type: str
    external_id: str
    url: str | None = None


@dataclass(frozen=True)
class CustomerProfile:
    """Who the customer is, as the CRM sees it. ``segment``, ``value_tier`` and
    ``lifecycle_stage`` are the CRM's values; Caseloop maps them to the
    deployment's own through the connector's ``profile`` setting."""

    ref: CustomerRef
    display_name: str | None = None
    emails: tuple[str, ...] = ()
    phones_e164: tuple[str, ...] = ()
    segment: str | None = None
    value_tier: str | None = None
    lifecycle_stage: str | None = None
    open_tickets: int | None = None
    #: The CRM's properties as fetched, for the mapping (and for debugging).
    raw: Mapping[str, Any] = field(default_factory=dict)
    fetched_at: dt.datetime | None = None


@dataclass(frozen=True)
class CaseSnapshot:
    """A case as pushed to a CRM. ``caseloop_id`` is the idempotency key: pushing
    the same id twice updates the one record."""

    caseloop_id: str
    reference: str
    version: int
    subject: str
    #: The CRM status value from the deployment's ``status`` map, or None: the
    #: connector then derives one from ``state_category`` (open, paused, done).
    status: str | None
    state: str
    state_category: str
    priority: str | None = None
    description: str | None = None
    customer: CustomerRef | None = None
    url: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushResult:
    """Where a pushed case lives in the CRM."""

    external_id: str
    created: bool
    url: str | None = None


@dataclass(frozen=True)
class Activity:
    """A note, call or survey result to record against CRM records."""

    #: Idempotency key (Caseloop's case id and the job that sends it): the same
    #: activity is recorded once however often it is sent.
    caseloop_id: str
    kind: Literal["note", "call", "survey_result"]
    #: Plain text; the connector escapes it as its CRM needs.
    body_text: str
    occurred_at: dt.datetime
    attach_to: Sequence[CustomerRef] = ()


@dataclass(frozen=True)
class InboundRequest:
    """An inbound webhook call as received: the raw body, never re-serialised
    (signatures are over the bytes)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header by name, in any case."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True)
class InboundEvent:
    """A change in the CRM, normalised. ``event_id`` is the deduplication key
    (HubSpot's eventId; Zoho's channel, time and ids)."""

    crm: str
    event_id: str
    object_type: str
    external_ids: tuple[str, ...]
    action: Literal["created", "updated", "deleted", "merged", "other"]
    occurred_at: dt.datetime | None = None
    changed_fields: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CRMCase:
    """A case (ticket) as fetched from the CRM, for opening a Caseloop case from it."""

    ref: CustomerRef
    subject: str
    description: str | None = None
    status: str | None = None
    priority: str | None = None
    customer: CustomerRef | None = None
    #: Caseloop's id when the record was pushed by Caseloop (not to be opened again).
    caseloop_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Token:
    """Credentials for one connection, kept by Caseloop's token store (in the
    database, shared by every process)."""

    access_token: str
    refresh_token: str | None = None
    expires_at: dt.datetime | None = None
    #: What else the CRM said with it (Zoho's api_domain, Salesforce's instance_url).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def expired(self, now: dt.datetime, *, margin: dt.timedelta = dt.timedelta(minutes=1)
                ) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= now


class Tokens(Protocol):
    """The token store as a connector sees it."""

    def get(self) -> Token:
        """A token that is valid now, refreshed first (under a lock) if it expired."""

    def refresh(self, stale: Token | None) -> Token:
        """After the CRM refused ``stale``: a fresh token. When another process
        refreshed meanwhile, its token is returned and the CRM is not asked."""


@runtime_checkable
class Connector(Protocol):
    """A CRM connector. ``__init__(config, http, tokens)`` gets the connector's
    settings (secrets resolved), an :class:`httpx.Client` with timeouts set, and
    the token store. Methods outside ``capabilities`` raise UnsupportedOperation."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]
    #: JSON Schema (draft-07) of the settings; Caseloop checks them at start-up.
    config_schema: ClassVar[Mapping[str, Any]]

    def find_customers(self, *, email: str | None = None, phone_e164: str | None = None,
                       limit: int = 5) -> list[CustomerRef]: ...

    def get_profile(self, ref: CustomerRef) -> CustomerProfile: ...

    def upsert_case(self, case: CaseSnapshot) -> PushResult: ...

    def get_case(self, external_id: str) -> CRMCase: ...

    def add_activity(self, activity: Activity) -> str: ...

    def verify_webhook(self, request: InboundRequest, *, now: dt.datetime) -> None: ...

    def parse_webhook(self, request: InboundRequest) -> list[InboundEvent]: ...

    def poll_changes(self, cursor: str | None) -> tuple[list[InboundEvent], str]: ...

    def ensure_subscriptions(self, callback_url: str) -> None: ...

    def refresh_token(self, current: Token | None) -> Token: ...


#: The signature of a connector class's constructor, for the plugin hook.
ConnectorFactory = Any  # type[Connector]; a Protocol cannot describe __init__ portably


def http_client(*, connect: float = 5.0, read: float = 30.0,
                transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The HTTP client Caseloop hands a connector: timeouts on every call, no
    redirects followed (a CRM that redirects an API call is misconfigured),
    Caseloop's User-Agent."""
    from .. import __version__

    return httpx.Client(timeout=httpx.Timeout(read, connect=connect), follow_redirects=False,
                        headers={"User-Agent": f"caseloop/{__version__}"}, transport=transport,
                        event_hooks={"response": [_log]})


def _log(response: httpx.Response) -> None:
    # Method, host and path only: query strings and headers may carry secrets
    # (Zoho's notify key, tokens), bodies carry customer data.
    request = response.request
    log.info("crm %s %s://%s%s -> %s", request.method, request.url.scheme, request.url.host,
             request.url.path, response.status_code)
