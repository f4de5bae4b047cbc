"""The fake HubSpot's HTTP side (see :mod:`caseloop_hubspot.fake`): routes, checks
and answers in HubSpot's shapes. Serves both the date-versioned paths
(/crm/objects/2026-03/...) and the legacy ones (/crm/v3/objects/..., v4
associations), since HubSpot's own SDK still calls the latter."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .api import NOTE_BODY_LIMIT, parse_time

if TYPE_CHECKING:
    from .fake import FakeHubSpot

WSGIApp = Callable[..., Iterable[bytes]]
PREFIX = r"/crm/(?:objects/(?P<ver>\d{4}-\d{2})|(?P<legacy>v3|v4)/objects)"
ROUTES = [
    ("POST", re.compile(PREFIX + r"/(?P<kind>contacts|tickets|notes)/search$"), "search"),
    ("GET", re.compile(PREFIX + r"/(?P<kind>contacts|tickets|notes)/(?P<id>\d+)$"), "get"),
    ("POST", re.compile(PREFIX + r"/tickets/batch/upsert$"), "upsert"),
    ("POST", re.compile(PREFIX + r"/notes$"), "create_note"),
    ("PUT", re.compile(PREFIX + r"/(?P<kind>tickets)/(?P<id>\d+)/associations/default/"
                                r"(?P<to>contacts)/(?P<to_id>\d+)$"), "associate"),
]
TICKET_PROPERTIES = {"subject", "content", "hs_pipeline", "hs_pipeline_stage",
                     "hs_ticket_priority", "hubspot_owner_id", "hs_ticket_category"}
NOTE_PROPERTIES = {"hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_attachment_ids"}
STAGES = {"0": {"1", "2", "3", "4"}}
PRIORITIES = {"LOW", "MEDIUM", "HIGH", "URGENT"}
#: Association type ids the fake knows: note→contact, note→ticket.
NOTE_ASSOCIATIONS = {202: "contacts", 228: "tickets"}
DATES = {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_timestamp"}


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers,
                    content_type="application/json;charset=utf-8")


def error(status: int, message: str, category: str, **extra: Any) -> Response:
    return reply(status, {"status": "error", "message": message,
                          "correlationId": str(uuid.uuid4()), "category": category, **extra})


def make_app(fake: FakeHubSpot) -> WSGIApp:
    """The WSGI app for ``fake``."""

    @Request.application
    def app(request: Request) -> Response:
        if request.path == "/oauth/v1/token":
            return token(fake, request)
        with fake.lock:
            fake.calls.append((request.method, request.path))
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not fake.token_valid(auth[7:]):
            return error(401, "Authentication credentials not found. This API supports OAuth "
                         "2.0 authentication and you can find more details at "
                         "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                         "INVALID_AUTHENTICATION")
        fault = fake.next_fault()
        if fault:
            return injected(fake, fault, auth[7:])
        for method, pattern, handler in ROUTES:
            match = pattern.match(request.path)
            if match and request.method == method:
                # Legacy HubSpot: objects under /crm/v3, default associations under /crm/v4.
                legacy = match.group("legacy")
                if legacy and legacy != ("v4" if handler == "associate" else "v3"):
                    break
                try:
                    return HANDLERS[handler](fake, request, match.groupdict())
                except BadInput as exc:
                    return error(400, str(exc), "VALIDATION_ERROR",
                                 errors=[{"message": str(exc), "code": exc.code,
                                          "context": {"propertyName": exc.properties}}])
        return error(404, f"Unable to route {request.method} {request.path}", "OBJECT_NOT_FOUND")

    return app


class BadInput(Exception):
    def __init__(self, message: str, code: str = "INVALID_INPUT",
                 properties: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.properties = properties or []


def token(fake: FakeHubSpot, request: Request) -> Response:
    if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded":
        return reply(400, {"status": "BAD_REQUEST", "message": "expected a form-encoded POST"})
    form = request.form
    if form.get("grant_type") != "refresh_token":
        return reply(400, {"status": "BAD_GRANT_TYPE", "message": "unsupported grant_type"})
    if form.get("client_id") != fake.client_id or form.get("client_secret") != fake.client_secret:
        return reply(400, {"status": "BAD_CLIENT_ID", "message": "missing or unknown client id"})
    if form.get("refresh_token") != fake.refresh_token:
        return reply(400, {"status": "BAD_REFRESH_TOKEN",
                           "message": "missing or unknown refresh token"})
    return reply(200, {"token_type": "bearer", "refresh_token": fake.refresh_token,
                       "access_token": fake.mint_token(), "expires_in": fake.token_ttl})


def injected(fake: FakeHubSpot, fault: str, presented: str) -> Response:
    if fault == "rate_limit":
        return error(429, "You have reached your ten_secondly_rolling limit.", "RATE_LIMITS",
                     errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING",
                     groupName=f"publicapi:app-id:{fake.app_id}:{fake.portal_id}")
    if fault == "rate_limit_daily":
        return error(429, "You have reached your daily limit.", "RATE_LIMITS",
                     errorType="RATE_LIMIT", policyName="DAILY",
                     groupName=f"publicapi:app-id:{fake.app_id}:{fake.portal_id}")
    if fault == "server_error":
        return error(502, "Bad gateway: the upstream service did not answer", "INTERNAL_ERROR")
    if fault == "garbage":
        return Response("<html><body><h1>Service hiccup</h1></body></html>", status=200,
                        content_type="text/html")
    if fault == "expired_token":
        with fake.lock:  # the presented token is really expired from now on
            fake.tokens.pop(presented, None)
        return error(401, "The OAuth token used to make this call expired 1 minute(s) ago.",
                     "EXPIRED_AUTHENTICATION", context={"expire time": ["1 minute(s) ago"]})
    if fault == "unauthorized":
        return error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
    if fault == "timeout":
        time.sleep(fake.timeout_sleep)
        return reply(200, {"total": 0, "results": []})
    if fault == "forbidden":
        return error(403, "This app hasn't been granted all required scopes to make this call.",
                     "MISSING_SCOPES", errors=[{"message": "missing scopes",
                                                "context": {"requiredScopes": ["tickets"]}}])
    if fault == "conflict":
        return error(409, "A ticket with this caseloop_id already exists.", "CONFLICT")
    return error(400, "Property values were not valid", "VALIDATION_ERROR",
                 errors=[{"message": "hs_pipeline_stage was not a valid stage",
                          "code": "INVALID_OPTION",
                          "context": {"propertyName": ["hs_pipeline_stage"]}}])


def body_of(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data())
    except ValueError:
        raise BadInput("Invalid input JSON on line 1") from None
    if not isinstance(body, dict):
        raise BadInput("Invalid input JSON: expected an object")
    return body


def _matches(props: dict[str, Any], f: dict[str, Any]) -> bool:
    name, op = f.get("propertyName"), f.get("operator")
    have = props.get(str(name))
    if op == "HAS_PROPERTY":
        return have not in (None, "")
    if have in (None, ""):
        return op in {"NEQ", "NOT_HAS_PROPERTY"}
    value = f.get("value")
    if name in DATES:
        left, right = parse_time(have), parse_time(value)
        if left is None or right is None:
            raise BadInput(f"{value!r} is not a valid date for {name}")
        a: Any = left.timestamp()
        b: Any = right.timestamp()
    elif name == "email":  # stored lowercased; search is case-insensitive
        a, b = str(have).lower(), str(value).lower()
    elif name in {"phone", "mobilephone"}:  # tokenised: formatting does not matter
        a, b = re.sub(r"\D", "", str(have)), re.sub(r"\D", "", str(value))
    else:
        a, b = str(have), str(value)
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda x, y: x == y, "NEQ": lambda x, y: x != y, "GT": lambda x, y: x > y,
        "GTE": lambda x, y: x >= y, "LT": lambda x, y: x < y, "LTE": lambda x, y: x <= y}
    if op not in ops:
        raise BadInput(f"unsupported operator {op!r}")
    return ops[str(op)](a, b)


def search(fake: FakeHubSpot, request: Request, m: dict[str, Any]) -> Response:
    body, kind = body_of(request), m["kind"]
    groups = body.get("filterGroups") or []
    if len(groups) > 5 or any(len(g.get("filters") or []) > 10 for g in groups) or sum(
            len(g.get("filters") or []) for g in groups) > 25:
        raise BadInput("too many filters: at most 5 groups, 10 filters each, 25 in all")
    limit = int(body.get("limit", 10))
    if not 0 < limit <= 200:
        raise BadInput("limit must be between 1 and 200")
    if len(body.get("sorts") or []) > 1:
        raise BadInput("only one sort is supported")
    with fake.lock:
        records = [r for r in fake.objects[kind].values()
                   if not groups or any(all(_matches(r["properties"], f) for f in g["filters"])
                                        for g in groups)]
    for sort in body.get("sorts") or []:
        records.sort(key=_sort_key(str(sort["propertyName"])),
                     reverse=sort.get("direction") == "DESCENDING")
    start = int(body.get("after") or 0)
    page = records[start:start + limit]
    wanted = body.get("properties") or ["hs_object_id", "createdate"]
    out: dict[str, Any] = {"total": len(records), "results": [_shape(r, wanted) for r in page]}
    if start + limit < len(records):
        out["paging"] = {"next": {"after": str(start + limit), "link": "?after="}}
    return reply(200, out)


def _sort_key(name: str) -> Callable[[dict[str, Any]], Any]:
    def key(record: dict[str, Any]) -> Any:
        value = record["properties"].get(name)
        if name in DATES:
            when = parse_time(value)
            return when.timestamp() if when else 0.0
        return str(value or "")
    return key


def _shape(record: dict[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
    props = record["properties"]
    keep = {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", *wanted}
    return {"id": record["id"], "properties": {k: props.get(k) for k in keep if k in props
                                               or k in wanted},
            "createdAt": record["createdAt"], "updatedAt": record["updatedAt"],
            "archived": record["archived"]}


def get(fake: FakeHubSpot, request: Request, m: dict[str, Any]) -> Response:
    with fake.lock:
        record = fake.objects[m["kind"]].get(m["id"])
    if record is None:
        return error(404, "resource not found", "OBJECT_NOT_FOUND")
    # HubSpot takes list parameters comma-separated or repeated (the SDK repeats them).
    wanted = [p for v in request.args.getlist("properties") for p in v.split(",") if p]
    out = _shape(record, wanted)
    assoc = [a for v in request.args.getlist("associations") for a in v.split(",") if a]
    linked = {a: {"results": [{"id": i, "type": f"{m['kind'][:-1]}_to_{a[:-1]}"}
                              for i in record["associations"].get(a, [])]}
              for a in assoc if record["associations"].get(a)}
    if linked:
        out["associations"] = linked
    return reply(200, out)


def _check_ticket(props: dict[str, Any], creating: bool) -> None:
    unknown = sorted(set(props) - TICKET_PROPERTIES)
    if unknown:
        raise BadInput(f"Property values were not valid: {unknown} do not exist",
                       "PROPERTY_DOESNT_EXIST", unknown)
    if creating and not props.get("subject"):
        raise BadInput("subject is required", "REQUIRED_FIELD", ["subject"])
    if creating and not props.get("hs_pipeline_stage"):
        raise BadInput("hs_pipeline_stage is required", "REQUIRED_FIELD", ["hs_pipeline_stage"])
    pipeline = str(props.get("hs_pipeline", "0"))
    if pipeline not in STAGES:
        raise BadInput(f"{pipeline} is not a valid pipeline", "INVALID_OPTION", ["hs_pipeline"])
    if "hs_pipeline_stage" in props and props["hs_pipeline_stage"] not in STAGES[pipeline]:
        raise BadInput(f"{props['hs_pipeline_stage']} was not a valid stage of pipeline "
                       f"{pipeline}", "INVALID_OPTION", ["hs_pipeline_stage"])
    if "hs_ticket_priority" in props and props["hs_ticket_priority"] not in PRIORITIES:
        raise BadInput(f"{props['hs_ticket_priority']} was not one of the allowed options",
                       "INVALID_OPTION", ["hs_ticket_priority"])


def upsert(fake: FakeHubSpot, request: Request, m: dict[str, Any]) -> Response:
    inputs = body_of(request).get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadInput("inputs must be a non-empty array")
    results = []
    unique = fake.case_id_property
    with fake.lock:
        for item in inputs:
            if item.get("idProperty") != unique:
                raise BadInput(f"{item.get('idProperty')!r} is not a unique-value property of "
                               "tickets", "INVALID_ID_PROPERTY")
            if not item.get("id"):
                raise BadInput("id (the unique value) is required")
            props = {str(k): str(v) for k, v in (item.get("properties") or {}).items()}
            existing = next((r for r in fake.objects["tickets"].values()
                             if r["properties"].get(unique) == str(item["id"])), None)
            _check_ticket(props, creating=existing is None)
            if existing is None:
                record = fake.create("tickets", {"hs_pipeline": "0", **props,
                                                 unique: str(item["id"])})
            else:
                fake.modify("tickets", existing, props)
                record = existing
            results.append({**_shape(record, [*props, unique]), "new": existing is None})
    now = fake.stamp()
    return reply(200, {"status": "COMPLETE", "results": results, "startedAt": now,
                       "completedAt": now})


def create_note(fake: FakeHubSpot, request: Request, m: dict[str, Any]) -> Response:
    body = body_of(request)
    props = {str(k): str(v) for k, v in (body.get("properties") or {}).items()}
    unknown = sorted(set(props) - NOTE_PROPERTIES - {fake.activity_id_property})
    if unknown:
        raise BadInput(f"Property values were not valid: {unknown} do not exist",
                       "PROPERTY_DOESNT_EXIST", unknown)
    if not props.get("hs_timestamp") or parse_time(props["hs_timestamp"]) is None:
        raise BadInput("hs_timestamp is required (a datetime)", "REQUIRED_FIELD",
                       ["hs_timestamp"])
    if len(props.get("hs_note_body", "")) > NOTE_BODY_LIMIT:
        raise BadInput("hs_note_body is longer than 65536 characters", "INVALID_LENGTH",
                       ["hs_note_body"])
    links = []
    with fake.lock:
        for assoc in body.get("associations") or []:
            to_id = str((assoc.get("to") or {}).get("id"))
            for t in assoc.get("types") or []:
                kind = NOTE_ASSOCIATIONS.get(t.get("associationTypeId"))
                if t.get("associationCategory") != "HUBSPOT_DEFINED" or kind is None:
                    raise BadInput(f"unknown association type {t!r}", "INVALID_ASSOCIATION")
                if to_id not in fake.objects[kind]:
                    raise BadInput(f"no {kind[:-1]} {to_id} to associate", "INVALID_ASSOCIATION")
                links.append((kind, to_id))
        record = fake.create("notes", props, iter(links))
    return reply(201, _shape(record, props))


def associate(fake: FakeHubSpot, request: Request, m: dict[str, Any]) -> Response:
    with fake.lock:
        ticket = fake.objects["tickets"].get(m["id"])
        if ticket is None or m["to_id"] not in fake.objects["contacts"]:
            return error(404, "one of the records does not exist", "OBJECT_NOT_FOUND")
        linked = ticket["associations"].setdefault("contacts", [])
        if m["to_id"] not in linked:
            linked.append(m["to_id"])
    now = fake.stamp()
    return reply(200, {"status": "COMPLETE", "startedAt": now, "completedAt": now, "results": [
        {"from": {"id": m["id"]}, "to": {"id": m["to_id"]},
         "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}}
    ]})


HANDLERS: dict[str, Callable[[FakeHubSpot, Request, dict[str, Any]], Response]] = {
    "search": search, "get": get, "upsert": upsert, "create_note": create_note,
    "associate": associate}
