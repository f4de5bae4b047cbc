"""``caseloop check`` and ``caseloop schema``: the definition files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import spec
from ..extension import state
from ..spec import schema as schema_module
from .common import _count


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object with every problem, for tools.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@with_appcontext
def check_command(paths: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check form, workflow and calendar definitions.

    PATHS are files or folders (default: the configured definitions, normally
    forms/ and workflows/). Every problem is printed as
    PATH:LINE:COL: CODE message. Exits 1 if there is any error. Field types,
    functions and channels of the app's plugins are known, as when it serves.
    """
    targets = list(paths) or list(current_app.config["CASELOOP_DEFINITIONS"])
    files, _ = spec.discover(targets)
    definitions, problems = spec.check(targets, extensions=state().registry.extensions)
    errors = [p for p in problems if p.is_error]
    warnings = [p for p in problems if not p.is_error]
    failed = bool(errors or (strict and warnings))
    if fmt == "json":
        click.echo(json.dumps({
            "ok": not failed,
            "files": len(files),
            "errors": len(errors),
            "warnings": len(warnings),
            "definitions": {
                "forms": {n: f.version for n, f in definitions.forms.items()},
                "workflows": {n: w.version for n, w in definitions.workflows.items()},
                "calendars": {n: c.version for n, c in definitions.calendars.items()},
            },
            "problems": [p.as_dict() for p in problems],
        }, ensure_ascii=False, indent=2))
    else:
        for problem in problems:
            click.echo(problem.format())
        summary = (f"{len(files)} file{'s' if len(files) != 1 else ''} checked: "
                   f"{_count(len(errors), 'error')}, {_count(len(warnings), 'warning')}")
        click.echo(summary, err=True)
    if failed:
        sys.exit(1)


@click.command("schema")
@click.argument("kind", required=False, type=click.Choice(sorted(schema_module.SCHEMAS)))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write form.json, workflow.json and calendar.json into this folder.")
@click.option("--builtin", is_flag=True,
              help="Only Caseloop's own field types and channels, without the plugins' "
                   "(what engine/schemas/ holds).")
@with_appcontext
def schema_command(kind: str | None, out: Path | None, builtin: bool) -> None:
    """Write the JSON Schema (draft-07) of the definition formats.

    With KIND, print that one schema. With --out, write all of them, for
    editors: add '# yaml-language-server: $schema=PATH/form.json' to a file.
    The field types and notification channels of the app's plugins are
    included (the schema of this install) unless --builtin is given.
    """
    ext = state().registry.extensions
    found = (schema_module.SCHEMAS if builtin
             else schema_module.schemas(ext.field_types, ext.channels))
    if out is not None:
        for path in schema_module.write(out, found):
            click.echo(f"wrote {path}")
        return
    if kind is None:
        raise click.UsageError("Name a kind (form, workflow, calendar) or give --out DIR.")
    click.echo(json.dumps(found[kind], indent=2, ensure_ascii=False))
