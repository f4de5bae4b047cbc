"""The Alembic migrations shipped in ``caseloop/migrations`` build exactly the models' schema."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text

from caseloop import migrations
from caseloop.models import Base

from .conftest import postgresql_url


def _engine(url: str) -> Engine:
    # The same driver the app uses (see caseloop.extension.database_url).
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database (a fresh PostgreSQL schema, or skipped with the reason)."""
    url = (f"sqlite:///{tmp_path / 'empty.sqlite3'}" if request.param == "sqlite"
           else postgresql_url())
    engine = _engine(url)
    yield engine
    engine.dispose()


def _schema(engine: Engine) -> dict[str, Any]:
    """Everything reflection sees of Caseloop's tables, comparable across databases."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        if not table.startswith("caseloop_") or table == migrations.VERSION_TABLE:
            continue
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table),
            "fks": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                           tuple(fk["referred_columns"]), tuple(sorted(fk["options"].items())))
                          for fk in insp.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(table)),
            "uniques": sorted((u["name"], tuple(u["column_names"]))
                              for u in insp.get_unique_constraints(table)),
        }
    return out


def test_migrations_on_an_empty_database_build_the_models_schema(empty: Engine) -> None:
    assert migrations.current(empty) is None
    assert migrations.upgrade(empty) == (None, migrations.head())
    assert migrations.differences(empty) == []
    assert migrations.current(empty) == migrations.head() == "0007"
    # Every table of the models, and our version table under its own name.
    tables = set(inspect(empty).get_table_names())
    assert set(Base.metadata.tables) | {migrations.VERSION_TABLE} == tables


def test_migrated_schema_equals_create_all_in_every_detail(
        empty: Engine, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """compare_metadata skips some details (foreign-key options, defaults); reflection
    of a migrated database and of one made by create_all must agree on those too."""
    if empty.dialect.name == "sqlite":
        other = _engine(f"sqlite:///{tmp_path / 'create_all.sqlite3'}")
    else:
        other = _engine(postgresql_url())
    try:
        migrations.upgrade(empty)
        Base.metadata.create_all(other)
        assert _schema(empty) == _schema(other)
    finally:
        other.dispose()


def test_upgrade_is_idempotent(empty: Engine) -> None:
    migrations.upgrade(empty)
    head = migrations.head()
    assert migrations.upgrade(empty) == (head, head)
    assert migrations.differences(empty) == []


def test_the_comparison_sees_a_difference(empty: Engine) -> None:
    """The 'no differences' checks above are not vacuous."""
    migrations.upgrade(empty)
    with empty.begin() as conn:
        conn.execute(text("DROP INDEX ix_caseloop_jobs_due"))
    diffs = migrations.differences(empty)
    assert [d[0] for d in diffs] == ["add_index"]
    assert diffs[0][1].name == "ix_caseloop_jobs_due"


def test_a_host_applications_tables_and_alembic_history_are_left_alone(empty: Engine) -> None:
    with empty.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('host0042')"))
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY)"))
    migrations.upgrade(empty)
    assert migrations.differences(empty) == []  # the host's tables are not ours to compare
    with empty.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == \
            "host0042"
    assert {"orders", "alembic_version"} <= set(inspect(empty).get_table_names())


def test_downgrade_removes_every_table_and_upgrade_rebuilds(empty: Engine) -> None:
    migrations.upgrade(empty)
    with empty.begin() as conn:
        command.downgrade(migrations.config(conn), "base")
    assert set(inspect(empty).get_table_names()) == {migrations.VERSION_TABLE}
    assert migrations.current(empty) is None
    migrations.upgrade(empty)
    assert migrations.differences(empty) == []


def test_tables_made_without_migrations_are_refused_until_stamped(empty: Engine) -> None:
    Base.metadata.create_all(empty)
    with pytest.raises(migrations.SchemaError, match="caseloop db stamp head"):
        migrations.upgrade(empty)
    assert migrations.current(empty) is None
    migrations.stamp(empty)
    assert migrations.upgrade(empty) == ("0007", "0007")


def test_concurrent_upgrades_on_postgresql_take_turns() -> None:
    """Several processes starting at once (serve, workers) must not collide."""
    engine = _engine(postgresql_url())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrations.upgrade(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert migrations.current(engine) == migrations.head()
        assert migrations.differences(engine) == []
    finally:
        engine.dispose()


def test_the_alembic_command_line_is_turned_away() -> None:
    """There is no alembic.ini: env.py explains how to migrate instead of guessing a URL."""
    with pytest.raises(RuntimeError, match="caseloop db upgrade"):
        command.upgrade(migrations.config(None), "head")


def test_the_scripts_ship_inside_the_package() -> None:
    folder = Path(migrations.HERE)
    assert (folder / "env.py").is_file() and (folder / "script.py.mako").is_file()
    assert [p.name for p in sorted((folder / "versions").glob("*.py"))] == [
        "0001_initial.py", "0002_jobs_sla_notifications.py", "0003_survey_links.py",
        "0004_user_timezone.py", "0005_crm.py", "0006_reporting.py", "0007_designer.py"]
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text("utf-8")
    assert '"caseloop.migrations"' in pyproject
    assert '"migrations/script.py.mako", "migrations/versions/*.py"' in pyproject


def test_rows_written_before_0002_get_its_defaults(empty: Engine) -> None:
    """A case stored by a 0001 install stays valid: no SLA, not breached."""
    with empty.begin() as conn:
        command.upgrade(migrations.config(conn), "0001")
        conn.execute(text(
            "INSERT INTO caseloop_cases (workflow, definition_version, reference_prefix, state,"
            " closed, data, created_at, updated_at, version) VALUES ('complaint', 'v1', 'CMP',"
            " 'received', false, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
    assert migrations.upgrade(empty) == ("0001", migrations.head())
    with empty.connect() as conn:
        row = conn.execute(text("SELECT sla, sla_breached, due_at, entered_at"
                                " FROM caseloop_cases")).one()
    assert (json.loads(row[0]) if isinstance(row[0], str) else row[0]) == {}
    assert (bool(row[1]), row[2], row[3]) == (False, None, None)
