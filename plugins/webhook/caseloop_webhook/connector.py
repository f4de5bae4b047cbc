"""The generic connector: an in-house system that speaks signed JSON over HTTP.

Outbound, cases and activities are POSTed as JSON signed exactly as Caseloop signs its
workflow webhooks (:func:`caseloop.notify.sign`), with an ``Idempotency-Key``; the
receiver answers ``{"id", "created", "url"}``. Inbound, the other system signs its calls
the same way with a second secret. Customers are looked up with an optional GET endpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from caseloop.crm import (
    Activity,
    CaseSnapshot,
    CRMAuthError,
    CRMBadResponse,
    CRMCase,
    CRMConflict,
    CRMError,
    CRMNotFound,
    CRMPermissionError,
    CRMRateLimited,
    CRMValidationError,
    CustomerProfile,
    CustomerRef,
    InboundEvent,
    InboundRequest,
    PushResult,
    Token,
    Tokens,
    UnsupportedOperation,
)
from caseloop.crm.errors import excerpt
from caseloop.crm.http import json_of, retry_after, send, server_error
from caseloop.notify import sign

from . import inbound

_URL = {"type": "string", "pattern": "^https?://"}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
DEFAULTS: dict[str, Any] = {
    "tolerance": 300,
    "status_map": {"open": "open", "paused": "paused", "done": "done"},
    "profile_fields": {"segment": "segment", "value_tier": "value_tier",
                       "lifecycle_stage": "lifecycle_stage"},
}
CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Signed webhooks (in-house system)",
    "type": "object",
    "required": ["cases_url", "secret"],
    "additionalProperties": False,
    "properties": {
        "cases_url": {**_URL, "description": "Cases are POSTed here."},
        "activities_url": {**_URL, "description": "Activities are POSTed here (default: "
                                                  "cases_url, told apart by \"type\")."},
        "case_url": {**_URL, "description": "GET of one case, with {id} (default: "
                                            "cases_url/{id})."},
        "lookup_url": {**_URL, "description": "GET ?email= / ?phone= / ?id= of customers; "
                                              "without it find and profile are off."},
        "secret": {"type": "string", "minLength": 16,
                   "description": "Signs outbound calls; the receiver checks it."},
        "inbound_secret": {"type": "string", "minLength": 16,
                           "description": "What the other system signs its calls with."},
        "tolerance": {"type": "integer", "minimum": 1, "default": DEFAULTS["tolerance"],
                      "description": "Seconds an inbound signature stays valid."},
        "status_map": {**_STRINGS, "default": DEFAULTS["status_map"]},
        "profile_fields": {**_STRINGS, "default": DEFAULTS["profile_fields"]},
    },
}


class Webhook:
    """Pushes cases and activities to an in-house system as signed JSON; receives its
    signed change events; looks customers up through its optional lookup endpoint."""

    name: ClassVar[str] = "webhook"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"find", "profile", "cases", "activities", "webhooks"})
    config_schema: ClassVar[Mapping[str, Any]] = CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], http: httpx.Client, tokens: Tokens) -> None:
        self.http = http
        self.tokens = tokens  # unused: a shared secret, no tokens
        self.cases_url: str = config["cases_url"]
        self.activities_url: str = config.get("activities_url") or self.cases_url
        self.case_url: str = config.get("case_url") or self.cases_url.rstrip("/") + "/{id}"
        self.lookup_url: str | None = config.get("lookup_url") or None
        self.secret: str = config["secret"]
        self.inbound_secret: str | None = config.get("inbound_secret") or None
        self.tolerance = int(config.get("tolerance") or DEFAULTS["tolerance"])
        self.status_map = {**DEFAULTS["status_map"], **dict(config.get("status_map") or {})}
        self.profile_fields = {**DEFAULTS["profile_fields"],
                               **dict(config.get("profile_fields") or {})}

    # -- customers ------------------------------------------------------------------------
    def find_customers(self, *, email: str | None = None, phone_e164: str | None = None,
                       limit: int = 5) -> list[CustomerRef]:
        if email:
            found = self._lookup({"email": email.strip().lower()})
        elif phone_e164:
            found = self._lookup({"phone": phone_e164})
        else:
            return []
        return [CustomerRef(self.name, "contact", c["id"]) for c in found][:limit]

    def get_profile(self, ref: CustomerRef) -> CustomerProfile:
        found = [c for c in self._lookup({"id": ref.external_id}) if c["id"] == ref.external_id]
        if not found:
            raise CRMNotFound(f"the lookup knows no customer {ref.external_id!r}")
        c = found[0]

        def field(key: str) -> str | None:
            value = c.get(self.profile_fields.get(key, key))
            return str(value) if value not in (None, "") else None

        return CustomerProfile(
            ref=CustomerRef(self.name, "contact", c["id"], _str(c.get("url"))),
            display_name=_str(c.get("name")), emails=_strs(c.get("emails")),
            phones_e164=tuple(p for p in _strs(c.get("phones")) if p.startswith("+")),
            segment=field("segment"), value_tier=field("value_tier"),
            lifecycle_stage=field("lifecycle_stage"), raw=c, fetched_at=dt.datetime.now(dt.UTC))

    def _lookup(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        if not self.lookup_url:
            raise UnsupportedOperation("no lookup_url is configured: set it to look customers "
                                       "up in the in-house system")
        what = f"GET {_bare(self.lookup_url)}"
        body = self._json(self._request("GET", self.lookup_url, params=params), what)
        customers = body.get("customers")
        if not isinstance(customers, list) or not all(
                isinstance(c, dict) and isinstance(c.get("id"), str) and c["id"]
                for c in customers):
            raise CRMBadResponse(f'{what}: expected {{"customers": [{{"id": "…", …}}]}}, '
                                 f"got {_shown(body)!r}")
        return customers

    # -- cases and activities -------------------------------------------------------------
    def upsert_case(self, case: CaseSnapshot) -> PushResult:
        customer = None if case.customer is None else {
            "crm": case.customer.crm, "object_type": case.customer.object_type,
            "external_id": case.customer.external_id}
        body = {"type": "case", "caseloop_id": case.caseloop_id, "reference": case.reference,
                "version": case.version, "subject": case.subject,
                "status": case.status or self.status_map.get(case.state_category,
                                                             case.state_category),
                "state": case.state, "state_category": case.state_category,
                "priority": case.priority, "description": case.description,
                "customer": customer, "caseloop_url": case.url, "fields": dict(case.fields)}
        return self._push(self.cases_url, body, case.caseloop_id)

    def get_case(self, external_id: str) -> CRMCase:
        url = self.case_url.replace("{id}", urllib.parse.quote(external_id, safe=""))
        what = f"GET {_bare(url)}"
        row = self._json(self._request("GET", url), what)
        if not isinstance(row.get("subject"), str):
            raise CRMBadResponse(f'{what}: expected a case with "subject", got {_shown(row)!r}')
        c = row.get("customer")
        customer = CustomerRef(str(c.get("crm") or self.name), str(c.get("object_type") or
                                                                   "contact"),
                               str(c["external_id"])) \
            if isinstance(c, dict) and c.get("external_id") else None
        return CRMCase(ref=CustomerRef(self.name, "case", external_id, _str(row.get("url"))),
                       subject=row["subject"], description=_str(row.get("description")),
                       status=_str(row.get("status")), priority=_str(row.get("priority")),
                       customer=customer, caseloop_id=_str(row.get("caseloop_id")), raw=row)

    def add_activity(self, activity: Activity) -> str:
        # JSON carries the text as it is: escaping is the receiver's business.
        body = {"type": "activity", "caseloop_id": activity.caseloop_id, "kind": activity.kind,
                "body_text": activity.body_text,
                "occurred_at": activity.occurred_at.isoformat(),
                "attach_to": [{"crm": r.crm, "object_type": r.object_type,
                               "external_id": r.external_id} for r in activity.attach_to]}
        return self._push(self.activities_url, body, activity.caseloop_id).external_id

    def _push(self, url: str, body: Mapping[str, Any], key: str) -> PushResult:
        what = f"POST {_bare(url)} ({body['type']} {key})"
        answer = self._json(self._request("POST", url, body=body, key=key), what)
        rid, created, link = answer.get("id"), answer.get("created"), answer.get("url")
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not (isinstance(rid, str) and rid and isinstance(created, bool)
                and (link is None or isinstance(link, str))):
            raise CRMBadResponse(f'{what}: expected {{"id": "…", "created": true|false, '
                                 f'"url": "…"|null}}, got {_shown(answer)!r}')
        return PushResult(rid, created, link)

    # -- HTTP -----------------------------------------------------------------------------
    def _request(self, method: str, url: str, *, body: Mapping[str, Any] | None = None,
                 key: str | None = None, params: Mapping[str, str] | None = None
                 ) -> httpx.Response:
        # The same bytes are signed and sent; compact JSON as Caseloop's webhooks send it.
        raw = b"" if body is None else json.dumps(
            body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"X-Caseloop-Signature": sign(self.secret, raw, int(time.time())),
                   "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        if params:  # added to the URL's own query (httpx's params= would replace it)
            url = str(httpx.URL(url).copy_merge_params(dict(params)))
        return send(self.http, method, url, content=raw or None, headers=headers)

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            body = json_of(response, what)
            if not isinstance(body, dict):
                raise CRMBadResponse(f"{what}: expected a JSON object, got "
                                     f"{excerpt(response.content)!r}")
            return body
        raise self._error(response, what)

    def _error(self, response: httpx.Response, what: str) -> CRMError:
        status = response.status_code
        said = f"{what}: the receiver answered {status} {excerpt(response.content)!r}"
        if status == 429:
            return CRMRateLimited(said, retry_after=retry_after(response))
        if status >= 500:
            return server_error(response, what)
        if status == 401:
            return CRMAuthError(said + "; it refused the signature: check that `secret` "
                                "matches the receiver's and that both clocks are right")
        if status == 403:
            return CRMPermissionError(said)
        if status == 404:
            return CRMNotFound(said)
        if status == 409:
            return CRMConflict(said)
        if status < 400:
            return CRMBadResponse(said + " (redirects are not followed: use the final URL)")
        return CRMValidationError(said)

    # -- inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: InboundRequest, *, now: dt.datetime) -> None:
        inbound.verify(request, self.inbound_secret, now=now, tolerance=self.tolerance)

    def parse_webhook(self, request: InboundRequest) -> list[InboundEvent]:
        return inbound.parse(request, self.name)

    def poll_changes(self, cursor: str | None) -> tuple[list[InboundEvent], str]:
        raise UnsupportedOperation("the webhook connector does not poll: the other system "
                                   "POSTs its changes")

    def ensure_subscriptions(self, callback_url: str) -> None:
        raise UnsupportedOperation("the webhook connector has nothing to subscribe to: give "
                                   f"the other system {callback_url} and inbound_secret")

    def refresh_token(self, current: Token | None) -> Token:
        raise UnsupportedOperation("the webhook connector uses shared secrets, not tokens")


def _bare(url: str) -> str:
    # Without user info or query (they may hold secrets), for messages.
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc.rpartition('@')[2]}{u.path}"


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _strs(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(str(v) for v in items if v not in (None, ""))


def _shown(body: Any) -> str:
    return excerpt(json.dumps(body, ensure_ascii=False, default=str))
