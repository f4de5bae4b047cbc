"""Values and operators of the compiled expression language: CEL's semantics on plain
Python values (see :mod:`caseloop.expr.compiler`)."""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final


class ExprError(Exception):
    """An expression could not be evaluated on the given values."""


#: The values closures see: the caller's names, and the macro variables by nesting depth.
Scope = Mapping[str, Any]
Frame = list[Any] | None
Node = Callable[[Scope, Frame], Any]

MACROS: Final = ("all", "exists", "exists_one", "map", "filter")

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
_UINT_MAX: Final = 2**64 - 1
# cel-python's DurationType range (about ±10,000 years), checked on every duration made.
_MAX_DURATION: Final = dt.timedelta(seconds=315_576_000_000)
_NULL: Final = type(None)
# Values that need no conversion or check when read from the scope.
_SCALARS: Final = frozenset({str, bool, float, _NULL})
_EMPTY: Final[Mapping[str, Any]] = {}


class Uint(int):
    """A CEL ``uint`` (only from ``1u`` literals and ``uint()``): plain ``int`` cannot
    tell it from an ``int``, and CEL keeps the two apart."""

    __slots__ = ()


# -- values in and out ----------------------------------------------------------------------------

def _int64(value: int) -> int:
    if _INT_MIN <= value <= _INT_MAX:
        return value
    raise ExprError("integer overflow (beyond 64 bits)")


def _uint64(value: int) -> Uint:
    if 0 <= value <= _UINT_MAX:
        return Uint(value)
    raise ExprError("unsigned integer overflow")


def _duration(value: dt.timedelta) -> dt.timedelta:
    if -_MAX_DURATION <= value <= _MAX_DURATION:
        return value
    raise ExprError("duration out of range")


def _clean(value: Any) -> bool:
    """Whether a value read from the scope is usable as it is (the common case)."""
    t = type(value)
    if t in _SCALARS:
        return True
    if t is int:
        return _INT_MIN <= value <= _INT_MAX  # type: ignore[no-any-return]
    return t is dt.datetime and value.tzinfo is not None


def plain(value: Any) -> Any:
    """A value of the scope as closures expect it: what ``to_cel`` accepted, in plain
    Python. Containers are returned as they are when nothing in them needs converting
    (closures never mutate them), so reading a list of rows costs a scan, not a copy."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is int:
        return _int64(value)
    if t is list:
        for item in value:
            if not _clean(item):
                return [plain(item) for item in value]
        return value
    if t is dict:
        for key, item in value.items():
            if type(key) is not str or not _clean(item):
                return {str(k): plain(v) for k, v in value.items()}
        return value
    if t is dt.datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if t is dt.timedelta:
        return _duration(value)
    return _plain_slow(value)


def _plain_slow(value: Any) -> Any:
    # Subclasses and the other types to_cel took; the order is to_cel's.
    if isinstance(value, int):
        return _int64(int(value))
    if isinstance(value, float | Decimal):
        try:
            return float(value)
        except ValueError:  # Decimal('sNaN')
            raise ExprError(f"cannot use {value} in an expression") from None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                           value.second, value.microsecond, tzinfo=value.tzinfo or dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, dt.timedelta):
        return _duration(dt.timedelta(value.days, value.seconds, value.microseconds))
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    raise ExprError(f"cannot use a {type(value).__name__} in an expression")


def _out(value: Any) -> Any:
    """A result as ``from_cel`` gave it: fresh containers, timestamps in UTC, uint as int."""
    t = type(value)
    if t in _SCALARS or t is int:
        return value
    if t is dt.datetime:
        return value.astimezone(dt.UTC)
    if t is list:
        return [_out(item) for item in value]
    if t is dict:
        return {str(k): _out(v) for k, v in value.items()}
    if t is Uint:
        return int(value)
    return value


def _kind(value: Any) -> str:
    """The CEL type name of a value, for messages."""
    return _KINDS.get(type(value), type(value).__name__)


_KINDS: Final = {
    _NULL: "null", bool: "bool", int: "int", Uint: "uint", float: "double", str: "string",
    bytes: "bytes", list: "list", dict: "map", dt.datetime: "timestamp",
    dt.timedelta: "duration",
}


def _no_overload(op: str, *values: Any) -> ExprError:
    return ExprError(f"no '{op}' for {', '.join(_kind(v) for v in values)}")


# -- equality and ordering ------------------------------------------------------------------------

def equal(a: Any, b: Any) -> bool:
    """CEL ``==``. An empty field (None) equals nothing but null, at any depth.

    Unlike cel-python, which raises for ``int == null`` but answers for ``string == null``
    (the project's ``_eq`` override fixed that only at the top level, not inside lists,
    rows or ``in``). Values of different types raise, as in cel-python."""
    if a is None or b is None:
        return a is b
    t = type(a)
    if t is not type(b):
        raise _no_overload("==", a, b)
    if t is list:
        if len(a) != len(b):
            return False
        return _all_equal(zip(a, b, strict=True))
    if t is dict:
        if a.keys() != b.keys():
            return False
        return _all_equal((a[k], b[k]) for k in a)
    return bool(a == b)


def _all_equal(pairs: Iterable[tuple[Any, Any]]) -> bool:
    # Element by element with CEL's commutative '&&': one unequal pair decides, even
    # when another pair cannot be compared (cel-python's ListType and MapType alike).
    error: ExprError | None = None
    for x, y in pairs:
        try:
            if not equal(x, y):
                return False
        except ExprError as exc:
            error = exc
    if error is not None:
        raise error
    return True


def contains(container: Any, item: Any) -> bool:
    """CEL ``in``: an element of a list, a key of a map. A comparison that raises
    matters only when nothing equal is found."""
    t = type(container)
    if t is dict:
        if type(item) is str and item in container:
            return True
        keys: Iterable[Any] = container
    elif t is list:
        keys = container
    else:
        raise _no_overload("in", item, container)
    error: ExprError | None = None
    for key in keys:
        try:
            if equal(key, item):
                return True
        except ExprError as exc:
            error = exc
    if error is not None:
        raise error
    return False


# Types ordered among themselves; int and double never mix (the checker refuses it, and
# so does this at run time for dyn values).
_ORDERED: Final = frozenset({int, Uint, float, str, bool, bytes, dt.datetime, dt.timedelta})


def _ordering(op: str, compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def order(a: Any, b: Any) -> bool:
        t = type(a)
        if t is type(b) and t in _ORDERED:
            return compare(a, b)
        raise _no_overload(op, a, b)
    return order


_ORDER_OPS: Final = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


# -- arithmetic -----------------------------------------------------------------------------------

def add(a: Any, b: Any) -> Any:
    t = type(a)
    if t is type(b):
        if t is int:
            return _int64(a + b)
        if t is float or t is str or t is list or t is bytes:
            return a + b
        if t is dt.timedelta:
            return _duration(_shift(operator.add, a, b))
        if t is Uint:
            return _uint64(a + b)
    elif t is dt.datetime and type(b) is dt.timedelta:
        return _shift(operator.add, a, b)
    elif t is dt.timedelta and type(b) is dt.datetime:
        return _shift(operator.add, b, a)
    raise _no_overload("+", a, b)


def subtract(a: Any, b: Any) -> Any:
    t = type(a)
    if t is type(b):
        if t is int:
            return _int64(a - b)
        if t is float:
            return a - b
        if t is dt.timedelta or t is dt.datetime:
            return _duration(_shift(operator.sub, a, b))
        if t is Uint:
            return _uint64(a - b)
    elif t is dt.datetime and type(b) is dt.timedelta:
        return _shift(operator.sub, a, b)
    raise _no_overload("-", a, b)


def _shift(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    try:
        return op(a, b)
    except OverflowError:  # beyond year 1 or 9999
        raise ExprError("timestamp out of range") from None


def multiply(a: Any, b: Any) -> Any:
    t = type(a)
    if t is type(b):
        if t is int:
            return _int64(a * b)
        if t is float:
            return a * b
        if t is Uint:
            return _uint64(a * b)
    raise _no_overload("*", a, b)


def divide(a: Any, b: Any) -> Any:
    t = type(a)
    if t is type(b):
        if t is int:
            if b == 0:
                raise ExprError("division by zero")
            quotient = abs(a) // abs(b)  # truncated toward zero, as CEL and Go
            return _int64(-quotient if (a < 0) != (b < 0) else quotient)
        if t is float:
            if b == 0.0:
                # Unlike cel-python, which answers +inf for any x / 0.0: IEEE 754, as
                # CEL specifies (-1.0 / 0.0 is -inf, 0.0 / 0.0 is NaN).
                if a == 0.0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
        if t is Uint:
            if b == 0:
                raise ExprError("division by zero")
            return Uint(a // b)
    raise _no_overload("/", a, b)


def modulo(a: Any, b: Any) -> Any:
    t = type(a)
    if t is type(b):
        if t is int:
            if b == 0:
                raise ExprError("modulus by zero")
            rest = abs(a) % abs(b)  # the sign of the dividend, as CEL and Go
            return -rest if a < 0 else rest
        if t is Uint:
            if b == 0:
                raise ExprError("modulus by zero")
            return Uint(a % b)
    raise _no_overload("%", a, b)


def negate(a: Any) -> Any:
    t = type(a)
    if t is int:
        return _int64(-a)
    if t is float:
        return -a
    if t is dt.timedelta:
        return _duration(-a)
    raise _no_overload("-", a)


def logical_not(a: Any) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise _no_overload("!", a)


