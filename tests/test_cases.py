"""The unit of work (caseloop.cases): create, fire, on-enter actions, versions.

Runs in-process on SQLite and PostgreSQL. The small helpers at the top
(definitions in tmp_path, an app on either database, people with roles and
teams) are shared with the other engine test modules.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from caseloop.cases import Actor, Cases, changes
from caseloop.errors import Conflict, Forbidden, Invalid, NotFound
from caseloop.extension import state
from caseloop.models import Base, Case, DefinitionVersion, Event, Job, Team
from caseloop.users import actor_for, add_user, issue_token

from .conftest import SHIPPED, make_app, postgresql_url

# -- shared helpers ------------------------------------------------------------------------
#: The clock of every in-process test: a Monday morning in UTC.
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def write_definitions(root: Path, files: Mapping[str, str]) -> Path:
    folder = root / "definitions"
    folder.mkdir(exist_ok=True)
    for name, body in files.items():
        (folder / name).write_text(textwrap.dedent(body), "utf-8")
    return folder


def database_url(kind: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'caseloop.sqlite3'}" if kind == "sqlite" else postgresql_url()


def build_app(kind: str, tmp_path: Path, files: Mapping[str, str] | None = None,
              **config: Any) -> Flask:
    """An app on SQLite or PostgreSQL with ``files`` (name -> YAML) as its only definitions;
    the shipped ones when ``files`` is None."""
    paths = [str(p) for p in SHIPPED] if files is None else [
        str(write_definitions(tmp_path, files))]
    app = make_app(database_url(kind, tmp_path), tmp_path, CASELOOP_DEFINITIONS=paths, **config)
    error = app.extensions["caseloop"].load_error
    assert error is None, str(error)
    return app


def dispose(app: Flask) -> None:
    with app.app_context():
        state().db.session.remove()
        state().db.engine.dispose()


def person(app: Flask, name: str, roles: Sequence[str], teams: Sequence[str] = (),
           lang: str = "en") -> Actor:
    """A user row (committed) and the actor it acts as; call inside an app context."""
    session = state().db.session
    user = add_user(session, name, roles=roles, teams=teams, locale=lang)
    session.commit()
    return actor_for(session, user, sees_all_roles=app.config["CASELOOP_SEE_ALL_ROLES"])


def count(session: Any, model: type[Base], **where: Any) -> int:
    stmt = select(func.count()).select_from(model)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return int(session.execute(stmt).scalar_one())


def rows(session: Any) -> tuple[int, int, int]:
    """(cases, events, jobs): what a failed operation must leave unchanged."""
    return count(session, Case), count(session, Event), count(session, Job)


def utc(moment: dt.datetime) -> dt.datetime:
    """A datetime read back from the database, in UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def bump_version(app: Flask, case_id: int) -> None:
    """Another writer changes the case behind the test's back (own connection, committed)."""
    with state().db.engine.begin() as conn:
        conn.execute(text("UPDATE caseloop_cases SET version = version + 1 WHERE id = :id"),
                     {"id": case_id})


# -- definitions ---------------------------------------------------------------------------
TICKET = """\
form: ticket
fields:
  - name: title
    type: text
    label: {en: Title, zh: 标题}
    required: true
    min_length: 3
  - name: kind
    type: choice
    label: Kind
    default: question
    choices: [bug, question]
  - name: detail
    type: text
    label: Detail
    visible_if: "kind == 'bug'"
  - name: severity
    type: integer
    label: Severity
    min: 1
    max: 5
  - name: weight
    type: integer
    label: Weight
    value: "filled(severity) ? severity * 10 : 0"
  - name: note
    type: textarea
    label: Note
  - name: secret
    type: text
    label: Secret
  - name: customer
    type: text
    label: Customer
  - name: priority
    type: choice
    label: Priority
    default: normal
    choices: [high, normal]
  - name: counter
    type: integer
    label: Counter
    default: 0
"""

FLOW = """\
workflow: flow
form: ticket
roles: [agent, lead]
start: [agent]
reference_prefix: TKT
priority_field: priority
customer_field: customer
states:
  open:
    fields:
      default: editable
      hidden: [secret]
    on_enter:
      - assign: {team: care}
  working:
    fields:
      default: editable
      readonly: [title]
      hidden: [secret]
    on_enter:
      - set:
          counter: "filled(counter) ? counter + 1 : 1"
      - when: "kind == 'bug'"
        set:
          detail: "'seen by ' + user.name"
      - notify:
          to: [team, role:lead]
          channel: email
          message: {en: Working on it, zh: 处理中}
      - crm:
          push: case
          note: {en: Started, zh: 已开始}
      - timer:
          after: 1h
          fire: pause
      - when: "kind == 'bug'"
        start:
          workflow: task
          map:
            summary: "'Fix: ' + title"
            origin: reference
          assign:
            team: care
      - start:
          workflow: task
          after: 2d
          map:
            summary: title
      - fire:
          case: children
          trigger: cancel
  paused:
    category: paused
    fields:
      default: readonly
      editable: [secret]
  review:
    fields:
      default: readonly
      editable: [note]
  done:
    final: true
    fields: {default: readonly}
transitions:
  - trigger: begin
    from: open
    to: working
    allow: [agent, lead]
  - trigger: pause
    from: working
    to: paused
    allow: [agent, system]
  - trigger: resume
    from: paused
    to: working
    allow: [agent]
  - trigger: submit
    from: working
    to: review
    allow: [agent]
    requires: [note]
    guard:
      if: "filled(severity) && severity <= 3"
      message: {en: Too severe to submit., zh: 严重程度过高，不能提交。}
  - trigger: approve
    from: review
    to: done
    allow: [lead]
"""

CHORE = """\
form: chore
fields:
  - name: summary
    type: text
    label: Summary
    required: true
  - name: origin
    type: reference
    to: case
    label: Origin
  - name: effort
    type: integer
    label: Effort
    required: true
"""

TASK = """\
workflow: task
form: chore
roles: [agent]
start: [agent]
states:
  todo: {}
  cancelled:
    final: true
transitions:
  - trigger: cancel
    from: todo
    to: cancelled
    allow: [agent, system]
"""

FILES = {"ticket.yaml": TICKET, "flow.yaml": FLOW, "chore.yaml": CHORE, "task.yaml": TASK}


@dataclass
class Env:
    app: Flask
    session: Any
    cases: Cases
    agent: Actor
    lead: Actor
    both: Actor

    def create(self, data: Mapping[str, Any] | None = None, actor: Actor | None = None) -> Case:
        case = self.cases.create("flow", data if data is not None else {"title": "Printer"},
                                 actor or self.agent)
        self.session.commit()
        return case

    def fire(self, case: Case | int, trigger: str, data: Mapping[str, Any] | None = None,
             actor: Actor | None = None, **kwargs: Any) -> Case:
        case_id = case if isinstance(case, int) else case.id
        try:
            out = self.cases.fire(case_id, trigger, data or {}, actor or self.agent, **kwargs)
        except Exception:
            self.session.rollback()  # what the API does
            raise
        self.session.commit()
        return out


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    app = build_app(request.param, tmp_path, FILES)
    with app.app_context():
        st = state()
        agent = person(app, "alice", ["agent"], ["desk"])  # the flow moves cases to care
        lead = person(app, "lena", ["lead"], ["care"], lang="zh")
        both = person(app, "bo", ["agent", "lead"], ["care"])
        cases = Cases(st.db.session, st.registry, clock=lambda: NOW)
        yield Env(app, st.db.session, cases, agent, lead, both)
    dispose(app)


# -- create --------------------------------------------------------------------------------------
def test_create_writes_the_case_and_its_created_event(env: Env) -> None:
    case = env.create({"title": " Printer jams ", "severity": "2", "customer": "C-17",
                       "priority": "high"})
    s = env.session
    case = s.get(Case, case.id)
    assert case is not None
    # Inserted in its creator's team 'desk', then moved to 'care' by the on-enter assignment.
    assert (case.workflow, case.state, case.version, case.closed) == ("flow", "open", 2, False)
    wf = env.app.extensions["caseloop"].registry.workflow("flow")
    assert case.definition_version == wf.version
    # Cleaned: stripped, converted, defaults filled in, computed values computed.
    assert case.data == {"title": "Printer jams", "kind": "question", "severity": 2,
                         "weight": 20, "customer": "C-17", "priority": "high", "counter": 0}
    assert (case.priority, case.customer_ref) == ("high", "C-17")
    assert case.created_by == env.agent.id and case.parent_id is None
    assert case.reference == f"TKT-2026-{case.id:06d}"
    events = s.execute(select(Event).where(Event.case_id == case.id)).scalars().all()
    assert [(e.kind, e.to_state, e.actor_name, e.actor_id) for e in events] == [
        ("created", "open", "alice", env.agent.id), ("assigned", None, "system", None)]
    assert events[0].payload == {"data": case.data}
    assert events[1].payload == {"action": "assign", "team": "care"}
    care = s.execute(select(Team).where(Team.name == "care")).scalar_one()
    assert case.team_id == care.id
    assert count(s, Job) == 0  # 'open' has no on-enter actions


@pytest.mark.parametrize("roles", [["lead"], [], ["system"], ["admin"]])
def test_create_is_default_deny_by_start_roles(env: Env, roles: list[str]) -> None:
    outsider = person(env.app, "olga", roles, ["care"])
    with pytest.raises(Forbidden) as err:
        env.cases.create("flow", {"title": "Printer"}, outsider)
    assert err.value.status == 403 and err.value.code == "forbidden"
    env.session.rollback()
    assert rows(env.session) == (0, 0, 0)


def test_a_user_named_system_is_not_the_system(env: Env) -> None:
    impostor = replace(person(env.app, "system", ["lead", "system"], ["care"]), sees_all=True)
    assert not impostor.is_system and Actor.system().is_system
    with pytest.raises(Forbidden):
        env.cases.create("flow", {}, impostor)  # no start role, and no validation bypass
    case = env.create()
    env.fire(case, "begin")
    with pytest.raises(Forbidden):  # 'pause' allows agent and system: a user's 'system' role
        env.fire(case, "pause", actor=impostor)  # does not count
    assert env.fire(case, "pause", actor=Actor.system()).state == "paused"


def test_create_unknown_workflow(env: Env) -> None:
    with pytest.raises(NotFound) as err:
        env.cases.create("nope", {}, env.agent)
    assert err.value.status == 404


def test_create_with_invalid_data_writes_nothing(env: Env) -> None:
    with pytest.raises(Invalid) as err:
        env.cases.create("flow", {"title": "ab", "severity": 9, "kind": "other", "bogus": 1,
                                  "weight": 5}, env.agent)
    assert err.value.status == 422 and err.value.code == "invalid"
    assert err.value.fields == {
        "bogus": ["This form has no such field."],
        "weight": ["This value is computed and cannot be set."],
        "title": ["Must be 3 to ∞ characters long."],
        "kind": ["Choose one of the options."],
        "severity": ["Must be at most 5."],
    }
    env.session.rollback()
    assert rows(env.session) == (0, 0, 0)


def test_create_cannot_fill_a_field_hidden_in_the_initial_state(env: Env) -> None:
    with pytest.raises(Invalid) as err:
        env.cases.create("flow", {"title": "Printer", "secret": "x"}, env.agent)
    assert err.value.fields == {"secret": ["This field cannot be changed now."]}
    env.session.rollback()
    assert rows(env.session) == (0, 0, 0)


def test_create_messages_follow_the_actors_language(env: Env) -> None:
    zh = person(env.app, "wang", ["agent"], lang="zh")
    with pytest.raises(Invalid) as err:
        env.cases.create("flow", {}, zh)
    assert err.value.fields == {"title": ["此项为必填项。"]}


# -- fire: refusals ------------------------------------------------------------------------
def test_wrong_state_is_a_conflict(env: Env) -> None:
    case = env.create()
    with pytest.raises(Conflict) as err:
        env.fire(case, "approve", actor=env.lead)
    assert (err.value.status, err.value.code) == (409, "wrong_state")


def test_unknown_trigger_is_not_found(env: Env) -> None:
    case = env.create()
    with pytest.raises(NotFound) as err:
        env.fire(case, "teleport")
    assert err.value.status == 404
    with pytest.raises(NotFound):
        env.fire(case.id + 1000, "begin")  # and an unknown case


def test_a_role_not_allowed_is_forbidden_and_writes_nothing(env: Env) -> None:
    case = env.create()
    env.fire(case, "begin")
    before = rows(env.session)
    with pytest.raises(Forbidden) as err:
        env.fire(case, "submit", {"note": "done"}, actor=env.lead)
    assert (err.value.status, err.value.code) == (403, "forbidden")
    assert rows(env.session) == before
    assert env.session.get(Case, case.id).state == "working"


def test_a_failing_guard_is_invalid_with_its_localised_message(env: Env) -> None:
    case = env.create({"title": "Printer", "severity": 5})
    env.fire(case, "begin")
    before = rows(env.session)
    with pytest.raises(Invalid) as err:
        env.fire(case, "submit", {"note": "done"})
    assert (err.value.status, err.value.code) == (422, "guard_failed")
    assert err.value.message == "Too severe to submit."
    zh = person(env.app, "zhang", ["agent"], ["care"], lang="zh")
    with pytest.raises(Invalid) as err:
        env.fire(case, "submit", {"note": "done"}, actor=zh)
    assert err.value.message == "严重程度过高，不能提交。"
    assert rows(env.session) == before
    stored = env.session.get(Case, case.id)
    assert (stored.state, stored.version) == ("working", 3) and "note" not in stored.data
    # The guard reads the submitted data: lowering the severity lets it pass.
    assert env.fire(case, "submit", {"note": "done", "severity": 3}).state == "review"


def test_a_steps_required_fields(env: Env) -> None:
    case = env.create({"title": "Printer", "severity": 1})
    env.fire(case, "begin")
    with pytest.raises(Invalid) as err:
        env.fire(case, "submit", {"note": "   "})
    assert err.value.code == "invalid"
    assert err.value.fields == {"note": ["This field is required."]}


def test_read_only_fields_cannot_change_in_a_state(env: Env) -> None:
    case = env.create()
    env.fire(case, "begin")
    before = rows(env.session)
    with pytest.raises(Invalid) as err:
        env.fire(case, "pause", {"title": "Renamed"})
    assert err.value.fields == {"title": ["This field cannot be changed now."]}
    assert rows(env.session) == before
    # Sending the stored value back is no change.
    assert env.fire(case, "pause", {"title": "Printer"}).state == "paused"
    # In 'paused' everything is read-only but the secret.
    with pytest.raises(Invalid) as err:
        env.fire(case, "resume", {"severity": 2, "secret": "s3cret"})
    assert err.value.fields == {"severity": ["This field cannot be changed now."]}


def test_hidden_fields_cannot_be_written_and_keep_their_value(env: Env) -> None:
    case = env.create()
    env.fire(case, "begin")
    env.fire(case, "pause")
    env.fire(case, "resume", {"secret": "s3cret"})  # editable in 'paused'
    assert env.session.get(Case, case.id).data["secret"] == "s3cret"
    with pytest.raises(Invalid) as err:  # hidden in 'working'
        env.fire(case, "submit", {"note": "n", "secret": "other"})
    assert err.value.fields == {"secret": ["This field cannot be changed now."]}
    case = env.fire(case, "pause", {"severity": 2})
    assert case.data["secret"] == "s3cret" and case.data["severity"] == 2


def test_stale_expected_version_is_a_conflict_and_writes_nothing(env: Env) -> None:
    case = env.create()
    assert case.version == 2  # inserted, then assigned to the team on entering 'open'
    env.fire(case, "begin", expected_version=2)
    before = rows(env.session)
    with pytest.raises(Conflict) as err:
        env.fire(case, "pause", expected_version=2)
    assert (err.value.status, err.value.code) == (409, "stale")
    assert rows(env.session) == before
    assert env.session.get(Case, case.id).version == 3
    assert env.fire(case, "pause", expected_version=3).version == 4


def test_a_concurrent_change_caught_at_flush_is_a_stale_conflict(env: Env) -> None:
    """The version check fires in the flush a linked case's creation causes, too."""
    case = env.create({"title": "Printer", "kind": "bug"})
    before = rows(env.session)
    loaded = env.cases.get(case.id, env.agent)  # this session holds version 1
    bump_version(env.app, case.id)
    with pytest.raises(Conflict) as err:
        env.fire(loaded, "begin")
    assert err.value.code == "stale"
    assert rows(env.session) == before
    env.session.expire_all()
    stored = env.session.get(Case, case.id)
    assert (stored.state, stored.version) == ("open", 3)


# -- fire: what it writes ----------------------------------------------------------------------
def test_transition_event_records_actor_states_and_changes(env: Env) -> None:
    case = env.create({"title": "Printer", "severity": 2, "customer": "C-1"})
    env.fire(case, "begin", {"severity": 3, "note": "looking", "customer": None}, actor=env.both)
    s = env.session
    event = s.execute(select(Event).where(Event.case_id == case.id, Event.kind == "transition")
                      ).scalar_one()
    assert (event.trigger, event.from_state, event.to_state) == ("begin", "open", "working")
    assert (event.actor_name, event.actor_id) == ("bo", env.both.id)
    assert event.payload == {"changes": {"severity": [2, 3], "weight": [20, 30],
                                         "note": [None, "looking"], "customer": ["C-1", None]}}
    stored = s.get(Case, case.id)
    assert stored.customer_ref is None and stored.version == 3


def test_on_enter_jobs_are_written_with_their_run_at(env: Env) -> None:
    case = env.create({"title": "Printer"})
    env.fire(case, "begin")
    jobs = env.session.execute(select(Job).where(Job.case_id == case.id).order_by(Job.id)
                               ).scalars().all()
    got = [(j.kind, utc(j.run_at), j.status, j.payload) for j in jobs]
    assert got == [
        ("notify", NOW, "pending", {"to": ["team", "role:lead"], "channel": "email",
                                    "state": "working",
                                    "message": {"en": "Working on it", "zh": "处理中"}}),
        ("crm", NOW, "pending", {"push": "case", "state": "working",
                                 "note": {"en": "Started", "zh": "已开始"}}),
        ("timer", NOW + dt.timedelta(hours=1), "pending",
         {"trigger": "pause", "state": "working", "entered_at": NOW.isoformat()}),
        ("start", NOW + dt.timedelta(days=2), "pending",
         {"workflow": "task", "data": {"summary": "Printer"}, "assign": None}),
        ("fire", NOW, "pending", {"case": "children", "trigger": "cancel"}),
    ]
    assert count(env.session, Case) == 1  # 'question': no linked case now


def test_set_actions_and_their_when_conditions(env: Env) -> None:
    question = env.create({"title": "Printer"})
    env.fire(question, "begin")
    s = env.session
    assert s.get(Case, question.id).data["counter"] == 1
    assert "detail" not in s.get(Case, question.id).data  # when: kind == 'bug' is false
    actions = s.execute(select(Event).where(Event.case_id == question.id,
                                            Event.kind == "action")).scalars().all()
    assert [e.payload for e in actions] == [{"action": "set", "changes": {"counter": [0, 1]}}]
    env.fire(question, "pause")
    env.fire(question, "resume")
    assert s.get(Case, question.id).data["counter"] == 2

    bug = env.create({"title": "Printer", "kind": "bug"})
    env.fire(bug, "begin")
    data = s.get(Case, bug.id).data
    assert data["counter"] == 1 and data["detail"] == "seen by alice"


def test_a_linked_case_starts_with_its_mapped_fields_and_parent(env: Env) -> None:
    care = env.session.execute(select(Team).where(Team.name == "care")).scalar_one()
    bug = env.create({"title": "Printer", "kind": "bug"})
    env.fire(bug, "begin")
    s = env.session
    child = s.execute(select(Case).where(Case.parent_id == bug.id)).scalar_one()
    # In its parent's team 'care' from the start, so the assignment to care changes nothing.
    assert (child.workflow, child.state, child.version) == ("task", "todo", 1)
    # Mapped from the parent; 'effort' is required but unmapped: the system keeps what it could.
    assert child.data == {"summary": "Fix: Printer", "origin": bug.reference}
    assert child.team_id == care.id and child.created_by is None
    events = s.execute(select(Event).where(Event.case_id == child.id).order_by(Event.id)
                       ).scalars().all()
    assert [(e.kind, e.actor_name) for e in events] == [("created", "system"),
                                                          ("assigned", "system")]
    assert events[0].payload["warnings"] == {"effort": ["This field is required."]}
    assert events[1].payload == {"action": "assign", "team": "care"}


def test_everything_of_a_step_is_one_transaction(env: Env) -> None:
    """An error after the on-enter actions ran (here: the commit never comes) leaves nothing."""
    bug = env.create({"title": "Printer", "kind": "bug"})
    before = rows(env.session)
    env.cases.fire(bug.id, "begin", {}, env.agent)
    assert rows(env.session) != before  # flushed: child case, events, jobs
    env.session.rollback()
    assert rows(env.session) == before
    stored = env.session.get(Case, bug.id)
    assert (stored.state, stored.version) == ("open", 2)


def test_walk_to_the_final_state(env: Env) -> None:
    case = env.create({"title": "Printer", "severity": 2})
    for trigger, data, actor in [("begin", {}, env.agent), ("submit", {"note": "fixed"}, None),
                                 ("approve", {}, env.lead)]:
        case = env.fire(case, trigger, data, actor=actor)
    assert (case.state, case.closed, case.version) == ("done", True, 5)
    assert env.cases.actions(case, env.lead) == []


def test_actions_say_what_is_possible_and_why_not(env: Env) -> None:
    case = env.create({"title": "Printer", "severity": 4})
    case = env.fire(case, "begin")
    got = {a["trigger"]: a for a in env.cases.actions(case, env.agent)}
    assert set(got) == {"pause", "submit"}
    assert got["pause"] == {"trigger": "pause", "label": "pause", "to": "paused", "requires": [],
                            "available": True, "reason": None}
    assert got["submit"]["available"] is False
    assert got["submit"]["reason"] == "Too severe to submit."
    assert got["submit"]["requires"] == ["note"]
    for a in env.cases.actions(case, env.lead):  # lena reads Chinese and may do neither
        assert a["available"] is False and a["reason"] == "您的角色无权执行此操作。"


# -- the shipped complaint workflow ---------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def shipped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(request.param, tmp_path)
    with app.app_context():
        yield app
    dispose(app)


def test_walk_the_shipped_complaint_from_received_to_closed(shipped: Flask) -> None:
    s = state().db.session
    agent = person(shipped, "li", ["agent"], ["care"])
    cases = Cases(s, state().registry, clock=lambda: NOW)
    case = cases.create("complaint", {
        "customer_name": "Li Lei", "phone": "138 0013 8000", "category": "delivery",
        "subject": "Parcel two weeks late", "description": "Ordered on the 1st, came on the 15th.",
    }, agent)
    s.commit()
    assert case.state == "received" and case.reference.startswith("CMP-2026-")
    assert case.data["phone"] == "+8613800138000"
    assert case.data["channel"] == "web" and case.priority == "normal"  # defaults
    response = "We are sorry: the carrier lost the parcel for a week; we refund the shipping."
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("acknowledge", {}, "acknowledged"),
        ("assess", {"severity": 2, "impact": "single_customer", "complexity": "simple"},
         "assessed"),
        ("respond", {"response": response}, "responded"),
        ("communicate_decision", {"remedy_offered": ["apology", "refund"],
                                  "compensation_amount": "12", "resolution_summary":
                                  "Shipping refunded."}, "decision_communicated"),
        ("accept_decision", {"decision": "accepted"}, "resolved"),
        ("close", {}, "closed"),
    ]
    for trigger, data, target in steps:
        version = case.version
        case = cases.fire(case.id, trigger, data, agent, expected_version=version)
        s.commit()
        assert (case.state, case.version) == (target, version + 1), trigger
    assert case.closed and case.data["compensation_amount"] == 12.0
    events = s.execute(select(Event).where(Event.case_id == case.id).order_by(Event.id)
                       ).scalars().all()
    assert [e.trigger for e in events if e.kind == "transition"] == [t for t, _, _ in steps]
    assert [e.to_state for e in events if e.kind in ("created", "transition")] == [
        "received", *[target for _, _, target in steps]]
    jobs = s.execute(select(Job).where(Job.case_id == case.id)).scalars().all()
    kinds = [j.kind for j in jobs]
    # received: notify team; acknowledged: notify customer, crm, 1d timer; responded:
    # notify, crm; decision_communicated: crm, timer; resolved: revisit in 3 days, crm,
    # close timer; closed: notify, crm (no improvement plan: not needed).
    assert sorted(kinds) == sorted(["notify", "notify", "crm", "timer", "notify", "crm", "crm",
                                    "timer", "start", "crm", "timer", "notify", "crm"])
    revisit = next(j for j in jobs if j.kind == "start")
    assert utc(revisit.run_at) == NOW + dt.timedelta(days=3)
    assert revisit.payload["workflow"] == "revisit"
    assert revisit.payload["data"]["complaint_reference"] == case.reference
    assert revisit.payload["data"]["complaint_summary"] == "Shipping refunded."
    assert revisit.payload["data"]["phone"] == "+8613800138000"
    assert count(s, Case) == 1


def test_closing_with_improvement_needed_starts_a_plan_at_once(shipped: Flask) -> None:
    s = state().db.session
    agent = person(shipped, "li", ["agent"], ["care"])
    cases = Cases(s, state().registry, clock=lambda: NOW)
    case = cases.create("complaint", {
        "customer_name": "Li Lei", "email": "li@example.com", "category": "product_quality",
        "subject": "Leaking washer", "description": "Leaks after two weeks of use."}, agent)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("acknowledge", {}),
        ("assess", {"severity": 3, "impact": "several_customers", "complexity": "complex"}),
        ("investigate", {}),
        ("respond", {"response": "The seal batch was faulty; we replace your machine.",
                     "root_cause": "Faulty seal batch 42."}),
        ("communicate_decision", {"remedy_offered": ["replacement"],
                                  "resolution_summary": "Machine replaced.",
                                  "improvement_needed": True}),
        ("accept_decision", {"decision": "accepted"}),
        ("close", {}),
    ]
    for trigger, data in steps:
        case = cases.fire(case.id, trigger, data, agent)
    s.commit()
    plan = s.execute(select(Case).where(Case.parent_id == case.id)).scalar_one()
    assert plan.workflow == "improvement_plan" and plan.state == "draft"
    assert plan.data["source_complaint"] == case.reference
    assert plan.data["title"] == "Leaking washer"
    assert plan.data["problem_statement"] == (
        f"From complaint {case.reference}: Leaks after two weeks of use.")


# -- pinned definition versions ------------------------------------------------------------------
def test_a_case_keeps_its_version_when_the_file_changes(env: Env) -> None:
    st = state()
    registry = st.registry
    old = registry.workflow("flow")
    assert old is not None
    case = env.create({"title": "Printer", "severity": 5})
    env.fire(case, "begin")
    # A new version: 'submit' has neither a guard nor required fields any more.
    folder = Path(env.app.config["CASELOOP_DEFINITIONS"][0])
    changed = FLOW.replace("""    requires: [note]
    guard:
      if: "filled(severity) && severity <= 3"
      message: {en: Too severe to submit., zh: 严重程度过高，不能提交。}\n""", "")
    assert changed != FLOW
    (folder / "flow.yaml").write_text(changed, "utf-8")
    registry.load()
    registry.record(env.session)
    env.session.commit()
    new = registry.workflow("flow")
    assert new is not None and new.version != old.version
    assert [v.version for v in registry.versions("flow", env.session)] == [old.version,
                                                                            new.version]
    # The old case still runs on the old rules: the guard and the note.
    stored = env.session.get(Case, case.id)
    assert stored.definition_version == old.version
    with pytest.raises(Invalid) as err:
        env.fire(case, "submit", {"note": "n"})
    assert err.value.code == "guard_failed"
    with pytest.raises(Invalid) as err:
        env.fire(case, "submit", {"severity": 1})
    assert err.value.fields == {"note": ["This field is required."]}
    assert env.fire(case, "submit", {"note": "n", "severity": 1}).state == "review"
    assert env.session.get(Case, case.id).definition_version == old.version
    # A new case is pinned to the new version and follows the new rules.
    fresh = env.create({"title": "Scanner", "severity": 5})
    assert fresh.definition_version == new.version
    env.fire(fresh, "begin")
    assert env.fire(fresh, "submit").state == "review"
    # Each version has its own machine, built once.
    assert registry.machine(old) is registry.machine(old)
    assert registry.machine(old) is not registry.machine(new)


def test_an_old_version_is_rebuilt_from_the_database(env: Env, tmp_path: Path) -> None:
    case = env.create({"title": "Printer", "severity": 5})
    old_version = case.definition_version
    folder = Path(env.app.config["CASELOOP_DEFINITIONS"][0])
    (folder / "flow.yaml").write_text(FLOW.replace("severity <= 3", "severity <= 5"), "utf-8")
    # Another process (a new app) only knows the new file.
    url = str(state().db.engine.url.render_as_string(hide_password=False))
    other = make_app(url, tmp_path / "other", CASELOOP_DEFINITIONS=[str(folder)])
    with other.app_context():
        st = state()
        assert st.registry.workflow("flow").version != old_version
        s = st.db.session
        row = s.execute(select(DefinitionVersion).where(
            DefinitionVersion.version == old_version)).scalar_one()
        assert "flow.yaml" in " ".join(row.bundle)
        cases = Cases(s, st.registry, clock=lambda: NOW)
        agent = actor_for(s, _user(s, "alice"))
        cases.fire(case.id, "begin", {}, agent)
        with pytest.raises(Invalid) as err:  # the old guard: severity <= 3
            cases.fire(case.id, "submit", {"note": "n"}, agent)
        assert err.value.code == "guard_failed"
        s.rollback()
        s.remove()
        st.db.engine.dispose()


def _user(session: Session, name: str) -> Any:
    from caseloop.models import User

    return session.execute(select(User).where(User.name == name)).scalar_one()


def test_changes_lists_every_field_that_changed() -> None:
    assert changes({"a": 1, "b": 2, "c": None}, {"a": 1, "b": 3, "d": 4}) == {
        "b": [2, 3], "d": [None, 4]}


def test_create_over_http_reports_the_version_it_committed(env: Env) -> None:
    """On-enter actions may update the new row (here: the team); the 201's ETag is the
    committed version, so the creator's first If-Match is not stale."""
    token = issue_token(env.session, _user(env.session, "alice"))
    env.session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    client = env.app.test_client()
    created = client.post("/api/cases", json={"workflow": "flow", "data": {"title": "Fax"}},
                          headers=auth)
    assert created.status_code == 201, created.json
    got = client.get(created.headers["Location"], headers=auth)
    assert created.json["version"] == got.json["version"] == 2
    assert created.headers["ETag"] == got.headers["ETag"] == '"2"'
    fired = client.post(f"/api/cases/{created.json['id']}/transitions/begin",
                        headers={**auth, "If-Match": created.headers["ETag"]})
    assert fired.status_code == 200, fired.json


# -- edge cases of the unit of work -----------------------------------------------------------
CHAIN_FORM = """\
form: chain_form
fields:
  - name: due
    type: datetime
    label: Due
  - name: level
    type: integer
    label: Level
  - name: note
    type: text
    label: Note
"""

#: Every chain case starts another at once: only the depth limit ends it.
CHAIN = """\
workflow: chain
form: chain_form
roles: [agent]
start: [agent]
states:
  waiting:
    on_enter:
      - timer: {at: due, fire: expire}
      - start:
          workflow: chain
          map:
            level: "filled(level) ? level + 1 : 1"
  expired:
    final: true
  cleared:
    final: true
transitions:
  - {trigger: expire, from: waiting, to: expired, allow: [agent, system]}
  - trigger: clear
    from: waiting
    to: cleared
    allow: [agent]
    guard:
      if: "!filled(note)"
      message: Remove the note first.
"""


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[Cases, Actor]]:
    app = build_app("sqlite", tmp_path, {"chain_form.yaml": CHAIN_FORM, "chain.yaml": CHAIN})
    with app.app_context():
        agent = person(app, "ann", ["agent"])
        yield Cases(state().db.session, state().registry, clock=lambda: NOW), agent
    dispose(app)


def test_linked_cases_stop_at_the_depth_limit_and_timers_at_an_expression(
        chain: tuple[Cases, Actor]) -> None:
    cases, agent = chain
    s = cases.session
    root = cases.create("chain", {"due": "2026-03-05T10:00:00+08:00"}, agent)
    s.commit()
    levels = s.execute(select(Case.id, Case.parent_id, Case.data).order_by(Case.id)).all()
    assert [data.get("level") for _, _, data in levels] == [None, 1, 2, 3, 4, 5]
    assert [parent for _, parent, _ in levels] == [None, *[i for i, _, _ in levels[:-1]]]
    timers = s.execute(select(Job).where(Job.kind == "timer")).scalars().all()
    assert [(j.case_id, utc(j.run_at)) for j in timers] == [
        (root.id, dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.UTC))]
    notes = [(e.case_id, e.payload.get("note")) for e in s.execute(
        select(Event).where(Event.kind == "action").order_by(Event.id)).scalars()]
    deepest = levels[-1][0]
    assert (deepest, "not started: linked cases nested deeper than 5") in notes
    # The children have no 'due': their timers are not set, and the history says so.
    assert sum(note == "timer not set: its time is empty" for _, note in notes) == 5


def test_a_guard_sees_a_field_the_step_empties(chain: tuple[Cases, Actor]) -> None:
    cases, agent = chain
    case = cases.create("chain", {"note": "blocking"}, agent)
    cases.session.commit()
    with pytest.raises(Invalid) as err:
        cases.fire(case.id, "clear", {}, agent)
    assert err.value.code == "guard_failed"
    cases.session.rollback()
    # Emptying the note in the same step lets the guard pass, even when nothing is left.
    done = cases.fire(case.id, "clear", {"note": None}, agent)
    assert done.state == "cleared" and done.data == {}


def test_datetimes_read_back_from_sqlite_are_aware(chain: tuple[Cases, Actor]) -> None:
    cases, agent = chain
    case = cases.create("chain", {}, agent)
    cases.session.commit()
    cases.session.expire_all()
    stored = cases.session.get(Case, case.id)
    assert stored is not None
    assert stored.created_at.tzinfo is not None
    assert stored.created_at == NOW
