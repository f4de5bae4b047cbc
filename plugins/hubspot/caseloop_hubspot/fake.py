"""A fake HubSpot for tests and demos: a small stateful WSGI app on loopback that
speaks HubSpot's request and response shapes for what the connector uses
(OAuth token, search, get, ticket batch upsert, notes, associations), checks what
HubSpot checks (bearer token, required and known properties, unique values,
search limits), answers faults in HubSpot's shapes, and sends signed webhooks.

    with FakeHubSpot() as fake:
        conn = HubSpot({"base_url": fake.url, **fake.oauth_settings()}, http, tokens)
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from typing import Any

from caseloop.crm import InboundRequest
from caseloop.testing import serve

from .api import iso
from .fake_app import make_app
from .webhooks import SIGNATURE, TIMESTAMP, sign

#: Faults beyond the kit's: a daily 429, missing scopes, a unique-value clash, a
#: validation error, a token refused without being expired.
FAULTS = ("rate_limit", "rate_limit_daily", "server_error", "garbage", "expired_token",
          "timeout", "forbidden", "conflict", "validation", "unauthorized")
WEBHOOK_URL = "https://caseloop.test/crm/hubspot/webhook"
VERBS = {"created": "creation", "updated": "propertyChange", "deleted": "deletion",
         "merged": "merge"}


class FakeHubSpot:
    """The fake CRM; a context manager yielding itself once serving on loopback."""

    client_id = "fake-client-id"
    client_secret = "fake-client-secret"
    refresh_token = "fake-refresh-token"
    static_token = "pat-na1-fake-private-app-token"
    portal_id = 62515
    app_id = 54321

    def __init__(self, *, case_id_property: str = "caseloop_id",
                 activity_id_property: str = "caseloop_activity_id",
                 token_ttl: int = 1800, timeout_sleep: float = 1.5,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.case_id_property = case_id_property
        self.activity_id_property = activity_id_property
        self.token_ttl = token_ttl
        self.timeout_sleep = timeout_sleep
        self.clock = clock
        self.lock = threading.RLock()
        self.url = ""
        self.token_refreshes = 0
        #: access token → when it expires
        self.tokens: dict[str, dt.datetime] = {}
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "contacts": {}, "tickets": {}, "notes": {}}
        #: (method, path) of every API call, for tests of paths and call counts.
        self.calls: list[tuple[str, str]] = []
        self.faults: deque[str] = deque()
        self._ids = itertools.count(101)
        self._events = itertools.count(1000)
        self._last_ms = 0
        self._stack = ExitStack()

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> FakeHubSpot:
        self.url = self._stack.enter_context(serve(make_app(self)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def oauth_settings(self) -> dict[str, Any]:
        """Connector settings for OAuth against this fake."""
        return {"base_url": self.url, "client_id": self.client_id,
                "client_secret": self.client_secret, "refresh_token": self.refresh_token}

    # -- the FakeCRM protocol ----------------------------------------------------------
    def add_customer(self, *, name: str, email: str, phone_e164: str,
                     properties: Mapping[str, Any] | None = None) -> str:
        first, _, last = name.partition(" ")
        props = {"firstname": first, "lastname": last, "email": email.lower(),
                 "phone": phone_e164, "lifecyclestage": "customer",
                 **{k: str(v) for k, v in (properties or {}).items()}}
        return str(self.create("contacts", props)["id"])

    def cases(self) -> list[Mapping[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.objects["tickets"].values()]

    def activities(self) -> list[Mapping[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.objects["notes"].values()]

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        with self.lock:
            self.faults.append(fault)

    def touch(self, external_id: str) -> None:
        with self.lock:
            for kind, records in self.objects.items():
                if external_id in records:
                    self.modify(kind, records[external_id], {})
                    return
        raise KeyError(f"no record {external_id} in the fake")

    def webhook(self, object_type: str, external_id: str, action: str,
                *, now: dt.datetime) -> InboundRequest:
        kind = {"case": "ticket", "contact": "contact", "ticket": "ticket"}[object_type]
        verb = VERBS.get(action, action)
        occurred = int(now.timestamp() * 1000)
        event: dict[str, Any] = {
            "eventId": next(self._events), "subscriptionId": 4242, "portalId": self.portal_id,
            "appId": self.app_id, "occurredAt": occurred, "subscriptionType": f"{kind}.{verb}",
            "attemptNumber": 0, "objectId": int(external_id), "changeSource": "CRM"}
        if verb == "propertyChange":
            event |= {"propertyName": "email" if kind == "contact" else "hs_pipeline_stage",
                      "propertyValue": "changed"}
        return self.signed_request([event], now=now)

    def signed_request(self, events: list[dict[str, Any]], *, now: dt.datetime,
                       url: str = WEBHOOK_URL, secret: str | None = None) -> InboundRequest:
        """A POST of ``events`` as HubSpot sends it, signed (v3) at ``now``."""
        body = json.dumps(events, separators=(",", ":")).encode()
        stamp = str(int(now.timestamp() * 1000))
        signature = sign(secret or self.client_secret, "POST", url, body, stamp)
        headers = {"Content-Type": "application/json", SIGNATURE: signature, TIMESTAMP: stamp,
                   "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)"}
        return InboundRequest("POST", url, headers, body)

    # -- state, used by the app --------------------------------------------------------
    def mint_token(self) -> str:
        with self.lock:
            self.token_refreshes += 1
            token = f"fake-access-{self.token_refreshes}"
            self.tokens[token] = self.clock() + dt.timedelta(seconds=self.token_ttl)
            return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            if token == self.static_token:
                return True
            expires = self.tokens.get(token)
            return expires is not None and expires > self.clock()

    def expire_tokens(self) -> None:
        """Every minted token expires now (as after its TTL)."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = self.clock() - dt.timedelta(seconds=1)

    def next_fault(self) -> str | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def stamp(self) -> str:
        """Now as HubSpot writes it; strictly later than the previous stamp."""
        with self.lock:
            ms = max(int(self.clock().timestamp() * 1000), self._last_ms + 1)
            self._last_ms = ms
            return iso(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))

    def create(self, kind: str, props: Mapping[str, Any],
               associations: Iterator[tuple[str, str]] | None = None) -> dict[str, Any]:
        with self.lock:
            rid, now = str(next(self._ids)), self.stamp()
            modified = "lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"
            record: dict[str, Any] = {"id": rid, "properties": {**props, "hs_object_id": rid,
                                                "createdate": now, modified: now},
                      "createdAt": now, "updatedAt": now, "archived": False,
                      "associations": {}}
            links: dict[str, list[str]] = record["associations"]
            for to_kind, to_id in associations or ():
                links.setdefault(to_kind, []).append(to_id)
            self.objects[kind][rid] = record
            return record

    def modify(self, kind: str, record: dict[str, Any], props: Mapping[str, Any]) -> None:
        with self.lock:
            now = self.stamp()
            modified = "lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"
            record["properties"].update(props)
            record["properties"][modified] = now
            record["updatedAt"] = now
