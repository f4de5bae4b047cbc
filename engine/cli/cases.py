"""``caseloop cases``: cases in the database."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..extension import state
from ..migrate import CURRENT, MigrationError, migrate
from .common import _database, _refuse_broken_definitions, _session

cases_group = AppGroup("cases", help="Cases in the database.")


def _mapping(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
             ) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value in values:
        old, sep, new = (part.strip() for part in value.partition("="))
        if not (sep and old and new):
            raise click.BadParameter(f"'{value}' is not OLD=NEW (e.g. --map triage=assessing)")
        if mapping.get(old, new) != new:
            raise click.BadParameter(f"'{old}' is mapped twice ({mapping[old]}, {new})")
        mapping[old] = new
    return mapping


@cases_group.command("migrate")
@click.argument("workflow")
@click.option("--to", "to_version", required=True, metavar="VERSION",
              help="A recorded version of WORKFLOW (its hash, or a unique prefix of at "
                   "least 4 characters), or 'current' for the one in effect (the files, "
                   "or what the designer published over them).")
@click.option("--map", "mapping", multiple=True, metavar="OLD=NEW", callback=_mapping,
              help="Move cases in state OLD to state NEW (repeat for several). Needed for "
                   "every state the target version does not have.")
@click.option("--dry-run", is_flag=True, help="Report what would move; change nothing.")
@_database
def cases_migrate(workflow: str, to_version: str, mapping: dict[str, str],
                  dry_run: bool) -> None:
    """Move the open cases of WORKFLOW onto another definition version.

    A state the target has keeps its name unless mapped; if any case is in a
    state the target lacks and no --map names one, nothing changes. Each moved
    case gets a 'migrated' event; all cases move in one transaction.
    """
    st = state()
    if to_version == CURRENT:
        _refuse_broken_definitions(st, "migrate to the current version")
    session = _session()
    # 'current' is what is in effect: the files with the designer's publications.
    st.registry.refresh(session, force=True)
    try:
        report = migrate(session, st.registry, workflow, to_version, mapping, dry_run=dry_run)
    except MigrationError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    if report.refused:
        session.rollback()
        raise click.ClickException("\n".join(report.lines()))
    if report.applied:
        session.commit()
    else:
        session.rollback()
    for line in report.lines():
        click.echo(line)
