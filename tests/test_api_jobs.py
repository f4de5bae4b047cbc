"""The operators' job API (api/jobs.py): list with counts and keyset pages, retry
and discard dead letters; administrators only; survey tokens never shown. On
SQLite and PostgreSQL (the ``api`` fixture), through real HTTP."""

from __future__ import annotations

import datetime as dt

from caseloop.extension import state
from caseloop.jobs import enqueue
from caseloop.models import Job, utcnow

from . import test_api
from .test_api import Api, error_of, make_user

#: The fixture, on SQLite and PostgreSQL.
api = test_api.api


def _jobs(api: Api, n_dead: int = 2, n_pending: int = 3) -> list[int]:
    """Dead letters first (ids returned), then pending jobs due later."""
    with api.app.app_context():
        session = state().db.session
        now = utcnow()
        for i in range(n_dead):
            enqueue(session, "webhook", run_at=now - dt.timedelta(hours=1, minutes=i),
                    url="https://hooks.example.com/x", survey="secret-token")
        for i in range(n_pending):
            enqueue(session, "notify", run_at=now + dt.timedelta(hours=i + 1), to=["team"])
        session.commit()
        dead = session.query(Job).filter(Job.kind == "webhook").order_by(Job.id).all()
        for job in dead:
            job.status, job.attempts, job.last_error = "dead", 8, "HTTP 500 from the receiver"
        session.commit()
        return [j.id for j in dead]


def test_an_admin_lists_jobs_next_due_first_with_counts(api: Api) -> None:
    admin = make_user(api.app, "ada", roles=["admin"])
    dead = _jobs(api)
    resp = api.client.get("/api/jobs", headers=admin)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["counts"] == {"pending": 3, "running": 0, "done": 0, "dead": 2,
                              "cancelled": 0}
    assert [j["id"] for j in body["items"][:2]] == sorted(dead, reverse=True)
    first = body["items"][0]
    assert first["status"] == "dead" and first["last_error"] == "HTTP 500 from the receiver"
    assert first["payload"]["survey"] == "…" and "secret-token" not in resp.get_data(True)
    only_dead = api.client.get("/api/jobs?status=dead", headers=admin).get_json()
    assert {j["status"] for j in only_dead["items"]} == {"dead"}
    assert len(only_dead["items"]) == 2


def test_pages_follow_the_cursor_without_gaps_or_repeats(api: Api) -> None:
    admin = make_user(api.app, "ada", roles=["admin"])
    _jobs(api, n_dead=3, n_pending=4)
    seen, url = [], "/api/jobs?limit=2"
    while url:
        body = api.client.get(url, headers=admin).get_json()
        seen += [j["id"] for j in body["items"]]
        url = f"/api/jobs?limit=2&cursor={body['next_cursor']}" if body["next_cursor"] else ""
    assert len(seen) == len(set(seen)) == 7


def test_retry_queues_a_dead_letter_again_and_discard_gives_up(api: Api) -> None:
    admin = make_user(api.app, "ada", roles=["admin"])
    first, second = _jobs(api)
    retried = api.client.post(f"/api/jobs/{first}/retry", headers=admin)
    assert retried.status_code == 200, retried.get_json()
    job = retried.get_json()
    assert (job["status"], job["attempts"], job["finished_at"]) == ("pending", 0, None)
    discarded = api.client.post(f"/api/jobs/{second}/discard", headers=admin).get_json()
    assert discarded["status"] == "cancelled"
    assert discarded["result"] == "discarded by an operator" and discarded["finished_at"]
    # Only dead letters: a second retry or discard is a conflict and changes nothing.
    with api.writes_nothing():
        error_of(api.client.post(f"/api/jobs/{first}/retry", headers=admin), 409,
                 "wrong_state")
        error_of(api.client.post(f"/api/jobs/{second}/discard", headers=admin), 409,
                 "wrong_state")
        error_of(api.client.post("/api/jobs/999999/retry", headers=admin), 404, "not_found")


def test_only_administrators_see_or_change_jobs(api: Api) -> None:
    dead = _jobs(api)
    manager = make_user(api.app, "mona", roles=["manager"])  # sees every case, not jobs
    with api.writes_nothing():
        for headers in (api.agent, manager):
            error_of(api.client.get("/api/jobs", headers=headers), 403, "forbidden")
            error_of(api.client.post(f"/api/jobs/{dead[0]}/retry", headers=headers), 403,
                     "forbidden")
        assert api.client.get("/api/jobs").status_code == 401


def test_bad_filters_are_refused(api: Api) -> None:
    admin = make_user(api.app, "ada", roles=["admin"])
    for query in ("status=lost", "limit=0", "case=abc", "cursor=%%%", "colour=red"):
        resp = api.client.get(f"/api/jobs?{query}", headers=admin)
        assert resp.status_code in (400, 422), (query, resp.get_json())
