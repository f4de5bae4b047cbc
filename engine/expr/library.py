"""CEL's functions and methods on plain Python values: conversions, text, regular
expressions (RE2, as cel-python) and calendar getters."""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import zoneinfo
from collections.abc import Callable
from typing import Any, Final

import pendulum
import re2  # type: ignore[import-untyped]  # google-re2, cel-python's regex engine
from celpy import celtypes as ct

from .operators import ExprError, Uint, _duration, _int64, _no_overload, _uint64, contains, plain

# -- functions ------------------------------------------------------------------------------------

def size(value: Any) -> int:
    t = type(value)
    if t is str or t is list or t is dict or t is bytes:
        return len(value)
    if value is None:
        return 0  # cel-python's size(null), kept: an empty field has no length
    raise _no_overload("size", value)


def to_int(value: Any) -> int:
    t = type(value)
    if t is int:
        return int(value)
    if t is bool or t is Uint:
        return _int64(int(value))
    if t is float:
        if math.isnan(value) or math.isinf(value):
            raise ExprError(f"cannot convert {value} to int")
        return _int64(math.trunc(value))
    if t is str:
        return _int64(_parse_int(value, signed_hex=True))
    if t is dt.datetime:
        return _int64(int(value.timestamp()))  # cel-python's: seconds, truncated
    # Unlike cel-python, whose int(null) is 0: an empty field is not zero.
    raise _no_overload("int", value)


def to_uint(value: Any) -> Uint:
    t = type(value)
    if t is Uint:
        return Uint(value)
    if t is int or t is bool:
        return _uint64(int(value))
    if t is float:
        if math.isnan(value) or math.isinf(value):
            raise ExprError(f"cannot convert {value} to uint")
        return _uint64(math.trunc(value))
    if t is str:
        return _uint64(_parse_int(value, signed_hex=False))
    if t is dt.datetime:
        return _uint64(int(value.timestamp()))
    raise _no_overload("uint", value)  # unlike cel-python's uint(null) == 0u


def _parse_int(text: str, *, signed_hex: bool) -> int:
    # cel-python's parsing: 0x hex, else Python's int() (which allows spaces and '_').
    try:
        if text[:2] in ("0x", "0X"):
            return int(text[2:], 16)
        if signed_hex and text[:3] in ("-0x", "-0X"):
            return -int(text[3:], 16)
        return int(text)
    except ValueError:
        raise ExprError(f"cannot convert '{text[:40]}' to a number") from None


def to_double(value: Any) -> float:
    t = type(value)
    if t is float:
        return float(value)
    if t is int or t is bool or t is Uint:
        return float(value)
    if t is str:
        try:
            return float(value)
        except ValueError:
            raise ExprError(f"cannot convert '{value[:40]}' to double") from None
    raise _no_overload("double", value)  # unlike cel-python's double(null) == 0.0


def to_string(value: Any) -> str:
    t = type(value)
    if t is str:
        return str(value)
    if t is int or t is float or t is Uint:
        return str(value)
    if t is bool:
        # Unlike cel-python ('True'): the CEL specification's 'true' and 'false'.
        return "true" if value else "false"
    if t is dt.datetime:
        # cel-python's format: whole seconds, 'Z' or the value's own offset.
        text = value.strftime("%Y-%m-%dT%H:%M:%S%z")
        return f"{text[:-5]}Z" if text.endswith("+0000") else f"{text[:-2]}:{text[-2:]}"
    if t is dt.timedelta:
        return f"{int(value.total_seconds())}s"  # cel-python's: whole seconds
    if t is bytes:
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ExprError("bytes are not valid UTF-8") from None
    # Unlike cel-python, whose string(null) is 'None' and string([..]) a Python repr.
    raise _no_overload("string", value)


_TRUE: Final = frozenset({"true", "True", "TRUE", "t", "1"})
_FALSE: Final = frozenset({"false", "False", "FALSE", "f", "0"})


def to_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    if type(value) is str:
        # Unlike cel-python, which also takes any integer text ('2' gives a true that
        # is not == true) and bool(null) == false: the CEL specification's words only.
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ExprError(f"cannot convert '{value[:40]}' to bool")
    raise _no_overload("bool", value)


def to_timestamp(value: Any) -> dt.datetime:
    if type(value) is dt.datetime:
        return value
    if type(value) is str:
        return _parse_timestamp(value)
    raise _no_overload("timestamp", value)


def _parse_timestamp(text: str) -> dt.datetime:
    # cel-python parses with pendulum (RFC 3339, and also dates and other ISO 8601 forms).
    # Unlike cel-python, a time without a date is refused: pendulum gives it today's
    # date, which would make a constant change from one day to the next.
    try:
        if not isinstance(pendulum.parse(text, exact=True), dt.date):
            raise ValueError(text)
        stamp = ct.TimestampType(text)
    except Exception:  # pendulum raises a variety of errors on bad text
        raise ExprError(f"cannot convert '{text[:40]}' to a timestamp") from None
    return dt.datetime(stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute,
                       stamp.second, stamp.microsecond, tzinfo=stamp.tzinfo)


def to_duration(value: Any) -> dt.timedelta:
    t = type(value)
    if t is dt.timedelta:
        return _duration(value)
    if t is str:
        try:
            span = ct.DurationType(value)  # '1h30m', '-1.5s', '300ms', also 'd' for days
        except Exception:
            raise ExprError(f"cannot convert '{value[:40]}' to a duration") from None
        return dt.timedelta(span.days, span.seconds, span.microseconds)
    if t is int or t is Uint or t is bool:  # cel-python's duration(seconds); true is 1
        return _duration(dt.timedelta(seconds=int(value)))
    raise _no_overload("duration", value)


# -- methods --------------------------------------------------------------------------------------

def text_contains(text: Any, part: Any) -> bool:
    # Unlike cel-python, where ('a' + 'b').contains('b') fails: its concatenation gives
    # a Python str, which lacks the contains() method of its StringType.
    if type(text) is str and type(part) is str:
        return part in text
    if type(text) is list or type(text) is dict:  # dyn values: cel-python's contains()
        return contains(text, part)
    raise _no_overload("contains", text, part)


def starts_with(text: Any, part: Any) -> bool:
    if type(text) is str and type(part) is str:
        return text.startswith(part)
    raise _no_overload("startsWith", text, part)


def ends_with(text: Any, part: Any) -> bool:
    if type(text) is str and type(part) is str:
        return text.endswith(part)
    raise _no_overload("endsWith", text, part)


_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is an ExprError, not a line on stderr


@functools.lru_cache(maxsize=512)
def regex(pattern: str) -> Any:
    """RE2, like cel-python and CEL itself: linear time, so no pattern hangs a worker."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise ExprError(f"bad regular expression: {exc}") from None


def matches(text: Any, pattern: Any) -> bool:
    if type(text) is str and type(pattern) is str:
        return _search(regex(pattern).search, text)
    raise _no_overload("matches", text, pattern)


def _search(search: Callable[[str], Any], text: str) -> bool:
    try:
        return search(text) is not None
    except ValueError:  # RE2 takes UTF-8: a lone surrogate ('\ud800') has none
        raise ExprError("text that is not valid Unicode") from None


_OFFSET: Final = re.compile(r"^([+-]?)(\d\d?):(\d\d)$")


@functools.lru_cache(maxsize=256)
def zone(name: str) -> dt.tzinfo:
    """A time zone as cel-python names them: 'UTC', an IANA name, or '+08:00'."""
    if name.lower() == "utc":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:
        pass
    except (ValueError, OSError):  # not even a well-formed key ('', '../x', 'America')
        raise ExprError(f"unknown time zone '{name[:40]}'") from None
    found = _OFFSET.match(name)
    if found is None:
        raise ExprError(f"unknown time zone '{name[:40]}'")
    sign, hours, minutes = found.groups()
    offset = dt.timedelta(minutes=(int(hours) * 60 + int(minutes)) * (-1 if sign == "-" else 1))
    try:
        return dt.timezone(offset)
    except ValueError:  # 24 hours or more
        raise ExprError(f"unknown time zone '{name[:40]}'") from None


_CALENDAR: Final[dict[str, Callable[[dt.datetime], int]]] = {
    "getFullYear": lambda t: t.year,
    "getMonth": lambda t: t.month - 1,  # 0-based, as CEL
    "getDate": lambda t: t.day,  # 1-based
    "getDayOfMonth": lambda t: t.day - 1,  # 0-based
    "getDayOfWeek": lambda t: t.isoweekday() % 7,  # 0 = Sunday
    "getDayOfYear": lambda t: t.timetuple().tm_yday - 1,  # 0-based
    "getHours": lambda t: t.hour,
    "getMinutes": lambda t: t.minute,
    "getSeconds": lambda t: t.second,
    "getMilliseconds": lambda t: t.microsecond // 1000,
}
# On a duration (a dyn value), cel-python's DurationType methods: whole units, truncated.
_SPAN: Final[dict[str, Callable[[float], int]]] = {
    "getHours": lambda s: int(s / 60 / 60),
    "getMinutes": lambda s: int(s / 60),
    "getSeconds": lambda s: int(s),
    "getMilliseconds": lambda s: int(s * 1000),
}


def calendar(method: str) -> Callable[..., int]:
    part = _CALENDAR[method]
    span = _SPAN.get(method)

    def get(value: Any, *tz: Any) -> int:
        if len(tz) > 1:
            raise ExprError(f"{method}() takes at most one time zone")
        name = tz[0] if tz else None
        if type(value) is dt.datetime:
            if name is None or name == "":  # cel-python: no (or an empty) zone is UTC
                where: dt.tzinfo = dt.UTC
            elif type(name) is str:
                where = zone(name)
            else:
                raise _no_overload(method, value, name)
            try:
                return part(value.astimezone(where))
            except OverflowError:
                raise ExprError("timestamp out of range") from None
        if type(value) is dt.timedelta and span is not None and name is None:
            return span(value.total_seconds())
        raise _no_overload(method, value, *tz)
    return get


_METHODS: Final[dict[str, Callable[..., Any]]] = {
    "contains": text_contains, "startsWith": starts_with, "endsWith": ends_with,
    "matches": matches, **{name: calendar(name) for name in _CALENDAR},
}
_CONVERSIONS: Final[dict[str, Callable[[Any], Any]]] = {
    "int": to_int, "uint": to_uint, "double": to_double, "string": to_string,
    "bool": to_bool, "timestamp": to_timestamp, "duration": to_duration,
}


def _call(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A custom function: plain values in, a plain value out, any exception an error."""
    def call(*args: Any) -> Any:
        try:
            result = function(*args)
        except ExprError:
            raise
        except Exception as exc:
            raise ExprError(f"{name}() failed: {exc}") from None
        return plain(result)
    return call


