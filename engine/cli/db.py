"""``caseloop db``: the schema, by Caseloop's own Alembic migrations."""

from __future__ import annotations

import click
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask.cli import AppGroup

from .. import migrations
from ..extension import state
from .common import _database, _url

db_group = AppGroup("db", help="The database schema: Caseloop's own Alembic migrations.")


@db_group.command("upgrade")
@_database
def db_upgrade() -> None:
    """Apply Caseloop's migrations (safe to repeat)."""
    st = state()
    before, after = migrations.upgrade(st.db.engine)
    if before == after:
        click.echo(f"{_url(st)} is at {after} (head): nothing to do")
    else:
        click.echo(f"upgraded {_url(st)} from {before or 'empty'} to {after} (head)")


@db_group.command("current")
@_database
def db_current() -> None:
    """Print the revision the database is at."""
    at, head = migrations.current(state().db.engine), migrations.head()
    if at is None:
        click.echo("none (an empty database: run 'caseloop db upgrade')")
    elif at == head:
        click.echo(f"{at} (head)")
    elif not migrations.known(at):
        click.echo(f"{at} (unknown: {migrations.newer(at)})")
    else:
        click.echo(f"{at} (head is {head}: run 'caseloop db upgrade')")


@db_group.command("stamp")
@click.argument("revision", default="head")
@_database
def db_stamp(revision: str) -> None:
    """Record REVISION as applied without running it.

    Only for a database whose tables were made before Caseloop had migrations
    (by SQLAlchemy's create_all) and match REVISION; anything else is upgraded
    with 'caseloop db upgrade'.
    """
    try:
        migrations.stamp(state().db.engine, revision)
    except (CommandError, RevisionError) as exc:
        raise click.ClickException(f"cannot stamp '{revision}': {exc} (the newest revision "
                                   f"is {migrations.head()}, also called 'head')") from None
    click.echo(f"recorded {_url(state())} as being at {migrations.current(state().db.engine)}")
