"""Caseloop's connector for Fxiaoke / 纷享销客 (ShareCRM)."""

from __future__ import annotations

from typing import Any

from caseloop import hookimpl

from .connector import Fxiaoke

__all__ = ["Fxiaoke", "register_connectors"]


@hookimpl
def register_connectors() -> list[Any]:
    return [Fxiaoke]
