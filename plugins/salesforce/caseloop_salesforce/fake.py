"""A fake Salesforce org for tests and demos: a stateful WSGI app speaking the
real request and response shapes of the subset Caseloop uses.

It checks what Salesforce checks (a Bearer session on every REST call, the
external id field, restricted picklists, lookups to existing records, the SOQL
it understands) and answers in Salesforce's shapes: JSON error *arrays*, 201/200
upserts with ``created``, 204 for updates before API v46.0, 403
REQUEST_LIMIT_EXCEEDED for the daily limit, Sforce-Limit-Info on every answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from caseloop.crm import InboundRequest
from caseloop.testing import FAULTS, serve

from . import _fake_api
from ._fake_api import FIELDS
from ._fake_query import Query, QueryError, parse_soql, run

PREFIX = {"Account": "001", "Contact": "003", "Case": "500", "CaseComment": "00a",
          "Notification": "04l", "Organization": "00D", "Action": "04k"}
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce id with its real case-encoding suffix."""
    base = f"{prefix}Qx{n:010d}"
    return base + "".join(
        _SUFFIX[sum(1 << j for j, c in enumerate(base[i:i + 5]) if c.isupper())]
        for i in range(0, 15, 5))


def _error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    return Response(json.dumps([{"message": message, "errorCode": code, "fields": fields or []}]),
                    status, content_type="application/json;charset=UTF-8")


class FakeSalesforce:
    """``with FakeSalesforce() as sf:`` serves the org on loopback at ``sf.url``."""

    def __init__(self, *, client_id: str = "fake-consumer-key",
                 client_secret: str = "fake-consumer-secret",
                 refresh_token: str = "fake-refresh-token",
                 external_id_field: str = "Caseloop_Id__c", api_limit: int = 15000,
                 url_secret: str = "fake-outbound-key-0123456789",
                 callback_url: str = "https://caseloop.test/crm/salesforce/inbound",
                 rotate_refresh_tokens: bool = False,
                 case_fields: tuple[str, ...] = ()) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_tokens = {refresh_token}
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.external_id_field = external_id_field
        #: Custom Case fields the org has besides the external id field.
        self.case_fields = frozenset(case_fields)
        self.api_limit, self.api_used = api_limit, 0
        self.url_secret, self.callback_url = url_secret, callback_url
        self.url = ""
        self.token_refreshes = 0
        self.organization_id = sf_id(PREFIX["Organization"], 1)
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.records: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in FIELDS}
        self.requests: list[tuple[str, str]] = []  # (method, path + query) of API calls
        self.rules: list[tuple[str, str]] = []  # (field, message): Case validation rules
        self._sessions: set[str] = set()
        self._faults: list[str] = []
        self._counter = 0
        self._lock = threading.RLock()
        self._stack = contextlib.ExitStack()
        self._map = Map([
            Rule("/services/oauth2/token", endpoint="token", methods=["POST"]),
            Rule("/services/data/<version>/parameterizedSearch/", endpoint="search",
                 methods=["GET"]),
            Rule("/services/data/<version>/query/", endpoint="query", methods=["GET"]),
            Rule("/services/data/<version>/sobjects/<sobject>", endpoint="create",
                 methods=["POST"]),
            Rule("/services/data/<version>/sobjects/<sobject>/<rid>", endpoint="get",
                 methods=["GET"]),
            Rule("/services/data/<version>/sobjects/<sobject>/<field>/<value>",
                 endpoint="by_external_id", methods=["GET", "PATCH"]),
        ])

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> FakeSalesforce:
        self.url = self._stack.enter_context(serve(self))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # -- the FakeCRM protocol ---------------------------------------------------------
    def add_customer(self, *, name: str, email: str, phone_e164: str,
                     properties: Mapping[str, Any] | None = None) -> str:
        """A Contact; ``properties`` keys "Account.<field>" go to a new Account."""
        props = dict(properties or {})
        account = {k.split(".", 1)[1]: v for k, v in props.items() if k.startswith("Account.")}
        first, _, last = name.rpartition(" ")
        with self._lock:
            contact = {"FirstName": first or None, "LastName": last, "Name": name,
                       "Email": email, "Phone": phone_e164,
                       **{k: v for k, v in props.items() if not k.startswith("Account.")}}
            if account:
                contact["AccountId"] = self._insert("Account",
                                                    {"Name": f"{name}'s company", **account})
            return self._insert("Contact", contact)

    def cases(self) -> list[Mapping[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records["Case"].values()]

    def activities(self) -> list[Mapping[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records["CaseComment"].values()]

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.append(fault)

    def touch(self, external_id: str) -> None:
        with self._lock:
            for table in self.records.values():
                if external_id in table:
                    stamp = self._now()
                    table[external_id].update(LastModifiedDate=stamp, SystemModstamp=stamp)
                    return
        raise KeyError(external_id)

    def webhook(self, object_type: str, external_id: str, action: str,
                *, now: dt.datetime) -> InboundRequest:
        """The Outbound Message Salesforce would POST about the record."""
        return self.outbound_message([(object_type, external_id)])

    # -- helpers for tests ------------------------------------------------------------
    def outbound_message(self, records: list[tuple[str, str]], *,
                         organization_id: str | None = None) -> InboundRequest:
        """One SOAP message with a notification per (object type, record id)."""
        org = organization_id or self.organization_id
        notes = []
        for object_type, rid in records:
            sobject = object_type[:1].upper() + object_type[1:]
            sobject = {"Casecomment": "CaseComment"}.get(sobject, sobject)
            with self._lock:
                rec = self.records.get(sobject, {}).get(rid, {"Id": rid})
                note_id = sf_id(PREFIX["Notification"], self._next())
            fields = "".join(f"<sf:{k}>{escape(str(v))}</sf:{k}>" for k, v in rec.items()
                             if v is not None and k in ("Id", "Name", "Email", "Subject",
                                                        "Status", "SystemModstamp"))
            notes.append(f"<Notification><Id>{note_id}</Id><sObject xsi:type=\"sf:{sobject}\" "
                         f"xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">{fields}"
                         "</sObject></Notification>")
        soap = f"{self.url}/services/Soap"
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenv='
                '"http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/'
                '2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                '<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
                f"<OrganizationId>{org}</OrganizationId>"
                f"<ActionId>{sf_id(PREFIX['Action'], 1)}</ActionId>"
                '<SessionId xsi:nil="true"/>'
                f"<EnterpriseUrl>{soap}/c/62.0/{org[:15]}</EnterpriseUrl>"
                f"<PartnerUrl>{soap}/u/62.0/{org[:15]}</PartnerUrl>"
                + "".join(notes) + "</notifications></soapenv:Body></soapenv:Envelope>")
        return InboundRequest("POST", f"{self.callback_url}?key={self.url_secret}",
                              {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                              body.encode())

    def revoke_refresh_tokens(self) -> None:
        """As if the connected app's access was revoked: refreshes get invalid_grant."""
        with self._lock:
            self.refresh_tokens.clear()
            self._sessions.clear()

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    # -- WSGI -------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterator[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self._map.bind_to_environ(environ).match()
        except HTTPException:
            response = _error(404, "NOT_FOUND", "The requested resource does not exist")
        else:
            response = self._dispatch(request, str(endpoint), args)
        return iter(response(environ, start_response))

    def _dispatch(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        if endpoint == "token":
            with self._lock:
                return self._token(request)
        with self._lock:
            self.api_used += 1
            self.requests.append((request.method, request.full_path))
            fault = self._faults.pop(0) if self._faults else None
        if fault == "timeout":
            time.sleep(1.5)  # past the 1 s read timeout the contract tests give the client
        with self._lock:
            response = self._fault(fault) if fault else self._api(request, endpoint, args)
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
            return response

    def _fault(self, fault: str) -> Response:
        if fault == "rate_limit":
            return _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        if fault == "garbage":
            return Response("<html><body>Service temporarily unavailable</body></html>", 200,
                            content_type="text/html")
        if fault == "expired_token":
            self._sessions.clear()
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return _error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")

    def _token(self, request: Request) -> Response:
        form = request.form
        def refused(code: str, text: str) -> Response:
            return Response(json.dumps({"error": code, "error_description": text}), 400,
                            content_type="application/json;charset=UTF-8")
        if form.get("grant_type") != "refresh_token":
            return refused("unsupported_grant_type", "grant type not supported")
        if form.get("client_id") != self.client_id:
            return refused("invalid_client_id", "client identifier invalid")
        if form.get("client_secret") != self.client_secret:
            return refused("invalid_client", "invalid client credentials")
        refresh = form.get("refresh_token", "")
        if refresh not in self.refresh_tokens:
            return refused("invalid_grant", "expired access/refresh token")
        self.token_refreshes += 1
        access = f"{self.organization_id[:15]}!{secrets.token_urlsafe(24)}"
        self._sessions.add(access)
        issued = str(int(time.time() * 1000))
        body = {"access_token": access, "instance_url": self.url,
                "id": f"{self.url}/id/{self.organization_id}/005Qx0000000001AAA",
                "token_type": "Bearer", "issued_at": issued,
                "signature": secrets.token_urlsafe(32)}
        if self.rotate_refresh_tokens:
            self.refresh_tokens.discard(refresh)
            body["refresh_token"] = secrets.token_urlsafe(24)
            self.refresh_tokens.add(body["refresh_token"])
        return Response(json.dumps(body), 200, content_type="application/json;charset=UTF-8")

    def _api(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> Response:
        auth = request.headers.get("Authorization", "")
        scheme, _, session = auth.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or session not in self._sessions:
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        args = dict(args)
        version = str(args.pop("version"))
        if not (version.startswith("v") and version[1:].replace(".", "", 1).isdigit()):
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            return _fake_api.handle(self, request, endpoint, float(version[1:]), **args)
        except QueryError as exc:
            return _error(400, exc.code, exc.message)

    # -- storage ----------------------------------------------------------------------
    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _now(self) -> str:
        # Salesforce keeps dateTime fields to the second.
        return self.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def _insert(self, sobject: str, values: Mapping[str, Any]) -> str:
        rid = sf_id(PREFIX[sobject], self._next())
        stamp = self._now()
        record: dict[str, Any] = dict.fromkeys(FIELDS[sobject])
        record.update(values, Id=rid, CreatedDate=stamp, LastModifiedDate=stamp,
                      SystemModstamp=stamp, IsDeleted=False)
        self.records[sobject][rid] = record
        return rid

    def select(self, soql: str) -> tuple[Query, list[Mapping[str, Any]]]:
        """Run a SOQL query against the fake's records (what /query does)."""
        query = parse_soql(soql)
        table = self.records.get(query.sobject)
        if table is None:
            raise QueryError("INVALID_TYPE", f"sObject type '{query.sobject}' is not supported.")
        known = FIELDS[query.sobject] | (self.case_fields | {self.external_id_field}
                                         if query.sobject == "Case" else frozenset())
        for name in sorted(query.used - known):
            raise QueryError("INVALID_FIELD", f"No such column '{name}' on entity "
                             f"'{query.sobject}'.")
        return query, run(query, list(table.values()))
