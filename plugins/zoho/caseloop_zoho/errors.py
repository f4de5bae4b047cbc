"""Zoho's answers turned into Caseloop's error hierarchy.

Zoho's error body is ``{"code", "details", "message", "status": "error"}``, at the top
level or per record inside ``data[]`` (batch writes; HTTP 400 when every record
failed, 207 when some did). The token endpoint answers ``{"error": ...}``, often
with HTTP 200.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import httpx

from caseloop.crm import (
    CRMAuthError,
    CRMBadResponse,
    CRMConflict,
    CRMError,
    CRMNotFound,
    CRMPermissionError,
    CRMRateLimited,
    CRMValidationError,
)
from caseloop.crm.errors import excerpt
from caseloop.crm.http import retry_after, server_error

#: 401 codes meaning "this access token is no good, mint another".
EXPIRED_CODES = frozenset({"INVALID_TOKEN", "INVALID_OAUTHTOKEN"})
PERMISSION_CODES = frozenset({"OAUTH_SCOPE_MISMATCH", "NO_PERMISSION", "FEATURE_NOT_SUPPORTED",
                              "FEATURE_NOT_ENABLED", "LICENSE_LIMIT_EXCEEDED"})
CONFLICT_CODES = frozenset({"DUPLICATE_DATA", "RECORD_LOCKED", "CANNOT_PERFORM_ACTION"})
RATE_CODES = frozenset({"LIMIT_EXCEEDED", "RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"})


def error_item(body: Any) -> Mapping[str, Any] | None:
    """The ``{code, message, details}`` of a Zoho error body, top-level or the first
    failed record of ``data[]``; None when the body has neither."""
    if not isinstance(body, Mapping):
        return None
    if isinstance(body.get("code"), str):
        return body
    for item in body.get("data") or body.get("watch") or ():
        if isinstance(item, Mapping) and item.get("status") == "error":
            return item
    return None


def is_expired(response: httpx.Response) -> bool:
    """Whether the CRM refused the access token itself (refresh once and repeat)."""
    if response.status_code != 401:
        return False
    item = error_item(_json(response))
    # A 401 without Zoho's body (a proxy, an old API) is treated as an expired token too.
    return item is None or item.get("code") in EXPIRED_CODES


def raise_for(response: httpx.Response, what: str) -> None:
    """Raise the error a non-2xx answer means; return for 2xx."""
    status = response.status_code
    if 200 <= status < 300 or status == 304:
        return
    body = _json(response)
    item = error_item(body)
    if status == 429 or (item is not None and item.get("code") in RATE_CODES):
        raise rate_limited(response, item, what)
    if status >= 500:
        raise server_error(response, what)
    if item is None:
        if status == 404:
            raise CRMNotFound(f"{what}: the CRM answered 404 {excerpt(response.content)!r}")
        raise CRMBadResponse(f"{what}: the CRM answered {status} with a body that is not "
                             f"Zoho's error shape: {excerpt(response.content)!r}")
    raise record_error(item, what, status=status)


def record_error(item: Mapping[str, Any], what: str, *, status: int | None = None) -> CRMError:
    """The error for one ``{code, details, message, status: "error"}`` item."""
    code = str(item.get("code", "?"))
    details = item.get("details") if isinstance(item.get("details"), Mapping) else {}
    assert isinstance(details, Mapping)
    said = f"{code}: {item.get('message', '')}".rstrip(": ")
    if details:
        said += f" {json.dumps(details, default=str, sort_keys=True)}"
    if code in EXPIRED_CODES or code == "AUTHENTICATION_FAILURE":
        return CRMAuthError(f"{what}: Zoho refused the credentials ({said}); re-authorise the "
                            "connection (a new refresh token) in CASELOOP_CRM")
    if code in PERMISSION_CODES:
        return CRMPermissionError(f"{what}: Zoho says {said}; give the connection's user or "
                                  "client the missing scope/permission (ZohoCRM.modules.ALL, "
                                  "ZohoCRM.notifications.ALL, ZohoCRM.settings.fields.READ)")
    if code in RATE_CODES:
        return CRMRateLimited(f"{what}: Zoho says {said}", scope="daily")
    if code in CONFLICT_CODES:
        return CRMConflict(f"{what}: Zoho refused it ({said}); look at the record in Zoho")
    if status == 404 or code == "INVALID_URL_PATTERN":
        return CRMNotFound(f"{what}: Zoho says {said}")
    field_name = details.get("api_name") or details.get("param")
    field_errors = {str(field_name): str(item.get("message", code))} if field_name else {}
    return CRMValidationError(f"{what}: Zoho rejected the data ({said}); check the field "
                              "mapping in the connector settings", field_errors=field_errors)


def rate_limited(response: httpx.Response, item: Mapping[str, Any] | None, what: str,
                 *, now: dt.datetime | None = None) -> CRMRateLimited:
    """A 429 / LIMIT_EXCEEDED. ``X-RATELIMIT-RESET`` is read first (reported by third
    parties, unverified: taken as epoch seconds or milliseconds when large, else as
    seconds to wait), then Retry-After."""
    code = str(item.get("code")) if item else None
    wait = _reset_seconds(response.headers.get("X-RATELIMIT-RESET"), now)
    if wait is None:
        wait = retry_after(response, now=now)
    # LIMIT_EXCEEDED is the day's API credits; 429 alone is the concurrency limit.
    scope = "daily" if code == "LIMIT_EXCEEDED" else "burst"
    said = f"{response.status_code} {code or ''} {item.get('message', '') if item else ''}"
    when = f"in {wait:.0f} s" if wait is not None else "later"
    return CRMRateLimited(f"{what}: Zoho is throttling ({' '.join(said.split())}); try again "
                          f"{when}",
                          retry_after=wait, scope=scope)


def token_error(response: httpx.Response, body: Any, what: str) -> CRMError:
    """The error for a refused token request (``{"error": ...}``, often with HTTP 200)."""
    error = str(body.get("error")) if isinstance(body, Mapping) else "?"
    described = body.get("error_description", "") if isinstance(body, Mapping) else ""
    if error.lower() == "access denied":
        # Zoho's throttle: at most 10 access tokens per refresh token per 10 minutes,
        # then blocked for the rest of the window (length unknown: wait a full window).
        return CRMRateLimited(f"{what}: Zoho Accounts refused to mint another access token "
                              f"({error}: {described}); one refresh token may mint 10 per "
                              "10 minutes: make sure every worker shares the token store",
                              retry_after=600.0, scope="burst")
    return CRMAuthError(f"{what}: Zoho Accounts refused the refresh ({error} {described}, "
                        f"HTTP {response.status_code}); check client_id, "
                        "client_secret, data_centre and refresh_token, or re-authorise")


def _reset_seconds(value: str | None, now: dt.datetime | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number > 1e9:  # an epoch timestamp (seconds, or milliseconds when > 1e12)
        epoch = number / 1000 if number > 1e12 else number
        current = (now or dt.datetime.now(dt.UTC)).timestamp()
        return max(0.0, epoch - current)
    return max(0.0, number)


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None
