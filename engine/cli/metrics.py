"""``caseloop metrics rebuild``: the reporting facts recomputed from cases' history."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from .. import facts, rollup
from ..extension import state
from ..models import Case, Event
from .common import _count, _database, _session


@click.group("metrics")
def metrics_group() -> None:
    """The reporting facts behind the metrics and the dashboard."""


@metrics_group.command("rebuild")
@click.option("--batch", default=500, show_default=True, help="Cases per transaction.")
@with_appcontext
@_database
def rebuild_command(batch: int) -> None:
    """Recompute every case's dimensions, response and resolution times, reopen
    count and scored answers from its data and history.

    Run it once after upgrading from a version without them (migration 0006 copies
    the dimensions and first responses; resolutions and answers need the
    definitions), or after changing which fields are scores. Safe to run again.
    """
    session = _session()
    registry = state().registry
    after, done, skipped = 0, 0, 0
    while True:
        cases = list(session.execute(select(Case).where(Case.id > after).order_by(Case.id)
                                     .limit(batch)).scalars())
        if not cases:
            break
        ids = [c.id for c in cases]
        history: dict[int, list[Event]] = {i: [] for i in ids}
        for e in session.execute(select(Event).where(Event.case_id.in_(ids))
                                 .order_by(Event.id)).scalars():
            history[e.case_id].append(e)
        for case in cases:
            try:
                wf = registry.pinned(case.workflow, case.definition_version, session)
            except LookupError:
                skipped += 1
                continue
            parent = session.get(Case, case.parent_id) if case.parent_id else None
            facts.rebuild(session, wf, case, history[case.id], parent,
                          current_app.config["CASELOOP_TIMEZONE"])
            done += 1
        session.commit()
        after = ids[-1]
    hours = rollup.rebuild(session)
    session.commit()
    click.echo(f"Rebuilt the facts of {_count(done, 'case')} ({_count(hours, 'hour')} of "
               "answers summed)"
               + (f"; {_count(skipped, 'case')} skipped (their definition version is not "
                  "recorded)" if skipped else "") + ".")
