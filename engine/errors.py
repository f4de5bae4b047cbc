"""Errors of the case engine. Each has an HTTP status and a stable code, so the
API turns it into ``{"error": {"code", "message", "fields"}}`` without guessing."""

from __future__ import annotations


class CaseError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code is not None:
            self.code = code


class NotFound(CaseError):
    status, code = 404, "not_found"


class Forbidden(CaseError):
    status, code = 403, "forbidden"


class Conflict(CaseError):
    """Stale version (``stale``) or a trigger not possible from the current state
    (``wrong_state``)."""

    status, code = 409, "conflict"


class Invalid(CaseError):
    """Field errors (``invalid``) or a guard that does not hold (``guard_failed``)."""

    status, code = 422, "invalid"
