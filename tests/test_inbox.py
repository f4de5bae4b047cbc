"""The inbox (inbox.py, GET /api/inbox) and claiming from the team queue
(Cases.claim, POST /api/cases/<id>/claim): which cases each tab holds for whom,
filters and search, counts per tab, keyset pages without gaps, and two people
claiming at once. On SQLite and PostgreSQL (the ``api`` fixture), real HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update

from caseloop.extension import state
from caseloop.models import Case

from . import test_api
from .test_api import Api, error_of, make_user

#: The fixture, on SQLite and PostgreSQL.
api = test_api.api


def _inbox(api: Api, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    resp = api.client.get("/api/inbox", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def _refs(body: dict[str, Any]) -> list[str]:
    return [c["reference"] for c in body["items"]]


def _due(api: Api, case_id: int, at: dt.datetime | None) -> None:
    with api.app.app_context():
        session = state().db.session
        session.execute(update(Case).where(Case.id == case_id).values(due_at=at))
        session.commit()


def _claimable(api: Api, **data: Any) -> dict[str, Any]:
    """A complaint in team care's queue: opened by the agent, then unassigned."""
    resp = api.create(**data)
    assert resp.status_code == 201, resp.get_json()
    case: dict[str, Any] = resp.get_json()
    return case


def test_each_tab_holds_what_it_says(api: Api) -> None:
    now = dt.datetime.now(dt.UTC)
    queued = _claimable(api, subject="Queued complaint")
    mine = _claimable(api, subject="Mine")
    assert api.client.post(f"/api/cases/{mine['id']}/claim",
                           headers=api.agent).status_code == 200
    for case in (queued, mine):  # their SLA deadlines, out of the way
        _due(api, case["id"], now + dt.timedelta(days=10))
    late = _claimable(api, subject="Late")
    _due(api, late["id"], now - dt.timedelta(hours=1))
    soon = _claimable(api, subject="Soon")
    _due(api, soon["id"], now + dt.timedelta(hours=2))
    later = _claimable(api, subject="Later")
    _due(api, later["id"], now + dt.timedelta(days=3))

    body = _inbox(api, api.agent, tab="team")
    assert queued["reference"] in _refs(body) and mine["reference"] not in _refs(body)
    assert _refs(_inbox(api, api.agent, tab="mine")) == [mine["reference"]]
    assert _refs(_inbox(api, api.agent, tab="overdue")) == [late["reference"]]
    assert _refs(_inbox(api, api.agent, tab="due_soon")) == [soon["reference"]]
    recent = _inbox(api, api.agent, tab="recent")
    assert _refs(recent)[0] == later["reference"]  # the latest activity first
    assert recent["counts"] == {"mine": 1, "team": 4, "overdue": 1, "due_soon": 1,
                                "recent": 5}
    item = next(c for c in recent["items"] if c["reference"] == late["reference"])
    assert item["due_at"] and item["sla_breached"] is False and item["team"] == "care"


def test_outsiders_see_nothing_and_see_all_roles_see_everything(api: Api) -> None:
    _claimable(api)
    other = make_user(api.app, "otto", roles=["agent"], teams=["billing"])
    assert _inbox(api, other, tab="recent")["counts"]["recent"] == 0
    assert _inbox(api, other, tab="team")["items"] == []
    manager = make_user(api.app, "mona", roles=["manager"])
    assert _inbox(api, manager, tab="recent")["counts"]["recent"] == 1
    assert _inbox(api, manager, tab="mine")["counts"]["team"] == 0  # no team of their own


def test_filters_and_search(api: Api) -> None:
    billing = _claimable(api, category="billing", channel="email",
                         customer_name="Wang Fang", phone="139 1234 5678")
    delivery = _claimable(api, category="delivery", channel="phone", priority="high")
    assert _refs(_inbox(api, api.agent, tab="recent", channel="email")) == \
        [billing["reference"]]
    assert _refs(_inbox(api, api.agent, tab="recent", priority="high")) == \
        [delivery["reference"]]
    for q in (billing["reference"], billing["reference"].lower(), "139-1234-5678",
              "+86 139 1234 5678", "wang fang", "Fang"):
        assert _refs(_inbox(api, api.agent, tab="recent", q=q)) == [billing["reference"]], q
    none = _inbox(api, api.agent, tab="recent", q="CMP-1999-000001")
    assert none["items"] == [] and none["counts"]["recent"] == 0
    assert _inbox(api, api.agent, tab="recent", q="100%_")["items"] == []  # LIKE escaped


def test_pages_follow_the_cursor_in_both_orders(api: Api) -> None:
    now = dt.datetime.now(dt.UTC)
    ids = [_claimable(api, subject=f"Case {i}")["id"] for i in range(5)]
    for i, case_id in enumerate(ids):  # overdue, the first the most
        _due(api, case_id, now - dt.timedelta(hours=10 - i))
    for tab in ("recent", "overdue", "team"):
        seen, cursor = [], None
        while True:
            query = {"tab": tab, "limit": 2, **({"cursor": cursor} if cursor else {})}
            body = _inbox(api, api.agent, **query)
            seen += [c["id"] for c in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 5, tab
        if tab == "overdue":
            assert seen == ids  # the most overdue first


def test_bad_queries_are_refused(api: Api) -> None:
    for query in ({"tab": "everything"}, {"limit": 0}, {"cursor": "%%%"}, {"colour": "red"}):
        resp = api.client.get("/api/inbox", query_string=query, headers=api.agent)
        assert resp.status_code in (400, 422), query


def test_claiming_takes_a_case_once(api: Api) -> None:
    case = _claimable(api)
    other = make_user(api.app, "bob", roles=["agent"], teams=["care"])
    first = api.client.post(f"/api/cases/{case['id']}/claim", headers=other)
    assert first.status_code == 200 and first.get_json()["assignee"] == "bob"
    with api.writes_nothing():
        error_of(api.client.post(f"/api/cases/{case['id']}/claim", headers=api.agent), 409,
                 "taken")
        again = api.client.post(f"/api/cases/{case['id']}/claim", headers=other)
        assert again.status_code == 200  # already mine: nothing changes
    events = api.client.get(f"/api/cases/{case['id']}/events", headers=other).get_json()
    assert [e["payload"] for e in events["items"] if e["kind"] == "assigned"] == [
        {"action": "claim", "user": "bob"}]


def test_claiming_needs_the_team_and_a_role_and_a_current_version(api: Api) -> None:
    case = _claimable(api)
    manager = make_user(api.app, "mona", roles=["manager"])  # sees it, works no complaints
    outsider = make_user(api.app, "otto", roles=["agent"], teams=["billing"])
    with api.writes_nothing():
        error_of(api.client.post(f"/api/cases/{case['id']}/claim", headers=manager), 403,
                 "forbidden")
        # Not visible to them: it does not exist.
        error_of(api.client.post(f"/api/cases/{case['id']}/claim", headers=outsider), 404,
                 "not_found")
        stale = api.client.post(f"/api/cases/{case['id']}/claim",
                                headers={**api.agent, "If-Match": '"99"'})
        error_of(stale, 409, "stale")


def test_comments_go_into_the_history_without_a_new_version(api: Api) -> None:
    case = _claimable(api)
    resp = api.client.post(f"/api/cases/{case['id']}/comments",
                           json={"text": "  Called the depot: parcel found.  "},
                           headers=api.agent)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json() == {"case": case["reference"], "text": "Called the depot: parcel found."}
    now = api.client.get(f"/api/cases/{case['id']}", headers=api.agent).get_json()
    assert now["version"] == case["version"]  # a comment never conflicts with an edit
    events = api.client.get(f"/api/cases/{case['id']}/events", headers=api.agent).get_json()
    last = events["items"][-1]
    assert (last["kind"], last["actor"], last["payload"]) == (
        "comment", "alice", {"text": "Called the depot: parcel found."})


def test_bad_comments_are_refused_and_nothing_is_stored(api: Api) -> None:
    case = _claimable(api)
    outsider = make_user(api.app, "otto", roles=["agent"], teams=["billing"])
    with api.writes_nothing():
        for body in ({"text": "   "}, {"text": "x" * 4001}):
            error = error_of(api.client.post(f"/api/cases/{case['id']}/comments", json=body,
                                             headers=api.agent), 422, "invalid")
            assert set(error["fields"]) == {"text"}
        for body in ({}, {"text": 5}, {"text": "ok", "extra": 1}):
            resp = api.client.post(f"/api/cases/{case['id']}/comments", json=body,
                                   headers=api.agent)
            assert resp.status_code in (400, 422), body
        error_of(api.client.post(f"/api/cases/{case['id']}/comments", json={"text": "hi"},
                                 headers=outsider), 404, "not_found")


def _assign(api: Api, case_id: int, user: str | None, headers: dict[str, str]) -> Any:
    return api.client.post(f"/api/cases/{case_id}/assign", json={"user": user},
                           headers=headers)


def test_the_assignee_hands_over_to_a_teammate_and_supervisors_to_anyone(api: Api) -> None:
    case = _claimable(api)
    case_id = case["id"]
    make_user(api.app, "bob", roles=["agent"], teams=["care"])
    make_user(api.app, "lin", roles=["agent"], teams=["billing"])
    assert api.client.post(f"/api/cases/{case_id}/claim", headers=api.agent).status_code == 200
    handed = _assign(api, case_id, "bob", api.agent)
    assert handed.status_code == 200 and handed.get_json()["assignee"] == "bob"
    # Alice no longer holds it: she may not move it again; nor to another team's agent.
    error_of(_assign(api, case_id, "alice", api.agent), 403, "forbidden")
    moved = _assign(api, case_id, "lin", api.supervisor)  # a supervisor may
    assert moved.get_json()["assignee"] == "lin"
    back = _assign(api, case_id, None, api.supervisor)  # back to the team's queue
    assert back.get_json()["assignee"] is None
    assert case["reference"] in _refs(_inbox(api, api.agent, tab="team"))
    events = api.client.get(f"/api/cases/{case_id}/events", headers=api.supervisor).get_json()
    assert [(e["payload"].get("from"), e["payload"].get("user")) for e in events["items"]
            if e["payload"].get("action") == "reassign"] == [
        ("alice", "bob"), ("bob", "lin"), ("lin", None)]


def test_reassigning_to_someone_who_cannot_work_the_case_is_refused(api: Api) -> None:
    case = _claimable(api)
    make_user(api.app, "quinn", roles=["quality_auditor"], teams=["care"])
    with api.writes_nothing():
        for who, code in (("nobody", "invalid"), ("quinn", "invalid")):
            error = error_of(_assign(api, case["id"], who, api.supervisor), 422, code)
            assert set(error["fields"]) == {"user"}
        error_of(api.client.post(f"/api/cases/{case['id']}/assign", json={"user": "bob"},
                                 headers={**api.supervisor, "If-Match": '"99"'}), 409, "stale")
        assert _assign(api, case["id"], "", api.supervisor).status_code in (400, 422)
