"""A fake Zoho CRM for tests and demos: a small stateful WSGI app on loopback.

It speaks the request and response shapes of the v8 API for the subset Caseloop uses
(Accounts token endpoint, Contacts search and get, Cases upsert and get, Notes,
record lists with If-Modified-Since, actions/watch) and checks what Zoho checks: the
``Zoho-oauthtoken`` header and its expiry, mandatory fields, unique fields, the
``fields`` parameter of list calls, and the Accounts throttle of 10 access tokens per
refresh token per 10 minutes::

    with FakeZoho() as fake:
        connector = Zoho({**fake.settings(), ...}, http, tokens)
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any

from caseloop.crm import InboundRequest
from caseloop.testing import FAULTS, serve

from ._fake_api import make_app

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
MODULE_OF = {"contact": "Contacts", "case": "Cases"}
OPERATION_OF = {"created": "insert", "updated": "update", "deleted": "delete"}


class FakeZoho:
    """The fake; a context manager yielding itself with ``url`` set."""

    def __init__(self, *, client_id: str = "1000.FAKECLIENT", client_secret: str = "fake-secret",
                 refresh_token: str = "1000.fake-refresh-token",
                 notify_token: str = "caseloop-notify-token-0123456789",
                 url_secret: str = "caseloop-url-secret-0123456789",
                 channel_id: str = "1000000068001", api_version: str = "v8",
                 case_id_field: str = "Caseloop_Id", token_lifetime: int = 3600,
                 mint_limit: int = 10, tz: dt.tzinfo = IST) -> None:
        self.client_id, self.client_secret, self.refresh_token = (client_id, client_secret,
                                                                  refresh_token)
        self.notify_token, self.url_secret, self.channel_id = notify_token, url_secret, channel_id
        self.api_version, self.case_id_field = api_version, case_id_field
        self.token_lifetime, self.mint_limit, self.tz = token_lifetime, mint_limit, tz
        self.url = ""
        self.lock = threading.RLock()
        self.token_refreshes = 0
        #: Live access tokens (oldest first) -> expiry; Zoho keeps at most 15.
        self.access_tokens: dict[str, dt.datetime] = {}
        self.mints: deque[dt.datetime] = deque()
        self.records: dict[str, dict[str, dict[str, Any]]] = {"Contacts": {}, "Cases": {},
                                                              "Notes": {}}
        self.locked: set[str] = set()
        #: Watch subscriptions by channel id, as last armed.
        self.watches: dict[str, dict[str, Any]] = {}
        #: (method, path, query, If-Modified-Since) of every API call, for assertions.
        self.calls: list[tuple[str, str, str, str | None]] = []
        self._faults: deque[str | tuple[int, Any, Mapping[str, str]]] = deque()
        self._ids = itertools.count(4876876000000100001)
        self._tokens = itertools.count(1)
        self._stack = ExitStack()

    def __enter__(self) -> FakeZoho:
        self.url = self._stack.enter_context(serve(make_app(self)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def settings(self) -> dict[str, Any]:
        """Connector settings pointing at this fake (accounts server and secrets)."""
        return {"accounts_url": self.url, "client_id": self.client_id,
                "client_secret": self.client_secret, "refresh_token": self.refresh_token,
                "api_version": self.api_version, "case_id_field": self.case_id_field,
                "notify_token": self.notify_token, "url_secret": self.url_secret,
                "channel_id": self.channel_id}

    # -- the FakeCRM protocol ----------------------------------------------------------
    def add_customer(self, *, name: str, email: str, phone_e164: str,
                     properties: Mapping[str, Any] | None = None) -> str:
        first, _, last = name.rpartition(" ")
        return self.create("Contacts", {"First_Name": first or None, "Last_Name": last or name,
                                        "Full_Name": name, "Email": email, "Phone": phone_e164,
                                        **(properties or {})})

    def cases(self) -> list[Mapping[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.records["Cases"].values()]

    def activities(self) -> list[Mapping[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.records["Notes"].values()]

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
        self._faults.append(fault)

    def touch(self, external_id: str) -> None:
        with self.lock:
            record = self.find(external_id)
            if record is None:
                raise KeyError(f"fake Zoho has no record {external_id}")
            record["Modified_Time"] = self.now_text()
            record["Description"] = f"{record.get('Description') or ''} (edited)".strip()

    def webhook(self, object_type: str, external_id: str, action: str,
                *, now: dt.datetime) -> InboundRequest:
        """The callback Zoho would POST to the armed notify_url (or to
        http://caseloop.test/crm/zoho/webhook?key=<url_secret> before any watch)."""
        module = MODULE_OF.get(object_type, object_type)
        watch = self.watches.get(self.channel_id)
        url = watch["notify_url"] if watch else (
            f"http://caseloop.test/crm/zoho/webhook?key={self.url_secret}")
        body: dict[str, Any] = {
            "server_time": int(now.timestamp() * 1000), "query_params": {}, "module": module,
            "resource_uri": f"{self.url}/crm/{self.api_version}/{module}",
            "ids": [external_id], "operation": OPERATION_OF.get(action, action),
            "channel_id": self.channel_id,
            "token": watch["token"] if watch else self.notify_token,
        }
        if action == "updated":
            body["affected_fields"] = [{external_id: ["Description"]}]
        return InboundRequest("POST", url, {"Content-Type": "application/json"},
                              json.dumps(body).encode())

    # -- extras for tests --------------------------------------------------------------
    def inject_response(self, status: int, body: Any = None,
                        headers: Mapping[str, str] | None = None) -> None:
        """Answer the next API call with this status, JSON body and headers."""
        self._faults.append((status, body, dict(headers or {})))

    def expire_tokens(self) -> None:
        """Let every access token expire now (as an hour passing would)."""
        with self.lock:
            self.access_tokens.clear()

    def lock_record(self, record_id: str) -> None:
        """Lock a record (an approval or a blueprint does this): updates are refused."""
        self.locked.add(record_id)

    # -- state helpers used by the app -------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz).replace(microsecond=0)

    def now_text(self) -> str:
        return self.now().isoformat()

    def next_fault(self) -> str | tuple[int, Any, Mapping[str, str]] | None:
        try:
            return self._faults.popleft()
        except IndexError:
            return None

    def new_id(self) -> str:
        return str(next(self._ids))

    def new_token(self) -> str:
        return f"1000.{next(self._tokens):04d}fake{self.new_id()[-6:]}.access"

    def create(self, module: str, fields: Mapping[str, Any]) -> str:
        with self.lock:
            record_id, now = self.new_id(), self.now_text()
            self.records[module][record_id] = {
                "id": record_id, **{k: v for k, v in fields.items() if v is not None},
                "Created_Time": now, "Modified_Time": now,
                "Owner": {"name": "Patricia Boyle", "id": "4876876000000327001"}}
            return record_id

    def find(self, record_id: str) -> dict[str, Any] | None:
        for records in self.records.values():
            if record_id in records:
                return records[record_id]
        return None

    def iter_module(self, module: str) -> Iterator[dict[str, Any]]:
        return iter(list(self.records.get(module, {}).values()))
