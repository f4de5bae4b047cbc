"""Caseloop's generic connector for in-house systems: signed JSON webhooks."""

from __future__ import annotations

from typing import Any

from caseloop import hookimpl

from .connector import Webhook

__all__ = ["Webhook", "register_connectors"]


@hookimpl
def register_connectors() -> list[Any]:
    return [Webhook]
