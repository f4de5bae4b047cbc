"""Caseloop's Salesforce connector (``CASELOOP_CRM = {"salesforce": {...}}``)."""

from __future__ import annotations

from typing import Any

from caseloop import hookimpl

from .connector import SalesforceConnector

__all__ = ["SalesforceConnector", "register_connectors"]


@hookimpl
def register_connectors() -> list[Any]:
    return [SalesforceConnector]
