"""Caseloop: declarative YAML forms and workflows for the customer-satisfaction loop."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from .hooks import hookimpl  # noqa: E402  (plugins write: from caseloop import hookimpl)

__all__ = ["__version__", "create_app", "hookimpl"]


def create_app(test_config: object = None) -> object:
    """Create the application (see :func:`caseloop.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(test_config)  # type: ignore[arg-type]
