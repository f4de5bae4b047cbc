"""The scenario format of ``caseloop simulate``: people and scripted steps, read with
the position of every node so that each problem is reported as ``path:line:col: message``.

A scenario is written by ops staff for one workflow::

    scenario: A complaint on a Friday afternoon
    start: 2026-11-20 15:00          # local time in 'timezone' (default: the SLA calendar's)
    people:
      - {name: li.na, roles: [agent], teams: [care]}
    steps:
      - create: {as: li.na, data: {customer_name: 张伟, ...}}
      - wait: 2h                     # or: until: 2026-11-23 10:15
      - fire: acknowledge            # with as:, data:, case: revisit, refused: true
      - expect: {state: acknowledged}
      - update: {actions: [...]}      # change fields without a transition (as:, case:)
      - answer: {csat: 5}             # the customer answers the case's survey link (case:)

It is checked against the loaded definitions before anything runs: people's roles,
triggers, states and field names must exist, durations and times must parse, and time
never goes back. :mod:`caseloop.simulation` runs it.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .hints import suggest
from .spec import Definitions, Workflow, source
from .spec.build import duration
from .spec.schema import DURATION, DURATION_HINT

ACTIONS = ("create", "fire", "update", "answer", "wait", "until", "expect", "note")
CHECKS = ("state", "fields", "assignee", "team", "priority", "breached")
OPTIONS: dict[str, tuple[str, ...]] = {
    "create": ("as", "data", "refused"), "fire": ("as", "data", "case", "refused"),
    "update": ("as", "case", "refused"), "answer": ("case", "refused"),
    "wait": (), "until": (), "expect": ("case", *CHECKS), "note": ()}
TOP = ("scenario", "workflow", "start", "timezone", "people", "steps")
PERSON = ("name", "roles", "teams", "lang")
_MOMENT = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d?):(\d\d)(?::(\d\d))?)?$")
REFERENCE = re.compile(r"^[A-Z][A-Z0-9]*-\d{4}-\d+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class ScenarioError(Exception):
    """The scenario cannot run: one ``path:line:col: message`` line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Person:
    name: str
    roles: tuple[str, ...]
    teams: tuple[str, ...] = ()
    lang: str | None = None


@dataclass(frozen=True)
class Step:
    do: str
    path: tuple[str | int, ...]
    #: The trigger (fire), the moment in UTC (wait, until) or the text (note).
    arg: Any = None
    person: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    case: str = "main"
    refused: bool = False
    checks: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    src: source.Source
    title: str
    workflow: str
    zone: zoneinfo.ZoneInfo
    start: dt.datetime
    people: tuple[Person, ...]
    steps: tuple[Step, ...]

    def where(self, path: tuple[str | int, ...]) -> str:
        line, col = self.src.at(path)
        return f"{self.src.path}:{line}:{col}"


# -- reading a scenario --------------------------------------------------------------------
def read_scenario(path: str, definitions: Definitions, workflow: str, *,
                  roles: frozenset[str] = frozenset()) -> Scenario:
    """Read and check a scenario against the loaded definitions; :class:`ScenarioError`
    lists every problem found."""
    src = source.read(path)
    if src.problems:
        raise ScenarioError([f"{p.path}:{p.line}:{p.col}: {p.message}" for p in src.problems])
    reader = _Reader(src, definitions, workflow, roles)
    scenario = reader.scenario()
    if reader.errors or scenario is None:
        raise ScenarioError(reader.errors)
    return scenario


class _Reader:
    def __init__(self, src: source.Source, definitions: Definitions, workflow: str,
                 roles: frozenset[str]) -> None:
        self.src, self.defs, self.workflow = src, definitions, workflow
        self.roles = roles | {r for w in definitions.workflows.values() for r in w.roles}
        self.errors: list[str] = []
        self.names: list[str] = []
        self.created = False

    def error(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        line, col = self.src.at(path, key=key)
        self.errors.append(f"{self.src.path}:{line}:{col}: {message}")

    def keys(self, d: Mapping[str, Any], path: tuple[str | int, ...], known: tuple[str, ...],
             what: str) -> None:
        for k in d:
            if k not in known:
                self.error((*path, k), f"unknown key '{k}' in {what}{suggest(k, known)}",
                           key=True)

    def text(self, d: Mapping[str, Any], k: str, path: tuple[str | int, ...]) -> str | None:
        value = d.get(k)
        if value is not None and not isinstance(value, str | int | float):
            self.error((*path, k), f"'{k}' must be text")
            return None
        return None if value is None else str(value)

    def scenario(self) -> Scenario | None:
        d = self.src.data
        if not isinstance(d, dict):
            self.error((), "a scenario is a mapping with the keys scenario, start, people "
                       "and steps")
            return None
        self.keys(d, (), TOP, "the scenario")
        named = self.text(d, "workflow", ())
        if named is not None and named != self.workflow:
            self.error(("workflow",), f"this scenario is written for workflow '{named}', "
                       f"not '{self.workflow}'")
        zone = self.zone(d)
        start = None
        if "start" not in d:
            self.error((), "missing 'start:', the date and time the scenario begins "
                       "(e.g. 2026-11-20 15:00)")
        else:
            start = self.moment(d["start"], ("start",), zone)
        people = self.people(d.get("people"))
        steps = self.steps(d.get("steps"), start or dt.datetime.min.replace(tzinfo=dt.UTC),
                           zone)
        if start is None:
            return None
        title = self.text(d, "scenario", ()) or self.src.path
        return Scenario(self.src, title, self.workflow, zone, start, people, steps)

    def zone(self, d: Mapping[str, Any]) -> zoneinfo.ZoneInfo:
        name = self.text(d, "timezone", ()) or default_zone(self.defs, self.workflow)
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            self.error(("timezone",), f"unknown time zone '{name}' (write e.g. "
                       "Asia/Shanghai, Europe/Berlin or UTC)")
            return zoneinfo.ZoneInfo("UTC")

    def moment(self, value: Any, path: tuple[str | int, ...],
               zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
        match = _MOMENT.match(str(value).strip()) if isinstance(value, str) else None
        try:
            if match is None:
                raise ValueError
            y, mo, d, h, mi, s = (int(g or 0) for g in match.groups())
            return dt.datetime(y, mo, d, h, mi, s, tzinfo=zone).astimezone(dt.UTC)
        except (ValueError, OverflowError):
            self.error(path, f"'{value}' is not a date and time: write e.g. 2026-11-20 15:00 "
                       "(local time in the scenario's time zone)")
            return None

    def people(self, value: Any) -> tuple[Person, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(("people",), "'people' must be a list such as "
                       "- {name: li.na, roles: [agent], teams: [care]}")
            return ()
        out = []
        for i, p in enumerate(value):
            path = ("people", i)
            if not isinstance(p, dict):
                self.error(path, "a person is a mapping such as {name: li.na, roles: [agent]}")
                continue
            self.keys(p, path, PERSON, "a person")
            name = self.text(p, "name", path)
            if name is None:
                self.error(path, "a person needs a 'name'")
                continue
            if not _NAME.match(name):
                self.error((*path, "name"), f"'{name}' is not a user name: letters, digits "
                           "and . _ @ -")
            if name in self.names:
                self.error((*path, "name"), f"'{name}' is listed twice")
            self.names.append(name)
            roles = self.listed(p, "roles", path)
            for j, role in enumerate(roles):
                if role not in self.roles:
                    self.error((*path, "roles", j), f"unknown role '{role}'"
                               f"{suggest(role, self.roles)}")
            lang = self.text(p, "lang", path)
            if lang is not None and lang not in ("en", "zh"):
                self.error((*path, "lang"), "'lang' is en or zh")
            out.append(Person(name, tuple(roles), tuple(self.listed(p, "teams", path)), lang))
        return tuple(out)

    def listed(self, d: Mapping[str, Any], k: str, path: tuple[str | int, ...]) -> list[str]:
        value = d.get(k) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error((*path, k), f"'{k}' must be a list of names, e.g. [agent]")
            return []
        return list(value)

    def steps(self, value: Any, now: dt.datetime, zone: zoneinfo.ZoneInfo
              ) -> tuple[Step, ...]:
        if not isinstance(value, list) or not value:
            self.error(("steps",) if value is not None else (),
                       "'steps' must be a list of steps such as - fire: acknowledge")
            return ()
        out = []
        for i, d in enumerate(value):
            path: tuple[str | int, ...] = ("steps", i)
            if not isinstance(d, dict):
                self.error(path, "a step is a mapping such as 'fire: acknowledge' or "
                           "'wait: 2h'")
                continue
            found = [k for k in d if k in ACTIONS and k != "note"] or (
                ["note"] if "note" in d else [])
            if len(found) != 1:
                self.error(path, f"a step does one thing: {', '.join(ACTIONS)}"
                           if not found else f"a step does one thing, this one has "
                           f"{' and '.join(found)}: make them separate steps")
                continue
            do = found[0]
            step = self.step(do, d, path, now, zone)
            if step is not None:
                now = step.arg if do in ("wait", "until") else now
                if d.get("note") is not None and do != "note":
                    out.append(Step("note", path, str(d["note"])))
                out.append(step)
        return tuple(out)

    def step(self, do: str, d: Mapping[str, Any], path: tuple[str | int, ...],
             now: dt.datetime, zone: zoneinfo.ZoneInfo) -> Step | None:
        opts = dict(d)
        value = opts.pop(do)
        opts.pop("note", None)
        if do in ("create", "expect") and value is not None and not isinstance(value, dict):
            self.error((*path, do), f"write the details of '{do}' as a mapping, e.g. "
                       f"{do}: {{as: li.na}}" if do == "create" else
                       "write what to expect as a mapping, e.g. expect: {state: closed}")
        if do in ("create", "expect") and isinstance(value, dict):
            for k in value:  # create: {as: li.na} and 'as:' beside 'create:' are alike
                if k in opts:
                    self.error((*path, do, k), f"'{k}' is given twice", key=True)
            opts = {**value, **opts}
            path_of = {k: (*path, do, k) if k in value else (*path, k) for k in opts}
        else:
            path_of = {k: (*path, k) for k in opts}
        known = OPTIONS[do]
        for k in opts:
            if k not in known:
                self.error(path_of[k], f"unknown key '{k}' in a '{do}' step"
                           f"{suggest(k, known) if known else ''}", key=True)
        person = opts.get("as")
        if person is not None and str(person) not in self.names:
            self.error(path_of["as"], f"unknown person '{person}'"
                       f"{suggest(str(person), self.names)}")
        elif do in ("create", "fire", "update") and person is None and not self.names:
            self.error(path, "nobody to act: list people under 'people:'")
        data = opts.get("data") or {}
        refused = opts.get("refused", False)
        if not isinstance(refused, bool):
            self.error(path_of["refused"], "'refused' is true or false")
        base = Step(do, (*path, do), person=None if person is None else str(person),
                    refused=refused is True)
        if do == "wait":
            if not isinstance(value, str) or not re.match(DURATION, value) or \
                    duration(value) <= dt.timedelta(0):
                self.error((*path, do), f"'{value}' is not a duration: {DURATION_HINT}")
                return None
            try:
                return Step(do, base.path, now + duration(value))
            except OverflowError:
                self.error((*path, do), f"waiting {value} goes past the year 9999")
                return None
        if do == "until":
            moment = self.moment(value, (*path, do), zone)
            if moment is not None and moment < now:
                local = now.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                self.error((*path, do), f"{value} is in the past: the scenario is at {local} "
                           "by then")
            return None if moment is None else Step(do, base.path, moment)
        if do == "note":
            return Step(do, base.path, str(value))
        case = str(opts.get("case", "main"))
        if do == "create":
            self.created = True
            wf = self.defs.workflows.get(self.workflow)
        else:
            wf = self.case_workflow(case, path_of.get("case", base.path))
        if wf is not None:
            self.data(wf, data, path_of.get("data", base.path))
        if do == "fire":
            if not isinstance(value, str):
                self.error(base.path, "write the trigger's name, e.g. 'fire: acknowledge'")
                return None
            triggers = {t.trigger for t in wf.transitions} if wf is not None else {value}
            if value not in triggers:
                self.error(base.path, f"workflow '{wf.name if wf else ''}' has no trigger "
                           f"'{value}'{suggest(value, triggers)}")
            return Step(do, base.path, value, base.person, data, case, base.refused)
        if do in ("update", "answer"):
            if not isinstance(value, dict) or not value:
                self.error(base.path, f"write the fields as a mapping, e.g. {do}: "
                           + ("{actions: [...]}" if do == "update" else "{csat: 5, nps: 9}"))
                return None
            if wf is not None:
                self.data(wf, value, base.path)
            return Step(do, base.path, None, base.person, value, case, base.refused)
        if do == "expect":
            checks = {k: v for k, v in opts.items() if k in CHECKS}
            if not checks:
                self.error(base.path, f"say what to expect: {', '.join(CHECKS)}")
            if wf is not None and "state" in checks and checks["state"] not in wf.states:
                self.error(path_of["state"], f"workflow '{wf.name}' has no state "
                           f"'{checks['state']}'{suggest(str(checks['state']), wf.states)}")
            if wf is not None and "fields" in checks:
                self.data(wf, checks["fields"], path_of["fields"])
            return Step(do, base.path, case=case, checks=checks)
        return Step(do, base.path, None, base.person, data, refused=base.refused)

    def case_workflow(self, case: str, path: tuple[str | int, ...]) -> Workflow | None:
        if case == "main":
            if not self.created:
                self.error(path, "no case yet: a 'create' step comes first")
            return self.defs.workflows.get(self.workflow)
        if case in self.defs.workflows:
            return self.defs.workflows[case]
        if REFERENCE.match(case):
            prefix = case.split("-", 1)[0]
            return next((w for w in self.defs.workflows.values()
                         if w.reference_prefix == prefix), None)
        self.error(path, f"unknown case '{case}': write main (the case created by the "
                   f"scenario) or a workflow's name{suggest(case, self.defs.workflows)}")
        return None

    def data(self, wf: Workflow, data: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(data, dict):
            self.error(path, "write the fields as a mapping, e.g. {severity: 2}")
            return
        names = wf.form.names
        for k in data:
            if k not in names:
                self.error((*path, k), f"form '{wf.form.name}' has no field '{k}'"
                           f"{suggest(k, names)}", key=True)


def default_zone(definitions: Definitions, workflow: str) -> str:
    """The time zone of the workflow's first SLA calendar, else UTC."""
    wf = definitions.workflows.get(workflow)
    for policy in wf.sla.policies if wf is not None and wf.sla is not None else ():
        calendar = definitions.calendars.get(policy.calendar)
        if calendar is not None:
            return calendar.timezone
    return "UTC"
