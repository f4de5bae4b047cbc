"""What can go wrong talking to a CRM, in one hierarchy.

Connectors raise these; Caseloop's worker decides from ``retryable`` and
``retry_after`` whether a push is tried again (and when) or dead-lettered with
the message as its reason. Messages are for operators: say what the CRM
answered and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping


class CRMError(Exception):
    """A CRM call failed. Not retryable unless a subclass says so."""

    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Seconds the CRM asked us to wait (Retry-After), when it said.
        self.retry_after = retry_after


class CRMAuthError(CRMError):
    """The credentials do not work any more (refresh refused, app revoked): a
    person must re-authorise the connection."""


class CRMTokenExpired(CRMAuthError):
    """The access token expired: refresh it once and try again (Zoho INVALID_TOKEN,
    Salesforce INVALID_SESSION_ID, HubSpot 401)."""

    retryable = True


class CRMPermissionError(CRMError):
    """The connection lacks a scope or permission (HubSpot 403, Zoho NO_PERMISSION)."""


class CRMRateLimited(CRMError):
    """The CRM's rate limit or daily allowance is used up: wait and try again."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None,
                 scope: str = "burst") -> None:
        super().__init__(message, retry_after=retry_after)
        #: "burst" (per-second window) or "daily" (allocation for the day).
        self.scope = scope


class CRMTransientError(CRMError):
    """5xx, a timeout or a dropped connection: try again with backoff."""

    retryable = True


class CRMNotFound(CRMError):
    """The record does not exist (404; Zoho's empty 204 on a get)."""


class CRMConflict(CRMError):
    """The CRM refused a duplicate or a locked record; an operator must look."""


class CRMValidationError(CRMError):
    """The CRM rejected the data (a mandatory field, a bad picklist value)."""

    def __init__(self, message: str, *, field_errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.field_errors = dict(field_errors or {})


class CRMBadResponse(CRMError):
    """The CRM answered something that is not what its API documents (not JSON, a
    missing key): not retried, the reason shows what came back."""


class UnsupportedOperation(CRMError):
    """The connector does not offer this (see its ``capabilities``)."""


class WebhookAuthError(CRMError):
    """An inbound call is not from the CRM: a bad or missing signature, a stale
    timestamp, a token that does not match. Answered with 401."""


def excerpt(body: bytes | str, limit: int = 200) -> str:
    """The start of a CRM's reply, printable, for an error message."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
