"""The ``caseloop`` command line (a Flask CLI group: ``flask --app caseloop …`` works too)."""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import migrations, spec
from .extension import State, state
from .hints import suggest
from .migrate import CURRENT, MigrationError, migrate
from .models import DbSession, Membership, Team, Token, User
from .server import THREADS, Server
from .spec import schema as schema_module
from .spec.schema import NAME
from .users import add_user, issue_token, revoke_tokens


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
    PATH:LINE:COL: CODE message. Exits 1 if there is any error.
    """
    targets = list(paths) or list(current_app.config["CASELOOP_DEFINITIONS"])
    files, _ = spec.discover(targets)
    definitions, problems = spec.check(targets)
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
def schema_command(kind: str | None, out: Path | None) -> None:
    """Write the JSON Schema (draft-07) of the definition formats.

    With KIND, print that one schema. With --out, write all of them, for
    editors: add '# yaml-language-server: $schema=PATH/form.json' to a file.
    """
    if out is not None:
        for path in schema_module.write(out):
            click.echo(f"wrote {path}")
        return
    if kind is None:
        raise click.UsageError("Name a kind (form, workflow, calendar) or give --out DIR.")
    click.echo(json.dumps(schema_module.SCHEMAS[kind], indent=2, ensure_ascii=False))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# -- shared ------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])

#: User names: letters, digits and . _ @ - (e-mail addresses work), as in URLs and history.
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
#: Roles and teams are matched against the names used in workflows (``allow:``, ``assign:``).
ROLE_OR_TEAM = re.compile(NAME)
#: Roles a human rarely should have: timers and linked cases fire as 'system'.
SYSTEM = "system"
MIN_PASSWORD = 8


def _database(command: F) -> F:
    """Database failures as one line that says what to check, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except migrations.SchemaError as exc:
            raise click.ClickException(str(exc)) from None
        except DBAPIError as exc:
            st = state()
            st.db.session.rollback()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(
                f"the database {_url(st)} failed: {reason} (check CASELOOP_DATABASE_URL, "
                "and that the server is running)") from None

    return wrapper  # type: ignore[return-value]


def _url(st: State) -> str:
    return st.db.engine.url.render_as_string(hide_password=True)


def _session() -> DbSession:
    """The session, once the schema is the one this version of Caseloop needs."""
    st = state()
    at, head = migrations.current(st.db.engine), migrations.head()
    if at is not None and at != head and not migrations.known(at):
        raise click.ClickException(migrations.newer(at))
    if at != head:
        raise click.ClickException(
            f"the database schema is at {at or 'nothing (an empty database)'} but this "
            f"Caseloop needs {head}: run 'caseloop db upgrade' first")
    return st.db.session


def _refuse_broken_definitions(st: State, doing: str) -> None:
    if st.load_error is None:
        return
    errors = [p for p in st.load_error.problems if p.is_error]
    lines = [f"cannot {doing}: the definitions have {_count(len(errors), 'error')}:"]
    # The first line of each (the hint follows on a line of its own in 'caseloop check').
    lines += [p.format().splitlines()[0] for p in errors]
    lines.append("fix them, then check with 'caseloop check'")
    raise click.ClickException("\n".join(lines))


# -- caseloop db ---------------------------------------------------------------------

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


# -- caseloop serve --------------------------------------------------------------------


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 listens on every interface.")
@click.option("--port", default=5000, type=click.IntRange(0, 65535), show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--threads", default=THREADS, type=click.IntRange(1, 64), show_default=True,
              help="Requests served at once.")
@with_appcontext
@_database
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve Caseloop over HTTP (migrates and records the definitions first).

    The database is CASELOOP_DATABASE_URL, by default a SQLite file in the
    instance folder. Refuses to start while the definitions have errors.
    """
    st = state()
    _refuse_broken_definitions(st, "serve")
    _, revision = migrations.upgrade(st.db.engine)
    recorded = st.registry.record(st.db.session)
    st.db.session.commit()
    st.db.session.remove()  # hold no connection while serving
    try:
        server = Server(current_app._get_current_object(),  # type: ignore[attr-defined]
                        host, port, threads)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}: {exc.strerror or exc}; give an "
                                   "IP address, or a host name this machine resolves") from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what uses the port "
            "or choose another with --port") from None
    d = st.registry.current
    click.echo(f"database {_url(st)} at {revision}")
    click.echo(f"definitions: {_count(len(d.workflows), 'workflow')}, "
               f"{_count(len(d.forms), 'form')} ({len(recorded)} new versions recorded)")
    click.echo(f"Caseloop is listening on {server.url} (Ctrl+C stops it)")
    server.run()
    click.echo("stopped")


# -- caseloop users ----------------------------------------------------------------------

users_group = AppGroup("users", help="People: their roles, teams and API tokens.")


@users_group.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE",
              help="A role named in the workflows' 'allow:' lists (repeat for several).")
@click.option("--team", "teams", multiple=True, metavar="TEAM",
              help="A team (made if new; repeat for several). Users see their teams' cases.")
@click.option("--password", is_flag=True,
              help="Ask for a password (typed twice, not shown) for signing in to the pages. "
                   "Without one the user works through API tokens only.")
@click.option("--display-name", default="", help="Shown in pages and history (default: NAME).")
@click.option("--locale", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the pages and messages.")
@_database
def users_add(name: str, roles: tuple[str, ...], teams: tuple[str, ...], password: bool,
              display_name: str, locale: str) -> None:
    """Add the user NAME."""
    if not USER_NAME.match(name):
        raise click.BadParameter("use up to 64 letters, digits and . _ @ -, starting with a "
                                 "letter or digit", param_hint="NAME")
    for option, values in (("--role", roles), ("--team", teams)):
        for value in values:
            if not ROLE_OR_TEAM.match(value):
                raise click.BadParameter(f"'{value}': use lower-case letters, digits and '_', "
                                         "starting with a letter", param_hint=option)
    if len(display_name) > 200:
        raise click.BadParameter("at most 200 characters", param_hint="--display-name")
    session = _session()
    if session.execute(select(User.id).where(User.name == name)).first() is not None:
        raise click.ClickException(f"a user named '{name}' exists already; choose another "
                                   "name (see 'caseloop users list')")
    known = _known_roles(state())
    for role in roles:
        if role == SYSTEM:
            click.echo("warning: role 'system' lets this user fire the transitions meant for "
                       "timers and linked cases", err=True)
        elif role not in known:
            click.echo(f"warning: no workflow uses role '{role}'{suggest(role, known)}",
                       err=True)
    secret = None
    if password:
        secret = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                              value_proc=_strong_enough)
    try:
        add_user(session, name, roles=roles, teams=teams, password=secret,
                 display_name=display_name, locale=locale)
        session.commit()
    except (ValueError, IntegrityError):  # added by someone else meanwhile
        session.rollback()
        raise click.ClickException(f"a user named '{name}' exists already; choose another "
                                   "name (see 'caseloop users list')") from None
    click.echo(f"added user {name} (roles: {', '.join(sorted(set(roles)))}; teams: "
               f"{', '.join(sorted(set(teams))) or 'none'}; "
               f"{'password set' if secret else 'no password: API tokens only'})")


@users_group.command("list")
@_database
def users_list() -> None:
    """List users with their roles, teams and active tokens."""
    session = _session()
    users = session.execute(select(User).order_by(User.name)).scalars().all()
    if not users:
        click.echo("no users yet; add one with 'caseloop users add NAME --role ROLE'", err=True)
        return
    teams: dict[int, list[str]] = {}
    for user_id, team in session.execute(select(Membership.user_id, Team.name).join(
            Team, Team.id == Membership.team_id).order_by(Team.name)):
        teams.setdefault(user_id, []).append(team)
    tokens = {user_id: n for user_id, n in session.execute(select(
        Token.user_id, func.count()).where(Token.revoked_at.is_(None)).group_by(Token.user_id))}
    rows = [("NAME", "DISPLAY NAME", "ROLES", "TEAMS", "LOCALE", "TOKENS", "")]
    rows += [(u.name, u.display_name, ",".join(u.roles or []) or "-",
              ",".join(teams.get(u.id, [])) or "-", u.locale, str(tokens.get(u.id, 0)),
              "" if u.active else "inactive") for u in users]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@users_group.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (e.g. 'crm-sync').")
@_database
def users_token(name: str, label: str) -> None:
    """Issue an API token for NAME, printed alone on the last line.

    Only its hash is stored: keep it now, e.g. TOKEN=$(caseloop users token NAME | tail -1).
    """
    if len(label) > 100:
        raise click.BadParameter("at most 100 characters", param_hint="--label")
    session = _session()
    user = _user(session, name)
    if not user.active:
        raise click.ClickException(f"user '{name}' is deactivated: a token would not work")
    token = issue_token(session, user, label)
    session.commit()
    click.echo(f"new API token for {name}{f' ({label})' if label else ''}; it is shown only "
               "this once:", err=True)
    click.echo(token)


@users_group.command("revoke")
@click.argument("name")
@_database
def users_revoke(name: str) -> None:
    """Revoke every API token of NAME."""
    session = _session()
    n = revoke_tokens(session, _user(session, name))
    session.commit()
    click.echo(f"revoked {_count(n, 'token')} of {name}")


def _user(session: DbSession, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        names = session.execute(select(User.name)).scalars().all()
        raise click.ClickException(f"no user named '{name}'{suggest(name, names)}; add one "
                                   f"with 'caseloop users add {name} --role ROLE'")
    return user


def _known_roles(st: State) -> set[str]:
    roles = set(current_app.config["CASELOOP_SEE_ALL_ROLES"])
    for wf in st.registry.current.workflows.values():
        roles |= wf.roles
    return roles - {SYSTEM}


def _strong_enough(value: str) -> str:
    if len(value) < MIN_PASSWORD:
        raise click.UsageError(f"use at least {MIN_PASSWORD} characters")
    return value


# -- caseloop cases ----------------------------------------------------------------------

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
                   "least 4 characters), or 'current' for the one loaded from the files.")
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


def init_app(app: Flask) -> None:
    for command in (check_command, schema_command, db_group, serve_command, users_group,
                    cases_group):
        app.cli.add_command(command)


def _create_app() -> Flask:
    from .app import create_app

    return create_app()


main = FlaskGroup(
    name="caseloop",
    create_app=_create_app,
    add_version_option=False,
    load_dotenv=False,
    help="Caseloop: YAML forms and workflows for the customer-satisfaction loop.",
)
