"""The ``caseloop`` command line (a Flask CLI group: ``flask --app caseloop …`` works too).

One module per command group; this one registers them on an application.
"""

from __future__ import annotations

from flask import Flask
from flask.cli import AppGroup, FlaskGroup

from .cases import cases_group
from .check import check_command, schema_command
from .db import db_group
from .demo import demo_command
from .docs import docs_command
from .export import export_command
from .jobs import jobs_group, worker_command
from .metrics import metrics_group
from .plugins import plugins_command
from .serve import serve_command
from .simulate import simulate_command
from .users import users_group

COMMANDS = (check_command, schema_command, db_group, serve_command, demo_command, users_group,
            cases_group, worker_command, jobs_group, simulate_command, plugins_command,
            metrics_group, export_command, docs_command)


def init_app(app: Flask, group: str | None = None) -> None:
    """Register the commands on ``app.cli`` — at the top level for the standalone
    app, or nested under ``group`` (``flask caseloop db upgrade``) in a host
    application, whose own ``db`` command (Flask-Migrate) must not be replaced."""
    target = app.cli
    if group is not None:
        target = AppGroup(group, help="Caseloop: cases, workflows and their database.")
        app.cli.add_command(target)
    for command in COMMANDS:
        target.add_command(command)


def _create_app() -> Flask:
    from ..app import create_app

    return create_app()


main = FlaskGroup(
    name="caseloop",
    create_app=_create_app,
    add_version_option=False,
    load_dotenv=False,
    help="Caseloop: YAML forms and workflows for the customer-satisfaction loop.",
)
