"""The fake Zoho's HTTP side: Accounts token endpoint and the /crm/{version}/ API subset."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from .fake import FakeZoho

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
MODULES = ("Contacts", "Cases", "Leads", "Accounts", "Deals")
CASE_FIELDS = {"Subject", "Status", "Priority", "Case_Origin", "Description", "Type",
               "Case_Reason", "Related_To", "Account_Name", "Deal_Name", "Email", "Phone",
               "Reported_By", "Internal_Comments", "Solution", "Product_Name"}
WATCH_OPS = ("all", "create", "edit", "delete")
ZOHO_USER = {"name": "Patricia Boyle", "id": "4876876000000327001"}


def make_app(fake: FakeZoho) -> WSGIApp:
    @Request.application
    def app(request: Request) -> Response:
        if request.path == "/oauth/v2/token" and request.method == "POST":
            return token(fake, request)
        parts = request.path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "crm":
            return error(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access "
                         "is a correct one")
        fake.calls.append((request.method, request.path, request.query_string.decode(),
                           request.headers.get("If-Modified-Since")))
        fault = fake.next_fault()
        if fault == "timeout":
            time.sleep(1.5)  # past the 1 s read timeout the contract tests give the client
        elif fault is not None:
            return faulty(fault)
        if parts[1] != fake.api_version:
            return error(404, "INVALID_URL_PATTERN", f"API version {parts[1]} is not served")
        refused = authenticate(fake, request)
        if refused is not None:
            return refused
        with fake.lock:
            return route(fake, request, parts[2:])

    return app


def route(fake: FakeZoho, request: Request, path: list[str]) -> Response:
    from . import _fake_records as records

    method, head = request.method, path[0]
    if head == "actions" and path[1:] == ["watch"] and method in ("POST", "PUT"):
        return records.watch(fake, request)
    if head not in MODULES and head != "Notes":
        return error(400, "INVALID_MODULE", "the module name given seems to be invalid",
                     {"resource_path_index": 0})
    if path[1:] == ["search"] and method == "GET":
        return records.search(fake, request, head)
    if head == "Cases" and path[1:] == ["upsert"] and method == "POST":
        return records.upsert_cases(fake, request)
    if head == "Notes" and len(path) == 1 and method == "POST":
        return records.create_notes(fake, request)
    if len(path) == 3 and path[2] == "Notes" and method == "GET":
        return records.related_notes(fake, request, head, path[1])
    if len(path) == 2 and method == "GET":
        record = fake.records.get(head, {}).get(path[1])
        return Response(status=204) if record is None else ok({"data": [record]})
    if len(path) == 1 and method == "GET":
        return records.list_records(fake, request, head)
    return error(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a "
                 "correct one")


def token(fake: FakeZoho, request: Request) -> Response:
    """POST /oauth/v2/token?grant_type=refresh_token&client_id&client_secret&refresh_token.
    Zoho answers refusals with HTTP 200 and an ``error`` key."""
    args = {**request.form.to_dict(), **request.args.to_dict()}
    if args.get("grant_type") != "refresh_token":
        return ok({"error": "unsupported_grant_type"})
    if args.get("client_id") != fake.client_id or args.get("client_secret") != fake.client_secret:
        return ok({"error": "invalid_client"})
    if args.get("refresh_token") != fake.refresh_token:
        return ok({"error": "invalid_code"})
    with fake.lock:
        now = dt.datetime.now(dt.UTC)
        while fake.mints and now - fake.mints[0] > dt.timedelta(minutes=10):
            fake.mints.popleft()
        if len(fake.mints) >= fake.mint_limit:
            return ok({"error_description": "You have made too many requests continuously. "
                       "Please try again after some time.", "error": "Access Denied",
                       "status": "failure"})
        fake.mints.append(now)
        fake.token_refreshes += 1
        access = fake.new_token()
        fake.access_tokens[access] = now + dt.timedelta(seconds=fake.token_lifetime)
        while len(fake.access_tokens) > 15:  # the 16th token invalidates the oldest
            del fake.access_tokens[next(iter(fake.access_tokens))]
    return ok({"access_token": access, "scope": "ZohoCRM.modules.ALL ZohoCRM.notifications.ALL",
               "api_domain": fake.url, "token_type": "Bearer", "expires_in": fake.token_lifetime})


def authenticate(fake: FakeZoho, request: Request) -> Response | None:
    header = request.headers.get("Authorization", "")
    scheme, _, access = header.partition(" ")
    if scheme != "Zoho-oauthtoken" or not access:
        return error(401, "AUTHENTICATION_FAILURE", "Authentication failed")
    with fake.lock:
        expiry = fake.access_tokens.get(access)
    if expiry is None or expiry <= dt.datetime.now(dt.UTC):
        return error(401, "INVALID_TOKEN", "invalid oauth token")
    return None


def faulty(fault: str | tuple[int, Any, Mapping[str, str]]) -> Response:
    if isinstance(fault, tuple):
        status, body, headers = fault
        content = b"" if body is None else json.dumps(body).encode()
        return Response(content, status, headers=dict(headers),
                        content_type="application/json" if content else None)
    if fault == "rate_limit":
        return error(429, "RATE_LIMIT_EXCEEDED", "Too many requests. Please try again later.")
    if fault == "server_error":
        return error(500, "INTERNAL_ERROR", "Internal Server Error")
    if fault == "expired_token":
        return error(401, "INVALID_TOKEN", "invalid oauth token")
    return Response("<html><body><h1>Zoho CRM is under maintenance</h1></body></html>", 200,
                    content_type="text/html")  # garbage


def ok(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def error(status: int, code: str, message: str, details: Mapping[str, Any] | None = None
          ) -> Response:
    return ok({"code": code, "details": dict(details or {}), "message": message,
               "status": "error"}, status)


def record_error(code: str, message: str, details: Mapping[str, Any]) -> dict[str, Any]:
    return {"code": code, "details": dict(details), "message": message, "status": "error"}


def batch(items: list[dict[str, Any]], success: int) -> Response:
    """Zoho's batch-write answer: all good, all failed (400) or mixed (207)."""
    failed = sum(1 for i in items if i["status"] == "error")
    status = success if not failed else 400 if failed == len(items) else 207
    return ok({"data": items}, status)


def written(record: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"code": "SUCCESS", **extra, "details": {
        "Modified_Time": record["Modified_Time"], "Modified_By": ZOHO_USER,
        "Created_Time": record["Created_Time"], "id": record["id"], "Created_By": ZOHO_USER},
        "status": "success"}
