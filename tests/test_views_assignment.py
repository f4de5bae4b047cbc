"""Who works a case, from its page (views/assignment.py): take it from the team's
queue, give it to a teammate, or (supervisors) to anyone or back to the queue;
refusals are said and change nothing. SQLite, Flask's client."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from .test_views_auth import token
from .test_views_cases import agent, case_row, new_case


def _post(client: FlaskClient, case_id: int, action: str, **form: str) -> str:
    resp = client.post(f"/cases/{case_id}/{action}",
                       data={"csrf_token": token(client, f"/cases/{case_id}"), **form})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client.get(resp.location).get_data(as_text=True)


def _assignee(app: Flask, case_id: int) -> int | None:
    return case_row(app, case_id).assignee_id


def test_take_then_give_to_a_teammate_then_back_to_the_queue(app: Flask) -> None:
    amy = agent(app)
    bob = agent(app, "bob")
    sam = agent(app, "sam", roles=("supervisor",))
    agent(app, "mona", roles=("manager",))  # in the team, works no complaints
    case_id = new_case(amy)
    page = amy.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Take this case" in page and 'name="user"' not in page  # not hers yet
    page = _post(amy, case_id, "take")
    assert "The case is yours now." in page and _assignee(app, case_id) is not None
    assert '<option value="bob">' in page and '<option value="mona">' not in page
    page = _post(amy, case_id, "give", user="bob")
    assert "The case was given to bob." in page
    # Amy no longer holds it: she may not move it again.
    refused = amy.post(f"/cases/{case_id}/give", data={
        "csrf_token": token(amy, f"/cases/{case_id}"), "user": "amy"})
    assert refused.status_code == 403
    assert case_row(app, case_id).assignee_id != case_row(app, case_id).created_by
    page = _post(sam, case_id, "give", user="")
    assert "The case is back in the team&#39;s queue." in page
    assert _assignee(app, case_id) is None
    assert "Take this case" in bob.get(f"/cases/{case_id}").get_data(as_text=True)


def test_a_quicker_colleague_is_said_and_nothing_changes(app: Flask) -> None:
    amy, bob = agent(app), agent(app, "bob")
    case_id = new_case(amy)
    stale = token(bob, f"/cases/{case_id}")
    _post(amy, case_id, "take")
    resp = bob.post(f"/cases/{case_id}/take", data={"csrf_token": stale})
    page = bob.get(resp.location).get_data(as_text=True)
    assert "someone else has taken this case meanwhile" in page
    assert _assignee(app, case_id) == case_row(app, case_id).assignee_id


def test_without_csrf_nothing_changes(app: Flask) -> None:
    amy = agent(app)
    case_id = new_case(amy)
    assert amy.post(f"/cases/{case_id}/take").status_code == 400
    assert _assignee(app, case_id) is None
