"""The JSON API over real HTTP (Flask's test client): the "done means" journey on
SQLite and PostgreSQL, every kind of bad input with its own status and code and
no write, pagination, idempotency, languages, and a fuzz test for 500s."""

from __future__ import annotations

import io
import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from caseloop.extension import state
from caseloop.models import User
from caseloop.users import add_user, issue_token, revoke_tokens

Headers = dict[str, str]

#: What a new complaint needs ('channel' and 'priority' are required too, but
#: have defaults in the form).
COMPLAINT: dict[str, Any] = {
    "customer_name": "Li Wei",
    "phone": "138 0013 8000",
    "category": "delivery",
    "subject": "Parcel five days late",
    "description": "The parcel arrived five days late and the box was crushed.",
}

#: The shipped complaint workflow from 'received' to 'closed', with the data
#: each step needs (requires + guards, read from workflows/complaint.yaml).
WALK: list[tuple[str, str, dict[str, Any]]] = [
    ("acknowledge", "acknowledged", {}),
    ("assess", "assessed", {"severity": 2, "impact": "single_customer",
                            "complexity": "moderate"}),
    ("investigate", "investigating", {}),
    ("respond", "responded", {
        "root_cause": "The carrier's depot in Wuxi was closed for two days.",
        "response": "We are sorry: the carrier's depot was closed. We refund the shipping."}),
    ("communicate_decision", "decision_communicated", {
        "remedy_offered": ["apology", "voucher"], "compensation_amount": 25,
        "resolution_summary": "Apology and a 25 CNY voucher."}),
    ("accept_decision", "resolved", {"decision": "accepted"}),
    ("close", "closed", {}),
]
#: The state reached after each step of WALK, for walking part of the way.
STATES = ["received", *[to for _, to, _ in WALK]]
TABLES = ("caseloop_cases", "caseloop_events", "caseloop_jobs", "caseloop_idempotency",
          "caseloop_users", "caseloop_tokens", "caseloop_teams", "caseloop_memberships")


def make_user(app: Flask, name: str, *, roles: list[str], teams: list[str] | None = None,
              locale: str = "en") -> Headers:
    with app.app_context():
        session = state().db.session
        user = add_user(session, name, roles=roles, teams=teams or [], locale=locale)
        token = issue_token(session, user)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def error_of(resp: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The error envelope of ``resp``, checked for its status, shape and code."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@dataclass
class Api:
    app: Flask
    client: FlaskClient
    agent: Headers = field(default_factory=dict)
    supervisor: Headers = field(default_factory=dict)

    def create(self, headers: Headers | None = None, *, workflow: str = "complaint",
               extra: dict[str, str] | None = None, **data: Any) -> TestResponse:
        body = {"workflow": workflow, "data": {**COMPLAINT, **data}}
        return self.client.post("/api/cases", json=body,
                                headers={**(self.agent if headers is None else headers),
                                         **(extra or {})})

    def fire(self, case_id: int, trigger: str, data: dict[str, Any] | None = None, *,
             headers: Headers | None = None, if_match: str | None = None) -> TestResponse:
        h = dict(self.agent if headers is None else headers)
        if if_match is not None:
            h["If-Match"] = if_match
        return self.client.post(f"/api/cases/{case_id}/transitions/{trigger}",
                                json={"data": data or {}}, headers=h)

    def case_in(self, target: str, headers: Headers | None = None, **data: Any) -> int:
        """A new complaint walked to ``target`` along WALK."""
        resp = self.create(headers, **data)
        assert resp.status_code == 201, resp.get_json()
        case_id: int = resp.get_json()["id"]
        for trigger, to, step in WALK[:STATES.index(target)]:
            resp = self.fire(case_id, trigger, step, headers=headers)
            assert resp.status_code == 200, resp.get_json()
            assert resp.get_json()["state"] == to
        return case_id

    def snapshot(self) -> dict[str, Any]:
        """Row counts of every table and each case's state, version and data."""
        with self.app.app_context():
            session = state().db.session
            out: dict[str, Any] = {t: session.execute(text(f"SELECT COUNT(*) FROM {t}"))
                                   .scalar_one() for t in TABLES}
            out["cases"] = [tuple(r) for r in session.execute(text(
                "SELECT id, state, version, data FROM caseloop_cases ORDER BY id"))]
        return out

    @contextmanager
    def writes_nothing(self) -> Iterator[None]:
        before = self.snapshot()
        yield
        assert self.snapshot() == before


@pytest.fixture
def api(any_db_app: Flask) -> Api:
    """The API on SQLite and PostgreSQL, with an agent and a supervisor of team 'care'."""
    return Api(any_db_app, any_db_app.test_client(),
               agent=make_user(any_db_app, "alice", roles=["agent"], teams=["care"]),
               supervisor=make_user(any_db_app, "sam", roles=["supervisor"], teams=["care"]))


@pytest.fixture
def lite(app: Flask) -> Api:
    """The same on SQLite only, for the tests that change the app's settings."""
    return Api(app, app.test_client(),
               agent=make_user(app, "alice", roles=["agent"], teams=["care"]),
               supervisor=make_user(app, "sam", roles=["supervisor"], teams=["care"]))


# -- the journey ---------------------------------------------------------------------------
def test_a_client_with_only_a_token_walks_a_complaint_to_its_end(api: Api) -> None:
    c, token = api.client, api.agent

    # Discover the workflows, then the complaint's states, transitions and form.
    listing = c.get("/api/workflows", headers=token)
    assert listing.status_code == 200
    names = {w["name"]: w for w in listing.get_json()["items"]}
    assert {"complaint", "revisit", "improvement_plan"} <= set(names)
    assert names["complaint"]["initial"] == "received"
    assert "agent" in names["complaint"]["start_roles"]
    wf = c.get("/api/workflows/complaint", headers=token).get_json()
    assert wf["version"] == names["complaint"]["version"]
    final = {s["name"] for s in wf["states"] if s["final"]}
    assert final == {"closed", "withdrawn"}
    declared = {(t["trigger"], tuple(t["from"]), t["to"]) for t in wf["transitions"]}
    for trigger, to, _ in WALK:
        assert any(d[0] == trigger and d[2] == to for d in declared)
    fields = {f["name"]: f for f in wf["form"]["fields"]}
    assert fields["subject"]["required"] and fields["subject"]["type"] == "text"
    assert fields["is_vip"]["computed"]

    # Create: 201, Location, ETag.
    created = api.create(token)
    assert created.status_code == 201
    case = created.get_json()
    assert case["state"] == "received" and case["version"] == 1 and not case["closed"]
    assert case["reference"].startswith("CMP-")
    assert case["data"]["phone"] == "+8613800138000"  # normalised to E.164
    assert case["data"]["is_vip"] is False  # computed
    assert (case["data"]["channel"], case["data"]["priority"]) == ("web", "normal")  # defaults
    assert created.headers["ETag"] == '"1"'
    location = created.headers["Location"]
    assert location.endswith(f"/api/cases/{case['id']}")
    fetched = c.get(location, headers=token)
    assert fetched.status_code == 200 and fetched.get_json()["id"] == case["id"]
    assert fetched.headers["ETag"] == '"1"'

    # Ask what may be done, then do it, step by step, with If-Match.
    case_id, etag = case["id"], created.headers["ETag"]
    transitions_by_trigger: dict[str, list[dict[str, Any]]] = {}
    for t in wf["transitions"]:
        transitions_by_trigger.setdefault(t["trigger"], []).append(t)
    for trigger, to, step in WALK:
        offered = c.get(f"/api/cases/{case_id}/actions", headers=token)
        assert offered.status_code == 200
        assert offered.headers["ETag"] == etag
        actions = {a["trigger"]: a for a in offered.get_json()["actions"]}
        assert actions[trigger]["available"], actions[trigger]
        assert actions[trigger]["reason"] is None
        assert actions[trigger]["to"] == to
        declared_requires = next(t["requires"] for t in transitions_by_trigger[trigger]
                                 if t["to"] == to)
        assert actions[trigger]["requires"] == declared_requires
        for a in actions.values():  # unavailable ones say why
            assert a["available"] == (a["reason"] is None)
        moved = api.fire(case_id, trigger, step, if_match=etag)
        assert moved.status_code == 200, moved.get_json()
        body = moved.get_json()
        assert body["state"] == to
        assert moved.headers["ETag"] == f'"{body["version"]}"' != etag
        etag = moved.headers["ETag"]

    done = c.get(f"/api/cases/{case_id}", headers=token).get_json()
    assert done["state"] == "closed" and done["closed"] is True
    assert done["version"] == len(WALK) + 1
    assert done["data"]["decision"] == "accepted"
    assert c.get(f"/api/cases/{case_id}/actions", headers=token).get_json()["actions"] == []

    # The full history: creation, then one event per step, in order, with the changes.
    history = c.get(f"/api/cases/{case_id}/events", headers=token)
    assert history.status_code == 200
    events = history.get_json()["items"]
    assert history.get_json()["next_cursor"] is None
    moves = [e for e in events if e["kind"] == "transition"]
    assert events[0]["kind"] == "created" and events[0]["to_state"] == "received"
    assert events[0]["actor"] == "alice"
    assert [e["trigger"] for e in moves] == [t for t, _, _ in WALK]
    assert [(e["from_state"], e["to_state"]) for e in moves] == list(zip(STATES[:-1], STATES[1:],
                                                                            strict=True))
    assert moves[1]["payload"]["changes"]["severity"] == [None, 2]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    # The same history, three at a time.
    paged: list[dict[str, Any]] = []
    url = f"/api/cases/{case_id}/events?limit=3"
    while url:
        page = c.get(url, headers=token).get_json()
        assert len(page["items"]) <= 3
        paged += page["items"]
        cursor = page["next_cursor"]
        url = f"/api/cases/{case_id}/events?limit=3&cursor={cursor}" if cursor else ""
    assert paged == events

    # Entering 'resolved' scheduled the revisit (a job, in the same transaction).
    with api.app.app_context():
        kinds = set(state().db.session.execute(text(
            "SELECT kind FROM caseloop_jobs WHERE case_id = :c"), {"c": case_id}).scalars())
    assert "start" in kinds


def test_a_request_parses_no_yaml_and_builds_no_machine(lite: Api,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ruamel.yaml import YAML
    from transitions import Machine

    lite.case_in("acknowledged")  # the first transition builds the shared machine
    calls = {"yaml": 0, "machine": 0}

    def counting(name: str, original: Any) -> Any:
        def spy(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(*args, **kwargs)
        return spy

    monkeypatch.setattr(YAML, "load", counting("yaml", YAML.load))
    monkeypatch.setattr(YAML, "load_all", counting("yaml", YAML.load_all))
    monkeypatch.setattr(Machine, "__init__", counting("machine", Machine.__init__))
    lite.case_in("closed")
    lite.client.get("/api/workflows/complaint", headers=lite.agent)
    assert calls == {"yaml": 0, "machine": 0}
    with lite.app.app_context():
        registry = state().registry
        wf = registry.workflow("complaint")
        assert wf is not None
        assert registry.machine(wf).models == []  # the shared machine keeps no cases


# -- bad input: each its own status and code, and no write -----------------------------
@pytest.mark.parametrize("route", ["create", "transition"])
@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b'{"workflow": "complaint",', "application/json", 400, "bad_json"),
    (b"\xff\xfe\x00{", "application/json", 400, "bad_json"),
    (b'{"workflow": "complaint", "data": {"severity": NaN}}', "application/json", 400,
     "bad_json"),
    (b'{"workflow": "complaint"}', "text/plain", 400, "bad_json"),
    (b"[1, 2]", "application/json", 400, "bad_json"),
    (b'"complaint"', "application/json", 400, "bad_json"),
    (b"null", "application/json", 400, "bad_json"),
    (b"3", "application/json", 400, "bad_json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "bad_json"),
    (json.dumps({"workflow": "complaint", "data": {"x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
        [[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}).encode(), "application/json", 400,
     "bad_json"),
    (json.dumps({"workflow": "complaint", "data": {**COMPLAINT, "customer_id": "C\u00001"}})
     .encode(), "application/json", 400, "bad_json"),
])
def test_a_body_that_is_not_a_json_object_is_a_400(api: Api, route: str, body: bytes,
                                                   content_type: str, status: int,
                                                   code: str) -> None:
    case_id = api.case_in("received")
    url = "/api/cases" if route == "create" else f"/api/cases/{case_id}/transitions/acknowledge"
    with api.writes_nothing():
        resp = api.client.post(url, data=body,
                               headers={**api.agent, "Content-Type": content_type})
        error_of(resp, status, code)


def test_unknown_or_mistyped_envelope_keys_are_a_422_per_key(api: Api) -> None:
    case_id = api.case_in("received")
    with api.writes_nothing():
        resp = api.client.post("/api/cases", headers=api.agent, json={
            "workflow": "complaint", "data": COMPLAINT, "priority": "high"})
        assert error_of(resp, 422, "invalid")["fields"] == {"priority": ["Unknown field."]}
        resp = api.client.post("/api/cases", headers=api.agent,
                               json={"workflow": 7, "data": ["x"]})
        assert set(error_of(resp, 422, "invalid")["fields"]) == {"workflow", "data"}
        resp = api.client.post("/api/cases", headers=api.agent, json={"data": COMPLAINT})
        assert set(error_of(resp, 422, "invalid")["fields"]) == {"workflow"}
        resp = api.client.post(f"/api/cases/{case_id}/transitions/acknowledge",
                               headers=api.agent, json={"data": {}, "comment": "hi"})
        assert error_of(resp, 422, "invalid")["fields"] == {"comment": ["Unknown field."]}


def test_invalid_field_values_are_a_422_with_a_message_per_field(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    with api.writes_nothing():
        resp = api.create(subject="abc", phone="12", email="not-an-address", category="food",
                          nonsense=1)
        fields = error_of(resp, 422, "invalid")["fields"]
        assert fields["subject"] == ["Use 4 to 120 characters."]  # the form's own message
        assert set(fields) >= {"subject", "phone", "email", "category", "nonsense"}
        resp = api.create(customer_name=None, description=None)
        fields = error_of(resp, 422, "invalid")["fields"]
        assert fields["customer_name"] == ["Tell us who we are talking to."]
        assert fields["description"] == ["Describe what happened."]
        # 'subject' is read-only once acknowledged; 'severity' out of range.
        resp = api.fire(case_id, "assess", {"severity": 9, "impact": "single_customer",
                                            "complexity": "simple", "subject": "Other title"})
        fields = error_of(resp, 422, "invalid")["fields"]
        assert set(fields) == {"severity", "subject"}
        assert fields["severity"] == ["Severity goes from 1 (minor) to 5 (critical)."]
        # a computed field cannot be set
        resp = api.fire(case_id, "assess", {"severity": 2, "impact": "single_customer",
                                            "complexity": "simple", "is_vip": True})
        assert set(error_of(resp, 422, "invalid")["fields"]) == {"is_vip"}


def test_unknown_workflow_and_unknown_trigger_are_a_404(api: Api) -> None:
    case_id = api.case_in("received")
    with api.writes_nothing():
        error_of(api.create(workflow="warranty_claim"), 404, "not_found")
        error_of(api.client.get("/api/workflows/warranty_claim", headers=api.agent), 404,
                 "not_found")
        error_of(api.fire(case_id, "teleport"), 404, "not_found")
        error_of(api.fire(case_id + 1000, "acknowledge"), 404, "not_found")
        error_of(api.client.get(f"/api/cases/{case_id + 1000}", headers=api.agent), 404,
                 "not_found")
        error_of(api.client.get(f"/api/cases/{2**63}", headers=api.agent), 404, "not_found")
        error_of(api.client.get(f"/api/cases/{10**30}/events", headers=api.agent), 404,
                 "not_found")
        error_of(api.fire(10**25, "acknowledge"), 404, "not_found")


def test_a_trigger_from_the_wrong_state_is_a_409(api: Api) -> None:
    case_id = api.case_in("received")
    with api.writes_nothing():
        error = error_of(api.fire(case_id, "close"), 409, "wrong_state")
        assert "received" in error["message"]
        error_of(api.fire(case_id, "accept_decision", {"decision": "accepted"}), 409,
                 "wrong_state")


def test_missing_step_fields_are_a_422_naming_each_field(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    with api.writes_nothing():
        fields = error_of(api.fire(case_id, "assess", {"severity": 2}), 422, "invalid")["fields"]
        assert fields == {"impact": ["This field is required."],
                          "complexity": ["This field is required."]}
        fields = error_of(api.fire(case_id, "escalate"), 422, "invalid")["fields"]
        assert set(fields) == {"escalation_reason"}


SERIOUS = {"severity": 3, "impact": "single_customer", "complexity": "moderate"}


def test_a_guard_that_does_not_hold_is_a_422_with_its_message(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    assert api.fire(case_id, "assess", SERIOUS).status_code == 200  # and no root cause yet
    with api.writes_nothing():
        error = error_of(api.fire(case_id, "respond", {
            "response": "We are sorry and will refund the shipping costs."}), 422, "guard_failed")
        assert error["message"] == ("Complaints of severity 3 or more need a root cause before "
                                    "we respond. Investigate first.")
    actions = api.client.get(f"/api/cases/{case_id}/actions", headers=api.agent).get_json()
    respond = next(a for a in actions["actions"] if a["trigger"] == "respond")
    assert respond["available"] is False and respond["reason"] == error["message"]
    decided = api.case_in("decision_communicated")
    with api.writes_nothing():
        error = error_of(api.fire(decided, "accept_decision", {
            "decision": "rejected", "alternative": "A full refund."}), 422, "guard_failed")
        assert error["message"].startswith("The customer rejected the decision.")


def test_if_match_stale_or_malformed(api: Api) -> None:
    case_id = api.case_in("received")
    with api.writes_nothing():
        error = error_of(api.fire(case_id, "acknowledge", if_match='"7"'), 409, "stale")
        assert "version 1" in error["message"]
        for bad in ("seven", '"1', '"-1"', '"1", "2"', '"1.0"', '"\u00b2"', '""'):
            error_of(api.fire(case_id, "acknowledge", if_match=bad), 400, "bad_if_match")
    assert api.fire(case_id, "acknowledge", if_match='W/"1"').status_code == 200
    with api.writes_nothing():  # the ETag read before that transition is stale now
        error_of(api.fire(case_id, "assess", {"severity": 1, "impact": "single_customer",
                                              "complexity": "simple"}, if_match='"1"'),
                 409, "stale")
    assert api.fire(case_id, "withdraw", {"withdrawal_reason": "Solved by phone."},
                    if_match="*").status_code == 200


def test_an_oversized_body_is_a_413(lite: Api) -> None:
    lite.app.config["CASELOOP_MAX_BODY"] = 2048
    case_id = lite.case_in("received")
    big = json.dumps({"workflow": "complaint",
                      "data": {**COMPLAINT, "remedy_sought": "x" * 3000}}).encode()
    with lite.writes_nothing():
        for url in ("/api/cases", f"/api/cases/{case_id}/transitions/acknowledge"):
            resp = lite.client.post(url, data=big, headers={
                **lite.agent, "Content-Type": "application/json"})
            assert "2048" in error_of(resp, 413, "too_large")["message"]
            # without a Content-Length (chunked), the limit still holds
            resp = lite.client.post(url, input_stream=io.BytesIO(big), headers={
                **lite.agent, "Content-Type": "application/json",
                "Transfer-Encoding": "chunked"},
                environ_overrides={"wsgi.input_terminated": True})
            error_of(resp, 413, "too_large")
    small = json.dumps({"workflow": "complaint", "data": COMPLAINT}).encode()
    resp = lite.client.post("/api/cases", input_stream=io.BytesIO(small), headers={
        **lite.agent, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 201


def test_missing_wrong_or_revoked_tokens_are_a_401(api: Api) -> None:
    case_id = api.case_in("received")
    with api.writes_nothing():
        for headers in ({}, {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
                        {"Authorization": "Bearer"}, {"Authorization": "Bearer "},
                        {"Authorization": "Bearer cl_not-a-token"},
                        {"Authorization": api.agent["Authorization"] + "x"}):
            for resp in (api.client.get("/api/workflows", headers=headers),
                         api.create(headers),
                         api.fire(case_id, "acknowledge", headers=headers)):
                error_of(resp, 401, "unauthorized")
                assert resp.headers["WWW-Authenticate"] == 'Bearer realm="caseloop"'
    with api.app.app_context():
        session = state().db.session
        alice = session.execute(select(User).where(User.name == "alice")).scalar_one()
        assert revoke_tokens(session, alice) == 1
        session.commit()
    with api.writes_nothing():
        resp = api.fire(case_id, "acknowledge")
        assert "revoked" in error_of(resp, 401, "unauthorized")["message"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # the document describing the API needs no token
    assert api.client.get("/api/openapi.json").status_code == 200


def test_a_role_that_is_not_allowed_is_a_403(api: Api) -> None:
    quality = make_user(api.app, "quinn", roles=["quality"], teams=["care"])
    case_id = api.case_in("acknowledged")
    with api.writes_nothing():
        error_of(api.create(quality), 403, "forbidden")  # may not open complaints
        # 'assessment_overdue' is the system's (a timer), never a person's
        error_of(api.fire(case_id, "assessment_overdue"), 403, "forbidden")
    actions = api.client.get(f"/api/cases/{case_id}/actions", headers=api.agent).get_json()
    overdue = next(a for a in actions["actions"] if a["trigger"] == "assessment_overdue")
    assert overdue == {**overdue, "available": False, "reason": "Your role may not do this."}


def test_cases_of_others_are_hidden_and_cannot_be_touched(api: Api) -> None:
    outsider = make_user(api.app, "olga", roles=["agent"], teams=["sales"])
    case_id = api.case_in("received")
    with api.writes_nothing():
        for resp in (api.client.get(f"/api/cases/{case_id}", headers=outsider),
                     api.client.get(f"/api/cases/{case_id}/actions", headers=outsider),
                     api.client.get(f"/api/cases/{case_id}/events", headers=outsider),
                     api.fire(case_id, "acknowledge", headers=outsider)):
            error_of(resp, 404, "not_found")  # the same answer as for no case at all
        listed = api.client.get("/api/cases", headers=outsider).get_json()
        assert listed["items"] == []


def test_unknown_routes_and_methods_under_api_answer_json(api: Api) -> None:
    for resp in (api.client.get("/api/nothing/here", headers=api.agent),
                 api.client.get("/api/cases/abc", headers=api.agent),
                 api.client.get("/api"),
                 api.client.get("/api/cases/1/transitions", headers=api.agent)):
        error_of(resp, 404, "not_found")
    for resp in (api.client.delete("/api/cases", headers=api.agent),
                 api.client.put("/api/workflows/complaint", headers=api.agent),
                 api.client.get("/api/cases/1/transitions/close", headers=api.agent)):
        error_of(resp, 405, "method_not_allowed")
    outside = api.client.get("/no/such/page")
    assert outside.status_code == 404 and outside.mimetype != "application/json"


def test_text_with_nul_characters_is_refused_before_the_database(api: Api) -> None:
    api.case_in("received")
    with api.writes_nothing():
        for query in ("customer=C%001", "state=received%00", "workflow%00=x"):
            error_of(api.client.get(f"/api/cases?{query}", headers=api.agent), 400,
                     "bad_query")
        error_of(api.create(extra={"Idempotency-Key": "a\x00b"}), 400, "bad_idempotency_key")
        error_of(api.create(extra={"Idempotency-Key": "k" * 201}), 400, "bad_idempotency_key")


# -- idempotency ------------------------------------------------------------------------------
def test_idempotency_key_replays_the_same_case_and_refuses_another_body(api: Api) -> None:
    first = api.create(extra={"Idempotency-Key": "form-7f3a"})
    assert first.status_code == 201
    with api.writes_nothing():
        again = api.create(extra={"Idempotency-Key": "form-7f3a"})
        assert again.status_code == 201
        assert again.get_json() == first.get_json()
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["Location"] == first.headers["Location"]
        other = api.create(subject="Another subject", extra={"Idempotency-Key": "form-7f3a"})
        error = error_of(other, 422, "idempotency_mismatch")
        assert "another body" in error["message"]
    # keys belong to their user; and no key means a new case each time
    theirs = api.create(api.supervisor, extra={"Idempotency-Key": "form-7f3a"})
    assert theirs.status_code == 201 and theirs.get_json()["id"] != first.get_json()["id"]
    assert api.create().get_json()["id"] != api.create().get_json()["id"]


# -- lists: filters and keyset pagination -------------------------------------------------------
def _walk_pages(client: FlaskClient, headers: Headers, query: str) -> list[list[int]]:
    pages: list[list[int]] = []
    url = f"/api/cases?{query}"
    while True:
        resp = client.get(url, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        pages.append([c["id"] for c in body["items"]])
        if body["next_cursor"] is None:
            return pages
        assert len(pages) < 100
        url = f"/api/cases?{query}&cursor={urllib.parse.quote(body['next_cursor'])}"


def test_list_filters_and_keyset_pages(api: Api) -> None:
    ids = [api.case_in("received", customer_id=f"C-{n % 2}") for n in range(7)]
    for bumped in (ids[1], ids[4]):  # newest activity: these two, last touched first
        assert api.fire(bumped, "acknowledge").status_code == 200
    newest_first = [ids[4], ids[1], ids[6], ids[5], ids[3], ids[2], ids[0]]

    pages = _walk_pages(api.client, api.agent, "limit=3")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == newest_first  # each case exactly once, in order
    everything = api.client.get("/api/cases", headers=api.agent).get_json()["items"]
    stamps = [(c["updated_at"], c["id"]) for c in everything]
    assert stamps == sorted(stamps, reverse=True)

    def ids_for(query: str) -> list[int]:
        return [i for p in _walk_pages(api.client, api.agent, query) for i in p]

    assert ids_for("state=acknowledged&limit=1") == [ids[4], ids[1]]
    assert ids_for("workflow=complaint&limit=2") == newest_first
    assert ids_for("workflow=revisit") == []
    assert ids_for("customer=C-1") == [i for i in newest_first if ids.index(i) % 2 == 1]
    assert ids_for("open=true&limit=4") == newest_first
    assert ids_for("open=false") == []
    assert ids_for("assignee=me") == []

    # visibility: another team sees none of them; a manager sees them all
    outsider = make_user(api.app, "olga", roles=["agent"], teams=["sales"])
    manager = make_user(api.app, "mia", roles=["manager"])
    assert _walk_pages(api.client, outsider, "limit=5") == [[]]
    assert [i for p in _walk_pages(api.client, manager, "limit=5") for i in p] == newest_first


def test_list_query_errors_and_the_page_size_cap(lite: Api) -> None:
    for _ in range(5):
        lite.case_in("received")
    lite.app.config["CASELOOP_MAX_PAGE_SIZE"] = 2
    for query in ("", "limit=50", "limit=1000"):
        body = lite.client.get(f"/api/cases?{query}", headers=lite.agent).get_json()
        assert len(body["items"]) == 2 and body["next_cursor"]
    for query in ("limit=0", "limit=1001", "limit=ten", "open=maybe", "sort=id"):
        error_of(lite.client.get(f"/api/cases?{query}", headers=lite.agent), 422, "invalid")
    for cursor in ("nonsense", "MjAyNi0wMS0wMVQwMDowMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
                   "fHw", "%FF"):
        error_of(lite.client.get(f"/api/cases?cursor={cursor}", headers=lite.agent), 400,
                 "bad_cursor")
    error_of(lite.client.get("/api/cases/1/events?limit=-1", headers=lite.agent), 422,
             "invalid")


# -- languages -----------------------------------------------------------------------------------
def test_accept_language_chooses_the_language_of_messages(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    assert api.fire(case_id, "assess", SERIOUS).status_code == 200
    zh, en = {**api.agent, "Accept-Language": "zh-CN,zh;q=0.9"}, api.agent
    respond = {"response": "We are sorry and will refund the shipping costs."}
    error = error_of(api.fire(case_id, "respond", respond, headers=zh), 422, "guard_failed")
    assert error["message"] == "严重程度 3 级及以上的投诉须先查明根本原因再答复，请先开展调查。"
    error = error_of(api.fire(case_id, "respond", respond, headers=en), 422, "guard_failed")
    assert error["message"].startswith("Complaints of severity 3")
    fields = error_of(api.fire(case_id, "hold", headers=zh), 422, "invalid")["fields"]
    assert fields == {"hold_reason": ["此项为必填项。"]}
    fields = error_of(api.create(zh, subject="abc"), 422, "invalid")["fields"]
    assert fields["subject"] == ["标题长度应为 4 到 120 个字符。"]
    assert api.client.get("/api/workflows/complaint", headers=zh).get_json()["title"] == "客户投诉"
    actions = api.client.get(f"/api/cases/{case_id}/actions", headers=zh).get_json()["actions"]
    assert {a["trigger"]: a["label"] for a in actions}["investigate"] == "开始调查"

    # a user whose own language is Chinese, asking for English
    zh_user = make_user(api.app, "wang", roles=["agent"], teams=["care"], locale="zh")
    assert api.client.get("/api/workflows/complaint",
                          headers=zh_user).get_json()["title"] == "客户投诉"
    english = api.client.get("/api/workflows/complaint",
                             headers={**zh_user, "Accept-Language": "en-GB"}).get_json()
    assert english["title"] == "Customer complaint"
    # a language we do not speak leaves the user's own
    fr = api.client.get("/api/workflows/complaint", headers={**zh_user, "Accept-Language": "fr"})
    assert fr.get_json()["title"] == "客户投诉"


# -- no 500, whatever the body ----------------------------------------------------------------
_scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=40)
            | st.floats(allow_nan=False, allow_infinity=False))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=16)
_FIELDS = ["customer_id", "customer_name", "phone", "email", "preferred_language", "segment",
           "is_vip", "channel", "category", "subject", "description", "remedy_sought",
           "order_number", "occurred_on", "attachments", "priority", "severity", "impact",
           "complexity", "needs_escalation", "immediate_action_needed", "immediate_action",
           "root_cause", "remedy_offered", "compensation_amount", "response", "decision",
           "alternative", "escalation_reason", "hold_reason", "withdrawal_reason",
           "reopen_count", "improvement_needed", "investigation_notes", "resolution_summary"]
_values = (_json | st.sampled_from(["web", "delivery", "normal", "2026-02-30", "2026-01-31",
                                    "+8613800138000", "a@b.c", "refund", "rejected", "", " "])
           | st.integers(-10, 10) | st.lists(st.sampled_from(["refund", "voucher", "x"])))
_data = st.fixed_dictionaries({}, optional={k: _values for k in _FIELDS}).map(
    lambda d: {**COMPLAINT, **d}) | st.dictionaries(st.sampled_from(_FIELDS), _values)
_create = (st.fixed_dictionaries(
    {"workflow": st.sampled_from(["complaint", "revisit", "improvement_plan", "nope"]) | _json,
     "data": _data | _json}, optional={"extra": _json}) | _json)
_transition = st.fixed_dictionaries({"data": _data | _json}, optional={"extra": _json}) | _json
_TRIGGERS = ["acknowledge", "assess", "investigate", "respond", "escalate", "hand_back", "hold",
             "resume", "revise_response", "communicate_decision", "accept_decision",
             "reject_decision", "confirmation_timeout", "reopen", "close", "withdraw",
             "assessment_overdue"]
_IF_MATCH = st.sampled_from([None, '"1"', 'W/"2"', "*", "abc", '"99999999999999999999"', ""])
_FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


def _encode(body: Any, raw: bytes | None) -> bytes:
    return raw if raw is not None else json.dumps(body).encode()


@_FUZZ
@given(body=_create, raw=st.none() | st.binary(max_size=60),
       key=st.none() | st.text(max_size=8).filter(lambda k: k.isprintable()))
def test_no_500_for_any_create_body(api: Api, body: Any, raw: bytes | None,
                                    key: str | None) -> None:
    headers = {**api.agent, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key.encode("utf-8").decode("latin-1")
    resp = api.client.post("/api/cases", data=_encode(body, raw), headers=headers)
    assert resp.status_code < 500, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"


@pytest.fixture
def fuzz_case(api: Api) -> int:
    return api.case_in("assessed")


@_FUZZ
@given(body=_transition, raw=st.none() | st.binary(max_size=60),
       trigger=st.sampled_from(_TRIGGERS) | st.text(min_size=1, max_size=12),
       if_match=_IF_MATCH)
def test_no_500_for_any_transition_body(api: Api, fuzz_case: int, body: Any, raw: bytes | None,
                                        trigger: str, if_match: str | None) -> None:
    headers = {**api.agent, "Content-Type": "application/json"}
    if if_match is not None:
        headers["If-Match"] = if_match
    path = f"/api/cases/{fuzz_case}/transitions/{urllib.parse.quote(trigger, safe='')}"
    resp = api.client.post(path, data=_encode(body, raw), headers=headers)
    assert resp.status_code < 500, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"


@_FUZZ
@given(query=st.dictionaries(
    st.sampled_from(["workflow", "state", "assignee", "customer", "open", "limit", "cursor",
                     "x"]), st.text(max_size=30), max_size=4))
def test_no_500_for_any_list_query(api: Api, query: dict[str, str]) -> None:
    resp = api.client.get("/api/cases", query_string=query, headers=api.agent)
    assert resp.status_code < 500, resp.get_data(as_text=True)
