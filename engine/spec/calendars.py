"""Build business calendars: working hours per weekday, holidays, make-up working days."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .build import Builder, content_hash
from .model import Calendar
from .problems import Problem
from .source import PathT, Source

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def build_calendars(sources: Mapping[str, Source], problems: list[Problem]
                    ) -> dict[str, Calendar]:
    out = {}
    for name, src in sources.items():
        cal = _build(Builder(src, problems))
        if cal is not None:
            out[name] = cal
    return out


def _build(b: Builder) -> Calendar | None:
    d: dict[str, Any] = b.src.data
    name = d["calendar"]
    b.name_matches_file(name, ("calendar",))
    try:
        zoneinfo.ZoneInfo(d["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tz folder
        b.report("CL014", f"unknown time zone '{d['timezone']}' (use an IANA name such as "
                 "Asia/Shanghai or Europe/Berlin)", ("timezone",))
    hours = {i: _periods(b, d["hours"].get(day, "closed"), ("hours", day))
             for i, day in enumerate(WEEKDAYS)}
    holidays = _dates(b, d.get("holidays", ()), ("holidays",))
    workdays = _dates(b, d.get("workdays", ()), ("workdays",))
    for i, day in enumerate(d.get("workdays", ())):
        if day in d.get("holidays", ()):
            b.report("CL015", f"{day} is both a holiday and a working day", ("workdays", i))
    if not any(hours.values()):
        b.report("CL015", "the calendar has no working hours on any weekday", ("hours",))
    if b.failed:
        return None
    return Calendar(name, b.text(d.get("title", name), ("title",)), d["timezone"],
                    MappingProxyType(hours), holidays, workdays, b.src.path,
                    content_hash(b.src.text), b.src.text)


def _periods(b: Builder, text: str, path: PathT) -> tuple[tuple[dt.time, dt.time], ...]:
    if text.strip() == "closed":
        return ()
    out: list[tuple[dt.time, dt.time]] = []
    for part in text.split(","):
        start_s, end_s = (x.strip() for x in part.split("-"))
        try:
            start = dt.time.fromisoformat(start_s)
            end = dt.time.max if end_s == "24:00" else dt.time.fromisoformat(end_s)
        except ValueError:
            b.report("CL014", f"'{part.strip()}' is not a time range within 00:00-24:00", path)
            continue
        if start >= end:
            b.report("CL015", f"'{part.strip()}' ends before it starts", path)
        elif out and start < out[-1][1]:
            b.report("CL015", f"'{part.strip()}' overlaps or precedes the period before it",
                     path)
        out.append((start, end))
    return tuple(out)


def _dates(b: Builder, days: Any, path: PathT) -> frozenset[dt.date]:
    out = set()
    for i, day in enumerate(days):
        try:
            out.add(dt.date.fromisoformat(day))
        except ValueError:
            b.report("CL014", f"'{day}' is not a calendar date", (*path, i))
    return frozenset(out)
