"""CRM connectors: the contract plugins implement, its errors, and Caseloop's side
of it (token store, pushes from the outbox, inbound webhooks, polling)."""

from .contract import (
    CAPABILITIES,
    Activity,
    CaseSnapshot,
    Connector,
    CRMCase,
    CustomerProfile,
    CustomerRef,
    InboundEvent,
    InboundRequest,
    PushResult,
    Token,
    Tokens,
    http_client,
)
from .errors import (
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
    UnsupportedOperation,
    WebhookAuthError,
)

__all__ = [
    "CAPABILITIES", "Activity", "CRMAuthError", "CRMBadResponse", "CRMCase", "CRMConflict",
    "CRMError", "CRMNotFound", "CRMPermissionError", "CRMRateLimited", "CRMTokenExpired",
    "CRMTransientError", "CRMValidationError", "CaseSnapshot", "Connector", "CustomerProfile",
    "CustomerRef", "InboundEvent", "InboundRequest", "PushResult", "Token", "Tokens",
    "UnsupportedOperation", "WebhookAuthError", "http_client",
]
