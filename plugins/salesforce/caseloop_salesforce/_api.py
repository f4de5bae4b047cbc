"""Salesforce REST answers turned into Caseloop's error hierarchy, and the
small escaping helpers SOQL and SOSL need.

Salesforce reports errors as a JSON *array* of ``{message, errorCode, fields}``;
the HTTP status alone is not enough (403 is both "no permission" and "the daily
API allocation is used up").
"""

from __future__ import annotations

import json
import re
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
    CRMTokenExpired,
    CRMTransientError,
    CRMValidationError,
)
from caseloop.crm.errors import excerpt
from caseloop.crm.http import retry_after, server_error

#: errorCodes that mean another record is in the way: an operator must look.
CONFLICT_CODES = frozenset({"DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID",
                            "ENTITY_IS_LOCKED", "ENTITY_IS_DELETED"})
#: errorCodes worth another try later (row locks, long-running requests).
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "QUERY_TIMEOUT",
                             "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})

_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_SOSL_RESERVED = frozenset('?&|!{}[]()^~*:\\"\'+-')


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``[{message, errorCode, fields}]`` of an error answer ([] if it has none)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return []
    if isinstance(body, dict):  # a few endpoints answer one object instead of the array
        body = [body]
    if not isinstance(body, list):
        return []
    return [item for item in body if isinstance(item, dict) and "errorCode" in item]


def raise_for(response: httpx.Response, what: str) -> None:
    """Nothing for a 2xx; else the error that fits what Salesforce answered."""
    status = response.status_code
    if 200 <= status < 300:
        return
    errors = errors_of(response)
    codes = {str(e.get("errorCode")) for e in errors}
    said = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in errors) or \
        repr(excerpt(response.content))
    if status == 401:
        raise CRMTokenExpired(f"{what}: Salesforce refused the session ({said})")
    if "REQUEST_LIMIT_EXCEEDED" in codes or status == 429:
        # The org's rolling 24-hour API allocation (or its concurrency cap): 403, not 429.
        raise CRMRateLimited(f"{what}: Salesforce's API request limit is used up ({said}); "
                             "calls resume when the rolling 24-hour allocation frees up",
                             retry_after=retry_after(response), scope="daily")
    if status >= 500 or codes & TRANSIENT_CODES:
        raise server_error(response, what) if status >= 500 else CRMTransientError(
            f"{what}: Salesforce answered {status} ({said}); trying again later")
    if status == 300:  # the body lists the matching records' URLs
        raise CRMConflict(f"{what}: the external id matches several records "
                          f"({excerpt(response.content)}); remove the duplicates")
    if not errors:
        raise CRMBadResponse(f"{what}: Salesforce answered {status} with a body that is not "
                             f"its error list: {excerpt(response.content)!r}")
    if codes & CONFLICT_CODES:
        raise CRMConflict(f"{what}: Salesforce refused a duplicate or locked record ({said})")
    if status == 404 or "NOT_FOUND" in codes:
        raise CRMNotFound(f"{what}: Salesforce has no such record or resource ({said})")
    if status == 403:
        raise CRMPermissionError(f"{what}: the connected app's user may not do this ({said}); "
                                 "check its profile, permission sets and OAuth scopes")
    if status == 400:  # REQUIRED_FIELD_MISSING, FIELD_CUSTOM_VALIDATION_EXCEPTION, INVALID_FIELD…
        fields: dict[str, str] = {}
        for err in errors:
            names = err.get("fields") or [str(err.get("errorCode"))]
            for name in names if isinstance(names, list) else [names]:
                fields[str(name)] = str(err.get("message"))
        raise CRMValidationError(f"{what}: Salesforce rejected the data ({said})",
                                 field_errors=fields)
    raise CRMBadResponse(f"{what}: Salesforce answered {status} ({said})")


def auth_error(response: httpx.Response) -> CRMError:
    """The token endpoint's refusal (``{error, error_description}``) as an error."""
    if response.status_code >= 500:
        return server_error(response, "refreshing the Salesforce session")
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict) or "error" not in body:
        return CRMBadResponse(f"refreshing the Salesforce session: the token endpoint answered "
                              f"{response.status_code} {excerpt(response.content)!r}")
    code, text = body.get("error"), body.get("error_description")
    if code == "invalid_grant":
        return CRMAuthError(f"Salesforce refused the refresh token (invalid_grant: {text}): "
                            "re-authorise the connected app and set the new refresh_token")
    if code in ("invalid_client_id", "invalid_client"):
        return CRMAuthError(f"Salesforce does not accept the connected app's credentials "
                            f"({code}: {text}): check client_id and client_secret")
    return CRMAuthError(f"Salesforce refused to refresh the session ({code}: {text})")


def record_id(value: str, what: str) -> str:
    """A Salesforce record id (15 or 18 letters and digits), safe in a path or a
    SOQL literal; anything else is refused before it reaches Salesforce."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise CRMValidationError(f"{what}: {value!r} is not a Salesforce record id",
                                 field_errors={"Id": "15 or 18 letters and digits"})
    return value


def soql_string(value: str) -> str:
    """A SOQL string literal: quoted, with backslash, quotes and control
    characters escaped (the SOQL escape sequences)."""
    out = value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{out}'"


def sosl_escape(text: str) -> str:
    """A search term with SOSL's reserved characters (? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -)
    escaped by a backslash, so an email cannot become an operator or a wildcard."""
    return "".join("\\" + ch if ch in _SOSL_RESERVED else ch for ch in text)


def api_usage(response: httpx.Response) -> tuple[int, int] | None:
    """``(used, limit)`` from the ``Sforce-Limit-Info: api-usage=used/limit`` header."""
    match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None
