"""Periods in a time zone: where days, weeks, months and quarters begin, as UTC
instants, so that SQL buckets rows by comparing timestamps (exact across DST on
every database, no time zone support needed in SQLite)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UNITS = ("day", "week", "month", "quarter")
#: More buckets than this: ask for a coarser unit (a CASE per bucket in SQL).
MAX_BUCKETS = 400


class TooManyPeriods(ValueError):
    pass


def bounds(start: dt.date | None, end: dt.date, zone: str) -> tuple[dt.datetime | None,
                                                                     dt.datetime]:
    """The UTC instants of local midnight on ``start`` and after ``end`` (inclusive
    dates); None for no start (all time)."""
    tz = ZoneInfo(zone)
    low = (dt.datetime.combine(start, dt.time(), tz).astimezone(dt.UTC)
           if start is not None else None)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    return low, high


def first_day(day: dt.date, unit: str) -> dt.date:
    if unit == "week":  # ISO weeks start on Monday
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day


def following(day: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return day + dt.timedelta(days=1)
    if unit == "week":
        return day + dt.timedelta(days=7)
    months = 1 if unit == "month" else 3
    month = day.month - 1 + months
    return dt.date(day.year + month // 12, month % 12 + 1, 1)


def label(day: dt.date, unit: str) -> str:
    if unit == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if unit == "month":
        return f"{day.year}-{day.month:02d}"
    if unit == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return day.isoformat()


def buckets(start: dt.date, end: dt.date, unit: str, zone: str
            ) -> list[tuple[str, dt.datetime]]:
    """(label, UTC instant where the bucket starts), from the bucket holding
    ``start`` to the one holding ``end``; each ends where the next begins."""
    tz = ZoneInfo(zone)
    out = []
    day = first_day(start, unit)
    while day <= end:
        out.append((label(day, unit),
                    dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)))
        if len(out) > MAX_BUCKETS:
            raise TooManyPeriods(f"more than {MAX_BUCKETS} {unit}s between {start} and "
                                 f"{end}: group by a longer period or shorten the range")
        day = following(day, unit)
    return out
