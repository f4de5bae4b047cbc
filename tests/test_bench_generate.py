"""bench/generate.py with a tiny N: the synthetic history is consistent with itself
and with what the app reads (answers tied to revisits, dimensions copied from the
parent, recorded definition versions), exact in its counts, and the same for a seed."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from caseloop.facts import ANSWERS
from caseloop.migrations import upgrade
from caseloop.models import Case, DefinitionVersion, SurveyLink

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import generate  # noqa: E402

END = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
START = END - dt.timedelta(days=120)


def _engine(tmp_path: Path, name: str) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / name}")
    upgrade(engine)
    return engine


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, dict[str, int]]:
    engine = _engine(tmp_path_factory.mktemp("gen"), "a.sqlite3")
    counts = generate.generate(engine, cases=400, answers=300, seed=11, start=START, end=END)
    return engine, counts


def test_counts_are_exact_and_rows_are_in_the_period(made: tuple[Engine, dict[str, int]]
                                                     ) -> None:
    engine, counts = made
    assert counts["cases"] == 400 and counts["answers"] == 300
    assert counts["complaints"] + counts["revisits"] == 400 and counts["revisits"] > 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Case)).scalar() == 400
        assert conn.execute(select(func.count()).select_from(ANSWERS)).scalar() == 300
        links = conn.execute(select(func.count()).select_from(SurveyLink)).scalar()
        first, last = conn.execute(select(func.min(Case.created_at),
                                          func.max(Case.created_at))).one()
        answered = conn.execute(select(func.max(ANSWERS.c.answered_at))).scalar()
    assert links == counts["survey_links"] > 0
    assert START <= first and last <= END and answered is not None and answered <= END


def test_answers_belong_to_answered_revisits_with_their_dimensions(
        made: tuple[Engine, dict[str, int]]) -> None:
    engine, _ = made
    wrong = _rows(engine, """
        SELECT a.id FROM caseloop_answers a JOIN caseloop_cases c ON c.id = a.case_id
        LEFT JOIN caseloop_cases p ON p.id = c.parent_id
        WHERE c.workflow != 'revisit' OR a.workflow != 'revisit'
           OR a.team_id IS NOT c.team_id OR a.assignee_id IS NOT c.assignee_id
           OR a.channel IS NOT c.channel OR a.category IS NOT c.category
           OR a.segment IS NOT c.segment
           OR a.parent_workflow IS NOT p.workflow
           OR a.value != json_extract(c.data, '$.' || a.field)
           OR a.value < a.low OR a.value > a.high
           OR a.answered_at < c.created_at""")
    assert wrong == []
    # A revisit's dimensions are its complaint's (segment: its own field, mapped from it).
    children = _rows(engine, """
        SELECT c.channel, p.channel, c.category, p.category, c.segment, p.segment,
               json_extract(c.data, '$.complaint_reference'), p.id, p.created_at
        FROM caseloop_cases c JOIN caseloop_cases p ON p.id = c.parent_id""")
    assert children
    for ch, p_ch, cat, p_cat, seg, p_seg, ref, p_id, _ in children:
        assert (ch, cat, seg) == (p_ch, p_cat, p_seg) and ref.endswith(f"{p_id:06d}")
    # Scales and reporting as the shipped revisit form declares them.
    scales = _rows(engine, "SELECT DISTINCT metric, field, report, low, high FROM "
                           "caseloop_answers ORDER BY metric")
    assert scales == [("ces", "ces", None, 1, 7), ("csat", "csat", "top2box", 1, 5),
                      ("nps", "nps", None, 0, 10)]


def test_cases_read_like_the_apps(made: tuple[Engine, dict[str, int]]) -> None:
    engine, _ = made
    with engine.connect() as conn:
        recorded = set(conn.execute(select(DefinitionVersion.name, DefinitionVersion.version)
                                    .where(DefinitionVersion.kind == "workflow")).all())
        pinned = set(conn.execute(select(Case.workflow, Case.definition_version)
                                  .distinct()).all())
    assert pinned and pinned <= recorded
    outcomes = {r[0] for r in _rows(engine, "SELECT DISTINCT json_extract(data, "
                                            "'$.call_outcome') FROM caseloop_cases "
                                            "WHERE workflow = 'revisit'")}
    assert {"reached", "survey_link"} <= outcomes <= {"reached", "survey_link", "refused",
                                                     "unreachable", None}
    # Resolved and closed complaints carry their resolution; breached SLAs are a share.
    bad = _rows(engine, """SELECT id FROM caseloop_cases WHERE workflow = 'complaint' AND (
        (state IN ('resolved', 'closed') AND resolved_at IS NULL)
        OR (closed = 1 AND state NOT IN ('closed', 'withdrawn'))
        OR (first_response_at IS NOT NULL AND first_response_at < created_at)
        OR (resolved_at IS NOT NULL AND resolved_at < created_at)
        OR channel != json_extract(data, '$.channel'))""")
    assert bad == []
    share = _rows(engine, "SELECT avg(sla_breached) FROM caseloop_cases "
                          "WHERE workflow = 'complaint'")[0][0]
    assert 0 < share < 0.5


def test_the_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    def dump(engine: Engine) -> list[Any]:
        return _rows(engine, "SELECT c.id, c.workflow, c.state, c.data, c.created_at, "
                             "c.channel, a.metric, a.value FROM caseloop_cases c LEFT JOIN "
                             "caseloop_answers a ON a.case_id = c.id ORDER BY c.id, a.id")

    one, two, other = (_engine(tmp_path, f"{n}.sqlite3") for n in ("one", "two", "other"))
    for engine, seed in ((one, 5), (two, 5), (other, 6)):
        generate.generate(engine, cases=120, answers=90, seed=seed, start=START, end=END)
    assert dump(one) == dump(two)
    assert dump(one) != dump(other)


def test_too_many_answers_for_the_cases_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="raise --cases"):
        generate.generate(_engine(tmp_path, "x.sqlite3"), cases=10, answers=100, seed=1,
                          start=START, end=END)


def test_the_demo_seeds_a_synthetic_history_for_the_dashboard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from caseloop.app import create_app
    from caseloop.cli import demo
    from caseloop.extension import state

    from .conftest import SHIPPED

    monkeypatch.setattr(demo, "run", lambda *args: None)
    app = create_app({"CASELOOP_DEFINITIONS": [str(p) for p in SHIPPED],
                      "CASELOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
                      "CASELOOP_SECRET_KEY": "test"})
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "synthetic history (demo data, seed 2026, last 90 days)" in result.output
    with app.app_context():
        session = state().db.session
        assert session.scalar(select(func.count()).select_from(Case)) == 3 + 700
        assert session.scalar(select(func.count()).select_from(ANSWERS)) == 600
        recent = session.scalar(select(func.count()).select_from(ANSWERS).where(
            ANSWERS.c.metric == "nps",
            ANSWERS.c.answered_at >= dt.datetime.now(dt.UTC) - dt.timedelta(days=30)))
    assert recent >= 30  # the dashboard's 30 days are not a small sample
