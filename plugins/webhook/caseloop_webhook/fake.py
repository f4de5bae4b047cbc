"""A fake in-house system for tests and demos: it receives Caseloop's signed pushes, answers
the lookups, and signs the change events it sends to Caseloop.

It checks what a careful receiver checks: the ``X-Caseloop-Signature`` (with
:func:`caseloop.notify.verify_signature`, 300 s window) on every call, an
``Idempotency-Key`` on every POST equal to the body's ``caseloop_id``, the required
fields; and it keeps one record per key (a case is updated, an activity is not repeated).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from caseloop.crm import InboundRequest
from caseloop.notify import sign, verify_signature
from caseloop.testing import FAULTS, serve

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

REQUIRED = {"case": ("caseloop_id", "subject", "version", "status"),
            "activity": ("caseloop_id", "kind", "body_text", "occurred_at")}


class FakeReceiver:
    """The fake, as a context manager: ``with FakeReceiver() as fake: fake.url …``."""

    def __init__(self, *, secret: str = "outbound-secret-0123456789",
                 inbound_secret: str = "inbound-secret-0123456789") -> None:
        self.secret = secret
        self.inbound_secret = inbound_secret
        self.url = ""
        #: There are no tokens; kept for the FakeCRM protocol.
        self.token_refreshes = 0
        #: Every call as received: (method, path, headers, raw body).
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self._faults: deque[tuple[int, str, dict[str, str]] | str] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> FakeReceiver:
        self.url = self._stack.enter_context(serve(self.app))
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()
        self._stack.close()

    # -- the FakeCRM side -----------------------------------------------------------------
    def add_customer(self, *, name: str, email: str, phone_e164: str,
                     properties: Mapping[str, Any] | None = None) -> str:
        with self._lock:
            cid = f"cust-{next(self._ids)}"
            self.customers[cid] = {"id": cid, "name": name, "emails": [email],
                                   "phones": [phone_e164], "segment": None,
                                   "value_tier": None, "lifecycle_stage": None,
                                   **dict(properties or {})}
            return cid

    def cases(self) -> list[Mapping[str, Any]]:
        return self._of("case")

    def activities(self) -> list[Mapping[str, Any]]:
        return self._of("activity")

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        self._faults.append(fault)

    def answer_next(self, status: int, body: str,
                    headers: Mapping[str, str] | None = None) -> None:
        """Answer the next call with this status and body."""
        self._faults.append((status, body, dict(headers or {})))

    def touch(self, external_id: str) -> None:
        with self._lock:
            record = self.customers.get(external_id) or next(
                (r for r in self.records.values() if r["id"] == external_id), None)
            if record is None:
                raise KeyError(f"no record {external_id!r} in the fake")
            record["updated_at"] = dt.datetime.now(dt.UTC).isoformat()

    def webhook(self, object_type: str, external_id: str, action: str,
                *, now: dt.datetime) -> InboundRequest:
        """The signed call this system makes to Caseloop about a change."""
        event = {"id": f"evt-{next(self._ids)}", "type": object_type, "action": action,
                 "ids": [external_id], "occurred_at": now.isoformat()}
        raw = json.dumps({"events": [event]}, separators=(",", ":")).encode()
        return InboundRequest("POST", "http://caseloop.test/api/hooks/webhook", {
            "Content-Type": "application/json",
            "X-Caseloop-Signature": sign(self.inbound_secret, raw, int(now.timestamp()))}, raw)

    def _of(self, kind: str) -> list[Mapping[str, Any]]:
        with self._lock:
            return [dict(r) for (k, _), r in self.records.items() if k == kind]

    # -- the HTTP side --------------------------------------------------------------------
    def app(self, environ: WSGIEnvironment, start_response: StartResponse
            ) -> Iterable[bytes]:
        """The WSGI app."""
        return self._handle(Request(environ))(environ, start_response)

    def _handle(self, request: Request) -> Response:
        raw = request.get_data()
        with self._lock:
            self.received.append((request.method, request.path, dict(request.headers), raw))
        if self._faults:
            return self._fault(self._faults.popleft())
        header = request.headers.get("X-Caseloop-Signature", "")
        if not verify_signature(self.secret, header, raw, now=int(time.time())):
            return _json({"error": "invalid or missing X-Caseloop-Signature"}, 401)
        if request.method == "GET" and request.path == "/customers":
            return self._lookup(request.args)
        if request.method == "GET" and request.path.startswith("/cases/"):
            with self._lock:
                found = [r for r in self.records.values()
                         if r["id"] == request.path.removeprefix("/cases/")]
            return _json(found[0]) if found else _json({"error": "no such case"}, 404)
        if request.method == "POST" and request.path in ("/cases", "/activities"):
            return self._receive(request, raw)
        return _json({"error": "not found"}, 404)

    def _receive(self, request: Request, raw: bytes) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return _json({"error": "Idempotency-Key is required"}, 400)
        try:
            body = json.loads(raw)
        except ValueError:
            return _json({"error": "the body is not JSON"}, 400)
        kind = body.get("type") if isinstance(body, dict) else None
        if kind not in REQUIRED or (request.path == "/activities" and kind != "activity"):
            return _json({"error": f"type {kind!r} is not accepted here"}, 422)
        missing = [f for f in REQUIRED[kind] if body.get(f) in (None, "")]
        if missing:
            return _json({"error": f"missing: {', '.join(missing)}"}, 422)
        if body["caseloop_id"] != key:
            return _json({"error": "Idempotency-Key differs from caseloop_id"}, 422)
        with self._lock:
            record = self.records.get((kind, key))
            if record is None:
                rid = f"{kind}-{next(self._ids)}"
                url = f"{self.url}/cases/{rid}" if kind == "case" else None
                self.records[(kind, key)] = {**body, "id": rid, "url": url}
                return _json({"id": rid, "created": True, "url": url}, 201)
            if kind == "case" and body["version"] >= record["version"]:
                record.update(body)  # an older version arriving late changes nothing
            return _json({"id": record["id"], "created": False, "url": record.get("url")})

    def _lookup(self, args: Mapping[str, str]) -> Response:
        email, phone, cid = args.get("email"), args.get("phone"), args.get("id")
        if sum(v is not None for v in (email, phone, cid)) != 1:
            return _json({"error": "give exactly one of email, phone, id"}, 400)
        with self._lock:
            found = [c for c in self.customers.values()
                     if (email is not None and email.lower() in
                         (e.lower() for e in c["emails"]))
                     or (phone is not None and phone in c["phones"]) or c["id"] == cid]
        return _json({"customers": found})

    def _fault(self, fault: tuple[int, str, dict[str, str]] | str) -> Response:
        if isinstance(fault, tuple):
            status, body, headers = fault
            return Response(body, status, headers=headers, content_type="application/json")
        if fault == "rate_limit":
            return _json({"error": "too many requests"}, 429, {"Retry-After": "3"})
        if fault == "server_error":
            return _json({"error": "database unavailable"}, 503)
        if fault == "garbage":
            return Response("<html><body>Maintenance</body></html>", 200,
                            content_type="text/html")
        if fault == "expired_token":  # no tokens here: the nearest is a refused signature
            return _json({"error": "invalid or missing X-Caseloop-Signature"}, 401)
        self._closing.wait(1.5)  # timeout: past the tests' 1 s read timeout
        return _json({"error": "too late"}, 504)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, headers=dict(headers or {}),
                    content_type="application/json")
