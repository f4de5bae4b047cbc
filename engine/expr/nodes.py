"""Closures for the nodes whose evaluation order matters: CEL's commutative logic,
relations (with fast paths for 'field OP literal') and the list macros."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from .operators import (
    _ORDER_OPS,
    ExprError,
    Frame,
    Node,
    Scope,
    _kind,
    _no_overload,
    _ordering,
    contains,
    equal,
)

_DYNAMIC: Final = object()


class _C:
    """A compiled node: its closure, and its value when known at compile time."""

    __slots__ = ("fn", "value")

    def __init__(self, fn: Node, value: Any = _DYNAMIC) -> None:
        self.fn = fn
        self.value = value

    @property
    def const(self) -> bool:
        return self.value is not _DYNAMIC


def _constant(value: Any) -> _C:
    def const(s: Scope, f: Frame) -> Any:
        return value
    return _C(const, value)


def _failing(message: str) -> Node:
    def fail(s: Scope, f: Frame) -> Any:
        raise ExprError(message)
    return fail


# -- logic: CEL's commutative && and || -----------------------------------------------------------
#
# As cel-python's logical_and/logical_or: false && x is false and true || x is true
# whatever x is, an error included; otherwise an error or a non-bool value (an empty
# field: null) comes through (null && true is null, as SQL's NULL AND TRUE), and two of
# them make an error.

def _logic(left: Node, right: Node, absorbing: bool, op: str) -> Node:
    """``&&`` (absorbing False) and ``||`` (absorbing True)."""
    passing = not absorbing

    def logic(s: Scope, f: Frame) -> Any:
        try:
            a = left(s, f)
        except ExprError as exc:
            a = exc
        if a is absorbing:
            return absorbing
        if a is passing:
            return right(s, f)
        try:
            b = right(s, f)
        except ExprError:
            if isinstance(a, ExprError):
                raise a from None
            raise
        if b is absorbing:
            return absorbing
        if b is passing:
            if isinstance(a, ExprError):
                raise a
            return a
        raise _no_overload(op, a, b)
    return logic


def _both(left: Node, right: Node) -> Node:
    return _logic(left, right, False, "&&")


def _either(left: Node, right: Node) -> Node:
    return _logic(left, right, True, "||")


# -- relations, with fast paths for the usual 'field OP literal' ----------------------------------

_FAST: Final = frozenset({int, float, str, bool})


def _equality(left: _C, right: _C, *, inverted: bool) -> Node:
    get = left.fn
    if right.const and type(right.value) in _FAST:
        want, kind = right.value, type(right.value)

        def equals_constant(s: Scope, f: Frame) -> bool:
            value = get(s, f)
            if type(value) is kind:
                return (value == want) is not inverted
            if value is None:
                return inverted
            return equal(value, want) is not inverted
        return equals_constant
    other = right.fn

    def equals(s: Scope, f: Frame) -> bool:
        return equal(get(s, f), other(s, f)) is not inverted
    return equals


def _membership(left: _C, right: _C) -> Node:
    get = left.fn
    if right.const and type(right.value) is list and right.value \
            and all(type(v) is str for v in right.value):
        options, items = frozenset(right.value), right.value

        def in_texts(s: Scope, f: Frame) -> bool:
            value = get(s, f)
            if type(value) is str:
                return value in options
            return contains(items, value)
        return in_texts
    container = right.fn

    def member(s: Scope, f: Frame) -> bool:
        item = get(s, f)
        return contains(container(s, f), item)
    return member


def _comparison(op: str, left: _C, right: _C) -> Node:
    compare: Callable[[Any, Any], bool] = _ORDER_OPS[op]
    order = _ordering(op, compare)
    get = left.fn
    if right.const and type(right.value) in _FAST:
        bound, kind = right.value, type(right.value)

        def versus_constant(s: Scope, f: Frame) -> bool:
            value = get(s, f)
            if type(value) is kind:
                return compare(value, bound)
            return order(value, bound)
        return versus_constant
    other = right.fn

    def versus(s: Scope, f: Frame) -> bool:
        return order(get(s, f), other(s, f))
    return versus


# -- macros ---------------------------------------------------------------------------------------

def _items(value: Any, method: str) -> Sequence[Any]:
    if type(value) is list:
        return value
    if type(value) is dict:
        return list(value)  # a map's keys
    raise ExprError(f"{method}() needs a list or a map, not {_kind(value)}")


def _quantifier(target: Node, body: Node, slot: int, deciding: bool, method: str) -> Node:
    """``all`` (decided by a false) and ``exists`` (decided by a true). As cel-python,
    which folds logical_and / logical_or over the elements: one deciding element
    decides; otherwise one error (or null) is the result, and two of them an error."""
    def quantify(s: Scope, f: Frame) -> Any:
        assert f is not None
        odd: list[Any] = []
        for item in _items(target(s, f), method):
            f[slot] = item
            try:
                result = body(s, f)
            except ExprError as exc:
                result = exc
            if result is deciding:
                return deciding
            if result is not (not deciding):
                odd.append(result)
        return _fold_logic(odd, not deciding, method)
    return quantify


def _macro_all(target: Node, body: Node, slot: int) -> Node:
    return _quantifier(target, body, slot, False, "all")


def _macro_exists(target: Node, body: Node, slot: int) -> Node:
    return _quantifier(target, body, slot, True, "exists")


def _fold_logic(odd: list[Any], empty: bool, method: str) -> Any:
    if not odd:
        return empty
    if len(odd) == 1:
        if isinstance(odd[0], ExprError):
            raise odd[0]
        return odd[0]
    for value in odd:
        if isinstance(value, ExprError):
            raise value
    raise ExprError(f"{method}() needs conditions, not {_kind(odd[0])}")


def _macro_exists_one(target: Node, body: Node, slot: int) -> Node:
    def exists_one(s: Scope, f: Frame) -> bool:
        assert f is not None
        count = 0
        for item in _items(target(s, f), "exists_one"):
            f[slot] = item
            result = body(s, f)
            if result is True:
                count += 1
            elif result is not False and result is not None:  # null: not this one
                raise ExprError(f"exists_one() needs a condition, not {_kind(result)}")
        return count == 1
    return exists_one


def _macro_filter(target: Node, body: Node, slot: int) -> Node:
    def filter_(s: Scope, f: Frame) -> list[Any]:
        assert f is not None
        kept = []
        for item in _items(target(s, f), "filter"):
            f[slot] = item
            result = body(s, f)
            if result is True:
                kept.append(item)
            elif result is not False and result is not None:  # null: left out, as SQL
                raise ExprError(f"filter() needs a condition, not {_kind(result)}")
        return kept
    return filter_


def _macro_map(target: Node, body: Node, slot: int) -> Node:
    def map_(s: Scope, f: Frame) -> list[Any]:
        assert f is not None
        out = []
        for item in _items(target(s, f), "map"):
            f[slot] = item
            out.append(body(s, f))
        return out
    return map_


_MACRO_BUILDERS: Final[dict[str, Callable[[Node, Node, int], Node]]] = {
    "all": _macro_all, "exists": _macro_exists, "exists_one": _macro_exists_one,
    "filter": _macro_filter, "map": _macro_map,
}
