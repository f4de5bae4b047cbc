"""Small helpers connectors share for turning HTTP into the error hierarchy.

Connectors get an :class:`httpx.Client` from Caseloop (timeouts, User-Agent, no
redirects); these keep each connector from re-deciding what a timeout, a
Retry-After or a body that is not JSON means.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from typing import Any

import httpx

from .errors import CRMBadResponse, CRMTransientError, excerpt


def send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request; a timeout or a connection that fails is a CRMTransientError
    (retried with backoff), never an httpx exception leaking into the worker."""
    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise CRMTransientError(f"{method} {_path(url)}: no answer in time ({type(exc).__name__})"
                                ) from None
    except httpx.TransportError as exc:
        raise CRMTransientError(f"{method} {_path(url)}: connection failed ({exc})") from None


def retry_after(response: httpx.Response, *, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def json_of(response: httpx.Response, what: str) -> Any:
    """The JSON body, or CRMBadResponse saying what came instead."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise CRMBadResponse(f"{what}: the CRM answered {response.status_code} with a body "
                             f"that is not JSON: {excerpt(response.content)!r}") from None


def expect(value: Any, kind: type, what: str) -> Any:
    """``value`` if it is a ``kind``; else CRMBadResponse (an answer of the wrong shape)."""
    if not isinstance(value, kind):
        raise CRMBadResponse(f"{what}: expected a JSON {kind.__name__}, the CRM answered "
                             f"{excerpt(json.dumps(value, default=str))!r}")
    return value


def server_error(response: httpx.Response, what: str) -> CRMTransientError:
    """A 5xx as a retryable error that says what the CRM answered."""
    return CRMTransientError(f"{what}: the CRM answered {response.status_code} "
                             f"{excerpt(response.content)!r}",
                             retry_after=retry_after(response))


def _path(url: str) -> str:
    # The query string may hold a secret (Zoho's notify token); the path is enough.
    return url.split("?", 1)[0]
