"""worktime: SLA deadlines and used time over business calendars.

Expected instants are written as local wall times and worked out by hand:
cn_office works 09:00-12:00 and 13:30-18:00 (7.5 hours) Monday to Friday.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import textwrap
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseloop import spec
from caseloop.spec import Calendar
from caseloop.worktime import (
    NoWorkingTime,
    WorkDuration,
    add,
    elapsed,
    is_working,
    next_working,
    split,
)

from .conftest import ROOT

UTC = dt.UTC
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
D = dt.timedelta(days=1)
PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True)


@functools.cache
def cn_office() -> Calendar:
    return spec.load([ROOT / "workflows" / "calendars"]).calendars["cn_office"]


@functools.cache
def calendar(hours: str, zone: str = "America/New_York") -> Calendar:
    """A calendar named ``c`` in ``zone``, open ``hours`` every day of the week."""
    days = "".join(f"  {d}: '{hours}'\n" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    text = f"calendar: c\ntimezone: {zone}\nhours:\n{days}"
    definitions, problems = spec.check_texts({"c.yaml": text})
    assert [p.format() for p in problems] == []
    return definitions.calendars["c"]


def cn(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def ny(text: str, fold: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NEW_YORK, fold=fold)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- cn_office ------------------------------------------------------------------------------


@pytest.mark.parametrize("start, duration, deadline", [
    # Friday 17:00-18:00 is one hour, Monday 09:00-10:00 the second.
    ("2026-03-13 17:00", 2 * H, "2026-03-16 10:00"),
    # Lunch 12:00-13:30 is not working time.
    ("2026-03-10 12:30", H, "2026-03-10 14:30"),
    ("2026-03-10 11:30", H, "2026-03-10 14:00"),
    ("2026-03-10 11:00", H, "2026-03-10 12:00"),  # a deadline may end a period exactly
    ("2026-03-14 10:00", H, "2026-03-16 10:00"),  # Saturday
    ("2026-03-14 10:00", 0 * H, "2026-03-16 09:00"),
    ("2026-03-10 10:15", 0 * H, "2026-03-10 10:15"),
    # Days: the same wall time on the N-th next working day.
    ("2026-03-13 10:00", D, "2026-03-16 10:00"),
    ("2026-03-13 17:30", D, "2026-03-16 17:30"),
    ("2026-03-12 12:30", D, "2026-03-13 13:30"),  # moved out of lunch first
    ("2026-03-13 18:00", D, "2026-03-17 09:00"),  # moved to Monday 09:00 first
    ("2026-03-13 17:00", D + 4 * H, "2026-03-17 12:00"),
    ("2026-03-06 10:00", dt.timedelta(days=5), "2026-03-13 10:00"),
    ("2026-03-06 10:00", dt.timedelta(weeks=1), "2026-03-17 10:00"),  # 1w = 7 working days
    ("2026-03-02 10:00", 100 * D, "2026-07-24 10:00"),
    # National Day: 1-7 October off, Saturday 10 October a make-up day.
    ("2026-09-30 10:00", D, "2026-10-08 10:00"),  # Wednesday, the last day before
    ("2026-09-30 10:00", 3 * D, "2026-10-10 10:00"),
    ("2026-09-30 17:00", 2 * H, "2026-10-08 10:00"),
    ("2026-10-09 17:00", 2 * H, "2026-10-10 10:00"),  # Friday to the make-up Saturday
    ("2026-10-10 17:00", 2 * H, "2026-10-12 10:00"),  # Sunday 11 October is off
    ("2026-10-03 10:00", 0 * H, "2026-10-08 09:00"),
    # Mid-Autumn (25-27 September) and its make-up Sunday, 20 September.
    ("2026-09-24 17:00", 2 * H, "2026-09-28 10:00"),
    ("2026-09-19 10:00", H, "2026-09-20 10:00"),
    # New Year: 1-3 January off, Sunday 4 January worked.
    ("2025-12-31 10:00", D, "2026-01-04 10:00"),
])
def test_add_on_cn_office(start: str, duration: dt.timedelta, deadline: str) -> None:
    result = add(cn_office(), cn(start), duration)
    assert result == cn(deadline)
    assert result.tzinfo is UTC


def test_a_day_lands_on_the_wall_time_or_the_next_working_moment() -> None:
    text = """\
        calendar: split
        timezone: Asia/Shanghai
        hours: {mon: '09:00-12:00', tue: '14:00-18:00', wed: closed, thu: '08:00-09:00'}
        holidays: ['2026-03-19']
        workdays: ['2026-03-21']
    """
    definitions, problems = spec.check_texts({"split.yaml": textwrap.dedent(text)})
    assert problems == []
    cal = definitions.calendars["split"]
    assert add(cal, cn("2026-03-16 10:00"), D) == cn("2026-03-17 14:00")  # Mon -> Tue
    assert add(cal, cn("2026-03-16 10:00"), 2 * D) == cn("2026-03-21 10:00")  # Sat = Mon
    assert add(cal, cn("2026-03-17 15:00"), D) == cn("2026-03-23 09:00")  # Sat 15:00 is closed
    assert add(cal, cn("2026-03-21 11:00"), D) == cn("2026-03-23 11:00")


@pytest.mark.parametrize("start, end, worked", [
    ("2026-03-13 09:00", "2026-03-16 09:00", 7.5 * H),
    ("2026-03-13 11:00", "2026-03-13 14:00", 1.5 * H),
    ("2026-03-14 00:00", "2026-03-15 23:59", 0 * H),
    ("2026-09-30 09:00", "2026-10-08 09:00", 7.5 * H),
    ("2026-10-09 00:00", "2026-10-12 00:00", 15 * H),  # Friday and the make-up Saturday
    ("2026-03-16 10:00", "2026-03-13 10:00", 0 * H),  # end before start
    ("2026-03-16 10:00", "2026-03-16 10:00", 0 * H),
])
def test_elapsed_on_cn_office(start: str, end: str, worked: dt.timedelta) -> None:
    assert elapsed(cn_office(), cn(start), cn(end)) == worked


@pytest.mark.parametrize("moment, working, following", [
    ("2026-03-10 11:59", True, "2026-03-10 11:59"),
    ("2026-03-10 12:00", False, "2026-03-10 13:30"),
    ("2026-03-10 13:30", True, "2026-03-10 13:30"),
    ("2026-03-13 18:00", False, "2026-03-16 09:00"),
    ("2026-10-01 10:00", False, "2026-10-08 09:00"),
    ("2026-10-10 10:00", True, "2026-10-10 10:00"),
])
def test_is_working_and_next_working(moment: str, working: bool, following: str) -> None:
    assert is_working(cn_office(), cn(moment)) is working
    assert next_working(cn_office(), cn(moment)) == cn(following)


def test_inputs_in_any_zone_mean_the_same_instant() -> None:
    start = dt.datetime(2026, 3, 13, 9, tzinfo=UTC)  # 17:00 in Shanghai
    assert add(cn_office(), start, 2 * H) == utc("2026-03-16 02:00")
    assert add(cn_office(), start.astimezone(NEW_YORK), 2 * H) == utc("2026-03-16 02:00")


# -- daylight saving time (New York: 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00) --


def test_a_whole_day_is_23_or_25_real_hours() -> None:
    always = calendar("00:00-24:00")
    assert elapsed(always, ny("2026-03-08 00:00"), ny("2026-03-09 00:00")) == 23 * H
    assert elapsed(always, ny("2026-11-01 00:00"), ny("2026-11-02 00:00")) == 25 * H
    assert elapsed(always, ny("2026-03-07 00:00"), ny("2026-11-07 00:00")) == 245 * 24 * H


def test_add_across_dst_counts_hours_in_real_time_and_days_on_the_wall() -> None:
    always = calendar("00:00-24:00")
    assert add(always, ny("2026-03-07 12:00"), WorkDuration(seconds=24 * 3600)) \
        == ny("2026-03-08 13:00")
    assert add(always, ny("2026-03-07 12:00"), D) == ny("2026-03-08 12:00")
    assert add(always, ny("2026-10-31 12:00"), WorkDuration(seconds=24 * 3600)) \
        == ny("2026-11-01 11:00")
    assert add(always, ny("2026-10-31 12:00"), D) == ny("2026-11-01 12:00")
    assert add(always, ny("2026-03-07 23:00"), 2 * H) == ny("2026-03-08 01:00")  # 24:00 = 00:00


def test_night_hours_on_the_short_and_the_long_day() -> None:
    nights = calendar("01:00-04:00")
    assert elapsed(nights, ny("2026-03-08 00:00"), ny("2026-03-09 00:00")) == 2 * H
    assert elapsed(nights, ny("2026-11-01 00:00"), ny("2026-11-02 00:00")) == 4 * H
    assert add(nights, ny("2026-03-08 01:00"), 2 * H + 30 * M) == utc("2026-03-09 05:30")
    assert add(nights, ny("2026-11-01 01:00"), 4 * H) == utc("2026-11-01 09:00")
    assert add(nights, ny("2026-11-01 01:30", fold=1), H) == utc("2026-11-01 07:30")


def test_a_wall_time_skipped_by_the_jump_maps_to_the_jump() -> None:
    # replace(tzinfo=...) reads 02:30 as 03:30 EDT; worktime uses the jump, 03:00 EDT.
    assert ny("2026-03-08 02:30").astimezone(UTC) == utc("2026-03-08 07:30")
    jump = utc("2026-03-08 07:00")
    assert next_working(calendar("02:30-05:00"), ny("2026-03-08 00:00")) == jump
    split_night = calendar("00:00-02:30, 02:45-05:00")
    day = elapsed(split_night, ny("2026-03-08 00:00"), ny("2026-03-09 00:00"))
    assert day == 4 * H  # 00:00 EST to 05:00 EDT, counted once
    assert add(split_night, ny("2026-03-08 00:00"), 2 * H) == jump
    assert is_working(split_night, jump)
    assert elapsed(split_night, ny("2026-03-09 00:00"), ny("2026-03-10 00:00")) == 4 * H + 45 * M
    straddling = calendar("02:30-03:15")  # would end before it starts with replace()
    assert elapsed(straddling, ny("2026-03-08 00:00"), ny("2026-03-09 00:00")) == 15 * M
    assert add(straddling, ny("2026-03-08 00:00"), 20 * M) == utc("2026-03-09 06:35")


def test_a_period_inside_the_gap_is_empty() -> None:
    cal = calendar("02:10-02:50, 06:00-07:00")
    assert elapsed(cal, ny("2026-03-08 00:00"), ny("2026-03-09 00:00")) == H
    assert next_working(cal, ny("2026-03-08 00:00")) == ny("2026-03-08 06:00")
    assert not is_working(cal, ny("2026-03-08 03:00"))


def test_a_repeated_wall_time_means_its_first_occurrence() -> None:
    cal = calendar("01:30-02:00")
    assert next_working(cal, ny("2026-11-01 00:00")) == utc("2026-11-01 05:30")  # EDT
    assert elapsed(cal, ny("2026-11-01 00:00"), ny("2026-11-02 00:00")) == 1.5 * H


def test_a_jump_at_midnight() -> None:
    # Santiago moves from 00:00 to 01:00 on 2026-09-06: the day starts at 01:00.
    cal = calendar("00:00-24:00", "America/Santiago")
    santiago = zoneinfo.ZoneInfo("America/Santiago")
    saturday = dt.datetime(2026, 9, 5, tzinfo=santiago)
    assert elapsed(cal, saturday, saturday + 2 * D) == 47 * H
    assert add(cal, saturday, D) == utc("2026-09-06 04:00")


# -- 24x7 -----------------------------------------------------------------------------------


def test_24x7_is_plain_arithmetic_in_real_time() -> None:
    start = ny("2026-03-07 12:00")
    assert add(None, start, D) == ny("2026-03-08 13:00")  # 24 real hours, not the wall day
    assert add(None, start, WorkDuration(days=1, seconds=60)) == ny("2026-03-08 13:01")
    assert add(None, start, dt.timedelta(0)) == start
    assert add(None, start, D).tzinfo is UTC
    assert elapsed(None, start, ny("2026-03-08 12:00")) == 23 * H
    assert elapsed(None, ny("2026-03-08 12:00"), start) == dt.timedelta(0)
    assert is_working(None, start)
    assert next_working(None, start) == start
    assert next_working(None, start).tzinfo is UTC


# -- properties -----------------------------------------------------------------------------

MOMENTS = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 31, 23, 59),
                       timezones=st.sampled_from([UTC, SHANGHAI, NEW_YORK]))


@PROPERTY
@given(MOMENTS, st.integers(0, 200 * 3600))
def test_elapsed_inverts_add(start: dt.datetime, seconds: int) -> None:
    deadline = add(cn_office(), start, WorkDuration(seconds=seconds))
    assert elapsed(cn_office(), next_working(cn_office(), start), deadline) \
        == dt.timedelta(seconds=seconds)
    assert elapsed(cn_office(), start, deadline) == dt.timedelta(seconds=seconds)


@PROPERTY
@given(st.sampled_from(["00:00-02:30, 02:45-05:00", "01:30-02:00, 02:10-02:50, 23:00-24:00"]),
       st.lists(MOMENTS, min_size=3, max_size=3).map(sorted))
def test_elapsed_adds_up_across_dst(hours: str, moments: list[dt.datetime]) -> None:
    cal = calendar(hours)
    a, b, c = moments
    assert elapsed(cal, a, b) + elapsed(cal, b, c) == elapsed(cal, a, c)
    if is_working(cal, b):
        assert next_working(cal, b) == b
    else:
        following = next_working(cal, b)
        assert following > b and is_working(cal, following)
        assert elapsed(cal, b, following) == dt.timedelta(0)


# -- errors ---------------------------------------------------------------------------------


def test_a_calendar_without_working_time_raises_quickly() -> None:
    mondays = calendar("09:00-18:00", "Asia/Shanghai")
    mondays = dataclasses.replace(
        mondays, name="mondays",
        hours={0: ((dt.time(9), dt.time(18)),), **{i: () for i in range(1, 7)}},
        holidays=frozenset(dt.date(2026, 1, 5) + i * 7 * D for i in range(53 * 4)))
    expected = ("calendar 'mondays' has no working time within 3 years after 2026-01-01; "
                "check its hours and holidays")
    with pytest.raises(NoWorkingTime, match=expected):
        add(mondays, cn("2026-01-01 10:00"), H)
    with pytest.raises(NoWorkingTime, match=expected):
        next_working(mondays, cn("2026-01-01 10:00"))
    with pytest.raises(NoWorkingTime, match="after 2025-12-30"):
        add(mondays, cn("2025-12-29 10:00"), D)  # the last working Monday
    assert not is_working(mondays, cn("2026-01-05 10:00"))
    assert elapsed(mondays, cn("2026-01-01 00:00"), cn("2029-01-01 00:00")) == dt.timedelta(0)
    assert isinstance(NoWorkingTime("x"), ValueError)


def test_naive_datetimes_are_refused() -> None:
    naive = dt.datetime(2026, 3, 10, 10)
    aware = cn("2026-03-10 10:00")
    for call in (lambda: add(cn_office(), naive, H), lambda: add(None, naive, H),
                 lambda: elapsed(cn_office(), aware, naive),
                 lambda: elapsed(None, naive, aware),
                 lambda: is_working(cn_office(), naive),
                 lambda: next_working(None, naive)):
        with pytest.raises(TypeError, match="must be timezone-aware"):
            call()


def test_negative_and_sub_second_durations_are_refused() -> None:
    start = cn("2026-03-10 10:00")
    with pytest.raises(ValueError, match="cannot be negative"):
        add(cn_office(), start, -H)
    with pytest.raises(ValueError, match="cannot be negative"):
        add(None, start, -H)
    with pytest.raises(ValueError, match="cannot be negative"):
        WorkDuration(seconds=-1)
    with pytest.raises(ValueError, match="whole seconds"):
        split(dt.timedelta(milliseconds=1))


def test_split_keeps_days_as_working_days() -> None:
    assert split(dt.timedelta(weeks=1)) == WorkDuration(days=7)
    assert split(dt.timedelta(days=1, hours=4)) == WorkDuration(days=1, seconds=4 * 3600)
    assert split(dt.timedelta(minutes=30)) == WorkDuration(seconds=1800)
    assert split(dt.timedelta(0)) == WorkDuration()


def test_a_calendar_remembers_its_days_within_a_bound_and_answers_the_same() -> None:
    """The per-date memo (a speed-up for SLA deadlines at creation) changes no answer and
    does not grow without bound over a long search."""
    from caseloop import worktime

    fresh = dataclasses.replace(cn_office(), memo={})
    start = cn("2026-11-20 17:00")
    assert add(fresh, start, 4 * H) == add(cn_office(), start, 4 * H) == cn("2026-11-23 12:00")
    assert fresh.memo  # worked out once, kept
    again = add(fresh, start, 4 * H)
    assert again == cn("2026-11-23 12:00")
    # Twelve years of dates walked: more than the memo keeps.
    end = start + dt.timedelta(days=12 * 366)
    total = elapsed(fresh, start, end)
    assert total == elapsed(dataclasses.replace(cn_office(), memo={}), start, end)
    assert 0 < len(fresh.memo) <= worktime.MEMO_DAYS
