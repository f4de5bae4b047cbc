"""SLA clocks in a zone with daylight saving time, end to end: cases created and
moved through the case engine, swept by the worker under a fake clock. On SQLite
and PostgreSQL.

The definitions are in ``tests/fixtures/dst/``: a 'service' workflow whose policy
depends on the form's ``desk``:

* ``office`` (the default), calendar ``berlin_office``: Europe/Berlin, Monday to
  Friday 09:00-18:00, Good Friday (3 April 2026) and Easter Monday (6 April) off.
  ``response`` within 4h (working time), warned 30 minutes before, escalated at the
  deadline (notify the lead) and 1 hour after it (notify, raise the priority);
  ``resolution`` within 2d (working days).
* ``night``, calendar ``berlin_night``: every day 02:30-06:00. ``response`` within 1h,
  ``resolution`` within 2d, both warned 30 minutes before.
* ``shanghai``, calendar ``shanghai_office``: Beijing time (no DST) with National Day
  and its make-up Saturday, for contrast. ``response`` 4h, ``resolution`` 2d.

State ``waiting`` is of category ``paused``: the clocks stop there.

Berlin in 2026: CET (UTC+1) until Sunday 29 March 02:00, which becomes 03:00 CEST
(UTC+2); 02:00-02:59 does not exist that night. On Sunday 25 October 03:00 CEST
becomes 02:00 CET again: 02:00-02:59 happens twice. Every expected instant below is
written as a Berlin (or Beijing) wall time and worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from caseloop import spec
from caseloop.extension import state
from caseloop.models import Case, Job

from .test_cases import build_app, dispose, person, utc
from .test_loop import Clock, Loop

FIXTURES = Path(__file__).parent / "fixtures" / "dst"
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)


def wall(text: str, zone: zoneinfo.ZoneInfo = BERLIN, *, fold: int = 0) -> dt.datetime:
    """The UTC instant of a local wall time; ``fold=1``: the second of a repeated one.

    Refuses a wall time that does not exist (skipped by the spring jump), so that an
    expected value in a test cannot silently mean something else."""
    local = dt.datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)
    instant = local.astimezone(dt.UTC)
    assert instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None), \
        f"{text} does not exist in {zone.key}"
    return instant


def cn(text: str) -> dt.datetime:
    return wall(text, SHANGHAI)


@pytest.fixture(params=["sqlite", "postgresql"])
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    files = {p.name: p.read_text("utf-8") for p in sorted(FIXTURES.glob("*.yaml"))}
    app = build_app(request.param, tmp_path, files)
    with app.app_context():
        agent = person(app, "ann", ["agent"], ["care"])
        lead = person(app, "lena", ["lead"], ["care"])
        yield Loop(app, Clock(wall("2026-03-27 17:00")), agent, lead)
        state().db.session.remove()
    dispose(app)


def create(loop: Loop, at: dt.datetime, desk: str = "office") -> int:
    loop.clock.now = at
    return loop.create("service", {"title": "Broken heating", "desk": desk}).id


def fire(loop: Loop, case_id: int, at: dt.datetime, trigger: str) -> Case:
    loop.clock.now = at
    return loop.fire(case_id, trigger)


def due(case: Case, target: str) -> dt.datetime:
    return dt.datetime.fromisoformat(case.sla[target]["due"])


def work_at(loop: Loop, at: dt.datetime, case_id: int) -> tuple[Case, int]:
    """Run the worker until idle with the clock at ``at``: the case, and how many SLA
    moments (warnings, breaches, escalations) the sweep acted on."""
    loop.clock.now = at
    counts = loop.work()
    assert counts["dead"] == 0, counts
    return loop.get(case_id), counts["sla"]


def sla_events(loop: Loop, case_id: int) -> list[tuple[dt.datetime, dict[str, Any]]]:
    return [(utc(e.at), e.payload) for e in loop.events(case_id, "sla")]


def notifications(loop: Loop, case_id: int) -> list[tuple[dt.datetime, list[str], str]]:
    jobs = loop.session.execute(select(Job).where(
        Job.case_id == case_id, Job.kind == "notify").order_by(Job.id)).scalars()
    return [(utc(j.run_at), j.payload["to"], j.status) for j in jobs]


# -- deadlines ----------------------------------------------------------------------------

DEADLINES = {
    # Friday 17:00 CET before the spring jump. 4h: 17:00-18:00 on Friday, then Monday
    # 09:00-12:00 CEST. 2d: the same wall time two working days on (Mon, Tue), although
    # that is 95 real hours later, not 96.
    "office, Friday before spring forward": (
        "office", wall("2026-03-27 17:00"), wall("2026-03-30 12:00"), wall("2026-03-31 17:00")),
    # Friday 17:00 CEST before the autumn change: the same wall times, 97 real hours on.
    "office, Friday before fall back": (
        "office", wall("2026-10-23 17:00"), wall("2026-10-26 12:00"), wall("2026-10-27 17:00")),
    # Created on the Saturday of the jump: both clocks start on Monday 09:00 CEST.
    "office, Saturday of spring forward": (
        "office", wall("2026-03-28 10:00"), wall("2026-03-30 13:00"), wall("2026-04-01 09:00")),
    # Easter: Good Friday and Easter Monday are holidays. 4h: 1h on Thursday, 3h on
    # Tuesday. 2d: Tuesday 7 and Wednesday 8 April.
    "office, Thursday before Easter": (
        "office", wall("2026-04-02 17:00"), wall("2026-04-07 12:00"), wall("2026-04-08 17:00")),
    # Night desk, created Friday 02:45 CET. 2d: Sunday 29 March 02:45, which does not
    # exist; worktime maps a skipped wall time to the jump itself, 03:00 CEST (not to
    # 03:45 CEST, what reading 02:45 with the summer offset would give).
    "night, two days land in the gap": (
        "night", wall("2026-03-27 02:45"), wall("2026-03-27 03:45"), wall("2026-03-29 03:00")),
    # Night desk, created Saturday 05:30 CET. 1h: 05:30-06:00 on Saturday, then Sunday's
    # shift, which opens at the jump (03:00 CEST) instead of 02:30: 03:00-03:30.
    "night, the shift starts at the jump": (
        "night", wall("2026-03-28 05:30"), wall("2026-03-29 03:30"), wall("2026-03-30 05:30")),
    # Night desk, Saturday 05:30 CEST before the autumn change. 1h: 05:30-06:00 on
    # Saturday, then Sunday's shift from the first 02:30 (CEST) for 30 real minutes:
    # 03:00 CEST, which the clocks show as the second 02:00 (CET).
    "night, Sunday's shift starts at the first 02:30": (
        "night", wall("2026-10-24 05:30"), wall("2026-10-25 02:00", fold=1),
        wall("2026-10-26 05:30")),
    # Night desk, Friday 02:45 CEST. 2d: Sunday 02:45, a wall time seen twice that
    # night; it means its first occurrence (CEST).
    "night, two days land in the repeated hour": (
        "night", wall("2026-10-23 02:45"), wall("2026-10-23 03:45"), wall("2026-10-25 02:45")),
    # Shanghai, the Wednesday before National Day (1-7 October off): 4h is 1h on
    # Wednesday and 3h on Thursday 8 October; 2d is Thursday 8 and Friday 9.
    "shanghai, before National Day": (
        "shanghai", cn("2026-09-30 17:00"), cn("2026-10-08 12:00"), cn("2026-10-09 17:00")),
    # Shanghai, Friday 9 October: Saturday 10 October is a make-up working day.
    "shanghai, before a make-up Saturday": (
        "shanghai", cn("2026-10-09 17:00"), cn("2026-10-10 12:00"), cn("2026-10-12 17:00")),
}


@pytest.mark.parametrize("desk, created, response, resolution", DEADLINES.values(),
                         ids=DEADLINES.keys())
def test_deadlines_at_the_right_wall_times(loop: Loop, desk: str, created: dt.datetime,
                                           response: dt.datetime,
                                           resolution: dt.datetime) -> None:
    case_id = create(loop, created, desk)
    case = loop.get(case_id)
    assert case.sla_policy == desk
    assert (due(case, "response"), due(case, "resolution")) == (response, resolution)
    assert utc(case.due_at) == response
    # The first thing the sweep has to do is the response warning, 30 real minutes early.
    assert utc(case.sla_next_at) == response - dt.timedelta(minutes=30)


def test_working_days_keep_the_wall_time_so_real_time_stretches_and_shrinks(
        loop: Loop) -> None:
    spring = loop.get(create(loop, wall("2026-03-27 17:00")))
    autumn = loop.get(create(loop, wall("2026-10-23 17:00")))
    # Friday 17:00 to Tuesday 17:00 is 96 hours on the wall clock.
    assert due(spring, "resolution") - wall("2026-03-27 17:00") == 95 * HOUR
    assert due(autumn, "resolution") - wall("2026-10-23 17:00") == 97 * HOUR
    # Working hours are real time: 1 + 3 of them either way; Monday 12:00 is 10:00 UTC
    # in summer time, 11:00 UTC in winter time.
    assert due(spring, "response") == dt.datetime(2026, 3, 30, 10, tzinfo=dt.UTC)
    assert due(autumn, "response") == dt.datetime(2026, 10, 26, 11, tzinfo=dt.UTC)


def test_a_deadline_in_the_gap_is_the_instant_of_the_jump(loop: Loop) -> None:
    case = loop.get(create(loop, wall("2026-03-27 02:45"), "night"))
    # replace(tzinfo=...) would read the missing 02:45 as 03:45 CEST (01:45 UTC).
    naive = dt.datetime(2026, 3, 29, 2, 45, tzinfo=BERLIN).astimezone(dt.UTC)
    assert naive == dt.datetime(2026, 3, 29, 1, 45, tzinfo=dt.UTC)
    assert due(case, "resolution") == dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC)
    # The last second before it is 01:59:59 CET: 02:00-02:59 never happens.
    assert due(case, "resolution") - SECOND == wall("2026-03-29 01:59:59")


# -- the worker acts at the right instants --------------------------------------------------


def test_warning_breach_and_escalations_across_spring_forward(loop: Loop) -> None:
    case_id = create(loop, wall("2026-03-27 17:00"))
    # Nothing is due over the weekend, whatever the clock says.
    for moment in (wall("2026-03-27 17:00"), wall("2026-03-28 12:00"),
                   wall("2026-03-29 03:00"), wall("2026-03-30 11:30") - SECOND):
        case, swept = work_at(loop, moment, case_id)
        assert swept == 0 and not case.sla["response"]["warned"], moment
    assert sla_events(loop, case_id) == [] and notifications(loop, case_id) == []

    # The warning: 30 minutes before Monday 12:00 CEST, to the assignee and the team.
    warned = wall("2026-03-30 11:30")
    case, swept = work_at(loop, warned, case_id)
    assert swept == 1
    assert case.sla["response"]["warned"] and not case.sla_breached
    assert notifications(loop, case_id) == [(warned, ["assignee", "team"], "done")]
    assert utc(case.sla_next_at) == wall("2026-03-30 12:00")
    # People read the deadline on their office's clock, not in UTC.
    text = loop.session.execute(select(Job.payload).where(Job.case_id == case_id,
                                                          Job.kind == "notify")).scalar_one()
    assert "is due at 2026-03-30 12:00 (Europe/Berlin)" in text["message"]["en"]

    case, swept = work_at(loop, wall("2026-03-30 12:00") - SECOND, case_id)
    assert swept == 0 and not case.sla_breached

    # The breach, and the first escalation (after 0m) at the same instant.
    deadline = wall("2026-03-30 12:00")
    case, swept = work_at(loop, deadline, case_id)
    assert swept == 1
    assert case.sla_breached and case.sla["response"]["breached"]
    assert case.sla["response"]["level"] == 1 and case.priority == "normal"
    assert utc(case.sla_next_at) == wall("2026-03-30 13:00")

    case, swept = work_at(loop, wall("2026-03-30 13:00") - SECOND, case_id)
    assert swept == 0 and case.sla["response"]["level"] == 1

    # One hour after the deadline (plain elapsed time): the second level raises the priority.
    later = wall("2026-03-30 13:00")
    case, swept = work_at(loop, later, case_id)
    assert swept == 1
    assert case.sla["response"]["level"] == 2 and case.priority == "high"
    assert case.data["priority"] == "high"

    # What is left is the resolution target: Tuesday 17:00 CEST.
    assert utc(case.sla_next_at) == wall("2026-03-31 17:00")
    case, swept = work_at(loop, wall("2026-03-31 17:00") - SECOND, case_id)
    assert swept == 0 and not case.sla["resolution"]["breached"]
    case, swept = work_at(loop, wall("2026-03-31 17:00"), case_id)
    assert swept == 1 and case.sla["resolution"]["breached"]
    assert case.sla_next_at is None  # no warning, no escalation left

    assert sla_events(loop, case_id) == [
        (warned, {"sla": "response", "warned": case.sla["response"]["due"]}),
        (deadline, {"sla": "response", "breached": case.sla["response"]["due"]}),
        (deadline, {"sla": "response", "escalation": 1, "notify": ["role:lead"]}),
        (later, {"sla": "response", "escalation": 2, "notify": ["role:lead"],
                 "priority": ["normal", "high"]}),
        (wall("2026-03-31 17:00"),
         {"sla": "resolution", "breached": case.sla["resolution"]["due"]}),
    ]
    assert notifications(loop, case_id) == [
        (warned, ["assignee", "team"], "done"),
        (deadline, ["role:lead"], "done"),
        (later, ["role:lead"], "done"),
    ]
    # Nothing more happens, however late it gets.
    case, swept = work_at(loop, wall("2026-12-31 12:00"), case_id)
    assert swept == 0 and len(sla_events(loop, case_id)) == 5


def test_a_deadline_in_the_gap_is_warned_and_breached_at_real_instants(loop: Loop) -> None:
    case_id = create(loop, wall("2026-03-27 02:45"), "night")
    assert fire(loop, case_id, wall("2026-03-27 03:00"), "take").sla["response"]["met"]
    # Resolution due at the jump (03:00 CEST), warned 30 real minutes before: 01:30 CET,
    # although the wall clock moves 90 minutes between the two.
    warning, deadline = wall("2026-03-29 01:30"), wall("2026-03-29 03:00")
    assert deadline - warning == dt.timedelta(minutes=30)
    case = loop.get(case_id)
    assert (utc(case.due_at), utc(case.sla_next_at)) == (deadline, warning)

    case, swept = work_at(loop, warning - SECOND, case_id)
    assert swept == 0 and not case.sla["resolution"]["warned"]
    case, swept = work_at(loop, warning, case_id)
    assert swept == 1 and case.sla["resolution"]["warned"]
    case, swept = work_at(loop, wall("2026-03-29 01:59:59"), case_id)  # a second before
    assert swept == 0 and not case.sla_breached
    case, swept = work_at(loop, deadline, case_id)
    assert swept == 1 and case.sla_breached
    assert sla_events(loop, case_id) == [
        (warning, {"sla": "resolution", "warned": "2026-03-29T01:00:00+00:00"}),
        (deadline, {"sla": "resolution", "breached": "2026-03-29T01:00:00+00:00"})]


# -- pauses ----------------------------------------------------------------------------------


def test_a_pause_across_fall_back_keeps_the_working_time_that_was_left(loop: Loop) -> None:
    case_id = create(loop, wall("2026-10-23 09:00"))
    fire(loop, case_id, wall("2026-10-23 10:00"), "take")
    before = loop.get(case_id)
    assert due(before, "resolution") == wall("2026-10-27 09:00")  # Tuesday, CET
    # On hold from Friday 16:00 CEST: 2h of Friday and 9h of Monday were left.
    held = fire(loop, case_id, wall("2026-10-23 16:00"), "hold")
    assert held.paused_at is not None and held.sla_next_at is None

    # The old deadline passes during the pause: nothing is breached.
    case, swept = work_at(loop, wall("2026-10-27 09:30"), case_id)
    assert swept == 0 and not case.sla_breached and case.sla_next_at is None

    # Resumed Tuesday 10:00 CET: 11 working hours left -> Tuesday 10:00-18:00 (8h), then
    # Wednesday 09:00-12:00 (3h).
    resumed = fire(loop, case_id, wall("2026-10-27 10:00"), "resume")
    assert resumed.paused_at is None
    assert due(resumed, "resolution") == wall("2026-10-28 12:00")
    # Paused working time: Friday 16:00-18:00, Monday 09:00-18:00, Tuesday 09:00-10:00.
    assert resumed.sla["resolution"]["paused_s"] == 12 * 3600
    assert utc(resumed.sla_next_at) == wall("2026-10-28 12:00")

    case, swept = work_at(loop, wall("2026-10-28 12:00") - SECOND, case_id)
    assert swept == 0 and not case.sla_breached
    case, swept = work_at(loop, wall("2026-10-28 12:00"), case_id)
    assert swept == 1 and case.sla_breached


def test_a_pause_across_spring_forward_counts_the_short_shift(loop: Loop) -> None:
    case_id = create(loop, wall("2026-03-27 02:45"), "night")
    fire(loop, case_id, wall("2026-03-27 03:00"), "take")
    # On hold Saturday 05:00 CET; the resolution deadline (Sunday, the jump) left 1h of
    # Saturday's shift.
    fire(loop, case_id, wall("2026-03-28 05:00"), "hold")
    case, swept = work_at(loop, wall("2026-03-29 04:00"), case_id)  # past the old deadline
    assert swept == 0 and not case.sla_breached
    # Resumed Sunday 05:00 CEST: the hour left ends with the shift, 06:00 CEST.
    resumed = fire(loop, case_id, wall("2026-03-29 05:00"), "resume")
    assert due(resumed, "resolution") == wall("2026-03-29 06:00")
    # Paused: Saturday 05:00-06:00 and Sunday 03:00-05:00 CEST (the shift opened at the
    # jump): 3h, not the 3.5h the wall clock suggests.
    assert resumed.sla["resolution"]["paused_s"] == 3 * 3600
    assert utc(resumed.sla_next_at) == wall("2026-03-29 05:30")  # the warning
    case, swept = work_at(loop, wall("2026-03-29 06:00"), case_id)
    assert swept == 1 and case.sla["resolution"]["warned"] and case.sla_breached


# -- calendar faults, as 'caseloop check' reports them ------------------------------------

OFFICE = "calendar: office\ntimezone: Europe/Berlin\nhours:\n"


@pytest.mark.parametrize("text, expected", [
    (OFFICE + "  mon: closed\n  sat: closed\n",
     "office.yaml:4:3: CL015 the calendar has no working hours on any weekday"),
    (OFFICE.rstrip() + " {}\n",
     "office.yaml:3:8: CL015 the calendar has no working hours on any weekday"),
    (OFFICE + "  mon: '09:00-18:00'\nholidays:\n  - '2026-04-03'\n  - '2026-02-30'\n",
     "office.yaml:7:5: CL014 '2026-02-30' is not a calendar date"),
    (OFFICE + "  mon: '09:00-18:00'\nholidays:\n  - '2026-4-3'\n",
     "office.yaml:6:5: CL014 holidays[0]: '2026-4-3' is not valid: write a date as YYYY-MM-DD"),
    (OFFICE + "  mon: '09:00-18:00'\nholidays:\n  - 20260403\n",
     "office.yaml:6:5: CL013 holidays[0] must be text, not int 20260403"),
    (OFFICE + "  mon: '09:00-18:00'\nworkdays: ['2026-13-01']\n",
     "office.yaml:5:12: CL014 '2026-13-01' is not a calendar date"),
], ids=["all closed", "no hours", "impossible holiday", "holiday not YYYY-MM-DD",
        "holiday not text", "impossible workday"])
def test_calendar_faults_are_clear_problems(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "office.yaml").write_text(text, "utf-8")
    definitions, problems = spec.check([tmp_path])
    assert [p.format().split("\n")[0].replace(str(tmp_path) + "/", "")
            for p in problems if p.is_error] == [expected]
    assert "office" not in definitions.calendars  # never used with a hole in it


def test_a_calendar_without_working_time_for_years_gives_no_deadline_not_an_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Holidays on every working day for longer than the search horizon: the case is
    opened (no 500), without the deadlines that cannot be computed, and the log says why."""
    files = {p.name: p.read_text("utf-8") for p in sorted(FIXTURES.glob("*.yaml"))}
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(5 * 366)]
    files["berlin_office.yaml"] = files["berlin_office.yaml"].split("holidays:")[0] + \
        "holidays:\n" + "".join(f'  - "{d.isoformat()}"\n' for d in days if d.weekday() < 5)
    app = build_app("sqlite", tmp_path, files)
    try:
        with app.app_context():
            agent = person(app, "ann", ["agent"], ["care"])
            loop = Loop(app, Clock(wall("2026-03-27 17:00")), agent, agent)
            case_id = create(loop, wall("2026-03-27 17:00"))
            stored = loop.get(case_id)
            assert stored.sla == {} and stored.due_at is None and stored.state == "new"
            assert "no working time within" in caplog.text
    finally:
        dispose(app)
