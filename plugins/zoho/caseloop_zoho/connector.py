"""The Zoho CRM connector (REST API v8)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx
import phonenumbers

from caseloop.crm import (
    Activity,
    CaseSnapshot,
    CRMAuthError,
    CRMBadResponse,
    CRMCase,
    CRMNotFound,
    CRMValidationError,
    CustomerProfile,
    CustomerRef,
    InboundEvent,
    InboundRequest,
    PushResult,
    Token,
    Tokens,
)
from caseloop.crm.http import expect, json_of, send, server_error

from . import errors, poll, webhooks
from .settings import CONFIG_SCHEMA, Settings

#: Modules polled, and the object type Caseloop calls their records.
POLLED = {"Cases": "case", "Contacts": "contact"}
PHONE_FIELDS = ("Phone", "Mobile", "Home_Phone", "Other_Phone", "Asst_Phone")
#: Zoho caps a page at 200 records; more than this many pages wait for the next poll.
PAGE_SIZE, MAX_PAGES = 200, 10
NOTE_CONTENT_LIMIT = 32000  # unverified: Zoho's UI limit for a note


class Zoho:
    """Caseloop's connector for Zoho CRM: Contacts, Cases, Notes and watch channels."""

    name: ClassVar[str] = "zoho"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"find", "profile", "cases", "activities", "webhooks", "poll", "subscribe"})
    config_schema: ClassVar[Mapping[str, Any]] = CONFIG_SCHEMA
    #: The clock for channel expiries and poll cursors (tests replace it).
    clock: Callable[[], dt.datetime] = staticmethod(lambda: dt.datetime.now(dt.UTC))

    def __init__(self, config: Mapping[str, Any], http: httpx.Client, tokens: Tokens) -> None:
        self.settings = Settings.from_config(config)
        self.http = http
        self.tokens = tokens

    # -- tokens ----------------------------------------------------------------------
    def refresh_token(self, current: Token | None) -> Token:
        """Mint an access token from the refresh token (Caseloop calls this under a lock:
        Zoho allows 10 per refresh token per 10 minutes)."""
        what = "Zoho token refresh"
        s = self.settings
        # Form-encoded, as Zoho's own SDK sends it: secrets stay out of URLs and logs.
        response = send(self.http, "POST", f"{s.accounts_url}/oauth/v2/token", data={
            "grant_type": "refresh_token", "client_id": s.client_id,
            "client_secret": s.client_secret, "refresh_token": s.refresh_token})
        if response.status_code >= 500:
            raise server_error(response, what)
        body = json_of(response, what)
        if not isinstance(body, dict) or "error" in body or response.status_code != 200:
            raise errors.token_error(response, body, what)
        access, domain = body.get("access_token"), body.get("api_domain") or s.api_domain
        if not isinstance(access, str) or not isinstance(domain, str):
            raise CRMBadResponse(f"{what}: no access_token/api_domain in the answer "
                                 f"(keys: {sorted(body)})")
        # Older answers carry expires_in_sec (seconds) and expires_in in milliseconds.
        lifetime = body.get("expires_in_sec", body.get("expires_in", 3600))
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            lifetime = 3600  # Zoho's documented lifetime of an access token
        return Token(access_token=access, refresh_token=s.refresh_token,
                     expires_at=self.clock() + dt.timedelta(seconds=float(lifetime)),
                     extra={"api_domain": domain.rstrip("/"),
                            "token_type": body.get("token_type", "Bearer")})

    def _api(self, method: str, path: str, what: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """One API call: the token from the store, one refresh on INVALID_TOKEN, errors
        mapped. Returns a 2xx (or 304) response."""
        token = self.tokens.get()
        response = self._send(token, method, path, params, json, headers)
        if errors.is_expired(response):
            token = self.tokens.refresh(token)
            response = self._send(token, method, path, params, json, headers)
            if errors.is_expired(response):
                raise CRMAuthError(f"{what}: Zoho refused a freshly minted access token "
                                   f"({response.status_code}); check the client's scopes and "
                                   "data_centre, or re-authorise the connection")
        errors.raise_for(response, what)
        return response

    def _send(self, token: Token, method: str, path: str, params: Mapping[str, Any] | None,
              json: Any, headers: Mapping[str, str] | None) -> httpx.Response:
        base = self.settings.api_domain or token.extra.get("api_domain")
        if not isinstance(base, str) or not base:
            raise CRMAuthError("zoho: the stored token has no api_domain; refresh the "
                               "connection's token (or set api_domain)")
        url = f"{base.rstrip('/')}/crm/{self.settings.api_version}/{path}"
        return send(self.http, method, url, params=params, json=json, headers={
            "Authorization": f"Zoho-oauthtoken {token.access_token}", **(headers or {})})

    def _page(self, response: httpx.Response, what: str) -> tuple[list[dict[str, Any]], bool]:
        """``data[]`` of a read and whether more pages follow; Zoho answers 204 (no body)
        when there is nothing (304 when nothing changed since If-Modified-Since)."""
        if response.status_code in (204, 304) or not response.content:
            return [], False
        body = expect(json_of(response, what), dict, what)
        data = expect(body.get("data"), list, f"{what} (data)")
        info = body.get("info")
        more = isinstance(info, dict) and info.get("more_records") is True
        return [expect(r, dict, f"{what} (a record)") for r in data], more

    def _written(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The one result item of a single-record write, or its error raised."""
        body = expect(json_of(response, what), dict, what)
        items = expect(body.get("data"), list, f"{what} (data)")
        item: dict[str, Any] = expect(items[0] if items else None, dict, f"{what} (result)")
        if item.get("status") != "success":
            raise errors.record_error(item, what)
        details = expect(item.get("details"), dict, f"{what} (details)")
        if not details.get("id"):
            raise CRMBadResponse(f"{what}: no record id in {item!r:.200}")
        return item

    # -- find and profile ------------------------------------------------------------
    def find_customers(self, *, email: str | None = None, phone_e164: str | None = None,
                       limit: int = 5) -> list[CustomerRef]:
        found: dict[str, CustomerRef] = {}
        if email:
            for record in self._search("email", email.strip(), limit):
                # Zoho's email search covers every email field; keep exact matches only.
                if _has_email(record, email.strip()):
                    found.setdefault(str(record["id"]), self._contact(record))
        if phone_e164 and len(found) < limit:
            # Phone search matches the stored text; numbers are often kept without "+".
            for value in dict.fromkeys((phone_e164, phone_e164.lstrip("+"))):
                records = self._search("phone", value, limit)
                for record in records:
                    found.setdefault(str(record["id"]), self._contact(record))
                if records:
                    break
        return list(found.values())[:limit]

    def _search(self, key: str, value: str, limit: int) -> list[dict[str, Any]]:
        what = f"Zoho contact search by {key}"
        response = self._api("GET", "Contacts/search", what,
                             params={key: value, "per_page": min(max(limit, 1), 200)})
        records, _ = self._page(response, what)
        for record in records:
            if not record.get("id"):
                raise CRMBadResponse(f"{what}: a contact without an id: {record!r:.200}")
        return records

    def _contact(self, record: Mapping[str, Any]) -> CustomerRef:
        return CustomerRef(self.name, "contact", str(record["id"]))

    def get_profile(self, ref: CustomerRef) -> CustomerProfile:
        record = self._get("Contacts", ref.external_id)
        name = record.get("Full_Name") or " ".join(
            str(record[k]) for k in ("First_Name", "Last_Name") if record.get(k))
        emails = tuple(str(record[k]) for k in ("Email", "Secondary_Email") if record.get(k))
        phones = tuple(dict.fromkeys(p for k in PHONE_FIELDS
                                     if (p := self._e164(record.get(k)))))
        fields = self.settings.profile_fields
        return CustomerProfile(
            ref=CustomerRef(self.name, "contact", str(record.get("id", ref.external_id))),
            display_name=name or None, emails=emails, phones_e164=phones,
            segment=_text(record.get(fields["segment"])),
            value_tier=_text(record.get(fields["value_tier"])),
            lifecycle_stage=_text(record.get(fields["lifecycle_stage"])),
            raw=record, fetched_at=self.clock())

    def _get(self, module: str, record_id: str) -> dict[str, Any]:
        what = f"Zoho {module} {record_id}"
        records, _ = self._page(self._api("GET", f"{module}/{record_id}", what), what)
        if not records:
            raise CRMNotFound(f"{what}: no such record (Zoho answered 204); was it deleted?")
        return records[0]

    def _e164(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            number = phonenumbers.parse(value, self.settings.phone_region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(number):
            return None
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    # -- cases -----------------------------------------------------------------------
    def upsert_case(self, case: CaseSnapshot) -> PushResult:
        s = self.settings
        status = case.status or s.status_map.get(case.state_category)
        record: dict[str, Any] = {
            s.case_id_field: case.caseloop_id,
            "Subject": case.subject[:255],
            "Case_Origin": s.case_origin,
            "Description": "\n\n".join(p for p in (case.description, f"Caseloop {case.reference}"
                                                   + (f": {case.url}" if case.url else "")) if p),
        }
        if status:
            record["Status"] = status
        if case.priority:
            record["Priority"] = s.priority_map.get(case.priority.lower(), case.priority)
        if case.customer is not None and case.customer.object_type == "contact":
            record[s.contact_lookup_field] = {"id": case.customer.external_id}
        for source, target in s.case_fields.items():
            if source in case.fields:
                record[target] = case.fields[source]
        what = f"Zoho case upsert for Caseloop case {case.caseloop_id}"
        response = self._api("POST", "Cases/upsert", what, json={
            "data": [record], "duplicate_check_fields": [s.case_id_field]})
        item = self._written(response, what)
        return PushResult(external_id=str(item["details"]["id"]),
                          created=item.get("action") == "insert")

    def get_case(self, external_id: str) -> CRMCase:
        record = self._get("Cases", external_id)
        contact = record.get(self.settings.contact_lookup_field)
        customer = (CustomerRef(self.name, "contact", str(contact["id"]))
                    if isinstance(contact, dict) and contact.get("id") else None)
        caseloop_id = record.get(self.settings.case_id_field)
        return CRMCase(ref=CustomerRef(self.name, "case", str(record.get("id", external_id))),
                       subject=str(record.get("Subject") or ""),
                       description=_text(record.get("Description")),
                       status=_text(record.get("Status")),
                       priority=_text(record.get("Priority")), customer=customer,
                       caseloop_id=str(caseloop_id) if caseloop_id else None, raw=record)

    # -- notes -----------------------------------------------------------------------
    def add_activity(self, activity: Activity) -> str:
        """A Note on the case (else on the contact). Idempotent: the key is in the
        Note_Title, and the parent's notes are searched for it before creating."""
        parent = next((r for r in activity.attach_to if r.object_type == "case"), None) or next(
            (r for r in activity.attach_to if r.object_type == "contact"), None)
        if parent is None:
            raise CRMValidationError(f"zoho: activity {activity.caseloop_id} names no case or "
                                     "contact to attach the note to")
        module = "Cases" if parent.object_type == "case" else "Contacts"
        marker = f"[caseloop {activity.caseloop_id}]"
        existing = self._find_note(module, parent.external_id, marker)
        if existing is not None:
            return existing
        when = activity.occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        label = activity.kind.replace("_", " ")
        what = f"Zoho note {marker} on {module} {parent.external_id}"
        # Note_Content is plain text in Zoho (no HTML is interpreted): sent unescaped.
        response = self._api("POST", "Notes", what, json={"data": [{
            "Note_Title": f"{marker} {label}, {when}"[:120],
            "Note_Content": activity.body_text[:NOTE_CONTENT_LIMIT] or label,
            "Parent_Id": {"module": {"api_name": module}, "id": parent.external_id},
        }]})
        return str(self._written(response, what)["details"]["id"])

    def _find_note(self, module: str, parent_id: str, marker: str) -> str | None:
        what = f"Zoho notes of {module} {parent_id}"
        for page in range(1, MAX_PAGES + 1):
            response = self._api("GET", f"{module}/{parent_id}/Notes", what, params={
                "fields": "Note_Title", "per_page": PAGE_SIZE, "page": page})
            notes, more = self._page(response, what)
            for note in notes:
                if str(note.get("Note_Title") or "").startswith(marker):
                    return str(note["id"])
            if not more:
                return None
        return None

    # -- inbound ---------------------------------------------------------------------
    def verify_webhook(self, request: InboundRequest, *, now: dt.datetime) -> None:
        s = self.settings
        webhooks.verify(request, now=now, token=s.notify_token, url_secret=s.url_secret,
                        channel_id=s.channel_id,
                        max_age=dt.timedelta(seconds=s.webhook_max_age_seconds))

    def parse_webhook(self, request: InboundRequest) -> list[InboundEvent]:
        return webhooks.parse(request, self.name)

    def poll_changes(self, cursor: str | None) -> tuple[list[InboundEvent], str]:
        """Records of Cases and Contacts modified since the cursor (If-Modified-Since,
        sorted by Modified_Time). Deletions are not polled: the watch channel reports them."""
        marks = poll.load(cursor, POLLED, self.clock())
        events: list[InboundEvent] = []
        for module, object_type in POLLED.items():
            mark = marks[module]
            fields = ["Modified_Time", "Created_Time"]
            if module == "Cases":
                fields.append(self.settings.case_id_field)
            since, what = mark.since(), f"Zoho poll of {module}"
            for page in range(1, MAX_PAGES + 1):
                response = self._api("GET", module, what, headers={
                    "If-Modified-Since": since}, params={
                    "fields": ",".join(fields), "sort_by": "Modified_Time",
                    "sort_order": "asc", "per_page": PAGE_SIZE, "page": page})
                records, more = self._page(response, what)
                for record in records:
                    events.extend(self._polled(module, object_type, record, mark))
                if not more:
                    break
        return events, poll.dump(marks)

    def _polled(self, module: str, object_type: str, record: Mapping[str, Any],
                mark: poll.Mark) -> list[InboundEvent]:
        record_id, modified = str(record.get("id", "")), record.get("Modified_Time")
        if not record_id or not isinstance(modified, str):
            raise CRMBadResponse(f"zoho poll of {module}: a record without id/Modified_Time: "
                                 f"{dict(record)!r:.200}")
        when = poll.parse_time(modified)
        if not mark.is_new(record_id, when):
            return []
        mark.advance(record_id, when)
        created = record.get("Created_Time") == modified
        return [InboundEvent(crm=self.name, event_id=f"poll:{module}:{record_id}:{modified}",
                             object_type=object_type, external_ids=(record_id,),
                             action="created" if created else "updated", occurred_at=when,
                             raw=dict(record))]

    def ensure_subscriptions(self, callback_url: str) -> None:
        """Arm (or re-arm) the watch channel. Zoho lets a channel live at most one day and
        falls back to one hour if asked for more, so Caseloop calls this on a schedule."""
        s = self.settings
        if not (s.notify_token and s.url_secret and s.channel_id):
            raise CRMValidationError("zoho: set notify_token, url_secret and channel_id to "
                                     "subscribe to Zoho notifications")
        expiry = self.clock().replace(microsecond=0) + dt.timedelta(hours=s.channel_hours)
        joiner = "&" if "?" in callback_url else "?"
        what = f"Zoho watch channel {s.channel_id}"
        response = self._api("POST", "actions/watch", what, json={"watch": [{
            "channel_id": s.channel_id, "events": list(s.watch_events),
            "channel_expiry": expiry.isoformat(), "token": s.notify_token,
            "notify_url": f"{callback_url}{joiner}key={s.url_secret}",
            "return_affected_field_values": True,
        }]})
        body = expect(json_of(response, what), dict, what)
        for item in expect(body.get("watch"), list, f"{what} (watch)"):
            if not isinstance(item, dict) or item.get("status") != "success":
                raise errors.record_error(item if isinstance(item, dict) else {}, what)


def _has_email(record: Mapping[str, Any], email: str) -> bool:
    wanted = email.casefold()
    return any(isinstance(v, str) and v.casefold() == wanted
               for k, v in record.items() if "email" in k.lower())


def _text(value: Any) -> str | None:
    if isinstance(value, dict):  # a lookup or a user: {"name", "id"}
        value = value.get("name")
    return str(value) if value not in (None, "") else None
