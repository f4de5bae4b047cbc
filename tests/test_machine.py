"""Budgets of the request path, as counts (never timings).

Per transition exactly 1 SELECT + 1 UPDATE + 2 INSERT; a new case at most 3
INSERT and no SELECT; no YAML parsed and no ``transitions.Machine`` built on
the request path once the first transition built it; the shared machine
keeps no models; memory does not grow over 10k transitions.
"""

from __future__ import annotations

import gc
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import transitions
from flask import Flask
from flask.testing import FlaskClient
from ruamel.yaml import YAML
from sqlalchemy import event
from sqlalchemy.engine import Engine

import caseloop.spec.source
from caseloop import machine as machines
from caseloop.cases import Actor, Cases
from caseloop.errors import Conflict, Invalid, NotFound
from caseloop.extension import state
from caseloop.users import add_user, issue_token

from .test_cases import build_app, dispose, person

LOOP_FORM = """\
form: counter
fields:
  - name: note
    type: text
    label: Note
    max_length: 50
"""

#: Goes round a -> b -> a; entering either writes one job (a notification).
LOOP = """\
workflow: loop
form: counter
roles: [agent]
start: [agent]
states:
  a:
    on_enter:
      - notify: {to: [team], message: {en: In a, zh: 甲}}
  b:
    on_enter:
      - notify: {to: [team], message: {en: In b, zh: 乙}}
  end:
    final: true
transitions:
  - {trigger: go, from: a, to: b, allow: [agent]}
  - {trigger: back, from: b, to: a, allow: [agent]}
  - {trigger: stop, from: a, to: end, allow: [agent]}
"""

#: The same round without on-enter actions: the cheapest transition there is.
QUIET = """\
workflow: quiet
form: counter
roles: [agent]
start: [agent]
states:
  a: {}
  b: {}
  end:
    final: true
transitions:
  - {trigger: go, from: a, to: b, allow: [agent]}
  - {trigger: back, from: b, to: a, allow: [agent]}
  - {trigger: stop, from: a, to: end, allow: [agent]}
"""

FILES = {"counter.yaml": LOOP_FORM, "loop.yaml": LOOP, "quiet.yaml": QUIET}


class Statements:
    """Every statement the engine sends (COMMIT goes through the DB-API, not a cursor)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    @property
    def kinds(self) -> list[str]:
        return [s.split(None, 1)[0].upper() for s in self.seen]

    def summary(self) -> list[tuple[str, str]]:
        """(verb, table) of each statement."""
        out = []
        for s in self.seen:
            verb = s.split(None, 1)[0].upper()
            pattern = {"SELECT": r"\bFROM\s+(\w+)", "UPDATE": r"^UPDATE\s+(\w+)",
                       "INSERT": r"^INSERT\s+INTO\s+(\w+)"}.get(verb, r"(\w+)")
            found = re.search(pattern, s, re.IGNORECASE)
            out.append((verb, found.group(1) if found else "?"))
        return out


@pytest.fixture(params=["sqlite", "postgresql"])
def loop_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(request.param, tmp_path, FILES)
    yield app
    dispose(app)


def _agent(app: Flask) -> Actor:
    with app.app_context():
        return person(app, "ann", ["agent"], ["care"])


def _new_case(app: Flask, actor: Actor, workflow: str = "loop") -> int:
    with app.app_context():
        case = state().cases().create(workflow, {}, actor)
        state().db.session.commit()
        return case.id


def test_a_transition_is_one_select_one_update_two_inserts(loop_app: Flask) -> None:
    agent = _agent(loop_app)
    case_id = _new_case(loop_app, agent)
    with loop_app.app_context():
        engine = state().db.engine
    for i, trigger in enumerate(["go", "back", "go", "back", "go"]):
        with loop_app.app_context(), Statements(engine) as stmts:  # a fresh session
            st = state()
            case = st.cases().fire(case_id, trigger, {"note": f"round {i}"}, agent,
                                   expected_version=i + 1)
            assert (case.state, case.version) == ("ab"[(i + 1) % 2], i + 2)
            st.db.session.commit()
        # History and jobs are plain INSERTs written as they happen; the case's one
        # version-checked UPDATE comes last, so on-enter changes share it.
        assert stmts.summary() == [("SELECT", "caseloop_cases"), ("INSERT", "caseloop_events"),
                                   ("INSERT", "caseloop_jobs"), ("UPDATE", "caseloop_cases")]


def test_a_new_case_is_three_inserts_and_no_select(loop_app: Flask) -> None:
    agent = _agent(loop_app)
    with loop_app.app_context():
        engine = state().db.engine
    for _ in range(3):
        with loop_app.app_context(), Statements(engine) as stmts:
            state().cases().create("loop", {"note": "hello"}, agent)
            state().db.session.commit()
        assert stmts.summary() == [("INSERT", "caseloop_cases"), ("INSERT", "caseloop_events"),
                                   ("INSERT", "caseloop_jobs")]


def test_refusals_read_only_the_case(loop_app: Flask) -> None:
    agent = _agent(loop_app)
    case_id = _new_case(loop_app, agent)
    with loop_app.app_context():
        engine = state().db.engine
    for trigger, data in [("back", {}), ("go", {"note": "x" * 51}), ("nope", {})]:
        with loop_app.app_context(), Statements(engine) as stmts:
            with pytest.raises((Conflict, Invalid, NotFound)):
                state().cases().fire(case_id, trigger, data, agent)
            state().db.session.rollback()
        assert stmts.kinds == ["SELECT"]


# -- the request path over HTTP ---------------------------------------------------------------
class Spy:
    """Counts calls of a function or method while keeping its behaviour."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.calls = 0
        original: Callable[..., Any] = getattr(owner, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)


def _token(app: Flask, name: str, roles: list[str]) -> dict[str, str]:
    with app.app_context():
        s = state().db.session
        user = add_user(s, name, roles=roles, teams=["care"], locale="en")
        token = issue_token(s, user)
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def _one_round(client: FlaskClient, auth: dict[str, str], case_id: int, trigger: str) -> None:
    assert client.get("/api/workflows", headers=auth).status_code == 200
    assert client.get("/api/workflows/loop", headers=auth).status_code == 200
    created = client.post("/api/cases", json={"workflow": "loop", "data": {"note": "n"}},
                          headers=auth)
    assert created.status_code == 201, created.json
    got = client.get(f"/api/cases/{case_id}", headers=auth)
    assert got.status_code == 200
    assert client.get(f"/api/cases/{case_id}/actions", headers=auth).status_code == 200
    fired = client.post(f"/api/cases/{case_id}/transitions/{trigger}", json={"data": {}},
                        headers={**auth, "If-Match": got.headers["ETag"]})
    assert fired.status_code == 200, fired.json
    assert client.get(f"/api/cases/{case_id}/events", headers=auth).status_code == 200
    assert client.get("/api/cases?workflow=loop&limit=5", headers=auth).status_code == 200


def test_no_yaml_parse_and_no_machine_build_per_request(
        loop_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = _token(loop_app, "ann", ["agent"])
    client = loop_app.test_client()
    created = client.post("/api/cases", json={"workflow": "loop", "data": {}}, headers=auth)
    case_id = created.json["id"]
    loads = Spy(monkeypatch, YAML, "load")
    load_alls = Spy(monkeypatch, YAML, "load_all")
    parses = Spy(monkeypatch, caseloop.spec.source, "parse")
    builds = Spy(monkeypatch, transitions.Machine, "__init__")

    _one_round(client, auth, case_id, "go")  # the first transition builds the machine
    assert builds.calls == 1
    for i in range(25):
        _one_round(client, auth, case_id, ["back", "go"][i % 2])
    assert (loads.calls, load_alls.calls, parses.calls) == (0, 0, 0)
    assert builds.calls == 1  # 26 rounds, 8 requests each: built once, on the first fire

    with loop_app.app_context():
        registry = state().registry
        wf = registry.workflow("loop")
        assert wf is not None
        machine = registry.machine(wf)
    assert len(machine.models) == 0
    assert builds.calls == 1


def test_http_requests_add_only_the_authentication_reads(loop_app: Flask) -> None:
    auth = _token(loop_app, "ann", ["agent"])
    client = loop_app.test_client()
    client.post("/api/cases", json={"workflow": "loop"}, headers=auth)  # warm up
    with loop_app.app_context():
        engine = state().db.engine
        # The look for new designer publications is once a second per process, not per
        # request: kept out of this count, which must not depend on the machine's speed.
        state().registry.poll = float("inf")
    with Statements(engine) as stmts:
        created = client.post("/api/cases", json={"workflow": "loop"}, headers=auth)
    assert created.status_code == 201
    case_id = created.json["id"]
    assert stmts.summary() == [("SELECT", "caseloop_users"),
                               ("INSERT", "caseloop_cases"), ("INSERT", "caseloop_events"),
                               ("INSERT", "caseloop_jobs")]
    client.post(f"/api/cases/{case_id}/transitions/go", headers=auth)  # warm up
    with Statements(engine) as stmts:
        response = client.post(f"/api/cases/{case_id}/transitions/back", headers=auth)
    assert response.status_code == 200
    tables = stmts.summary()
    # One read for the bearer token with the caller's teams, then the transition's own four.
    assert tables[:1] == [("SELECT", "caseloop_users")]
    assert tables[1:] == [("SELECT", "caseloop_cases"), ("INSERT", "caseloop_events"),
                          ("INSERT", "caseloop_jobs"), ("UPDATE", "caseloop_cases")]


def test_the_shared_machine_is_model_less_and_has_no_auto_transitions(loop_app: Flask) -> None:
    with loop_app.app_context():
        registry = state().registry
        wf = registry.workflow("loop")
        assert wf is not None
        machine = registry.machine(wf)
    assert machine.models == []
    assert set(machine.events) == {"go", "back", "stop"}  # no to_<state> triggers
    assert not any(name.startswith("to_") for name in machine.events)

    class Row:
        state = "a"

    row = Row()
    assert machines.fire(machine, "go", row, {}) is True
    assert row.state == "b" and machine.models == []
    with pytest.raises(transitions.MachineError):
        machines.fire(machine, "stop", row, {})  # not from 'b'
    assert row.state == "b"


def test_a_guard_is_the_compiled_expression(loop_app: Flask) -> None:
    guarded = LOOP.replace("workflow: loop", "workflow: guarded").replace(
        "  - {trigger: go, from: a, to: b, allow: [agent]}",
        "  - trigger: go\n    from: a\n    to: b\n    allow: [agent]\n"
        "    guard: {if: \"filled(note) && note == 'open sesame'\", message: Say the word}")
    from caseloop import spec

    definitions, problems = spec.check_texts({"counter.yaml": LOOP_FORM,
                                              "guarded.yaml": guarded})
    assert [p.format() for p in problems] == []
    machine = machines.build(definitions.workflows["guarded"])

    class Row:
        state = "a"

    row = Row()
    assert machines.fire(machine, "go", row, {"note": "please"}) is False
    assert row.state == "a"
    assert machines.fire(machine, "go", row, {"note": None}) is False
    assert machines.fire(machine, "go", row, {"note": "open sesame"}) is True
    assert row.state == "b" and machine.models == []


# -- memory ---------------------------------------------------------------------------------------
TRANSITIONS = 10_000
WARM_UP = 300
#: Commit every 50 transitions (each still flushes its own UPDATE and INSERT): tracemalloc
#: slows every allocation, and fewer commits keep the traced run near 16 s.
BATCH = 50


def test_memory_does_not_grow_over_ten_thousand_transitions(tmp_path: Path) -> None:
    app = build_app("sqlite", tmp_path, FILES)
    try:
        with app.app_context():
            agent = person(app, "ann", ["agent"], ["care"])
            st = state()
            session = st.db.session()  # the session itself, not the scoped proxy
            cases = Cases(session, st.registry)
            case_id = cases.create("quiet", {}, agent).id
            session.commit()
            triggers = ("go", "back")

            def run(n: int) -> None:
                for i in range(n):
                    cases.fire(case_id, triggers[i % 2], {}, agent)
                    if i % BATCH == BATCH - 1:
                        session.commit()
                session.commit()

            run(WARM_UP)  # warm caches: compiled statements, CEL programs, the machine
            gc.collect()
            gc.disable()  # faster under tracing; garbage cycles are collected before measuring
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                run(TRANSITIONS)
                session.expunge_all()
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
                gc.enable()
            assert cases.get(case_id, agent).version == 1 + WARM_UP + TRANSITIONS
            wf = st.registry.workflow("quiet")
            assert wf is not None
            assert len(st.registry.machine(wf).models) == 0
        assert grown < 1024 * 1024, f"grew by {grown / 1024:.0f} KiB over {TRANSITIONS} transitions"
    finally:
        dispose(app)
