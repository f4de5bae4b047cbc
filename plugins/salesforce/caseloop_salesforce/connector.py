"""The Salesforce connector: Contacts found and read, Cases upserted by an
External ID, CaseComments as activities, Outbound Messages in, SOQL polling.

Every REST call goes to the ``instance_url`` the token endpoint returned
(kept in ``Token.extra``). Salesforce sends no expiry with a token, so a token
is used until Salesforce answers 401 INVALID_SESSION_ID; then it is refreshed
once and the call repeated once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from caseloop.crm import (
    Activity,
    CaseSnapshot,
    CRMAuthError,
    CRMBadResponse,
    CRMCase,
    CRMValidationError,
    CustomerProfile,
    CustomerRef,
    InboundEvent,
    InboundRequest,
    PushResult,
    Token,
    Tokens,
    UnsupportedOperation,
    WebhookAuthError,
)
from caseloop.crm.http import expect, json_of, send

from . import outbound, schema
from ._api import (
    api_usage,
    auth_error,
    errors_of,
    raise_for,
    record_id,
    soql_string,
    sosl_escape,
)
from ._records import comment_body, e164, national_digits, pick, sf_datetime, token_error

log = logging.getLogger(__name__)

_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_CONTACT_FIELDS = "Id,Name,Email,Phone,MobilePhone,HomePhone,OtherPhone"
_PHONE_FIELDS = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")


class SalesforceConnector:
    name: ClassVar[str] = "salesforce"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"find", "profile", "cases", "activities", "webhooks", "poll"})
    config_schema: ClassVar[Mapping[str, Any]] = schema.CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], http: httpx.Client, tokens: Tokens) -> None:
        self.config = config
        self.http = http
        self.tokens = tokens
        self.login_url = str(config.get("login_url", schema.DEFAULT_LOGIN_URL)).rstrip("/")
        self.api_version = str(config.get("api_version", schema.DEFAULT_API_VERSION))
        self.external_id_field = str(config.get("external_id_field",
                                                schema.DEFAULT_EXTERNAL_ID_FIELD))
        self.status_map = {**schema.DEFAULT_STATUS, **config.get("status_map", {})}
        self.priority_map = {**schema.DEFAULT_PRIORITY,
                             **{k.lower(): v for k, v in config.get("priority_map", {}).items()}}
        self.origin = str(config.get("origin", schema.DEFAULT_ORIGIN))
        self.field_map: dict[str, str] = dict(config.get("field_map", {}))
        self.profile_fields = {**schema.DEFAULT_PROFILE, **config.get("profile_fields", {})}
        self.phone_region: str | None = config.get("phone_region")
        self.poll_objects = tuple(config.get("poll_objects", schema.DEFAULT_POLL_OBJECTS))
        self.poll_lookback = dt.timedelta(seconds=int(config.get("poll_lookback_seconds", 60)))
        #: ``(used, limit)`` of the org's daily API allocation, from the last
        #: answer's Sforce-Limit-Info header.
        self.api_usage: tuple[int, int] | None = None
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self._instance_url: str | None = None

    # -- finding and reading customers ------------------------------------------------
    def find_customers(self, *, email: str | None = None, phone_e164: str | None = None,
                       limit: int = 5) -> list[CustomerRef]:
        found: dict[str, CustomerRef] = {}
        if email and email.strip():
            wanted = email.strip().lower()
            for rec in self._search(wanted, "EMAIL", limit):
                if str(rec.get("Email") or "").strip().lower() == wanted:
                    found.setdefault(rec["Id"], self._ref("Contact", rec["Id"]))
        if phone_e164:
            # SOSL phone search ignores formatting; the national number also finds
            # contacts saved without the country code. Matches are then checked exactly.
            term = national_digits(phone_e164)
            for rec in self._search(term, "PHONE", limit):
                if any(self._e164(rec.get(f)) == phone_e164 for f in _PHONE_FIELDS):
                    found.setdefault(rec["Id"], self._ref("Contact", rec["Id"]))
        return list(found.values())[:limit]

    def _search(self, term: str, scope: str, limit: int) -> list[dict[str, Any]]:
        what = f"searching Salesforce contacts ({scope.lower()})"
        params = {"q": sosl_escape(term), "sobject": "Contact", "in": scope,
                  "Contact.fields": _CONTACT_FIELDS,
                  "Contact.limit": str(min(200, max(4 * limit, 20)))}
        body = expect(json_of(self._call("GET", "parameterizedSearch/", what, params=params),
                              what), dict, what)
        records = expect(body.get("searchRecords"), list, what)
        return [r for r in records if isinstance(r, dict) and isinstance(r.get("Id"), str)
                and (r.get("attributes") or {}).get("type", "Contact") == "Contact"]

    def get_profile(self, ref: CustomerRef) -> CustomerProfile:
        cid = record_id(ref.external_id, "the contact")
        raw = self._get(f"sobjects/Contact/{cid}", f"fetching Salesforce contact {cid}")
        wanted = sorted({path.split(".", 1)[1] for path in self.profile_fields.values()
                         if path and path.startswith("Account.")})
        if wanted and raw.get("AccountId"):
            aid = record_id(str(raw["AccountId"]), "the contact's AccountId")
            raw["Account"] = self._get(f"sobjects/Account/{aid}",
                                       f"fetching Salesforce account {aid}",
                                       params={"fields": ",".join(["Id", *wanted])})
        region = raw.get("MailingCountryCode") or self.phone_region
        phones = [self._e164(raw.get(f), region) for f in _PHONE_FIELDS]
        name = raw.get("Name") or " ".join(
            str(p) for p in (raw.get("FirstName"), raw.get("LastName")) if p) or None
        return CustomerProfile(
            ref=self._ref("Contact", cid), display_name=name,
            emails=tuple(str(raw[f]) for f in ("Email",) if raw.get(f)),
            phones_e164=tuple(dict.fromkeys(p for p in phones if p)),
            segment=pick(raw, self.profile_fields.get("segment")),
            value_tier=pick(raw, self.profile_fields.get("value_tier")),
            lifecycle_stage=pick(raw, self.profile_fields.get("lifecycle_stage")),
            raw=raw, fetched_at=self.clock())

    # -- cases ------------------------------------------------------------------------
    def upsert_case(self, case: CaseSnapshot) -> PushResult:
        if not case.caseloop_id:
            raise CRMValidationError("a case without a caseloop_id cannot be upserted",
                                     field_errors={self.external_id_field: "empty"})
        key = quote(case.caseloop_id, safe="")
        what = f"upserting Salesforce case {case.reference}"
        resp = self._call("PATCH", f"sobjects/Case/{self.external_id_field}/{key}", what,
                          json=self._case_body(case))
        if resp.status_code == 204:
            # Before API v46.0 an update answers 204 without a body: look the id up.
            found = self._get(f"sobjects/Case/{self.external_id_field}/{key}", what,
                              params={"fields": "Id"})
            case_id, created = found.get("Id"), False
        else:
            data = expect(json_of(resp, what), dict, what)
            case_id = data.get("id")
            created = data["created"] if isinstance(data.get("created"), bool) \
                else resp.status_code == 201
        if not isinstance(case_id, str) or not case_id:
            raise CRMBadResponse(f"{what}: Salesforce answered {resp.status_code} without "
                                 f"the record id: {resp.text[:200]!r}")
        return PushResult(case_id, created, self._url("Case", case_id))

    def _case_body(self, case: CaseSnapshot) -> dict[str, Any]:
        status = case.status or self.status_map.get(case.state_category)
        if not status:
            raise CRMValidationError(f"no Case Status for state category "
                                     f"'{case.state_category}': set status_map or the "
                                     "workflow's status map", field_errors={"Status": "unset"})
        body: dict[str, Any] = {"Subject": case.subject[:255], "Status": status,
                                "Origin": self.origin}
        if case.priority:
            body["Priority"] = self.priority_map.get(case.priority.lower(), case.priority)
        if case.description is not None:
            body["Description"] = case.description[:32000]
        customer = case.customer
        if customer is not None and customer.crm == self.name:
            if customer.object_type == "contact":
                body["ContactId"] = record_id(customer.external_id, "the case's contact")
            elif customer.object_type == "account":
                body["AccountId"] = record_id(customer.external_id, "the case's account")
        for key, sf_field in self.field_map.items():
            if key in case.fields:
                body[sf_field] = case.fields[key]
        return body

    def get_case(self, external_id: str) -> CRMCase:
        case_id = record_id(external_id, "the case")
        fields = ["Id", "CaseNumber", "Subject", "Description", "Status", "Priority",
                  "ContactId", self.external_id_field]
        raw = self._get(f"sobjects/Case/{case_id}", f"fetching Salesforce case {case_id}",
                        params={"fields": ",".join(fields)})
        contact = raw.get("ContactId")
        marker = raw.get(self.external_id_field)
        return CRMCase(ref=self._ref("Case", str(raw.get("Id") or case_id)),
                       subject=str(raw.get("Subject") or ""),
                       description=raw.get("Description"), status=raw.get("Status"),
                       priority=raw.get("Priority"),
                       customer=self._ref("Contact", contact) if contact else None,
                       caseloop_id=str(marker) if marker else None, raw=raw)

    # -- activities -------------------------------------------------------------------
    def add_activity(self, activity: Activity) -> str:
        cases = [r for r in activity.attach_to if r.crm == self.name and r.object_type == "case"]
        if not cases:
            raise CRMValidationError("Salesforce activities are CaseComments: attach_to needs "
                                     "a Salesforce case", field_errors={"ParentId": "missing"})
        case_id = record_id(cases[0].external_id, "the activity's case")
        marker = f"[caseloop:{activity.caseloop_id}]"
        existing = self._comment_with(case_id, marker)
        if existing:
            return existing
        what = f"adding a comment to Salesforce case {case_id}"
        resp = self._call("POST", "sobjects/CaseComment", what,
                          json={"ParentId": case_id, "CommentBody": comment_body(activity, marker)})
        data = expect(json_of(resp, what), dict, what)
        if not isinstance(data.get("id"), str):
            raise CRMBadResponse(f"{what}: the answer has no id: {resp.text[:200]!r}")
        return str(data["id"])

    def _comment_with(self, case_id: str, marker: str) -> str | None:
        """The CaseComment already carrying ``marker`` (the idempotency key): the
        comment body cannot be filtered in SOQL, so the case's comments are read."""
        soql = (f"SELECT Id, CommentBody FROM CaseComment WHERE ParentId = "
                f"{soql_string(case_id)}")
        for row in self._query(soql, f"reading the comments of Salesforce case {case_id}"):
            # Only the last line counts: a customer's text quoting a marker is no match.
            lines = str(row.get("CommentBody") or "").splitlines()
            if lines and lines[-1].strip() == marker:
                return str(row["Id"])
        return None

    # -- inbound ----------------------------------------------------------------------
    def verify_webhook(self, request: InboundRequest, *, now: dt.datetime) -> None:
        # Outbound Messages carry no timestamp or signature: ``now`` has nothing to check.
        outbound.verify(request, organization_id=self.config.get("organization_id"),
                        url_secret=self.config.get("url_secret"))

    def parse_webhook(self, request: InboundRequest) -> list[InboundEvent]:
        try:
            message = outbound.parse(request.body)
        except ValueError as exc:
            raise WebhookAuthError(f"not a Salesforce Outbound Message: {exc}") from None
        return [InboundEvent(
            crm=self.name, event_id=note.id, object_type=note.sobject.lower(),
            external_ids=(note.record_id,), action="updated",
            occurred_at=sf_datetime(note.fields.get("SystemModstamp")
                              or note.fields.get("LastModifiedDate")),
            raw={"organization_id": message.organization_id, "action_id": message.action_id,
                 "sobject": note.sobject, "fields": note.fields})
            for note in message.notifications]

    @staticmethod
    def acknowledgement() -> bytes:
        """The SOAP ``<Ack>true</Ack>`` answer; without it Salesforce re-sends."""
        return outbound.ACK

    def poll_changes(self, cursor: str | None) -> tuple[list[InboundEvent], str]:
        state = self._cursor(cursor)
        start = (self.clock() - self.poll_lookback).strftime("%Y-%m-%dT%H:%M:%SZ")
        events: list[InboundEvent] = []
        for obj in self.poll_objects:
            stamp, last = state.get(obj) or (start, "")
            since = f"SystemModstamp > {stamp}"
            if last:  # keyset: records sharing the last second are not skipped
                since = (f"({since} OR (SystemModstamp = {stamp} AND Id > "
                         f"{soql_string(last)}))")
            soql = (f"SELECT Id, SystemModstamp FROM {obj} WHERE {since} "
                    "ORDER BY SystemModstamp, Id LIMIT 200")
            for row in self._query(soql, f"polling Salesforce {obj} changes", pages=1):
                rid, modstamp = str(row.get("Id")), str(row.get("SystemModstamp"))
                when = sf_datetime(modstamp)
                if when is None:
                    raise CRMBadResponse(f"polling {obj}: SystemModstamp {modstamp!r} of "
                                         f"{rid} is not a Salesforce dateTime")
                events.append(InboundEvent(
                    crm=self.name, event_id=f"{obj}:{rid}:{modstamp}", object_type=obj.lower(),
                    external_ids=(rid,), action="updated", occurred_at=when, raw=row))
                stamp, last = when.strftime("%Y-%m-%dT%H:%M:%SZ"), rid
            state[obj] = (stamp, last)
        return events, json.dumps(state, sort_keys=True, separators=(",", ":"))

    def _cursor(self, cursor: str | None) -> dict[str, tuple[str, str]]:
        if not cursor:
            return {}
        try:
            raw = json.loads(cursor)
            state = {str(k): (str(v[0]), str(v[1])) for k, v in raw.items()}
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            state = None
        if state is None or not all(_STAMP.fullmatch(s) and (not i or record_id(i, "cursor"))
                                    for s, i in state.values()):
            raise CRMValidationError(f"the poll cursor {cursor[:80]!r} was not written by this "
                                     "connector; reset it to poll from now")
        return state

    def ensure_subscriptions(self, callback_url: str) -> None:
        raise UnsupportedOperation("Salesforce Outbound Messages are set up in Salesforce "
                                   "(Setup → Outbound Messages), not through the API; use the "
                                   f"endpoint {callback_url}?key=<url_secret>")

    # -- tokens -----------------------------------------------------------------------
    def refresh_token(self, current: Token | None) -> Token:
        candidates = [current.refresh_token] if current and current.refresh_token else []
        configured = str(self.config["refresh_token"])
        if configured not in candidates:
            candidates.append(configured)  # re-authorised: the setting holds a new one
        for i, refresh in enumerate(candidates):
            resp = send(self.http, "POST", f"{self.login_url}/services/oauth2/token",
                        headers={"Accept": "application/json"},
                        data={"grant_type": "refresh_token", "refresh_token": refresh,
                              "client_id": self.config["client_id"],
                              "client_secret": self.config["client_secret"]})
            if resp.status_code == 200:
                return self._token(resp, refresh)
            grant_refused = any(e.get("error") == "invalid_grant" for e in token_error(resp))
            if not grant_refused or i == len(candidates) - 1:
                raise auth_error(resp)
        raise AssertionError("unreachable: the configured refresh token is always tried")

    def _token(self, resp: httpx.Response, refresh: str) -> Token:
        what = "refreshing the Salesforce session"
        body = expect(json_of(resp, what), dict, what)
        access, instance = body.get("access_token"), body.get("instance_url")
        if not isinstance(access, str) or not isinstance(instance, str) or not instance:
            raise CRMBadResponse(f"{what}: the token answer lacks access_token or "
                                 f"instance_url (keys: {sorted(body)})")
        # With refresh-token rotation Salesforce sends a new refresh token: keep it.
        return Token(access, refresh_token=str(body.get("refresh_token") or refresh),
                     expires_at=None,
                     extra={"instance_url": instance.rstrip("/"),
                            "issued_at": body.get("issued_at"), "id": body.get("id")})

    # -- HTTP -------------------------------------------------------------------------
    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        token = self.tokens.get()
        resp = self._send(token, method, path, **kwargs)
        if resp.status_code == 401:
            resp = self._send(self.tokens.refresh(token), method, path, **kwargs)
            if resp.status_code == 401:
                said = "; ".join(str(e.get("message")) for e in errors_of(resp))
                raise CRMAuthError(f"{what}: Salesforce refused a freshly refreshed session "
                                   f"({said or resp.status_code}); re-authorise the connected app")
        raise_for(resp, what)
        return resp

    def _send(self, token: Token, method: str, path: str, **kwargs: Any) -> httpx.Response:
        base = self._instance(token)
        url = base + path if path.startswith("/services/") else \
            f"{base}/services/data/{self.api_version}/{path}"
        headers = {"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"}
        resp = send(self.http, method, url, headers=headers, **kwargs)
        usage = api_usage(resp)
        if usage is not None:
            self.api_usage = usage
            if usage[1] and usage[0] >= 0.9 * usage[1]:
                log.warning("Salesforce API usage at %d of %d daily requests", *usage)
        return resp

    def _instance(self, token: Token) -> str:
        instance = str(token.extra.get("instance_url") or "")
        secure = instance.startswith("https://") or (
            instance.startswith("http://") and self.login_url.startswith("http://"))
        if not secure:
            raise CRMAuthError(f"the stored Salesforce token has no usable instance_url "
                               f"({instance[:80]!r}); reconnect the connected app")
        self._instance_url = instance
        return instance

    def _get(self, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        body = expect(json_of(self._call("GET", path, what, **kwargs), what), dict, what)
        return {k: v for k, v in body.items() if k != "attributes"}

    def _query(self, soql: str, what: str, *, pages: int = 50) -> Iterator[dict[str, Any]]:
        resp = self._call("GET", "query/", what, params={"q": soql})
        for _ in range(pages):
            body = expect(json_of(resp, what), dict, what)
            yield from (r for r in expect(body.get("records"), list, what) if isinstance(r, dict))
            following = body.get("nextRecordsUrl")
            if body.get("done", True) or not isinstance(following, str):
                return
            resp = self._call("GET", following, what)

    def _ref(self, sobject: str, record: str) -> CustomerRef:
        return CustomerRef(self.name, sobject.lower(), record, self._url(sobject, record))

    def _url(self, sobject: str, record: str) -> str | None:
        base = self._instance_url
        return f"{base}/lightning/r/{sobject}/{record}/view" if base else None

    def _e164(self, value: Any, region: str | None = None) -> str | None:
        return e164(value, region or self.phone_region)
