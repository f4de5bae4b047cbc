"""The immutable definition objects the rest of Caseloop works with.

Built once per content version by ``spec.forms``, ``spec.workflows`` and
``spec.calendars``; shared read-only across requests and threads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..expr import Expression
from ..plugins import FieldType

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return EMPTY


@dataclass(frozen=True, slots=True)
class Text:
    """A bilingual text. ``get`` falls back to the other language."""

    en: str = ""
    zh: str = ""

    def get(self, lang: str = "en") -> str:
        first = self.zh if lang.startswith("zh") else self.en
        return first or self.en or self.zh

    def __str__(self) -> str:
        return self.get("en")


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: Text


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    label: Text
    help: Text | None = None
    placeholder: Text | None = None
    required: bool = False
    required_if: Expression | None = None
    visible_if: Expression | None = None
    readonly_if: Expression | None = None
    value: Expression | None = None
    default: Any = None
    min: float | str | None = None
    max: float | str | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    messages: Mapping[str, Text] = field(default_factory=_empty)
    choices: tuple[Choice, ...] = ()
    min_selected: int | None = None
    max_selected: int | None = None
    region: str | None = None
    places: int | None = None
    metric: str | None = None
    report: str | None = None
    accept: tuple[str, ...] = ()
    max_size: int | None = None
    max_files: int | None = None
    of: str = "user"
    roles: tuple[str, ...] = ()
    to: str | None = None
    workflow: str | None = None
    fields: tuple[Field, ...] = ()
    min_rows: int | None = None
    max_rows: int | None = None
    row_label: Text | None = None
    #: The form that declared the field (differs from the form using it after include).
    origin: str = ""
    #: A plugin's field type (``type`` names it): it cleans the submitted values.
    plugin: FieldType | None = field(default=None, compare=False)

    @property
    def computed(self) -> bool:
        return self.value is not None

    def choice_values(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.choices)


@dataclass(frozen=True, slots=True)
class Form:
    name: str
    title: Text
    description: Text | None
    fields: tuple[Field, ...]
    path: str
    version: str
    #: The YAML text it was built from.
    source: str = field(default="", repr=False, compare=False)

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


@dataclass(frozen=True, slots=True)
class Assign:
    team: str | None = None
    role: str | None = None
    user: Expression | None = None


@dataclass(frozen=True, slots=True)
class Measure:
    """An indicator computed in SQL over other cases: ``aggregate`` (count, or mean of
    ``field``) of the cases of ``workflow`` created in the ``window`` before now whose
    fields equal the ``where`` expressions over this case."""

    workflow: str
    aggregate: str
    window: dt.timedelta
    into: str
    field_name: str | None = None
    where: Mapping[str, Expression] = field(default_factory=_empty)
    report: str | None = None


@dataclass(frozen=True, slots=True)
class Remind:
    """Reminders for the rows of a group (an improvement plan's actions): to each
    row's ``owner`` ``before`` its ``due`` date, and escalations after it, until the
    row's ``done`` field holds one of ``done_values``."""

    rows: str
    due: str
    owner: str
    done: str
    done_values: tuple[str, ...]
    title: str | None = None
    before: dt.timedelta | None = None
    escalate: tuple[Escalation, ...] = ()
    calendar: str | None = None
    at: dt.time = dt.time(9, 0)


@dataclass(frozen=True, slots=True)
class Survey:
    """A tokenised survey link sent to the customer: the answer sets ``fields``
    and takes ``fire`` from the state that sent it; unanswered, the link dies
    after ``expires`` and ``expired`` (if given) is fired."""

    fire: str
    expires: dt.timedelta
    message: Text
    #: The questions: the only fields an answer may set.
    fields: tuple[str, ...]
    channels: tuple[str, ...] = ("email", "sms")
    expired: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """One on-enter action. ``kind`` says which of the other attributes apply:
    start (workflow, after, map, assign), timer (after or at, trigger), notify (to,
    message, channel), crm (push, message), fire (case, trigger), set (map),
    assign (assign), cancel (workflow, trigger, map), measure, remind, survey."""

    kind: str
    when: Expression | None = None
    workflow: str | None = None
    after: dt.timedelta | None = None
    at: Expression | None = None
    map: Mapping[str, Expression] = field(default_factory=_empty)
    assign: Assign | None = None
    trigger: str | None = None
    to: tuple[str, ...] = ()
    message: Text | None = None
    channel: str = "inbox"
    push: str | None = None
    case: str | None = None
    measure: Measure | None = None
    remind: Remind | None = None
    survey: Survey | None = None


@dataclass(frozen=True, slots=True)
class Permissions:
    default: str = "editable"
    overrides: Mapping[str, str] = field(default_factory=_empty)

    def of(self, field_name: str) -> str:
        """``editable``, ``readonly`` or ``hidden``."""
        return self.overrides.get(field_name, self.default)


@dataclass(frozen=True, slots=True)
class State:
    name: str
    label: Text
    category: str = "open"
    final: bool = False
    description: Text | None = None
    fields: Permissions = Permissions()
    on_enter: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Guard:
    expression: Expression
    message: Text


@dataclass(frozen=True, slots=True)
class Transition:
    trigger: str
    sources: tuple[str, ...]
    dest: str
    label: Text
    allow: frozenset[str] = frozenset()
    guard: Guard | None = None
    requires: tuple[str, ...] = ()
    description: Text | None = None


@dataclass(frozen=True, slots=True)
class Escalation:
    after: dt.timedelta
    notify: tuple[str, ...] = ()
    assign: Assign | None = None
    raise_priority: bool = False
    fire: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    label: Text
    until: tuple[str, ...]
    #: Duration per priority value; key ``"*"`` when one duration serves all.
    within: Mapping[str, dt.timedelta]
    warn_before: dt.timedelta | None = None
    escalate: tuple[Escalation, ...] = ()

    def for_priority(self, priority: str | None) -> dt.timedelta | None:
        return self.within.get(priority or "", self.within.get("*"))


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    targets: tuple[Target, ...]
    when: Expression | None = None
    calendar: str = "24x7"


@dataclass(frozen=True, slots=True)
class SLA:
    policies: tuple[Policy, ...]
    pause: tuple[str, ...] = ("paused",)


@dataclass(frozen=True, slots=True)
class Cooldown:
    """Recontact limit: a customer who had a case of this workflow within ``within``
    (except one that ended in an ``ignore`` state) gets no automatic new one."""

    within: dt.timedelta
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Intake:
    """The public intake page of a public workflow: the ``fields`` the customer fills,
    in order; fields ``set`` by the page (``channel: "'web'"``), whatever was posted;
    the ``team`` whose queue a new case lands in; the ``thanks`` shown with the
    reference."""

    fields: tuple[str, ...]
    set: Mapping[str, Expression] = field(default_factory=_empty)
    team: str | None = None
    thanks: Text | None = None


@dataclass(frozen=True, slots=True)
class Workflow:
    name: str
    title: Text
    description: Text | None
    form: Form
    roles: frozenset[str]
    start_roles: frozenset[str]
    initial: str
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]
    path: str
    version: str
    reference_prefix: str = "CASE"
    public: bool = False
    priority_field: str | None = None
    customer_field: str | None = None
    sla: SLA | None = None
    #: No automatic new case for a customer who had one within this time.
    cooldown: Cooldown | None = None
    #: The public intake page (a public workflow only).
    intake: Intake | None = None
    source: str = field(default="", repr=False, compare=False)

    def transitions_from(self, state: str) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if state in t.sources)


@dataclass(frozen=True, slots=True)
class Calendar:
    name: str
    title: Text
    timezone: str
    #: Weekday (0 = Monday) -> working periods as (start, end) times.
    hours: Mapping[int, tuple[tuple[dt.time, dt.time], ...]]
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    path: str
    version: str
    source: str = field(default="", repr=False, compare=False)
    #: Working periods per local date as UTC instants: worktime's memo (the calendar
    #: never changes, so what was worked out for a date holds).
    memo: dict[dt.date, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Definitions:
    """Everything loaded from a set of files, by name."""

    forms: Mapping[str, Form] = field(default_factory=dict)
    workflows: Mapping[str, Workflow] = field(default_factory=dict)
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
