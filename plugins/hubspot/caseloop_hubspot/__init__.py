"""Caseloop CRM connector for HubSpot: contacts, tickets, notes, signed webhooks, polling."""

from __future__ import annotations

from typing import Any

from caseloop import hookimpl

from .connector import HubSpot

__all__ = ["HubSpot", "register_connectors"]


@hookimpl
def register_connectors() -> list[Any]:
    return [HubSpot]
