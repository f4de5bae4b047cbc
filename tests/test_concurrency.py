"""Concurrent writers on one case, on SQLite (file, WAL) and PostgreSQL.

Each thread acts like a request: its own app context, so its own session and
connection, all released together by a barrier. Exactly one transition wins;
every other gets a 409 (stale or wrong_state); the history has exactly one
new transition and nothing is lost or doubled.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from caseloop.cases import Actor
from caseloop.errors import Conflict
from caseloop.extension import state
from caseloop.models import Case, Event, Job
from caseloop.users import add_user, issue_token

from .test_cases import build_app, count, dispose, person
from .test_machine import FILES


@pytest.fixture(params=["sqlite", "postgresql"])
def race_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(request.param, tmp_path, FILES)
    with app.app_context():
        if request.param == "sqlite":
            mode = state().db.session.connection().exec_driver_sql("PRAGMA journal_mode")
            assert mode.scalar() == "wal"
            state().db.session.remove()
    yield app
    dispose(app)


@dataclass
class Outcome:
    wins: list[int] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def race(n: int, work: Callable[[int], Any]) -> Outcome:
    """Run ``work(i)`` in ``n`` threads released at once; collect what each got."""
    barrier = threading.Barrier(n)
    out = Outcome()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            result = work(i)
        except Conflict as exc:
            with out.lock:
                out.conflicts.append(exc.code)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            with out.lock:
                out.errors.append(exc)
        else:
            with out.lock:
                out.wins.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert out.errors == []
    return out


def fire_in_own_context(app: Flask, case_id: int, trigger: str, actor: Actor,
                        expected_version: int | None = None) -> int:
    with app.app_context():
        st = state()
        session = st.db.session
        try:
            case = st.cases().fire(case_id, trigger, {"note": trigger}, actor,
                                   expected_version=expected_version)
            session.commit()
            return case.version
        except BaseException:
            session.rollback()
            raise


def history(app: Flask, case_id: int) -> tuple[Case, list[Event], int]:
    with app.app_context():
        s = state().db.session
        case = s.get(Case, case_id)
        assert case is not None
        s.expunge(case)
        events = s.execute(select(Event).where(Event.case_id == case_id).order_by(Event.id)
                           ).scalars().all()
        for e in events:
            s.expunge(e)
        jobs = count(s, Job, case_id=case_id)
        s.remove()
    return case, list(events), jobs


@pytest.mark.parametrize("writers", [2, 8])
def test_concurrent_transitions_on_one_case_have_exactly_one_winner(
        race_app: Flask, writers: int) -> None:
    with race_app.app_context():
        agent = person(race_app, "ann", ["agent"], ["care"])
        case_id = state().cases().create("loop", {}, agent).id
        state().db.session.commit()
    expected_events, expected_jobs, version = 1, 1, 1  # created; the job of entering 'a'
    for round_no in range(3):
        case, _, _ = history(race_app, case_id)
        trigger = "go" if case.state == "a" else "back"
        # Half pass the version they read (If-Match), half do not: both must lose cleanly.
        out = race(writers, lambda i, t=trigger, v=version: fire_in_own_context(
            race_app, case_id, t, agent, expected_version=v if i % 2 else None))
        assert len(out.wins) == 1, (round_no, out)
        assert out.wins == [version + 1]
        assert len(out.conflicts) == writers - 1
        assert set(out.conflicts) <= {"stale", "wrong_state"}
        version += 1
        expected_events += 1
        expected_jobs += 1
        case, events, jobs = history(race_app, case_id)
        assert case.version == version
        assert case.state == ("b" if trigger == "go" else "a")
        assert len(events) == expected_events and jobs == expected_jobs
        transitions = [e for e in events if e.kind == "transition"]
        assert len(transitions) == round_no + 1
        assert transitions[-1].trigger == trigger
        assert transitions[-1].payload == {"changes": {"note": [
            None if round_no == 0 else transitions[-2].trigger, trigger]}}
        # No duplicates: every event id once, states chained.
        assert len({e.id for e in events}) == len(events)
        for before, after in zip(transitions, transitions[1:], strict=False):
            assert after.from_state == before.to_state


def test_different_triggers_racing_from_one_state(race_app: Flask) -> None:
    """'go' and 'stop' both leave 'a': whichever wins, the other is a conflict."""
    with race_app.app_context():
        agent = person(race_app, "ann", ["agent"], ["care"])
        case_id = state().cases().create("loop", {}, agent).id
        state().db.session.commit()
    out = race(8, lambda i: fire_in_own_context(race_app, case_id, ("go", "stop")[i % 2],
                                                agent))
    assert out.wins == [2] and len(out.conflicts) == 7
    case, events, jobs = history(race_app, case_id)
    assert case.version == 2 and case.state in ("b", "end")
    assert Counter(e.kind for e in events) == {"created": 1, "transition": 1}
    assert events[-1].to_state == case.state
    assert jobs == (2 if case.state == "b" else 1)


def test_concurrent_creates_with_one_idempotency_key_make_one_case(race_app: Flask) -> None:
    with race_app.app_context():
        s = state().db.session
        user = add_user(s, "ann", roles=["agent"], teams=["care"])
        token = issue_token(s, user)
        s.commit()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "order-42-complaint"}
    body = {"workflow": "loop", "data": {"note": "once"}}

    def post(i: int) -> tuple[int, int]:
        response = race_app.test_client().post("/api/cases", json=body, headers=headers)
        return response.status_code, response.json["id"] if response.status_code == 201 else 0

    out = race(2, post)
    assert out.conflicts == []
    assert [status for status, _ in out.wins] == [201, 201]
    assert len({case_id for _, case_id in out.wins}) == 1
    with race_app.app_context():
        s = state().db.session
        assert count(s, Case) == 1
        assert count(s, Event, kind="created") == 1
    # A replay later answers the same; another body with the key is refused.
    again = race_app.test_client().post("/api/cases", json=body, headers=headers)
    assert again.status_code == 201 and again.json["id"] == out.wins[0][1]
    other = race_app.test_client().post(
        "/api/cases", json={"workflow": "loop", "data": {"note": "twice"}}, headers=headers)
    assert other.status_code == 422
    assert other.json["error"]["code"] == "idempotency_mismatch"
