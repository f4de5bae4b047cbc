"""The authorisation matrix over HTTP: roles x transitions x case visibility.

A case a user may not see is 404 on every route (and missing from the list),
exactly like a case that does not exist; a visible case with a role not in a
transition's ``allow`` is 403 and nothing is written; the actions endpoint
says which transitions are unavailable and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from caseloop.extension import state
from caseloop.models import Case, Event, Job
from caseloop.users import add_user, issue_token

from .test_cases import build_app, count, dispose

GATE_FORM = """\
form: gate_form
fields:
  - name: queue
    type: choice
    label: Queue
    choices: [red, blue, nobody]
  - name: owner
    type: user
    label: Owner
  - name: note
    type: text
    label: {en: Note, zh: 备注}
"""

GATE = """\
workflow: gate
form: gate_form
roles: [agent, lead, auditor]
start: [agent, lead]
states:
  new:
    on_enter:
      - when: "queue == 'red'"
        assign: {team: red}
      - when: "queue == 'blue'"
        assign: {team: blue}
      - when: "filled(owner)"
        assign: {user: owner}
  active: {}
  done:
    final: true
transitions:
  - {trigger: take, from: new, to: active, allow: [agent]}
  - {trigger: approve, from: new, to: done, allow: [lead]}
  - trigger: finish
    from: active
    to: done
    allow: [agent, lead]
    guard:
      if: "filled(note)"
      message: {en: Write a note first., zh: 请先填写备注。}
"""

TRIGGERS = ("take", "approve", "finish")


@dataclass(frozen=True)
class Who:
    roles: tuple[str, ...]
    teams: tuple[str, ...] = ()
    lang: str = "en"


#: 'auditor' is the sees-all role here (CASELOOP_SEE_ALL_ROLES); 'manager', a sees-all
#: role by default, is not, so mia sees nothing that is not hers.
USERS: dict[str, Who] = {
    "alice": Who(("agent",), ("red",)),
    "bob": Who(("agent",), ("red",)),
    "carol": Who(("agent",), ("blue",)),
    "dave": Who(("lead",), ("blue",)),
    "erin": Who(("lead",), ("red",), "zh"),
    "mia": Who(("manager",)),
    "zed": Who(("auditor",)),
}

#: name -> (creator, data): the cases everybody is tested against.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "red": ("alice", {"queue": "red"}),                       # team red, no assignee
    "blue_for_dave": ("carol", {"queue": "blue", "owner": "dave"}),  # team blue, assigned
    "alices_own": ("alice", {"queue": "nobody"}),             # its creator's team (red)
    "for_bob": ("carol", {"owner": "bob"}),                    # carol's team, assigned to bob
}

#: Who sees which case: own team, assigned to them, created by them, or a sees-all role.
VISIBLE: dict[str, set[str]] = {
    "red": {"alice", "bob", "erin", "zed"},
    "blue_for_dave": {"carol", "dave", "zed"},
    "alices_own": {"alice", "bob", "erin", "zed"},
    "for_bob": {"bob", "carol", "dave", "zed"},
}


@dataclass
class World:
    app: Flask
    client: FlaskClient
    auth: dict[str, dict[str, str]]
    ids: dict[str, int]

    def as_(self, user: str, lang: str | None = None) -> dict[str, str]:
        headers = dict(self.auth[user])
        if lang:
            headers["Accept-Language"] = lang
        return headers

    def snapshot(self, case_id: int) -> tuple[int, str, int, int]:
        with self.app.app_context():
            s = state().db.session
            case = s.get(Case, case_id)
            assert case is not None
            out = (case.version, case.state, count(s, Event, case_id=case_id),
                   count(s, Job, case_id=case_id))
            s.remove()
            return out

    def new_case(self, creator: str, data: dict[str, Any]) -> int:
        response = self.client.post("/api/cases", json={"workflow": "gate", "data": data},
                                    headers=self.auth[creator])
        assert response.status_code == 201, response.json
        case_id: int = response.json["id"]
        return case_id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp(f"authz_{request.param}")
    app = build_app(request.param, tmp, {"gate_form.yaml": GATE_FORM, "gate.yaml": GATE},
                    CASELOOP_SEE_ALL_ROLES=["auditor"])
    auth = {}
    with app.app_context():
        s = state().db.session
        for name, who in USERS.items():
            user = add_user(s, name, roles=who.roles, teams=who.teams, locale=who.lang)
            auth[name] = {"Authorization": f"Bearer {issue_token(s, user)}"}
        s.commit()
    w = World(app, app.test_client(), auth, {})
    for name, (creator, data) in CASES.items():
        w.ids[name] = w.new_case(creator, data)
    yield w
    dispose(app)


def test_the_cases_are_where_the_matrix_says(world: World) -> None:
    with world.app.app_context():
        s = state().db.session
        got = {}
        for name, case_id in world.ids.items():
            case = s.get(Case, case_id)
            assert case is not None
            got[name] = (case.team_id is not None, case.assignee_id is not None)
        s.remove()
    assert got == {"red": (True, False), "blue_for_dave": (True, True),
                   "alices_own": (True, False), "for_bob": (True, True)}


@pytest.mark.parametrize("user", sorted(USERS))
def test_the_list_shows_exactly_the_visible_cases(world: World, user: str) -> None:
    response = world.client.get("/api/cases?workflow=gate&limit=200", headers=world.as_(user))
    assert response.status_code == 200
    listed = {item["id"] for item in response.json["items"]}
    mine = {world.ids[name] for name, users in VISIBLE.items() if user in users}
    assert listed & set(world.ids.values()) == mine


@pytest.mark.parametrize("user", sorted(USERS))
def test_a_case_not_visible_is_404_on_every_route(world: World, user: str) -> None:
    hidden = [name for name, users in VISIBLE.items() if user not in users]
    missing = max(world.ids.values()) + 10_000
    for name in hidden:
        case_id = world.ids[name]
        before = world.snapshot(case_id)
        requests = [
            ("GET", f"/api/cases/{case_id}", {}),
            ("GET", f"/api/cases/{case_id}/actions", {}),
            ("GET", f"/api/cases/{case_id}/events", {}),
            *[("POST", f"/api/cases/{case_id}/transitions/{t}", {"If-Match": '"1"'})
              for t in (*TRIGGERS, "no_such_trigger")],
        ]
        for method, url, extra in requests:
            response = world.client.open(url, method=method, json={"data": {"note": "x"}}
                                         if method == "POST" else None,
                                         headers={**world.as_(user), **extra})
            assert response.status_code == 404, (user, name, method, url, response.json)
            assert response.json["error"]["code"] == "not_found"
            # The same answer as for a case that does not exist: nothing leaks.
            absent = world.client.open(url.replace(str(case_id), str(missing)), method=method,
                                       headers=world.as_(user))
            assert absent.status_code == 404
            assert set(absent.json["error"]) == set(response.json["error"])
        assert world.snapshot(case_id) == before, (user, name)


@pytest.mark.parametrize("user", sorted(USERS))
def test_roles_on_visible_cases(world: World, user: str) -> None:
    who = USERS[user]
    for name in [n for n, users in VISIBLE.items() if user in users]:
        case_id = world.ids[name]
        response = world.client.get(f"/api/cases/{case_id}", headers=world.as_(user))
        assert response.status_code == 200
        actions = world.client.get(f"/api/cases/{case_id}/actions", headers=world.as_(user))
        assert actions.status_code == 200
        offered = {a["trigger"]: a for a in actions.json["actions"]}
        assert set(offered) == {"take", "approve"}  # the transitions out of 'new'
        for trigger, allowed in (("take", "agent" in who.roles),
                                 ("approve", "lead" in who.roles)):
            entry = offered[trigger]
            assert entry["available"] is allowed, (user, name, trigger)
            if not allowed:
                assert entry["reason"] == ("您的角色无权执行此操作。" if who.lang == "zh"
                                           else "Your role may not do this.")
                before = world.snapshot(case_id)
                refused = world.client.post(f"/api/cases/{case_id}/transitions/{trigger}",
                                            json={"data": {"note": "sneaky"}},
                                            headers=world.as_(user))
                assert refused.status_code == 403, (user, name, trigger, refused.json)
                assert refused.json["error"]["code"] == "forbidden"
                assert world.snapshot(case_id) == before
            else:
                assert entry["reason"] is None
        # 'finish' does not leave 'new': a conflict, whoever asks.
        before = world.snapshot(case_id)
        wrong = world.client.post(f"/api/cases/{case_id}/transitions/finish",
                                  headers=world.as_(user))
        assert wrong.status_code == 409 and wrong.json["error"]["code"] == "wrong_state"
        assert world.snapshot(case_id) == before


@pytest.mark.parametrize(("user", "queue", "trigger", "state_after"), [
    ("alice", "red", "take", "active"),
    ("bob", "red", "take", "active"),
    ("erin", "red", "approve", "done"),
    ("carol", "blue", "take", "active"),
    ("dave", "blue", "approve", "done"),
])
def test_an_allowed_role_on_a_visible_case_may_fire(world: World, user: str, queue: str,
                                                    trigger: str, state_after: str) -> None:
    case_id = world.new_case("alice" if queue == "red" else "carol", {"queue": queue})
    response = world.client.post(f"/api/cases/{case_id}/transitions/{trigger}",
                                 headers=world.as_(user))
    assert response.status_code == 200, response.json
    assert response.json["state"] == state_after
    events = world.client.get(f"/api/cases/{case_id}/events", headers=world.as_(user)).json
    last = events["items"][-1]
    assert (last["kind"], last["trigger"], last["actor"]) == ("transition", trigger, user)


def test_the_actions_endpoint_gives_the_guards_reason(world: World) -> None:
    case_id = world.new_case("alice", {"queue": "red"})
    assert world.client.post(f"/api/cases/{case_id}/transitions/take",
                             headers=world.as_("bob")).status_code == 200
    for user, reason in (("bob", "Write a note first."), ("erin", "请先填写备注。")):
        actions = world.client.get(f"/api/cases/{case_id}/actions", headers=world.as_(user))
        assert actions.json["state"] == "active"
        assert actions.json["actions"] == [{
            "trigger": "finish", "label": "finish", "to": "done", "requires": [],
            "available": False, "reason": reason}]
    # Accept-Language overrides the user's own language.
    actions = world.client.get(f"/api/cases/{case_id}/actions", headers=world.as_("erin", "en"))
    assert actions.json["actions"][0]["reason"] == "Write a note first."
    before = world.snapshot(case_id)
    refused = world.client.post(f"/api/cases/{case_id}/transitions/finish",
                                headers=world.as_("bob"))
    assert refused.status_code == 422
    assert refused.json["error"] == {"code": "guard_failed", "message": "Write a note first.",
                                     "fields": {}}
    assert world.snapshot(case_id) == before
    # The auditor sees it but may do nothing.
    actions = world.client.get(f"/api/cases/{case_id}/actions", headers=world.as_("zed"))
    assert actions.json["actions"][0]["reason"] == "Your role may not do this."
    done = world.client.post(f"/api/cases/{case_id}/transitions/finish",
                             json={"data": {"note": "all good"}}, headers=world.as_("erin"))
    assert done.status_code == 200 and done.json["state"] == "done"
    final = world.client.get(f"/api/cases/{case_id}/actions", headers=world.as_("erin"))
    assert final.json["actions"] == []


@pytest.mark.parametrize("user", ["mia", "zed"])
def test_opening_a_case_is_default_deny(world: World, user: str) -> None:
    with world.app.app_context():
        s = state().db.session
        before = count(s, Case), count(s, Event)
        s.remove()
    response = world.client.post("/api/cases", json={"workflow": "gate", "data": {}},
                                 headers=world.as_(user))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    with world.app.app_context():
        s = state().db.session
        assert (count(s, Case), count(s, Event)) == before
        s.remove()


def test_a_user_named_system_gets_no_system_powers(world: World) -> None:
    with world.app.app_context():
        s = state().db.session
        impostor = add_user(s, "system", roles=["auditor", "system"], locale="en")
        headers = {"Authorization": f"Bearer {issue_token(s, impostor)}"}
        s.commit()
    response = world.client.post("/api/cases", json={"workflow": "gate", "data": {}},
                                 headers=headers)
    assert response.status_code == 403


def test_an_unknown_or_missing_token_is_401(world: World) -> None:
    case_id = world.ids["red"]
    for headers in ({}, {"Authorization": "Bearer cl_not_a_token"},
                    {"Authorization": "Basic YWxpY2U6cHc="}):
        response = world.client.get(f"/api/cases/{case_id}", headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"
