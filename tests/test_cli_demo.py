"""`caseloop demo`: seeds people and sample complaints, then serves (the serving is
replaced here by a stub; test_cli_commands runs the real server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from caseloop.app import create_app
from caseloop.cli import demo as demo_module
from caseloop.extension import state
from caseloop.models import Case, Token, User

from .conftest import SHIPPED


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlaskCliRunner:
    served: list[tuple[str, int, int]] = []
    monkeypatch.setattr(demo_module, "run", lambda *args: served.append(args))
    app = create_app({"CASELOOP_DEFINITIONS": [str(p) for p in SHIPPED],
                      "CASELOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
                      "CASELOOP_SECRET_KEY": "test"})
    runner = app.test_cli_runner()
    runner.served = served  # type: ignore[attr-defined]
    return runner


def test_demo_seeds_people_and_complaints_then_serves(fresh: FlaskCliRunner) -> None:
    result = fresh.invoke(args=["demo", "--no-history", "--port", "5099"])
    assert result.exit_code == 0, result.output
    assert "sample complaints: 3" in result.output
    tokens = [line.split()[-1] for line in result.output.splitlines() if " cl_" in line]
    assert len(tokens) == 5  # four roles of the shipped workflows, and a designer
    assert fresh.served == [("127.0.0.1", 5099, 4)]  # type: ignore[attr-defined]
    with fresh.app.app_context():
        session = state().db.session
        assert session.scalar(select(func.count()).select_from(User)) == 5
        states = sorted(session.scalars(select(Case.state)))
        assert states == ["acknowledged", "assessed", "received"]


def test_demo_twice_keeps_people_and_cases(fresh: FlaskCliRunner) -> None:
    assert fresh.invoke(args=["demo", "--no-history"]).exit_code == 0
    again = fresh.invoke(args=["demo", "--no-history"])
    assert again.exit_code == 0, again.output
    assert "(unchanged)" in again.output
    with fresh.app.app_context():
        session = state().db.session
        assert session.scalar(select(func.count()).select_from(Case)) == 3
        assert session.scalar(select(func.count()).select_from(Token)) == 10
