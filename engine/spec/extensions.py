"""What installed plugins add to the definition language: field types, functions, channels.

The definition core never asks Flask or pluggy what is installed: whoever loads
definitions (the app's registry, ``caseloop check``) hands an :class:`Extensions`
in, and ``Extensions()`` (none) keeps every older caller as it was. The same
value must be used for every version of a definition (the registry rebuilds old
ones with it), so a stored case means what it meant when it was written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..expr import FUNCTIONS, ExprError
from ..expr.checker import _CONVERSIONS, _MACROS, _STRING_METHODS, _TIME_METHODS
from ..expr.types import DOUBLE, NAMED, T
from ..plugins import Channel, FieldType, Function, PluginError
from .schema import CHANNELS, FIELD_TYPES, NAME

#: What a plugin field type may be to expressions (its stored value is of this kind).
SCALAR_TYPES = ("string", "int", "double", "bool")
#: Names expressions already use for something: a plugin function may not take one.
BUILTIN_FUNCTIONS = frozenset({*FUNCTIONS, "size", "has", "dyn", "type", "null", "true",
                               "false", "in", "list", "map", "bytes", *_CONVERSIONS, *_MACROS,
                               *_STRING_METHODS, *_TIME_METHODS})
#: Channels Caseloop delivers itself (and 'webhook', which the notification log also uses).
BUILTIN_CHANNELS = frozenset({*CHANNELS, "webhook"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "int": (int,), "double": (float, int), "bool": (bool,),
}


def _frozen() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Extensions:
    """The plugins' field types, functions and channels, by name (checked on creation:
    a name that clashes with a built-in one is a :class:`PluginError`)."""

    field_types: Mapping[str, FieldType] = field(default_factory=_frozen)
    functions: Mapping[str, Function] = field(default_factory=_frozen)
    channels: Mapping[str, Channel] = field(default_factory=_frozen)

    def __post_init__(self) -> None:
        for name, ftype in self.field_types.items():
            _check_field_type(name, ftype)
        for name, fn in self.functions.items():
            _check_function(name, fn)
        for name in self.channels:
            _check_channel(name)

    @property
    def key(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """What the shape of a file depends on (the names), for caches."""
        return (tuple(sorted(self.field_types)), tuple(sorted(self.functions)),
                tuple(sorted(self.channels)))

    def expression_functions(self) -> dict[str, tuple[T, Callable[..., Any]]]:
        """The functions as :func:`caseloop.expr.compile` takes them."""
        return {name: (NAMED[fn.returns], _checked_call(fn))
                for name, fn in self.functions.items()}

    def signatures(self) -> dict[str, tuple[T, ...]]:
        """The declared argument types, for the checker."""
        return {name: tuple(NAMED[a] for a in fn.args) for name, fn in self.functions.items()}


NONE = Extensions()


def _check_field_type(name: str, ftype: FieldType) -> None:
    if name in FIELD_TYPES:
        raise PluginError(f"a plugin registers the field type '{name}', which is built in; "
                          "rename it in the plugin (or uninstall the plugin)")
    if not re.match(NAME, name):
        raise PluginError(f"a plugin's field type '{name}' is not a valid name: use lower-case "
                          "letters, digits and '_', starting with a letter")
    if ftype.expr_type not in SCALAR_TYPES:
        raise PluginError(f"the field type '{name}' declares expr_type '{ftype.expr_type}'; "
                          f"use one of {', '.join(SCALAR_TYPES)}")
    if not callable(ftype.clean):
        raise PluginError(f"the field type '{name}' has no callable 'clean'")


def _check_function(name: str, fn: Function) -> None:
    if name in BUILTIN_FUNCTIONS:
        raise PluginError(f"a plugin registers the expression function '{name}', which is "
                          "built in; rename it in the plugin (or uninstall the plugin)")
    if not _IDENT.match(name):
        raise PluginError(f"a plugin's expression function '{name}' is not a valid name: use "
                          "letters, digits and '_', starting with a letter")
    for what in (*fn.args, fn.returns):
        if what not in NAMED:
            raise PluginError(f"the expression function '{name}' declares the type '{what}'; "
                              "use string, int, double, bool, timestamp, duration, list, map "
                              "or dyn")
    if not callable(fn.call):
        raise PluginError(f"the expression function '{name}' has no callable 'call'")


def _check_channel(name: str) -> None:
    if name in BUILTIN_CHANNELS:
        raise PluginError(f"a plugin registers the notification channel '{name}', which is "
                          "built in; rename it in the plugin (or uninstall the plugin)")
    if not re.match(NAME, name) or len(name) > 32:
        raise PluginError(f"a plugin's notification channel '{name}' is not a valid name: "
                          "up to 32 lower-case letters, digits and '_', starting with a letter")


def _checked_call(fn: Function) -> Callable[..., Any]:
    """The plugin's function, refusing a result of another type than it declares (the
    checker trusted the declaration): an error like any failing built-in's."""
    want = NAMED[fn.returns]
    kinds = _PY_TYPES.get(want.kind)

    def call(*args: Any) -> Any:
        result = fn.call(*args)
        if result is not None and kinds is not None and (
                not isinstance(result, kinds) or (want.kind != "bool"
                                                  and isinstance(result, bool))):
            raise ExprError(f"{fn.name}() returned a {type(result).__name__}, not the "
                            f"{fn.returns} it declares")
        return float(result) if want == DOUBLE and isinstance(result, int) else result
    return call


def clean_value(ftype: FieldType, raw: Any) -> Any:
    """A submitted value through the plugin's ``clean``: ValueError (the plugin's
    message for the person) passes; a result of the wrong kind is the plugin's bug."""
    value = ftype.clean(raw)
    if value is None:
        return None
    kinds = _PY_TYPES[ftype.expr_type]
    if not isinstance(value, kinds) or (ftype.expr_type != "bool" and isinstance(value, bool)):
        raise PluginError(f"the field type '{ftype.name}' cleaned {raw!r} into a "
                          f"{type(value).__name__}, not the {ftype.expr_type} it declares")
    if ftype.expr_type == "double" and isinstance(value, int | float):
        return float(value)  # 3 from a double type is 3.0: CEL does not mix them
    return value


def expression_type(ftype: FieldType) -> T:
    """What expressions see for a field of this type."""
    return NAMED[ftype.expr_type]
