"""Business-time arithmetic: SLA deadlines and used time over a :class:`Calendar`.

Pure functions, no Flask and no database. ``calendar=None`` is the built-in
``24x7`` (always working): durations are then plain elapsed time. Every
datetime passed in must be timezone-aware (a naive one raises ``TypeError``,
because guessing its zone would move deadlines by hours); every datetime
returned is in UTC.

On a business calendar a definition's duration means:

* ``d`` counts *working days*: the same local wall-clock time on the N-th
  next working day. A ``timedelta`` cannot tell ``1w`` from ``7d``, so ``1w``
  means 7 working days there (write ``5d`` for a working week); ``h``, ``m``
  and ``s`` count *working time*. :func:`split` makes this explicit.
* A day is working when its periods are not empty: a make-up working day
  (``workdays``, 调休) has Monday's periods, a holiday has none, any other
  day has its weekday's. A date in both lists is a working day.
* Periods are half-open: at 18:00 of "09:00-18:00" the office is closed, but
  a deadline may fall exactly on 18:00.

Local wall times become instants through the calendar's IANA zone, and
working time is measured in real (UTC) seconds, so "00:00-24:00" is 23 hours
on the spring-forward day and 25 on the fall-back day. A wall time skipped by
a DST jump (02:30 on 2026-03-08 in New York) maps to the instant of the jump
(03:00 EDT), not to what ``replace(tzinfo=zone)`` gives (03:30 EDT, shifted by
the gap): that keeps the mapping monotonic, so a period never ends before it
starts and adjacent periods never overlap; a period wholly inside the gap is
empty. A repeated wall time (fall-back) means its first occurrence.

A search that meets no working time for :data:`HORIZON_YEARS` years in a row
raises :class:`NoWorkingTime`: a calendar whose every working day is a
holiday is a definition error, not a reason to loop forever.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from .spec.model import Calendar

UTC = dt.UTC
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
HORIZON_YEARS = 3
_HORIZON_DAYS = 365 * HORIZON_YEARS + 1
#: Local dates whose working periods a calendar remembers (a few years' worth).
MEMO_DAYS = 4096

Period = tuple[dt.datetime, dt.datetime]


class NoWorkingTime(ValueError):
    """The calendar has no working time within :data:`HORIZON_YEARS` years."""


@dataclass(frozen=True)
class WorkDuration:
    """A duration on a business calendar: working days, then working seconds.

    Kept apart because a working day is not a fixed number of seconds (7.5
    hours at cn_office, none on a holiday): to add working *time* measured by
    :func:`elapsed`, use ``WorkDuration(seconds=...)``, never the timedelta.
    """

    days: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        if self.days < 0 or self.seconds < 0:
            raise ValueError(f"a work duration cannot be negative: {self}")


def split(delta: dt.timedelta) -> WorkDuration:
    """A definition's duration (``1d 4h``) as working days and working seconds.

    ``delta.days`` become working days (so ``1w`` is 7 of them), the rest
    working seconds. Definitions hold whole seconds; anything finer is
    refused rather than silently dropped.
    """
    if delta < dt.timedelta(0):
        raise ValueError(f"a duration cannot be negative: {delta}")
    if delta.microseconds:
        raise ValueError(f"a work duration is whole seconds, not {delta}")
    return WorkDuration(delta.days, delta.seconds)


def add(calendar: Calendar | None, start: dt.datetime,
        duration: dt.timedelta | WorkDuration) -> dt.datetime:
    """The deadline: ``duration`` of working time after ``start``.

    Moves ``start`` to the next working moment, adds the working days at the
    same local wall-clock time (moving forward if that is not working time),
    then walks the working periods for the working seconds.
    """
    start = _utc(start, "start")
    if calendar is None:
        if isinstance(duration, WorkDuration):
            duration = dt.timedelta(days=duration.days, seconds=duration.seconds)
        if duration < dt.timedelta(0):
            raise ValueError(f"a duration cannot be negative: {duration}")
        return start + duration
    work = split(duration) if isinstance(duration, dt.timedelta) else duration
    zone = zoneinfo.ZoneInfo(calendar.timezone)
    moment = next_working(calendar, start)
    if work.days:
        wall = moment.astimezone(zone)
        day, left, idle = wall.date(), work.days, 0
        while left:
            day += DAY
            if _hours(calendar, day):
                left, idle = left - 1, 0
            elif (idle := idle + 1) > _HORIZON_DAYS:
                raise _no_work(calendar, day - (idle - 1) * DAY)
        moment = next_working(calendar, _instant(zone, day, wall.time()))
    left_time = dt.timedelta(seconds=work.seconds)
    for begin, end in _periods_from(calendar, zone, moment):
        begin = max(begin, moment)
        if left_time <= end - begin:
            return begin + left_time
        left_time -= end - begin
    raise AssertionError("unreachable: _periods_from is endless or raises")


def elapsed(calendar: Calendar | None, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """The working time between two instants (zero if ``end <= start``).

    How much of an SLA target was used, or how long a paused clock stood
    still. Real seconds, so a ``timedelta`` of more than a day here is hours,
    not working days: pass it on to :func:`add` as ``WorkDuration(seconds=...)``.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return dt.timedelta(0)
    if calendar is None:
        return end - start
    zone = zoneinfo.ZoneInfo(calendar.timezone)
    total = dt.timedelta(0)
    day, last = start.astimezone(zone).date() - DAY, end.astimezone(zone).date()
    while day <= last:
        for begin, stop in _day_periods(calendar, zone, day):
            if stop > start and begin < end:
                total += min(stop, end) - max(begin, start)
        day += DAY
    return total


def is_working(calendar: Calendar | None, moment: dt.datetime) -> bool:
    """Whether ``moment`` lies inside a working period (24x7: always)."""
    moment = _utc(moment, "moment")
    if calendar is None:
        return True
    zone = zoneinfo.ZoneInfo(calendar.timezone)
    day = moment.astimezone(zone).date()
    return any(begin <= moment < end
               for d in (day - DAY, day) for begin, end in _day_periods(calendar, zone, d))


def next_working(calendar: Calendar | None, moment: dt.datetime) -> dt.datetime:
    """``moment`` if it is working time, else the start of the next working period."""
    moment = _utc(moment, "moment")
    if calendar is None:
        return moment
    begin, _ = next(_periods_from(calendar, zoneinfo.ZoneInfo(calendar.timezone), moment))
    return max(begin, moment)


def _utc(moment: dt.datetime, what: str) -> dt.datetime:
    """``moment`` in UTC. Aware arithmetic in a ZoneInfo zone is wall-clock
    arithmetic (wrong across DST), so everything here works in UTC."""
    if not isinstance(moment, dt.datetime):
        raise TypeError(f"{what} must be a datetime, not {type(moment).__name__}")
    if moment.utcoffset() is None:
        raise TypeError(f"{what} must be timezone-aware, not naive: {moment.isoformat()}")
    return moment.astimezone(UTC)


def _hours(calendar: Calendar, day: dt.date) -> tuple[tuple[dt.time, dt.time], ...]:
    """The wall-clock periods of a local date: make-up days work Monday's hours."""
    if day in calendar.workdays:
        return calendar.hours.get(0, ())
    if day in calendar.holidays:
        return ()
    return calendar.hours.get(day.weekday(), ())


def _day_periods(calendar: Calendar, zone: zoneinfo.ZoneInfo, day: dt.date
                 ) -> tuple[Period, ...]:
    """The non-empty working periods of a local date as UTC instants, in order."""
    found: tuple[Period, ...] | None = calendar.memo.get(day)
    if found is None:
        if len(calendar.memo) >= MEMO_DAYS:
            calendar.memo.clear()
        found = calendar.memo[day] = tuple(_work_out(calendar, zone, day))
    return found


def _work_out(calendar: Calendar, zone: zoneinfo.ZoneInfo, day: dt.date) -> list[Period]:
    out: list[Period] = []
    for start, end in _hours(calendar, day):
        begin = _instant(zone, day, start)
        # spec.calendars stores "24:00" as time.max: the next midnight.
        stop = _instant(zone, day + DAY, dt.time()) if end == dt.time.max else _instant(
            zone, day, end)
        if out:  # only an unchecked, hand-built calendar could overlap
            begin = max(begin, out[-1][1])
        if stop > begin:
            out.append((begin, stop))
    return out


def _periods_from(calendar: Calendar, zone: zoneinfo.ZoneInfo,
                  moment: dt.datetime) -> Iterator[Period]:
    """Every working period that ends after ``moment``, endlessly, in order.

    Starts a day early: a period of the previous local date may still be open.
    """
    day = moment.astimezone(zone).date()
    since, idle = day, 0
    day -= DAY
    while True:
        found = False
        for period in _day_periods(calendar, zone, day):
            if period[1] > moment:
                found = True
                yield period
        day += DAY
        if found:
            since, idle = day, 0
        elif (idle := idle + 1) > _HORIZON_DAYS:
            raise _no_work(calendar, since)


def _instant(zone: zoneinfo.ZoneInfo, day: dt.date, wall: dt.time) -> dt.datetime:
    """The UTC instant of a wall time on a local date.

    A wall time skipped by a DST jump maps to the jump itself, found by
    bisecting between its two possible readings (at most a few hours apart).
    """
    local = dt.datetime.combine(day, wall.replace(tzinfo=None, fold=0), zone)
    after = local.astimezone(UTC)
    if after.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return after
    offset = after.astimezone(zone).utcoffset()
    # Read with the later offset it is before the jump; jumps fall on whole seconds.
    before = local.replace(fold=1).astimezone(UTC).replace(microsecond=0)
    span = int((after - before).total_seconds()) + 1
    while span > 1:
        middle = before + dt.timedelta(seconds=span // 2)
        if middle.astimezone(zone).utcoffset() == offset:
            span //= 2
        else:
            before, span = middle, span - span // 2
    return before + SECOND


def _no_work(calendar: Calendar, since: dt.date) -> NoWorkingTime:
    return NoWorkingTime(
        f"calendar '{calendar.name}' has no working time within {HORIZON_YEARS} years after "
        f"{since.isoformat()}; check its hours and holidays")
