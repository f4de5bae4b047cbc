"""``caseloop users``: people, their roles, teams and API tokens."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..extension import State, state
from ..hints import suggest
from ..models import DbSession, Membership, Team, Token, User
from ..users import add_user, issue_token, known_zone, revoke_tokens
from .common import MIN_PASSWORD, ROLE_OR_TEAM, SYSTEM, USER_NAME, _count, _database, _session

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
@click.option("--timezone", default="", metavar="ZONE",
              help="IANA time zone the pages show times in (default: CASELOOP_TIMEZONE).")
@_database
def users_add(name: str, roles: tuple[str, ...], teams: tuple[str, ...], password: bool,
              display_name: str, locale: str, timezone: str) -> None:
    """Add the user NAME."""
    if timezone and not known_zone(timezone):
        raise click.BadParameter(f"unknown time zone '{timezone}' (an IANA name such as "
                                 "Asia/Shanghai or Europe/Berlin)", param_hint="--timezone")
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
                 display_name=display_name, locale=locale, timezone=timezone or None)
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
