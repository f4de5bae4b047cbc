"""Random walks through a workflow, checked step by step against a reference model.

Hypothesis fires random triggers (known, unknown, from the right or the wrong
state, with valid, invalid, read-only or missing data and with current or
stale versions) at a real case. A small model derived from the workflow
definition predicts each answer; after every step the case's state, data,
version, events and jobs must agree with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from caseloop.cases import Actor
from caseloop.errors import CaseError, Conflict, Forbidden, Invalid, NotFound
from caseloop.extension import state
from caseloop.models import Case, Event, Job
from caseloop.spec import Workflow

from .test_cases import build_app, count, dispose, person

DOOR_FORM = """\
form: door_form
fields:
  - name: code
    type: integer
    label: Code
    min: 0
    max: 9999
  - name: pin
    type: integer
    label: PIN
    min: 0
    max: 9999
  - name: note
    type: text
    label: Note
    max_length: 10
  - name: opened
    type: integer
    label: Times opened
    default: 0
"""

DOOR = """\
workflow: door
form: door_form
roles: [user, admin]
start: [user]
states:
  closed: {}
  open:
    on_enter:
      - set:
          opened: "opened + 1"
  locked:
    fields:
      default: editable
      readonly: [code, note]
    on_enter:
      - timer:
          after: 8h
          fire: unlock
  broken:
    final: true
transitions:
  - {trigger: open, from: closed, to: open, allow: [user]}
  - {trigger: close, from: open, to: closed, allow: [user]}
  - trigger: lock
    from: closed
    to: locked
    allow: [user]
    requires: [code]
  - trigger: unlock
    from: locked
    to: closed
    allow: [user, system]
    requires: [pin]
    guard:
      if: "pin == code"
      message: {en: Wrong PIN., zh: 密码错误。}
  - {trigger: smash, from: [closed, open, locked], to: broken, allow: [admin]}
"""

FILES = {"door_form.yaml": DOOR_FORM, "door.yaml": DOOR}

#: The guards, in Python, for the model (the workflow's are CEL).
GUARDS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "unlock": lambda data: data.get("pin") == data.get("code"),
}
#: What entering a state does to the data, the events and the jobs.
ON_ENTER: dict[str, Callable[[dict[str, Any]], tuple[int, int]]] = {}


def _enter_open(data: dict[str, Any]) -> tuple[int, int]:
    data["opened"] = data.get("opened", 0) + 1
    return 1, 0  # one 'action' event (set), no job


def _enter_locked(data: dict[str, Any]) -> tuple[int, int]:
    return 0, 1  # the timer's job


ON_ENTER.update(open=_enter_open, locked=_enter_locked)


@dataclass(frozen=True)
class Edge:
    dest: str
    allow: frozenset[str]
    requires: tuple[str, ...]
    guard: Callable[[dict[str, Any]], bool] | None


@dataclass
class Model:
    """The reference: transitions and permissions read from the definition, the rest by hand."""

    edges: dict[tuple[str, str], Edge]
    triggers: frozenset[str]
    permissions: dict[str, Callable[[str], str]]
    state: str = "closed"
    data: dict[str, Any] = field(default_factory=lambda: {"opened": 0})
    version: int = 1
    events: int = 1
    jobs: int = 0

    @classmethod
    def of(cls, wf: Workflow) -> Model:
        guarded = {t.trigger for t in wf.transitions if t.guard is not None}
        assert guarded == set(GUARDS), "the model's guards must mirror the workflow's"
        assert {s for s, st_ in wf.states.items() if st_.on_enter} == set(ON_ENTER)
        edges = {(source, t.trigger): Edge(t.dest, t.allow, t.requires, GUARDS.get(t.trigger))
                 for t in wf.transitions for source in t.sources}
        return cls(edges, frozenset(t.trigger for t in wf.transitions),
                   {name: s.fields.of for name, s in wf.states.items()}, wf.initial)

    def predict(self, trigger: str, submitted: dict[str, Any], roles: frozenset[str],
                stale: bool) -> str:
        """The outcome: 'ok', or the error's class and code; updates the model on 'ok'."""
        if stale:
            return "Conflict:stale"
        if trigger not in self.triggers:
            return "NotFound:not_found"
        edge = self.edges.get((self.state, trigger))
        if edge is None:
            return "Conflict:wrong_state"
        if not edge.allow & roles:
            return "Forbidden:forbidden"
        merged, invalid = dict(self.data), False
        for name, value in submitted.items():
            editable = self.permissions[self.state](name) == "editable" or name in edge.requires
            if not editable and value != self.data.get(name):
                invalid = True
            elif not _valid(name, value):
                invalid = True
            elif value is None:
                merged.pop(name, None)
            else:
                merged[name] = int(value) if name in ("code", "pin") else value
        if invalid or any(merged.get(name) is None for name in edge.requires):
            return "Invalid:invalid"
        if edge.guard is not None and not edge.guard(merged):
            return "Invalid:guard_failed"
        self.state, self.data = edge.dest, merged
        self.version += 1
        self.events += 1
        events, jobs = ON_ENTER.get(edge.dest, lambda d: (0, 0))(self.data)
        self.events += events
        self.jobs += jobs
        return "ok"


def _valid(name: str, value: Any) -> bool:
    if value is None:
        return True
    if name in ("code", "pin"):  # whole numbers, also as digits in a string
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9999
    return isinstance(value, str) and len(value) <= 10


_GOOD_CODES = st.one_of(st.sampled_from([1234, 4321, 0, 9999]), st.integers(0, 9999))
_BAD_CODES = st.sampled_from([-1, 10_000, None, "1234", "abc", True, 1.5])
#: Three valid codes (a few, so that a PIN often matches) for one odd value.
CODES = st.one_of(_GOOD_CODES, _GOOD_CODES, _GOOD_CODES, _BAD_CODES)
NOTES = st.one_of(st.none(), st.text(alphabet="abcxyz", min_size=1, max_size=14))
DATA = st.fixed_dictionaries({}, optional={"code": CODES, "pin": CODES, "note": NOTES})
TRIGGERS = st.sampled_from(["open", "close", "lock", "unlock", "smash", "fly"])


def _door_machine(app: Flask, user: Actor, admin: Actor) -> type[RuleBasedStateMachine]:
    with app.app_context():
        wf = state().registry.workflow("door")
        assert wf is not None

    class Door(RuleBasedStateMachine):
        case_id: int
        model: Model

        @initialize()
        def create(self) -> None:
            self.model = Model.of(wf)
            with app.app_context():
                case = state().cases().create("door", {}, user)
                state().db.session.commit()
                self.case_id = case.id

        @rule(draw=st.data())
        def fire(self, draw: st.DataObject) -> None:
            # Mostly triggers that leave the current state, but any trigger at all too.
            here = sorted({t for (source, t) in self.model.edges if source == self.model.state})
            trigger = draw.draw(st.one_of(st.sampled_from(here), TRIGGERS) if here
                                else TRIGGERS, label="trigger")
            data = draw.draw(DATA, label="data")
            version = draw.draw(st.sampled_from(["none", "current", "current", "current", "stale"]),
                                label="version")
            actor = draw.draw(st.sampled_from([user] * 5 + [admin]), label="actor")
            expected = {"none": None, "current": self.model.version,
                        "stale": self.model.version - 1}[version]
            predicted = self.model.predict(trigger, data, actor.roles, version == "stale")
            with app.app_context():
                session = state().db.session
                try:
                    state().cases().fire(self.case_id, trigger, data, actor,
                                         expected_version=expected)
                    session.commit()
                    got = "ok"
                except (Conflict, NotFound, Forbidden, Invalid) as exc:
                    session.rollback()
                    got = f"{type(exc).__name__}:{exc.code}"
                except CaseError as exc:  # pragma: no cover - reported below
                    session.rollback()
                    got = f"unexpected {exc!r}"
            assert got == predicted, (trigger, data, version)

        @invariant()
        def agrees_with_the_model(self) -> None:
            with app.app_context():
                s = state().db.session
                case = s.get(Case, self.case_id)
                assert case is not None
                m = self.model
                assert (case.state, case.version) == (m.state, m.version)
                assert case.data == m.data
                assert case.closed == (m.state == "broken")
                assert count(s, Event, case_id=self.case_id) == m.events
                assert count(s, Event, case_id=self.case_id, kind="transition") == \
                    m.version - 1
                assert count(s, Job, case_id=self.case_id) == m.jobs

    return Door


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_random_triggers_agree_with_the_reference_model(kind: str, tmp_path: Path) -> None:
    app = build_app(kind, tmp_path, FILES)
    try:
        with app.app_context():
            user = person(app, "uma", ["user"], ["home"])
            admin = person(app, "adam", ["user", "admin"], ["home"])
        run_state_machine_as_test(
            _door_machine(app, user, admin),
            settings=settings(max_examples=30, stateful_step_count=20, deadline=None,
                              database=None))
    finally:
        dispose(app)


def test_the_model_reads_the_definition(tmp_path: Path) -> None:
    app = build_app("sqlite", tmp_path, FILES)
    try:
        with app.app_context():
            wf = state().registry.workflow("door")
            assert wf is not None
        model = Model.of(wf)
        assert model.edges[("locked", "unlock")].requires == ("pin",)
        assert model.edges[("open", "smash")].allow == frozenset({"admin"})
        assert ("broken", "smash") not in model.edges
        assert model.permissions["locked"]("code") == "readonly"
        assert model.permissions["closed"]("code") == "editable"
        # A walk the model and the engine agree on, step by step, by hand.
        assert model.predict("lock", {"code": 1234}, frozenset({"user"}), False) == "ok"
        assert model.predict("unlock", {"pin": 1}, frozenset({"user"}), False) == \
            "Invalid:guard_failed"
        assert model.predict("unlock", {"pin": 1234, "code": 1}, frozenset({"user"}),
                             False) == "Invalid:invalid"
        assert model.predict("unlock", {"pin": 1234}, frozenset({"user"}), False) == "ok"
        assert model.predict("open", {}, frozenset({"user"}), False) == "ok"
        assert (model.state, model.version, model.events, model.jobs) == ("open", 4, 5, 1)
        assert model.data == {"opened": 1, "code": 1234, "pin": 1234}
    finally:
        dispose(app)
