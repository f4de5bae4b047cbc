"""The fake Zoho's record endpoints (called with the fake's lock held)."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from ._fake_api import (
    CASE_FIELDS,
    MODULES,
    WATCH_OPS,
    batch,
    error,
    ok,
    record_error,
    written,
)

if TYPE_CHECKING:
    from .fake import FakeZoho

MAX_CHANNEL_LIFE = dt.timedelta(days=1)
DEFAULT_CHANNEL_LIFE = dt.timedelta(hours=1)


def search(fake: FakeZoho, request: Request, module: str) -> Response:
    """GET /{module}/search?email= | phone= | word= | criteria=; 204 when nothing matches."""
    args = request.args
    keys = [k for k in ("criteria", "email", "phone", "word") if args.get(k)]
    if not keys:
        return error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                     {"param": "criteria"})
    per_page = _int(args.get("per_page"), 200)
    if not 1 <= per_page <= 200:
        return error(400, "INVALID_DATA", "invalid data", {"param": "per_page"})
    if "criteria" in keys or "word" in keys:
        return error(400, "INVALID_QUERY", "this fake only searches by email or phone")
    matches = []
    for record in fake.iter_module(module):
        if "email" in keys:
            wanted = args["email"].casefold()
            if not any(str(record.get(f, "")).casefold() == wanted
                       for f in ("Email", "Secondary_Email")):
                continue
        if "phone" in keys:
            wanted = _squeeze(args["phone"])
            if not any(_squeeze(str(record.get(f) or "")) == wanted
                       for f in ("Phone", "Mobile")):
                continue
        matches.append(record)
    if not matches:
        return Response(status=204)
    page = matches[:per_page]
    return ok({"data": page, "info": {"per_page": per_page, "count": len(page), "page": 1,
                                      "more_records": len(matches) > per_page}})


def upsert_cases(fake: FakeZoho, request: Request) -> Response:
    """POST /Cases/upsert {data: [...], duplicate_check_fields: [...]}."""
    body = _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list) or not body["data"]:
        return error(400, "INVALID_DATA", "invalid data", {"api_name": "data"})
    checks = body.get("duplicate_check_fields") or []
    if any(f != fake.case_id_field for f in checks):
        return error(400, "INVALID_DATA", "the given field is not a unique field",
                     {"api_name": "duplicate_check_fields"})
    items = []
    for index, record in enumerate(body["data"]):
        items.append(_upsert_case(fake, record, index, checks))
    return batch(items, 200)


def _upsert_case(fake: FakeZoho, record: Any, index: int, checks: list[str]) -> dict[str, Any]:
    path = f"$.data[{index}]"
    if not isinstance(record, dict):
        return record_error("INVALID_DATA", "invalid data", {"json_path": path})
    for key, value in record.items():
        if key not in CASE_FIELDS and key != fake.case_id_field:
            return record_error("INVALID_DATA", "invalid field",
                                {"api_name": key, "json_path": f"{path}.{key}"})
        if key == "Related_To":
            contact = fake.records["Contacts"].get(str(value.get("id"))
                                                   if isinstance(value, dict) else "")
            if contact is None:
                return record_error("INVALID_DATA", "the related id given seems to be invalid",
                                    {"api_name": key, "json_path": f"{path}.{key}"})
            record = {**record, key: {"name": contact.get("Full_Name"), "id": contact["id"]}}
    existing = next((r for r in fake.iter_module("Cases")
                     if checks and all(r.get(f) == record.get(f) for f in checks)), None)
    if existing is not None:
        if existing["id"] in fake.locked:
            return record_error("RECORD_LOCKED", "cannot update a locked record",
                                {"id": existing["id"]})
        existing.update(record, Modified_Time=fake.now_text())
        return written(existing, duplicate_field=checks[0], action="update",
                       message="record updated")
    if not record.get("Subject"):
        return record_error("MANDATORY_NOT_FOUND", "required field not found",
                            {"api_name": "Subject", "json_path": f"{path}.Subject"})
    if record.get(fake.case_id_field) is not None and any(
            r.get(fake.case_id_field) == record[fake.case_id_field]
            for r in fake.iter_module("Cases")):
        return record_error("DUPLICATE_DATA", "duplicate data",
                            {"api_name": fake.case_id_field})
    created = fake.records["Cases"][fake.create("Cases", record)]
    return written(created, duplicate_field=None, action="insert", message="record added")


def create_notes(fake: FakeZoho, request: Request) -> Response:
    """POST /Notes {data: [{Note_Title, Note_Content, Parent_Id: {module: {api_name}, id}}]}."""
    body = _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list) or not body["data"]:
        return error(400, "INVALID_DATA", "invalid data", {"api_name": "data"})
    items = []
    for index, note in enumerate(body["data"]):
        path = f"$.data[{index}]"
        parent = note.get("Parent_Id") if isinstance(note, dict) else None
        if not isinstance(note, dict) or not note.get("Note_Content"):
            items.append(record_error("MANDATORY_NOT_FOUND", "required field not found",
                                      {"api_name": "Note_Content",
                                       "json_path": f"{path}.Note_Content"}))
            continue
        module_info = parent.get("module") if isinstance(parent, dict) else None
        module = (module_info.get("api_name") if isinstance(module_info, dict)
                  else note.get("se_module"))  # se_module: the pre-v4 way
        target = fake.records.get(str(module), {}).get(
            str(parent.get("id")) if isinstance(parent, dict) else "")
        if target is None:
            items.append(record_error("INVALID_DATA", "the related id given seems to be invalid",
                                      {"api_name": "Parent_Id", "json_path": f"{path}.Parent_Id"}))
            continue
        note_id = fake.create("Notes", {
            "Note_Title": note.get("Note_Title"), "Note_Content": note["Note_Content"],
            "Parent_Id": {"module": {"api_name": module, "id": "4876876000000002179"},
                          "name": target.get("Full_Name") or target.get("Subject"),
                          "id": target["id"]}})
        items.append(written(fake.records["Notes"][note_id], message="record added"))
    return batch(items, 201)


def related_notes(fake: FakeZoho, request: Request, module: str, parent_id: str) -> Response:
    """GET /{module}/{id}/Notes?fields=...; v8 wants ``fields``."""
    if parent_id not in fake.records.get(module, {}):
        return error(400, "INVALID_DATA", "the related id given seems to be invalid",
                     {"resource_path_index": 1})
    notes = [n for n in fake.iter_module("Notes") if n["Parent_Id"]["id"] == parent_id]
    return _listing(request, notes, None)


def list_records(fake: FakeZoho, request: Request, module: str) -> Response:
    """GET /{module}?fields=...&sort_by&sort_order&page&per_page, If-Modified-Since: the
    records modified after that time (304 when none)."""
    since_text = request.headers.get("If-Modified-Since")
    records = list(fake.iter_module(module))
    since = None
    if since_text:
        try:
            since = dt.datetime.fromisoformat(since_text)
        except ValueError:
            return error(400, "INVALID_DATA", "invalid data", {"header": "If-Modified-Since"})
        if since.tzinfo is None:
            return error(400, "INVALID_DATA", "the time needs an offset",
                         {"header": "If-Modified-Since"})
        records = [r for r in records if dt.datetime.fromisoformat(r["Modified_Time"]) > since]
    return _listing(request, records, since)


def _listing(request: Request, records: list[dict[str, Any]], since: dt.datetime | None
             ) -> Response:
    args = request.args
    if not args.get("fields"):
        return error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                     {"param": "fields"})
    sort_by, order = args.get("sort_by", "id"), args.get("sort_order", "desc")
    if sort_by not in ("id", "Created_Time", "Modified_Time") or order not in ("asc", "desc"):
        return error(400, "INVALID_DATA", "invalid data", {"param": "sort_by"})
    page, per_page = _int(args.get("page"), 1), _int(args.get("per_page"), 200)
    if page < 1 or not 1 <= per_page <= 200:
        return error(400, "INVALID_DATA", "invalid data", {"param": "per_page"})
    key = (lambda r: dt.datetime.fromisoformat(r[sort_by])) if sort_by != "id" else (
        lambda r: int(r["id"]))
    records.sort(key=key, reverse=order == "desc")
    chosen = records[(page - 1) * per_page: page * per_page]
    if not chosen:
        return Response(status=304 if since is not None else 204)
    fields = [f for f in args["fields"].split(",") if f]
    data = [{"id": r["id"], **{f: r.get(f) for f in fields}} for r in chosen]
    return ok({"data": data, "info": {
        "per_page": per_page, "count": len(data), "page": page, "sort_by": sort_by,
        "sort_order": order, "more_records": len(records) > page * per_page}})


def watch(fake: FakeZoho, request: Request) -> Response:
    """POST (enable) or PUT (replace) /actions/watch {watch: [{channel_id, events,
    notify_url, token, channel_expiry, ...}]}. An expiry missing or more than a day away
    becomes one hour, as Zoho documents."""
    body = _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("watch"), list):
        return error(400, "INVALID_DATA", "invalid data", {"api_name": "watch"})
    items = []
    for spec in body["watch"]:
        item = _arm(fake, spec, replace=request.method == "PUT")
        items.append(item)
    failed = any(i["status"] == "error" for i in items)
    return ok({"watch": items}, 400 if failed else 200 if request.method == "PUT" else 201)


def _arm(fake: FakeZoho, spec: Any, *, replace: bool) -> dict[str, Any]:
    if not isinstance(spec, dict):
        return record_error("INVALID_DATA", "invalid data", {"api_name": "watch"})
    for name in ("channel_id", "events", "notify_url"):
        if not spec.get(name):
            return record_error("MANDATORY_NOT_FOUND", "required field not found",
                                {"api_name": name})
    channel = str(spec["channel_id"])
    if not channel.isdigit():
        return record_error("INVALID_DATA", "invalid data", {"api_name": "channel_id"})
    if replace and channel not in fake.watches:
        return record_error("INVALID_DATA", "no such channel", {"api_name": "channel_id"})
    events = spec["events"]
    for event in events if isinstance(events, list) else [events]:
        module, _, op = str(event).partition(".")
        if module not in MODULES or op not in WATCH_OPS:
            return record_error("INVALID_DATA", "invalid event", {"api_name": "events"})
    token = spec.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > 50):
        return record_error("INVALID_DATA", "token may have at most 50 characters",
                            {"api_name": "token"})
    now = fake.now()
    expiry = now + DEFAULT_CHANNEL_LIFE
    if spec.get("channel_expiry"):
        try:
            asked = dt.datetime.fromisoformat(str(spec["channel_expiry"]))
        except ValueError:
            return record_error("INVALID_DATA", "invalid data", {"api_name": "channel_expiry"})
        if asked.tzinfo is None or asked <= now:
            return record_error("INVALID_DATA", "invalid data", {"api_name": "channel_expiry"})
        if asked - now <= MAX_CHANNEL_LIFE:
            expiry = asked
    fake.watches[channel] = {"channel_id": channel, "events": list(events),
                             "notify_url": spec["notify_url"], "token": token,
                             "channel_expiry": expiry}
    return {"code": "SUCCESS", "details": {"events": [
        {"channel_expiry": expiry.isoformat(),
         "resource_uri": f"{fake.url}/crm/{fake.api_version}/{str(e).split('.')[0]}",
         "resource_id": "4876876000000002175", "resource_name": str(e).split(".")[0],
         "channel_id": channel} for e in events]},
        "message": "Successfully subscribed for actions-watch of the given module",
        "status": "success"}


def _json(request: Request) -> Any:
    # Zoho reads the body as JSON whatever the Content-Type (its own SDK sends none).
    try:
        return json.loads(request.get_data())
    except ValueError:
        return None


def _squeeze(phone: str) -> str:
    return "".join(c for c in phone if c not in " -().")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return -1

