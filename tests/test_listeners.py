"""The on_event hook: every case event reaches listeners from the worker, in order,
once each; a listener that fails is retried without holding up the others."""

from __future__ import annotations

import datetime as dt
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from caseloop import hookimpl
from caseloop.cases import Cases
from caseloop.extension import state
from caseloop.models import Event, Job
from caseloop.worker import Worker, executor_for

from .test_api import COMPLAINT
from .test_cases import build_app, dispose, person

SEEN: list[dict[str, Any]] = []
FAIL_ONCE: set[str] = set()


@hookimpl
def on_event(event: dict[str, Any], case: dict[str, Any] | None,
             settings: dict[str, Any]) -> None:
    if event["kind"] in FAIL_ONCE:
        FAIL_ONCE.discard(event["kind"])
        raise ConnectionError("the analytics warehouse is down")
    SEEN.append({"id": event["id"], "kind": event["kind"],
                 "reference": case["reference"] if case else None})


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    module = types.ModuleType("caseloop_test_listener")
    module.on_event = on_event  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    SEEN.clear()
    FAIL_ONCE.clear()
    app = build_app(request.param, tmp_path, CASELOOP_PLUGINS=[module.__name__])
    yield app
    dispose(app)
    del sys.modules[module.__name__]


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def run(app: Flask, clock: Clock) -> None:
    state().db.session.remove()
    executor = executor_for(app)
    executor.clock = clock
    Worker(executor).run(until_idle=True)


def test_listeners_get_every_event_once_in_order(app: Flask) -> None:
    clock = Clock()
    with app.app_context():
        run(app, clock)  # the cursor starts here: earlier history is not replayed
        agent = person(app, "ana", ["agent"], ["care"])
        cases = Cases(state().db.session, state().registry)
        case = cases.create("complaint", COMPLAINT, agent)
        cases.fire(case.id, "acknowledge", {}, agent)
        reference = case.reference
        state().db.session.commit()
        run(app, clock)
        assert SEEN == []  # events settle first (a later commit may hold a lower id)
        clock.now += dt.timedelta(seconds=10)
        run(app, clock)
        ids = [e.id for e in state().db.session.execute(
            select(Event).order_by(Event.id)).scalars()]
        assert [s["id"] for s in SEEN] == ids[:len(SEEN)] and SEEN
        assert SEEN[0]["kind"] == "created" and SEEN[0]["reference"] == reference
        clock.now += dt.timedelta(seconds=10)
        run(app, clock)
        assert len({s["id"] for s in SEEN}) == len(SEEN)  # nothing twice


def test_a_failing_listener_is_retried_and_the_rest_go_on(app: Flask) -> None:
    clock = Clock()
    with app.app_context():
        run(app, clock)
        FAIL_ONCE.add("created")
        agent = person(app, "ana", ["agent"], ["care"])
        cases = Cases(state().db.session, state().registry)
        case = cases.create("complaint", COMPLAINT, agent)
        cases.fire(case.id, "acknowledge", {}, agent)
        state().db.session.commit()
        clock.now += dt.timedelta(seconds=10)
        run(app, clock)
        kinds = [s["kind"] for s in SEEN]
        assert "created" not in kinds and "transition" in kinds
        job = state().db.session.execute(select(Job).where(
            Job.kind == "plugin_event", Job.status == "pending")).scalar_one()
        assert "ConnectionError: the analytics warehouse is down" in (job.last_error or "")
        clock.now = job.run_at + dt.timedelta(seconds=1)
        run(app, clock)
        assert [s["kind"] for s in SEEN].count("created") == 1
