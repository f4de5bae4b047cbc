from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from caseloop.app import create_app
from caseloop.extension import state
from caseloop.migrations import upgrade
from caseloop.users import add_user, issue_token

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "forms", ROOT / "workflows"]
# Installed plugins (the connectors under plugins/ are, in the test environment) stay
# out of every app and CLI run unless a test asks for them: like Datasette's
# DATASETTE_LOAD_PLUGINS, an environment variable so subprocesses follow it too.
os.environ["CASELOOP_LOAD_PLUGINS"] = "false"

PG_URL = os.environ.get("CASELOOP_TEST_DATABASE_URL", "")


def make_app(database_url: str, tmp_path: Path, **config: object) -> Flask:
    app = create_app({
        "TESTING": True,
        "CASELOOP_DEFINITIONS": [str(p) for p in SHIPPED],
        "CASELOOP_DATABASE_URL": database_url,
        "CASELOOP_SECRET_KEY": "test",
        **config,
    })
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        st = state()
        upgrade(st.db.engine)
        st.registry.record(st.db.session)
        st.db.session.commit()
    return app


def postgresql_url() -> str:
    """A fresh PostgreSQL schema for one test, or a skip with the reason."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set CASELOOP_TEST_DATABASE_URL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL at CASELOOP_TEST_DATABASE_URL is unreachable: {exc.orig}")
    finally:
        engine.dispose()
    _SCHEMAS.append(schema)
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


_SCHEMAS: list[str] = []


@pytest.fixture(autouse=True, scope="session")
def _drop_test_schemas() -> Iterator[None]:
    """Leave the shared PostgreSQL database as we found it."""
    yield
    if not _SCHEMAS:
        return
    engine = create_engine(PG_URL)
    try:
        # One transaction per schema: dropping hundreds of tables in one would run
        # out of lock slots (max_locks_per_transaction) and leave them all behind.
        for schema in _SCHEMAS:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    except OperationalError:
        pass  # best effort: the server went away
    finally:
        engine.dispose()


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    """The standalone app on a fresh SQLite file, shipped definitions loaded."""
    return make_app(f"sqlite:///{tmp_path / 'caseloop.sqlite3'}", tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app on SQLite and on PostgreSQL (skipped when PostgreSQL is absent)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'caseloop.sqlite3'}"
    else:
        url = postgresql_url()
    app = make_app(url, tmp_path)
    yield app
    with app.app_context():
        state().db.session.remove()
        state().db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


UserFactory = Callable[..., dict[str, str]]


@pytest.fixture
def user(app: Flask) -> UserFactory:
    """``user("alice", roles=["agent"], teams=["care"])`` -> auth headers for the API."""

    def make(name: str, *, roles: list[str], teams: list[str] = (),  # type: ignore[assignment]
             locale: str = "en") -> dict[str, str]:
        with app.app_context():
            session = state().db.session
            u = add_user(session, name, roles=roles, teams=teams, locale=locale)
            token = issue_token(session, u)
            session.commit()
        return {"Authorization": f"Bearer {token}"}

    return make
