"""The HubSpot connector: contacts found by email or phone, profiles, tickets
upserted by Caseloop's id, notes recorded once, signed webhooks and polling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import jsonschema
import phonenumbers

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
)
from caseloop.crm.http import expect, json_of, send

from . import webhooks
from .api import (
    api_path,
    batch_failure,
    iso,
    millis,
    note_html,
    parse_time,
    raise_for,
    token_refused,
)
from .settings import CONFIG_SCHEMA, PRIORITIES, Settings

#: Association type ids HubSpot defines (category HUBSPOT_DEFINED).
NOTE_TO = {"contact": 202, "case": 228, "ticket": 228}
CONTACT_PROPERTIES = ("email", "firstname", "lastname", "phone", "mobilephone",
                      "hs_additional_emails", "lifecyclestage")
#: The last-modified property HubSpot keeps per object (contacts are the exception).
MODIFIED = {"contacts": "lastmodifieddate", "tickets": "hs_lastmodifieddate"}
KINDS = {"contacts": "contact", "tickets": "case"}
POLL_PAGE = 100
POLL_PAGES = 10


class HubSpot:
    """HubSpot CRM (API version ``2026-03`` by default; ``v3`` as fallback)."""

    name: ClassVar[str] = "hubspot"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"find", "profile", "cases", "activities", "webhooks", "poll"})
    config_schema: ClassVar[Mapping[str, Any]] = CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], http: httpx.Client, tokens: Tokens) -> None:
        errors = list(jsonschema.Draft7Validator(CONFIG_SCHEMA).iter_errors(dict(config)))
        if errors:
            raise ValueError(f"hubspot settings: {errors[0].message}")
        self.settings = Settings.from_config(config)
        self.http = http
        self.tokens = tokens

    # -- HTTP --------------------------------------------------------------------------
    def _token(self) -> Token:
        if self.settings.access_token:  # a private app's token: static, not in the store
            return Token(self.settings.access_token)
        return self.tokens.get()

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """One API call with the token; a 401 refreshes once and repeats, a second
        401 is an auth error. Returns the JSON body (None when empty)."""
        token = self._token()
        response = self._send(method, path, token, **kwargs)
        if response.status_code == 401:
            if self.settings.access_token:
                raise CRMAuthError(f"{what}: HubSpot refused the private app's access token "
                                   "(401); create a new one and replace access_token")
            token = self.tokens.refresh(token)
            response = self._send(method, path, token, **kwargs)
            if response.status_code == 401:
                raise CRMAuthError(f"{what}: HubSpot refused a freshly refreshed token "
                                   "(401 twice); re-authorise the app")
        raise_for(response, what)
        return json_of(response, what) if response.content else None

    def _send(self, method: str, path: str, token: Token, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"}
        return send(self.http, method, self.settings.base_url + path, headers=headers, **kwargs)

    def _search(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        what = f"search {object_type}"
        data = expect(self._request("POST", api_path(self.settings.api_version, object_type,
                                                     "search"), what, json=body),
                      dict, what)
        expect(data.get("results"), list, what + " (results)")
        return dict(data)

    def refresh_token(self, current: Token | None) -> Token:
        """Mint an access token: OAuth refresh (form-encoded POST /oauth/v1/token).
        A private app's static token cannot be refreshed."""
        s = self.settings
        if s.access_token:
            if current is None:
                return Token(s.access_token)
            raise CRMAuthError("HubSpot refused the private app's access token and a static "
                               "token cannot be refreshed; create a new one and replace "
                               "access_token")
        refresh = (current.refresh_token if current and current.refresh_token
                   else s.refresh_token)
        form = {"grant_type": "refresh_token", "client_id": s.client_id,
                "client_secret": s.client_secret, "refresh_token": refresh}
        response = send(self.http, "POST", s.base_url + "/oauth/v1/token", data=form,
                        headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise token_refused(response)
        body = expect(json_of(response, "POST /oauth/v1/token"), dict, "POST /oauth/v1/token")
        if not isinstance(body.get("access_token"), str):
            raise CRMBadResponse("POST /oauth/v1/token: HubSpot's answer has no access_token")
        expires = body.get("expires_in")
        return Token(access_token=body["access_token"],
                     refresh_token=body.get("refresh_token") or refresh,
                     expires_at=(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires)
                                 if isinstance(expires, int) else None),
                     extra={k: v for k, v in body.items()
                            if k in {"token_type", "hub_id", "scopes"}})

    # -- contacts ----------------------------------------------------------------------
    def find_customers(self, *, email: str | None = None, phone_e164: str | None = None,
                       limit: int = 5) -> list[CustomerRef]:
        if email and phone_e164:  # the email decides; the phone is the fallback
            return (self.find_customers(email=email, limit=limit)
                    or self.find_customers(phone_e164=phone_e164, limit=limit))
        if email:
            wanted = email.strip().lower()
            groups = [[("email", wanted)]]
        elif phone_e164:
            wanted = _e164(phone_e164) or phone_e164
            # HubSpot matches phones as stored (formatting counts): try E.164 and the
            # national form in the default region (else the international one).
            forms = dict.fromkeys((wanted, _other_form(wanted, self.settings.default_region)))
            groups = [[(prop, form)] for form in forms for prop in ("phone", "mobilephone")]
        else:
            return []
        body = {"filterGroups": [{"filters": [{"propertyName": p, "operator": "EQ", "value": v}
                                              for p, v in group]} for group in groups],
                "properties": list(CONTACT_PROPERTIES), "limit": min(max(limit, 1), 200)}
        found = []
        for record in self._search("contacts", body)["results"]:
            props = record.get("properties") or {}
            # HubSpot's matching is tokenised; keep only true matches.
            if email and str(props.get("email") or "").lower() != wanted:
                continue
            region = self.settings.default_region
            if phone_e164 and wanted not in {_e164(props.get("phone"), region),
                                             _e164(props.get("mobilephone"), region)}:
                continue
            found.append(self._ref("contact", str(record["id"])))
        return found[:limit]

    def get_profile(self, ref: CustomerRef) -> CustomerProfile:
        s = self.settings
        props = list(dict.fromkeys((*CONTACT_PROPERTIES, *s.profile_fields.values())))
        what = f"get contact {ref.external_id}"
        record = expect(self._request(
            "GET", api_path(s.api_version, "contacts", ref.external_id), what,
            params={"properties": ",".join(props)}), dict, what)
        raw = dict(expect(record.get("properties"), dict, what + " (properties)"))
        name = " ".join(str(raw[k]) for k in ("firstname", "lastname") if raw.get(k)).strip()
        emails = [raw.get("email"), *str(raw.get("hs_additional_emails") or "").split(";")]
        phones = [_e164(raw.get(k), s.default_region) for k in ("phone", "mobilephone")]
        return CustomerProfile(
            ref=self._ref("contact", str(record.get("id", ref.external_id))),
            display_name=name or raw.get("email") or None,
            emails=tuple(dict.fromkeys(e.strip() for e in emails if e and e.strip())),
            phones_e164=tuple(dict.fromkeys(p for p in phones if p)),
            segment=_text(raw.get(s.profile_fields.get("segment", ""))),
            value_tier=_text(raw.get(s.profile_fields.get("value_tier", ""))),
            lifecycle_stage=_text(raw.get(s.profile_fields.get("lifecycle_stage", ""))),
            raw=raw, fetched_at=dt.datetime.now(dt.UTC))

    # -- tickets -----------------------------------------------------------------------
    def upsert_case(self, case: CaseSnapshot) -> PushResult:
        """Create or update the ticket whose unique ``case_id_property`` is the
        case's id (batch upsert: HubSpot decides, atomically, and says ``new``)."""
        s = self.settings
        stage = case.status or s.pipeline_stages.get(case.state_category)
        if not stage:
            raise CRMValidationError(f"no HubSpot pipeline stage for the state category "
                                     f"'{case.state_category}'; add it to pipeline_stages "
                                     "or map the state in the 'status' setting")
        props: dict[str, str] = {"subject": case.subject, "content": case.description or "",
                                 "hs_pipeline": s.pipeline, "hs_pipeline_stage": stage}
        if case.priority and case.priority.lower() in PRIORITIES:
            props["hs_ticket_priority"] = PRIORITIES[case.priority.lower()]
        what = f"upsert ticket {s.case_id_property}={case.caseloop_id}"
        body = {"inputs": [{"idProperty": s.case_id_property, "id": case.caseloop_id,
                            "properties": props}]}
        data = expect(self._request("POST", api_path(s.api_version, "tickets", "batch",
                                                     "upsert"), what, json=body), dict, what)
        if data.get("errors") and not data.get("results"):
            raise batch_failure(data, what)
        results = expect(data.get("results"), list, what + " (results)")
        if not results or not isinstance(results[0], dict) or "id" not in results[0]:
            raise CRMBadResponse(f"{what}: HubSpot's answer names no ticket: {data!r:.200}")
        ticket_id = str(results[0]["id"])
        if case.customer is not None and case.customer.object_type == "contact":
            self._associate("tickets", ticket_id, "contacts", case.customer.external_id)
        return PushResult(ticket_id, bool(results[0].get("new")),
                          self._ref("case", ticket_id).url)

    def _associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        # The default (unlabelled) association: idempotent, and no type id to get wrong.
        path = api_path(self.settings.api_version, from_type, from_id, "associations",
                        "default", to_type, to_id)
        self._request("PUT", path, f"associate {from_type} {from_id} with {to_type} {to_id}")

    def get_case(self, external_id: str) -> CRMCase:
        s = self.settings
        props = ["subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
                 s.case_id_property]
        what = f"get ticket {external_id}"
        record = expect(self._request(
            "GET", api_path(s.api_version, "tickets", external_id), what,
            params={"properties": ",".join(props), "associations": "contacts"}), dict, what)
        raw = dict(expect(record.get("properties"), dict, what + " (properties)"))
        contacts = ((record.get("associations") or {}).get("contacts") or {}).get("results")
        customer = (self._ref("contact", str(contacts[0]["id"]))
                    if isinstance(contacts, list) and contacts else None)
        return CRMCase(ref=self._ref("case", str(record.get("id", external_id))),
                       subject=str(raw.get("subject") or ""), description=_text(raw.get("content")),
                       status=_text(raw.get("hs_pipeline_stage")),
                       priority=_text(raw.get("hs_ticket_priority")), customer=customer,
                       caseloop_id=_text(raw.get(s.case_id_property)), raw=raw)

    # -- notes -------------------------------------------------------------------------
    def add_activity(self, activity: Activity) -> str:
        """A note on the ticket and/or contact, once per ``activity.caseloop_id``:
        the key sits in a note property, and a search for it comes first."""
        s = self.settings
        key_prop = s.activity_id_property
        found = self._search("notes", {
            "filterGroups": [{"filters": [{"propertyName": key_prop, "operator": "EQ",
                                           "value": activity.caseloop_id}]}],
            "properties": [key_prop], "limit": 1})["results"]
        if found:
            return str(found[0]["id"])
        associations = []
        for ref in activity.attach_to:
            if ref.object_type not in NOTE_TO:
                raise CRMValidationError(f"a HubSpot note cannot be attached to a "
                                         f"'{ref.object_type}' (only contact or case)")
            associations.append({"to": {"id": ref.external_id},
                                 "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                            "associationTypeId": NOTE_TO[ref.object_type]}]})
        body = {"properties": {"hs_timestamp": iso(activity.occurred_at),
                               "hs_note_body": note_html(activity.kind, activity.body_text),
                               key_prop: activity.caseloop_id},
                "associations": associations}
        what = f"create note {activity.caseloop_id}"
        created = expect(self._request("POST", api_path(s.api_version, "notes"), what,
                                       json=body), dict, what)
        if "id" not in created:
            raise CRMBadResponse(f"{what}: HubSpot's answer has no id: {created!r:.200}")
        return str(created["id"])

    # -- inbound -----------------------------------------------------------------------
    def verify_webhook(self, request: InboundRequest, *, now: dt.datetime) -> None:
        webhooks.verify(request, client_secret=self.settings.client_secret,
                        public_url=self.settings.webhook_url, now=now)

    def parse_webhook(self, request: InboundRequest) -> list[InboundEvent]:
        return webhooks.parse(self.name, request.body)

    def poll_changes(self, cursor: str | None) -> tuple[list[InboundEvent], str]:
        """Contacts and tickets modified since the cursor, oldest first. A first
        poll starts now (history is not replayed)."""
        now = dt.datetime.now(dt.UTC)
        if cursor is None:
            return [], webhooks.dump_cursor({o: (millis(now), []) for o in MODIFIED})
        positions = webhooks.load_cursor(cursor, tuple(MODIFIED))
        # Search indexes lag a few seconds: only report what is older than the settle
        # delay, so a late-indexed change is not skipped by a cursor that moved on.
        settle = int(self.settings.poll_settle_seconds * 1000)
        until = millis(now) - settle if settle else None
        events: list[InboundEvent] = []
        for object_type, prop in MODIFIED.items():
            found, positions[object_type] = self._changes(object_type, prop,
                                                          positions[object_type], until)
            events += found
        return events, webhooks.dump_cursor(positions)

    def _changes(self, object_type: str, prop: str, position: webhooks.Position,
                 until: int | None) -> tuple[list[InboundEvent], webhooks.Position]:
        since, seen = position
        filters = [{"propertyName": prop, "operator": "GTE", "value": str(since)}]
        if until is not None:
            filters.append({"propertyName": prop, "operator": "LTE", "value": str(until)})
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": [prop, "createdate"], "limit": POLL_PAGE}
        events: list[InboundEvent] = []
        last, last_ids = since, list(seen)
        for _ in range(POLL_PAGES):
            page = self._search(object_type, body)
            for record in page["results"]:
                props = record.get("properties") or {}
                when = parse_time(props.get(prop))
                rid = str(record.get("id"))
                if when is None:
                    continue
                ms = millis(when)
                if ms < since or (ms == since and rid in seen):
                    continue
                created = parse_time(props.get("createdate"))
                events.append(InboundEvent(
                    crm=self.name, event_id=f"{KINDS[object_type]}:{rid}:{ms}",
                    object_type=KINDS[object_type], external_ids=(rid,),
                    action="created" if created == when else "updated", occurred_at=when,
                    raw=dict(record)))
                last, last_ids = (ms, [*last_ids, rid]) if ms == last else (ms, [rid])
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
            body["after"] = after
        return events, (last, last_ids)

    def ensure_subscriptions(self, callback_url: str) -> None:
        raise UnsupportedOperation("HubSpot webhook subscriptions belong to the app: set the "
                                   f"target URL ({callback_url}) and the contact/ticket "
                                   "subscriptions in the app's settings in HubSpot")

    # -- helpers -----------------------------------------------------------------------
    def _ref(self, kind: str, external_id: str) -> CustomerRef:
        portal = self.settings.portal_id
        type_id = {"contact": "0-1", "case": "0-5"}[kind]
        url = (f"{self.settings.app_url}/contacts/{portal}/record/{type_id}/{external_id}"
               if portal else None)
        return CustomerRef(self.name, kind, external_id, url)


def _e164(value: Any, region: str | None = None) -> str | None:
    """A phone as E.164; numbers stored without +country need ``default_region``."""
    if not value:
        return None
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _other_form(e164: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    national = region and phonenumbers.region_code_for_number(number) == region
    form = (phonenumbers.PhoneNumberFormat.NATIONAL if national
            else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return str(phonenumbers.format_number(number, form))


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


