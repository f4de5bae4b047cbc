"""The plugin manager of an application: which plugins are loaded and what they offer.

Built once per app by the extension. Entry points of the ``caseloop`` group are
loaded unless ``CASELOOP_LOAD_PLUGINS`` is off (tests switch it off and register
what they need with ``CASELOOP_PLUGINS``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from . import hooks

if TYPE_CHECKING:
    from .spec.extensions import Extensions

GROUP = "caseloop"


@dataclass(frozen=True)
class FieldType:
    """An extra field type: ``clean`` turns what was submitted into the stored
    value or raises ValueError with a message for the person filling the form."""

    name: str
    clean: Callable[[Any], Any]
    #: What the value is to expressions: string, int, double or bool.
    expr_type: str = "string"
    #: The HTML input type the pages use.
    input_type: str = "text"
    help: str = ""


@dataclass(frozen=True)
class Function:
    """A pure expression function with its declared argument and result types
    (CEL type names: string, int, double, bool, timestamp, list, map)."""

    name: str
    call: Callable[..., Any]
    args: tuple[str, ...]
    returns: str
    help: str = ""


@dataclass(frozen=True)
class Channel:
    """A way to send notifications. ``send(to, subject, body, settings)`` delivers or
    raises: a :class:`caseloop.crm.CRMError` that is retryable (or any OSError) is
    tried again, anything else dead-letters with its message. ``address`` picks
    the recipient's address for this channel from a user row's ``contacts``
    or the case's data (None: cannot be reached this way)."""

    name: str
    send: Callable[[str, str, str, Mapping[str, Any]], None]
    address: Callable[[Mapping[str, Any]], str | None] = field(default=lambda data: None)


@dataclass(frozen=True)
class Loaded:
    """One loaded plugin, for ``caseloop plugins``."""

    name: str
    version: str | None
    hooks: tuple[str, ...]


def manager(*, load_entry_points: bool = True, extra: Iterable[str | ModuleType] = ()
            ) -> pluggy.PluginManager:
    """A plugin manager with Caseloop's hookspecs, the installed plugins (unless
    switched off) and ``extra`` (modules or their import names)."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hooks)
    if load_entry_points:
        pm.load_setuptools_entrypoints(GROUP)
    for plugin in extra:
        module = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        if not pm.is_registered(module):
            pm.register(module, name=module.__name__)
    return pm


def loaded(pm: pluggy.PluginManager) -> list[Loaded]:
    """The plugins with their distribution versions and the hooks they implement."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        impls = tuple(sorted(impl.name for impl in pm.get_hookcallers(plugin) or ()))
        label = dist.project_name if dist is not None else name
        out.append(Loaded(label, dist.version if dist is not None else None, impls))
    return sorted(out, key=lambda p: p.name)


def connectors(pm: pluggy.PluginManager) -> dict[str, Any]:
    """Connector classes by name; two plugins claiming one name is a set-up error."""
    return _by_name(pm.hook.register_connectors(), "connector")


def field_types(pm: pluggy.PluginManager) -> dict[str, FieldType]:
    return _by_name(pm.hook.register_field_types(), "field type")


def functions(pm: pluggy.PluginManager) -> dict[str, Function]:
    return _by_name(pm.hook.register_functions(), "function")


def channels(pm: pluggy.PluginManager) -> dict[str, Channel]:
    return _by_name(pm.hook.register_channels(), "notification channel")


def _by_name(results: Iterable[Iterable[Any] | None], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for items in results:
        for item in items or ():
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"a plugin registered a {what} without a name: {item!r}")
            if name in out:
                raise PluginError(f"two plugins register the {what} '{name}'; uninstall one "
                                  "(see 'caseloop plugins')")
            out[name] = item
    return out


class PluginError(Exception):
    """Installed plugins do not fit together (a name claimed twice, a bad value)."""


def extensions(pm: pluggy.PluginManager) -> Extensions:
    """What the plugins add to the definition language (field types, functions,
    channels), checked against the built-in names; for the registry and 'check'."""
    from .spec.extensions import Extensions

    return Extensions(field_types=field_types(pm), functions=functions(pm),
                      channels=channels(pm))
