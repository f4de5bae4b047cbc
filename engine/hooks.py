"""The hooks plugins implement: the one hookspec module.

A plugin is a module (usually an installed distribution registering it in the
``caseloop`` entry-point group) with functions marked ``@hookimpl``::

    from caseloop import hookimpl

    @hookimpl
    def register_connectors():
        return [MyCRM]

Every hook is listed with its exact signature in the README's plugin guide
(a test keeps the two in sync). Hooks that return something return a list (or
mapping); pluggy collects one per plugin.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("caseloop")
hookimpl = pluggy.HookimplMarker("caseloop")


@hookspec
def register_connectors() -> list[Any]:
    """CRM connector classes (see :class:`caseloop.crm.Connector`), each with a
    unique ``name``; configured in ``CASELOOP_CRM`` under that name."""


@hookspec
def register_field_types() -> list[Any]:
    """Extra form field types (:class:`caseloop.plugins.FieldType`), usable as
    ``type:`` in form YAML once the plugin is installed."""


@hookspec
def register_functions() -> list[Any]:
    """Extra pure expression functions (:class:`caseloop.plugins.Function`):
    no side effects, no I/O, same answer for the same arguments."""


@hookspec
def register_channels() -> list[Any]:
    """Notification channels (:class:`caseloop.plugins.Channel`), usable as
    ``channel:`` in a workflow's ``notify`` action."""


@hookspec
def on_event(event: dict[str, Any], case: dict[str, Any] | None,
             settings: dict[str, Any]) -> None:
    """Called by the worker (never inside a request) for every case event, in
    order, at least once: make it idempotent on ``event['id']``. Raising makes
    the worker try the same event again later."""
