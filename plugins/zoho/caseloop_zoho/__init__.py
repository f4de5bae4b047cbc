"""Caseloop connector for Zoho CRM: contacts, cases, notes, watch notifications, polling.

Configured under ``CASELOOP_CRM["zoho"]``; see the README for the settings.
"""

from caseloop import hookimpl

from .connector import Zoho

__all__ = ["Zoho"]


@hookimpl
def register_connectors() -> list[type[Zoho]]:
    return [Zoho]
