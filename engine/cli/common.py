"""What the commands share: database errors as one line, the schema check, counts."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError

from .. import migrations
from ..extension import State, state
from ..models import DbSession
from ..spec.schema import NAME


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


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
