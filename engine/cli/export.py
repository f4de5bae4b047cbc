"""``caseloop export``: the designer's publications written back to the definition files.

Teams that keep forms and workflows in git publish in the browser, then export and
commit; once a file holds the published text, file and database agree again. A file
changed since the publication (someone edited it meanwhile) is a conflict: it is
left alone unless ``--force`` says the published text wins.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click
from flask.cli import with_appcontext

from ..designer import overlay
from ..extension import state
from .common import _database, _refuse_broken_definitions, _session


@click.command("export")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--force", is_flag=True,
              help="Overwrite files changed since their definition was published.")
@click.option("--dry-run", is_flag=True, help="Say what would be written; write nothing.")
@with_appcontext
@_database
def export_command(names: tuple[str, ...], force: bool, dry_run: bool) -> None:
    """Write the definitions published in the designer back to their YAML files.

    Only definitions whose published text differs from their file are written
    (NAME limits it to those forms or workflows). Exits 1 when a file changed since
    its publication and --force was not given: nothing is overwritten silently.
    """
    st = state()
    _refuse_broken_definitions(st, "export")
    session = _session()
    st.registry.refresh(session, force=True)
    effect = st.registry.effect
    if effect.agreed and not dry_run:
        overlay.settle(session, effect.agreed)
    session.commit()
    conflicts = {(c.kind, c.name): c for c in effect.conflicts}
    wanted = set(names)
    known = {name for _, name in effect.published}
    unknown = wanted - known - set(st.registry.current.forms) - set(
        st.registry.current.workflows)
    if unknown:
        raise click.UsageError(f"no form or workflow named {', '.join(sorted(unknown))}")
    written = refused = 0
    for key, pub in sorted(effect.published.items()):
        kind, name = key
        if wanted and name not in wanted:
            continue
        path = Path(effect.files.get(key, pub.path))
        conflict = conflicts.get(key)
        if conflict is not None and not force:
            click.echo(f"conflict: {conflict.message()}", err=True)
            refused += 1
            continue
        verb = "would write" if dry_run else "wrote"
        if not dry_run:
            _write(path, pub.text)
            # The file holds it now: later edits of the file take effect again.
            overlay.settle(session, [pub])
            session.commit()
        written += 1
        click.echo(f"{verb} {path} ({kind} '{name}', publication #{pub.sequence} by "
                   f"{pub.published_by})")
    if not written and not refused:
        click.echo("the files hold every published definition: nothing to export")
    if refused:
        click.echo(f"{refused} file(s) left alone; see above", err=True)
        sys.exit(1)


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a crash mid-write must not leave half a definition."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
