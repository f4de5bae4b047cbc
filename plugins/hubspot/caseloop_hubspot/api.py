"""HubSpot's HTTP side: where things live per API version, what its answers mean
(status and error body → Caseloop's error hierarchy), and small value helpers.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

import httpx

from caseloop.crm import (
    CRMAuthError,
    CRMConflict,
    CRMError,
    CRMNotFound,
    CRMPermissionError,
    CRMRateLimited,
    CRMTokenExpired,
    CRMValidationError,
)
from caseloop.crm.errors import excerpt
from caseloop.crm.http import retry_after, server_error

#: HubSpot's note body limit (characters of HTML).
NOTE_BODY_LIMIT = 65_536
#: When a secondly limit is hit and HubSpot sends no Retry-After: its window is 10 s.
BURST_WAIT = 10.0


def api_path(version: str, object_type: str, *rest: str) -> str:
    """The path of an object endpoint: the one place the API version shapes URLs.

    Date versions (``2026-03``) live under ``/crm/objects/{version}/``; the legacy
    ``v3`` under ``/crm/v3/objects/``, except associations, which legacy HubSpot
    serves from the v4 associations API (same shape as the date versions')."""
    parts = "/".join((object_type, *rest))
    if version == "v3":
        family = "v4" if "associations" in rest else "v3"
        return f"/crm/{family}/objects/{parts}"
    return f"/crm/objects/{version}/{parts}"


def error_body(response: httpx.Response) -> dict[str, Any]:
    """HubSpot's error body ``{status, message, correlationId, category, errors[],
    context}``; every field is optional, and a body that is not JSON gives {}."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def describe(response: httpx.Response, what: str) -> str:
    body = error_body(response)
    said = body.get("message") or excerpt(response.content) or "(no body)"
    parts = [f"{what}: HubSpot answered {response.status_code}"]
    if body.get("category"):
        parts.append(str(body["category"]))
    text = " ".join(parts) + f": {said}"
    if body.get("correlationId"):
        text += f" (correlationId {body['correlationId']})"
    return text


def raise_for(response: httpx.Response, what: str) -> None:
    """Nothing for a 2xx; else the error the status and body mean."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = describe(response, what)
    body = error_body(response)
    if status == 401:
        raise CRMTokenExpired(message + "; the token is refreshed once and the call repeated")
    if status == 403:
        raise CRMPermissionError(message + "; give the app the missing scopes (see the "
                                 "message) and re-install it in the portal")
    if status == 404:
        raise CRMNotFound(message)
    if status == 409:
        raise CRMConflict(message + "; a record with this unique value exists already")
    if status == 429:
        raise rate_limited(response, message)
    if status >= 500:
        raise server_error(response, what)
    if status == 400:
        raise CRMValidationError(message + "; check the properties and the settings "
                                 "(pipeline, stages, custom properties)",
                                 field_errors=field_errors(body))
    raise CRMError(message)


def rate_limited(response: httpx.Response, message: str) -> CRMRateLimited:
    """429: ``policyName`` DAILY is the daily allowance (wait for Retry-After if
    given; HubSpot resets at midnight in the portal's time zone, which we do not
    know, so no guess); anything else (TEN_SECONDLY_ROLLING, SECONDLY) is the burst
    window of 10 s."""
    policy = str(error_body(response).get("policyName") or "")
    wait = retry_after(response)
    if policy.upper() == "DAILY":
        return CRMRateLimited(message + "; the portal's daily API allowance is used up",
                              retry_after=wait, scope="daily")
    return CRMRateLimited(message + "; the burst limit per 10 s was hit",
                          retry_after=BURST_WAIT if wait is None else wait, scope="burst")


def field_errors(body: dict[str, Any]) -> dict[str, str]:
    """``errors[]`` entries naming a property (``context.propertyName``) by property."""
    out: dict[str, str] = {}
    for item in body.get("errors") or ():
        if not isinstance(item, dict):
            continue
        context = item.get("context")
        if not isinstance(context, dict):
            continue
        names = context.get("propertyName") or context.get("propertyNames") or []
        for name in names if isinstance(names, list) else [names]:
            out[str(name)] = str(item.get("message") or item.get("code") or "invalid")
    return out


def batch_failure(body: dict[str, Any], what: str) -> CRMError:
    """A batch answer (207) whose one input failed: its first error, mapped."""
    first = next((e for e in body.get("errors") or () if isinstance(e, dict)), {})
    category = str(first.get("category") or "")
    message = f"{what}: HubSpot refused the record: {category} {first.get('message', '')}".strip()
    if category in {"VALIDATION_ERROR", "PROPERTY_DOESNT_EXIST", "INVALID_OPTION"}:
        return CRMValidationError(message, field_errors=field_errors(first))
    if category in {"CONFLICT", "OBJECT_ALREADY_EXISTS"}:
        return CRMConflict(message)
    if category in {"MISSING_SCOPES", "PERMISSION_DENIED"}:
        return CRMPermissionError(message)
    return CRMError(message)


def token_refused(response: httpx.Response) -> CRMError:
    """The token endpoint's refusal: a 4xx means the refresh token or the app's
    credentials are no good any more, which only a person can fix."""
    message = describe(response, "POST /oauth/v1/token")
    if response.status_code == 429:
        return rate_limited(response, message)
    if response.status_code >= 500:
        return server_error(response, "POST /oauth/v1/token")
    return CRMAuthError(message + "; re-authorise the HubSpot app and update refresh_token "
                        "(or client_id/client_secret)")


def note_html(kind: str, text: str, limit: int = NOTE_BODY_LIMIT) -> str:
    """A plain-text activity as the HTML HubSpot notes hold: escaped, line breaks
    kept, a label for calls and survey results, cut to the limit without
    breaking an entity or a tag."""
    label = {"call": "Call", "survey_result": "Survey result"}.get(kind)
    head = f"<p><strong>{label}</strong></p>" if label else ""
    body = html.escape(text.replace("\r\n", "\n")).replace("\n", "<br>")
    out = f"{head}<p>{body}</p>"
    if len(out) <= limit:
        return out
    cut = out[: limit - len("…</p>")]
    for opener, closer in (("&", ";"), ("<", ">")):
        at = cut.rfind(opener)
        if at != -1 and closer not in cut[at:]:
            cut = cut[:at]
    return cut + "…</p>"


def parse_time(value: Any) -> dt.datetime | None:
    """A HubSpot datetime property (ISO 8601, or epoch milliseconds) as UTC."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def millis(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def iso(when: dt.datetime) -> str:
    """UTC ISO 8601 with milliseconds and Z, as HubSpot writes datetimes."""
    utc = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
