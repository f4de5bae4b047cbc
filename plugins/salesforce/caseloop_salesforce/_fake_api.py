"""The fake org's REST resources: parameterizedSearch, query, sObject rows
(by id and by external id) and creates. Called with the fake's lock held and
the session already checked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from ._fake_query import sosl_term

if TYPE_CHECKING:
    from .fake import FakeSalesforce

FIELDS: dict[str, frozenset[str]] = {
    "Contact": frozenset({"Id", "FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone",
                          "HomePhone", "OtherPhone", "AccountId", "MailingCountryCode", "Title",
                          "LeadSource", "CreatedDate", "LastModifiedDate", "SystemModstamp",
                          "IsDeleted"}),
    "Account": frozenset({"Id", "Name", "Type", "Rating", "Industry", "CreatedDate",
                          "LastModifiedDate", "SystemModstamp", "IsDeleted"}),
    "Case": frozenset({"Id", "CaseNumber", "Subject", "Description", "Status", "Priority",
                       "Origin", "Type", "Reason", "ContactId", "AccountId", "IsClosed",
                       "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted"}),
    "CaseComment": frozenset({"Id", "ParentId", "CommentBody", "IsPublished", "CreatedDate",
                              "SystemModstamp", "IsDeleted"}),
}
CASE_WRITABLE = frozenset({"Subject", "Description", "Status", "Priority", "Origin", "Type",
                           "Reason", "ContactId", "AccountId"})
PICKLISTS = {"Status": {"New", "Working", "Escalated", "Closed"},
             "Priority": {"High", "Medium", "Low"}, "Origin": {"Phone", "Email", "Web"}}
_SCOPES = {"ALL", "NAME", "EMAIL", "PHONE", "SIDEBAR"}
_PHONES = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json;charset=UTF-8")


def _error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    return _json([{"message": message, "errorCode": code, "fields": fields or []}], status)


def _not_found() -> Response:
    return _error(404, "NOT_FOUND", "The requested resource does not exist")


def handle(fake: FakeSalesforce, request: Request, endpoint: str, version: float,
           **args: str) -> Response:
    base = f"/services/data/v{version:.1f}"
    if endpoint == "search":
        return _search(fake, request, base)
    if endpoint == "query":
        query, rows = fake.select(request.args.get("q", ""))
        records = [_shape(base, query.sobject, r, query.fields) for r in rows]
        return _json({"totalSize": len(records), "done": True, "records": records})
    sobject = args["sobject"]
    if sobject not in fake.records:
        return _not_found()
    if endpoint == "create":
        return _create(fake, request, sobject)
    if endpoint == "get":
        record = fake.records[sobject].get(args["rid"])
        return _read(request, base, sobject, record)
    # by external id
    if sobject != "Case" or args["field"] != fake.external_id_field:
        return _error(404, "NOT_FOUND", "Provided external ID field does not exist or is not "
                      f"accessible: {args['field']}")
    matches = [r for r in fake.records["Case"].values()
               if r.get(fake.external_id_field) == args["value"]]
    if len(matches) > 1:
        return _json([f"{base}/sobjects/Case/{r['Id']}" for r in matches], 300)
    if request.method == "GET":
        return _read(request, base, sobject, matches[0] if matches else None)
    return _upsert(fake, request, args["value"], matches[0] if matches else None, version)


def _shape(base: str, sobject: str, record: Mapping[str, Any],
           fields: tuple[str, ...] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": sobject,
                                          "url": f"{base}/sobjects/{sobject}/{record['Id']}"}}
    for name in fields or sorted(record):
        out[name] = record.get(name)
    return out


def _read(request: Request, base: str, sobject: str,
          record: Mapping[str, Any] | None) -> Response:
    if record is None:
        return _not_found()
    wanted = tuple(f for f in request.args.get("fields", "").split(",") if f)
    known = set(record) | {"Id"}
    for name in wanted:
        if name not in known:
            return _error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type "
                          f"{sobject}", [name])
    return _json(_shape(base, sobject, record, wanted or None))


def _search(fake: FakeSalesforce, request: Request, base: str) -> Response:
    args = request.args
    term = sosl_term(args.get("q", ""))
    if args.get("sobject") != "Contact":
        return _error(400, "INVALID_SEARCH", "the fake searches Contacts only")
    scope = args.get("in", "ALL")
    if scope not in _SCOPES:
        return _error(400, "INVALID_SEARCH", f"invalid 'in' value: {scope}")
    fields = tuple(f for f in args.get("Contact.fields", "Id").split(",") if f)
    for name in fields:
        if name not in FIELDS["Contact"]:
            return _error(400, "INVALID_FIELD", f"No such column '{name}' on entity 'Contact'",
                          [name])
    limit = int(args.get("Contact.limit", "2000"))
    digits = "".join(ch for ch in term if ch.isdigit())
    hits = []
    for rec in fake.records["Contact"].values():
        by_email = scope in ("ALL", "EMAIL") and str(rec.get("Email") or "").casefold() \
            == term.casefold()
        # Phone search ignores formatting: the digits, allowing a missing country code.
        by_phone = scope in ("ALL", "PHONE") and len(digits) >= 6 and any(
            "".join(ch for ch in str(rec.get(f) or "") if ch.isdigit()).endswith(digits)
            for f in _PHONES if rec.get(f))
        if by_email or by_phone:
            hits.append(_shape(base, "Contact", rec, fields))
    return _json({"searchRecords": hits[:limit]})


def _body(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(request.get_data())
    except ValueError:
        return _error(400, "JSON_PARSER_ERROR", "Unexpected character: the body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "JSON_PARSER_ERROR", "Can not deserialize SObject out of "
                      f"{type(body).__name__} token")
    return body


def _create(fake: FakeSalesforce, request: Request, sobject: str) -> Response:
    body = _body(request)
    if isinstance(body, Response):
        return body
    if sobject != "CaseComment":
        return _error(400, "INVALID_TYPE", f"the fake creates only CaseComments, not {sobject}")
    for name in body:
        if name not in ("ParentId", "CommentBody", "IsPublished"):
            return _error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type "
                          "CaseComment", [name])
    if not body.get("ParentId"):
        return _error(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [ParentId]",
                      ["ParentId"])
    if body["ParentId"] not in fake.records["Case"]:
        return _error(400, "FIELD_INTEGRITY_EXCEPTION", "Parent ID: id value of incorrect "
                      f"type: {body['ParentId']}", ["ParentId"])
    if len(str(body.get("CommentBody") or "")) > 4000:
        return _error(400, "STRING_TOO_LONG", "Body: data value too large", ["CommentBody"])
    rid = fake._insert("CaseComment", {"IsPublished": False, **body})
    return _json({"id": rid, "success": True, "errors": []}, 201)


def _upsert(fake: FakeSalesforce, request: Request, key: str,
            existing: dict[str, Any] | None, version: float) -> Response:
    body = _body(request)
    if isinstance(body, Response):
        return body
    for name in body:
        if name not in CASE_WRITABLE | fake.case_fields:
            return _error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type "
                          "Case", [name])
    for name, allowed in PICKLISTS.items():
        if name in body and body[name] not in allowed:
            return _error(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                          f"{name}: bad value for restricted picklist field: {body[name]}",
                          [name])
    if len(str(body.get("Subject") or "")) > 255:
        return _error(400, "STRING_TOO_LONG", "Subject: data value too large", ["Subject"])
    for lookup, sobject in (("ContactId", "Contact"), ("AccountId", "Account")):
        if body.get(lookup) and body[lookup] not in fake.records[sobject]:
            return _error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                          [lookup])
    merged = {**(existing or {}), **body}
    for name, message in fake.rules:
        if not merged.get(name):
            return _error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [name])
    created = existing is None
    if existing is None:
        number = f"{len(fake.records['Case']) + 1001:08d}"
        rid = fake._insert("Case", {"Status": "New", "CaseNumber": number, **body,
                                    fake.external_id_field: key})
        record = fake.records["Case"][rid]
    else:
        record = existing
        stamp = fake._now()
        record.update(body, LastModifiedDate=stamp, SystemModstamp=stamp)
    record["IsClosed"] = record.get("Status") == "Closed"
    if version < 46.0:  # the "created" flag and the 200 on update came with v46.0
        return _json({"id": record["Id"], "success": True, "errors": []}, 201) if created \
            else Response(status=204)
    return _json({"id": record["Id"], "success": True, "errors": [], "created": created},
                 201 if created else 200)
