"""Caseloop's own schema migrations (Alembic), shipped inside the package.

Caseloop drives Alembic directly rather than through Flask-Migrate: Flask-Migrate
binds migrations to the host application's single ``migrations/`` folder, but an
embeddable extension needs a history of its own that upgrades with the package.
So the scripts live here, the version table is ``caseloop_alembic_version`` (a
host's own Alembic history, in ``alembic_version``, never collides with ours),
and the migrations run on a connection of the application's engine::

    from caseloop.migrations import upgrade
    upgrade(db.engine)          # what `caseloop db upgrade` and `caseloop serve` do

The Alembic command line is not used: there is no ``alembic.ini``. To add a
revision, change the models, then on a database at head run::

    with engine.begin() as conn:
        command.revision(config(conn), message="...", rev_id="0002", autogenerate=True)

and review what it wrote next to ``versions/0001_initial.py`` (a revision is a
frozen record: no imports from ``caseloop.models``). ``tests/test_migrations.py``
fails until migrations and models agree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text

from ..models import Base

#: Our version table, apart from a host application's ``alembic_version``.
VERSION_TABLE = "caseloop_alembic_version"
#: Every table Caseloop owns starts with this.
PREFIX = "caseloop_"
HERE = os.path.dirname(os.path.abspath(__file__))
#: Any 64-bit number, the same in every process: serialises concurrent upgrades on PostgreSQL.
_PG_LOCK = 0x6361_7365_6C6F_6F70  # b"caseloop"


class SchemaError(RuntimeError):
    """The database cannot be migrated as it stands; the message says what to do."""


def config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for Caseloop's scripts, bound to ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", HERE)
    # ``env.py`` runs these on the connection it is given, never on a URL of its own.
    cfg.attributes["connection"] = connection
    cfg.attributes["options"] = _compare_options()
    return cfg


def head() -> str:
    """The newest revision shipped with this version of Caseloop."""
    found = ScriptDirectory.from_config(config()).get_current_head()
    assert found is not None  # there is always 0001
    return found


def current(engine: Engine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    with engine.connect() as conn:
        return _current(conn)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations up to ``revision`` (idempotent).

    On PostgreSQL they run in one transaction: all or nothing. SQLite's Python
    driver commits each DDL statement as it goes, so a failure there can leave
    part of a revision applied.

    Returns the revisions (before, after). Raises :class:`SchemaError` when the
    database holds Caseloop tables made without migrations, or was migrated by
    a newer Caseloop.
    """
    with _locked(engine) as conn:
        before = _current(conn)
        if before is None:
            _refuse_unversioned(conn)
        elif not known(before):
            raise SchemaError(newer(before))
        command.upgrade(config(conn), revision)
        return before, _current(conn)


def known(revision: str) -> bool:
    """Whether this version of Caseloop ships ``revision``."""
    try:
        return ScriptDirectory.from_config(config()).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def newer(revision: str) -> str:
    """What to say about a database migrated by a newer Caseloop than this one."""
    return (f"the database is at revision {revision}, which this version of Caseloop does "
            f"not know (its newest is {head()}): a newer Caseloop migrated it; install that "
            "version (or newer) instead of downgrading")


def stamp(engine: Engine, revision: str = "head") -> None:
    """Record ``revision`` as applied without running anything (for a database
    whose tables were made by ``create_all`` before migrations existed)."""
    with _locked(engine) as conn:
        command.stamp(config(conn), revision)


def differences(engine: Engine) -> list[Any]:
    """How the database's Caseloop tables differ from the models (empty: none)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts=_compare_options())
        diffs: list[Any] = compare_metadata(ctx, Base.metadata)
        return diffs


def _compare_options() -> dict[str, Any]:
    """What ``env.py`` configures Alembic with; :func:`differences` compares with the same."""
    return {
        "version_table": VERSION_TABLE,
        "target_metadata": Base.metadata,
        "include_name": _ours,
        "compare_type": True,
    }


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    """Only Caseloop's tables: a host's tables in the same database are not ours to
    compare, and would otherwise show up as 'removed' in every comparison."""
    if type_ == "table":
        return name is not None and name.startswith(PREFIX) and name != VERSION_TABLE
    return True


def _current(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _refuse_unversioned(conn: Connection) -> None:
    ours = sorted(n for n in inspect(conn).get_table_names()
                  if n.startswith(PREFIX) and n != VERSION_TABLE)
    if ours:
        raise SchemaError(
            f"the database has Caseloop tables ({', '.join(ours[:3])}"
            f"{', …' if len(ours) > 3 else ''}) but no {VERSION_TABLE}: they were made "
            "without migrations. If they match this version of Caseloop, record that with "
            "'caseloop db stamp head'; otherwise move the data out and start afresh.")


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A transaction; on PostgreSQL also a lock, so that several processes starting
    at once (serve, workers) migrate one after the other instead of colliding.
    SQLite needs none: its writers queue on the database file."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        yield conn
