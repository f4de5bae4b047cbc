"""Changing fields without a transition: ``Cases.update`` through ``PATCH /api/cases/<id>``.

Only the fields editable in the case's state change, by someone with a role of the
workflow, with the version checked; the change is recorded with before/after; a
refused change writes nothing. On SQLite and PostgreSQL (the ``api`` fixture).
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from . import test_api
from .test_api import Api, error_of, make_user

#: The fixture, on SQLite and PostgreSQL.
api = test_api.api


def _patch(client: FlaskClient, case_id: int, data: dict[str, Any], headers: dict[str, str],
           if_match: str | None = None) -> Any:
    h = dict(headers)
    if if_match is not None:
        h["If-Match"] = if_match
    return client.patch(f"/api/cases/{case_id}", json={"data": data}, headers=h)


def test_an_editable_field_changes_and_the_history_shows_before_and_after(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    before = api.client.get(f"/api/cases/{case_id}", headers=api.agent).get_json()
    resp = _patch(api.client, case_id, {"order_number": "20261104-88"}, api.agent,
                  if_match=f'"{before["version"]}"')
    assert resp.status_code == 200, resp.get_json()
    after = resp.get_json()
    assert after["data"]["order_number"] == "20261104-88"
    assert after["version"] == before["version"] + 1 and after["state"] == "acknowledged"
    assert resp.headers["ETag"] == f'"{after["version"]}"'
    events = api.client.get(f"/api/cases/{case_id}/events", headers=api.agent).get_json()
    last = events["items"][-1]
    assert last["kind"] == "updated" and last["actor"] == "alice"
    assert last["payload"]["changes"] == {"order_number": [None, "20261104-88"]}


def test_the_priority_column_follows_its_field(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    resp = _patch(api.client, case_id, {"priority": "urgent"}, api.agent)
    assert resp.status_code == 200 and resp.get_json()["priority"] == "urgent"


def test_nothing_changed_is_not_a_new_version(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    version = api.client.get(f"/api/cases/{case_id}", headers=api.agent).get_json()["version"]
    with api.writes_nothing():
        resp = _patch(api.client, case_id, {}, api.agent)
    assert resp.status_code == 200 and resp.get_json()["version"] == version


def test_a_readonly_or_unknown_field_is_refused_and_nothing_is_stored(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    with api.writes_nothing():
        error = error_of(_patch(api.client, case_id, {"subject": "Changed"}, api.agent),
                         422, "invalid")
        assert "subject" in error["fields"]
        error = error_of(_patch(api.client, case_id, {"nonsense": 1}, api.agent), 422,
                         "invalid")
        assert "nonsense" in error["fields"]
        # One bad field refuses the whole change: the good one is not stored either.
        error = error_of(_patch(api.client, case_id, {"order_number": "A-1",
                                                      "subject": "Changed"}, api.agent),
                         422, "invalid")


def test_invalid_values_are_refused_per_field(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    with api.writes_nothing():
        error = error_of(_patch(api.client, case_id, {"priority": "asap"}, api.agent), 422,
                         "invalid")
    assert set(error["fields"]) == {"priority"}


def test_a_stale_version_is_a_conflict(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    with api.writes_nothing():
        resp = _patch(api.client, case_id, {"order_number": "A-1"}, api.agent, if_match='"1"')
    error_of(resp, 409, "stale")


def test_a_closed_case_is_not_editable(api: Api) -> None:
    case_id = api.case_in("closed")
    with api.writes_nothing():
        error_of(_patch(api.client, case_id, {"order_number": "A-1"}, api.agent), 422,
                 "invalid")


def test_only_people_who_work_the_workflow_may_edit(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    manager = make_user(api.app, "mona", roles=["manager"])  # sees every case
    assert api.client.get(f"/api/cases/{case_id}", headers=manager).status_code == 200
    outsider = make_user(api.app, "otto", roles=["agent"], teams=["billing"])
    with api.writes_nothing():
        error_of(_patch(api.client, case_id, {"order_number": "A-1"}, manager), 403,
                 "forbidden")
        error_of(_patch(api.client, case_id, {"order_number": "A-1"}, outsider), 404,
                 "not_found")


def test_a_malformed_body_is_a_400(api: Api) -> None:
    case_id = api.case_in("acknowledged")
    with api.writes_nothing():
        resp = api.client.patch(f"/api/cases/{case_id}", data="{", headers={
            **api.agent, "Content-Type": "application/json"})
        assert resp.status_code == 400
        resp = api.client.patch(f"/api/cases/{case_id}", json={"data": [1]}, headers=api.agent)
        assert resp.status_code in (400, 422)
