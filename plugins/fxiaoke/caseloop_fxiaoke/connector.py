"""The Fxiaoke / 纷享销客 connector: contacts, cases (CasesObj), activity records, polling.

Fxiaoke has no upsert by an external key and no signed webhooks (none found in public
material), so pushes are query-then-write on a custom field holding Caseloop's id, and
inbound changes are polled on ``last_modified_time``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import phonenumbers

from caseloop.crm import (
    Activity,
    CaseSnapshot,
    CRMBadResponse,
    CRMCase,
    CRMNotFound,
    CustomerProfile,
    CustomerRef,
    InboundEvent,
    InboundRequest,
    PushResult,
    Token,
    Tokens,
    UnsupportedOperation,
)
from caseloop.crm.http import expect

from .client import FxiaokeClient
from .settings import CONFIG_SCHEMA, resolve

#: Page size of a query: Fxiaoke's documented maximum (third-party copies of the docs).
PAGE = 100
#: Pages read per object in one poll (offset must stay ≤ 10000).
POLL_PAGES = 10
MODIFIED = "last_modified_time"


class Fxiaoke:
    """Caseloop's connector for Fxiaoke's open API (``open.fxiaoke.com/cgi/…``)."""

    name: ClassVar[str] = "fxiaoke"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"find", "profile", "cases", "activities", "poll"})
    config_schema: ClassVar[Mapping[str, Any]] = CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], http: httpx.Client, tokens: Tokens) -> None:
        self.settings = resolve(config)
        self.http = http
        self.tokens = tokens
        self.client = FxiaokeClient(self.settings, http, tokens)
        self.case_object: str = self.settings["case_object"]
        self.contact_object: str = self.settings["contact_object"]
        self.activity_object: str = self.settings["activity_object"]
        self.fields: dict[str, str] = self.settings["field_map"]

    # -- customers ------------------------------------------------------------------------
    def find_customers(self, *, email: str | None = None, phone_e164: str | None = None,
                       limit: int = 5) -> list[CustomerRef]:
        size = max(1, min(limit, PAGE))
        if email:
            wanted = email.strip().lower()
            field = self.settings["email_field"]
            rows = self._query(self.contact_object, [_eq(field, wanted)], limit=size)
            # The CRM's EQ may or may not ignore case; ours does.
            rows = [r for r in rows if wanted in (e.lower() for e in _strings(r.get(field)))]
        elif phone_e164:
            forms = _phone_forms(phone_e164)
            rows = []
            for field in self.settings["phone_fields"]:  # mobile first, then tel
                flt = {"field_name": field, "field_values": forms,
                       "operator": "IN" if len(forms) > 1 else "EQ"}
                if rows := self._query(self.contact_object, [flt], limit=size):
                    break
        else:
            return []
        seen: dict[str, CustomerRef] = {}
        for row in rows:
            rid = _id_of(row, "contact")
            seen.setdefault(rid, self._ref("contact", self.contact_object, rid))
        return list(seen.values())[:limit]

    def get_profile(self, ref: CustomerRef) -> CustomerProfile:
        row = self._by_id(self.contact_object, ref.external_id, "contact")
        profile = self.settings["profile_fields"]
        region = self.settings["default_region"]
        phones = [p for f in self.settings["phone_fields"]
                  for v in _strings(row.get(f)) if (p := _e164(v, region))]
        return CustomerProfile(
            ref=self._ref("contact", self.contact_object, ref.external_id),
            display_name=_text(row.get("name")),
            emails=tuple(_strings(row.get(self.settings["email_field"]))),
            phones_e164=tuple(dict.fromkeys(phones)),
            segment=_text(row.get(profile.get("segment", ""))),
            value_tier=_text(row.get(profile.get("value_tier", ""))),
            lifecycle_stage=_text(row.get(profile.get("lifecycle_stage", ""))),
            raw=row, fetched_at=dt.datetime.now(dt.UTC))

    # -- cases ----------------------------------------------------------------------------
    def upsert_case(self, case: CaseSnapshot) -> PushResult:
        key_field = self.settings["case_id_field"]
        found = self._query(self.case_object, [_eq(key_field, case.caseloop_id)], limit=2)
        data = self._case_data(case)
        if found:
            rid = _id_of(found[0], "case")
            self._write("update", self.case_object, {**data, "_id": rid})
            return PushResult(rid, False, self._url(self.case_object, rid))
        rid = self._create(self.case_object, {**data, key_field: case.caseloop_id},
                           key_field, case.caseloop_id)
        return PushResult(rid, True, self._url(self.case_object, rid))

    def get_case(self, external_id: str) -> CRMCase:
        row = self._by_id(self.case_object, external_id, "case")
        contact = _text(row.get(self.fields.get("contact") or ""))
        return CRMCase(
            ref=self._ref("case", self.case_object, external_id),
            subject=_text(row.get(self.fields.get("subject") or "name")) or "",
            description=_text(row.get(self.fields.get("description") or "")),
            status=_text(row.get(self.fields.get("status") or "")),
            priority=_text(row.get(self.fields.get("priority") or "")),
            customer=self._ref("contact", self.contact_object, contact) if contact else None,
            caseloop_id=_text(row.get(self.settings["case_id_field"])), raw=row)

    def _case_data(self, case: CaseSnapshot) -> dict[str, Any]:
        status = case.status or self.settings["status_map"].get(case.state_category,
                                                               case.state_category)
        priority = (self.settings["priority_map"].get(case.priority, case.priority)
                    if case.priority else None)
        contact = (case.customer.external_id if case.customer is not None
                   and case.customer.crm == self.name else None)
        values = {"subject": case.subject, "description": case.description, "status": status,
                  "priority": priority, "contact": contact, "reference": case.reference,
                  "url": case.url}
        # Unmapped ('' or missing) and empty values are left out: an update keeps what is there.
        return {field: value for key, value in values.items()
                if (field := self.fields.get(key)) and value is not None}

    # -- activities -----------------------------------------------------------------------
    def add_activity(self, activity: Activity) -> str:
        key_field = self.settings["activity_id_field"]
        found = self._query(self.activity_object, [_eq(key_field, activity.caseloop_id)],
                            limit=1)
        if found:  # recorded before (a retried job): the same record, not a second one
            return _id_of(found[0], "activity")
        # Plain text: the record's content field is not rendered as HTML (as far as known).
        data: dict[str, Any] = {key_field: activity.caseloop_id,
                                self.settings["activity_text_field"]: activity.body_text}
        links = [{"describe_api_name": self._object_of(ref), "id": ref.external_id}
                 for ref in activity.attach_to if ref.crm == self.name]
        if links and (link_field := self.settings["activity_link_field"]):
            data[link_field] = links
        return self._create(self.activity_object, data, key_field, activity.caseloop_id)

    def _object_of(self, ref: CustomerRef) -> str:
        return {"case": self.case_object, "contact": self.contact_object}.get(
            ref.object_type, ref.object_type)

    # -- inbound --------------------------------------------------------------------------
    def verify_webhook(self, request: InboundRequest, *, now: dt.datetime) -> None:
        raise UnsupportedOperation("Fxiaoke offers no signed webhooks; Caseloop polls it "
                                   "(poll_changes)")

    def parse_webhook(self, request: InboundRequest) -> list[InboundEvent]:
        raise UnsupportedOperation("Fxiaoke offers no signed webhooks; Caseloop polls it "
                                   "(poll_changes)")

    def ensure_subscriptions(self, callback_url: str) -> None:
        raise UnsupportedOperation("Fxiaoke has no subscriptions to arm; Caseloop polls it")

    def poll_changes(self, cursor: str | None) -> tuple[list[InboundEvent], str]:
        """Records of the case and contact objects changed after ``cursor`` (ms of
        ``last_modified_time``), oldest first. The first poll starts at the newest change
        the CRM has (its clock, not ours), without replaying history."""
        objects = (("case", self.case_object), ("contact", self.contact_object))
        if cursor is None:
            newest = [_ms(row) for _, obj in objects for row in self._query(
                obj, [], limit=1, orders=[{"fieldName": MODIFIED, "isAsc": False}])]
            return [], str(max(newest, default=0))
        if not (cursor.isascii() and cursor.isdigit()):
            raise CRMBadResponse(f"poll cursor {cursor!r} is not milliseconds; was it "
                                 "written by another connector?")
        since = int(cursor)
        events: list[InboundEvent] = []
        cut: list[int] = []  # the newest ms of each object cut off after POLL_PAGES pages
        for kind, obj in objects:
            rows, complete = self._changed(obj, since)
            events += [self._event(kind, obj, row) for row in rows]
            if rows and not complete:
                cut.append(max(_ms(r) for r in rows))
        upto = max((_ms(e.raw) for e in events), default=since)
        if cut:
            # Rows at the cut-off ms may continue on the next page: read that ms again next
            # time (the event ids repeat and Caseloop's inbox drops repeats). Only 1000
            # changes within one ms could stall this; then move on.
            upto = min(cut) - 1 if min(cut) - 1 > since else min(cut)
        events.sort(key=lambda e: (_ms(e.raw), e.event_id))
        return events, str(upto)

    def _changed(self, obj: str, since: int) -> tuple[list[dict[str, Any]], bool]:
        rows: list[dict[str, Any]] = []
        flt = {"field_name": MODIFIED, "field_values": [str(since)], "operator": "GT"}
        order = [{"fieldName": MODIFIED, "isAsc": True}]
        for page in range(POLL_PAGES):
            batch = self._query(obj, [flt], limit=PAGE, offset=page * PAGE, orders=order)
            rows += batch
            if len(batch) < PAGE:
                return rows, True
        return rows, False

    def _event(self, kind: str, obj: str, row: dict[str, Any]) -> InboundEvent:
        rid, ms = _id_of(row, kind), _ms(row)
        created = row.get("create_time") == ms
        return InboundEvent(crm=self.name, event_id=f"{obj}:{rid}:{ms}", object_type=kind,
                            external_ids=(rid,), action="created" if created else "updated",
                            occurred_at=dt.datetime.fromtimestamp(ms / 1000, dt.UTC),
                            raw={**row, MODIFIED: ms})

    # -- tokens ---------------------------------------------------------------------------
    def refresh_token(self, current: Token | None) -> Token:
        return self.client.mint_token()

    # -- Fxiaoke's data API ---------------------------------------------------------------
    @staticmethod
    def _path(obj: str, action: str) -> str:
        # Custom objects (API names ending in __c) live under a path of their own.
        prefix = "/cgi/crm/custom/v2/data" if obj.endswith("__c") else "/cgi/crm/v2/data"
        return f"{prefix}/{action}"

    def _query(self, obj: str, filters: list[dict[str, Any]], *, limit: int, offset: int = 0,
               orders: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        path = self._path(obj, "query")
        info: dict[str, Any] = {"limit": limit, "offset": offset, "filters": filters}
        if orders:
            info["orders"] = orders
        answer = self.client.call(path, {"data": {"dataObjectApiName": obj,
                                                  "search_query_info": info}},
                                  f"POST {path} ({obj})")
        data = expect(answer.get("data"), dict, f"POST {path} ({obj}) data")
        rows = expect(data.get("dataList"), list, f"POST {path} ({obj}) data.dataList")
        return [expect(r, dict, f"POST {path} ({obj}) data.dataList[]") for r in rows]

    def _by_id(self, obj: str, rid: str, kind: str) -> dict[str, Any]:
        # A query on _id rather than data/get: an empty list is an unambiguous "not found",
        # while data/get's not-found errorCode is not known.
        rows = self._query(obj, [_eq("_id", rid)], limit=1)
        if not rows:
            raise CRMNotFound(f"Fxiaoke has no {obj} record {rid!r} (deleted, or not visible "
                              "to the acting user)")
        return rows[0]

    def _write(self, action: str, obj: str, object_data: Mapping[str, Any]) -> dict[str, Any]:
        path = self._path(obj, action)
        return self.client.call(path, {"data": {"object_data": {
            "dataObjectApiName": obj, **object_data}}}, f"POST {path} ({obj})")

    def _create(self, obj: str, object_data: Mapping[str, Any], key_field: str,
                key: str) -> str:
        answer = self._write("create", obj, object_data)
        rid = answer.get("dataId")
        if isinstance(rid, str) and rid:
            return rid
        # Custom objects' create may not return the new id (third-party notes): find it.
        found = self._query(obj, [_eq(key_field, key)], limit=1)
        if not found:
            raise CRMBadResponse(f"POST {self._path(obj, 'create')} ({obj}) said success, but "
                                 f"no record with {key_field}={key!r} can be found")
        return _id_of(found[0], obj)

    def _ref(self, kind: str, obj: str, rid: str) -> CustomerRef:
        return CustomerRef(self.name, kind, rid, self._url(obj, rid))

    def _url(self, obj: str, rid: str) -> str | None:
        template: str = self.settings["record_url"]
        return template.format(object=obj, id=rid) if template else None


def _eq(field: str, value: str) -> dict[str, Any]:
    return {"field_name": field, "field_values": [value], "operator": "EQ"}


def _id_of(row: Mapping[str, Any], what: str) -> str:
    rid = row.get("_id")
    if not isinstance(rid, str) or not rid:
        raise CRMBadResponse(f"a {what} record without an _id: {str(dict(row))[:200]!r}")
    return rid


def _ms(row: Mapping[str, Any]) -> int:
    value = row.get(MODIFIED)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CRMBadResponse(f"a record without a {MODIFIED} in ms: {str(dict(row))[:200]!r}")
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, list):  # lookups and multi-selects come as lists
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in items if v not in (None, "")]


def _phone_forms(e164: str) -> list[str]:
    """The ways a CRM user may have typed the number: E.164, the national number without
    and with its trunk prefix (Chinese mobiles are usually stored as 11 digits, no +86;
    a Beijing landline as 010…)."""
    forms = [e164]
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return forms
    forms.append(phonenumbers.national_significant_number(number))
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms.append("".join(c for c in national if c.isdigit()))
    return list(dict.fromkeys(forms))


def _e164(value: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
