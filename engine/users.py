"""Users, teams, roles and API tokens (no Flask globals)."""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo
from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .cases import Actor
from .models import DbSession, Membership, Team, Token, User, utcnow

#: Tokens start with this, so a leaked one is recognisable (secret scanners).
TOKEN_PREFIX = "cl_"


def add_user(session: DbSession, name: str, *, roles: Iterable[str] = (),
             teams: Iterable[str] = (), password: str | None = None,
             display_name: str = "", locale: str = "zh", timezone: str | None = None
             ) -> User:
    """Create a user (and any team not yet known); the caller commits."""
    if session.execute(select(User.id).where(User.name == name)).first() is not None:
        raise ValueError(f"a user named '{name}' exists already")
    user = User(name=name, display_name=display_name or name, roles=sorted(set(roles)),
                locale=locale, active=True, timezone=timezone or None,
                password_hash=generate_password_hash(password) if password else None)
    session.add(user)
    session.flush()
    for team in ensure_teams(session, teams):
        session.add(Membership(user_id=user.id, team_id=team.id))
    return user


def ensure_teams(session: DbSession, names: Iterable[str]) -> list[Team]:
    wanted = sorted(set(names))
    if not wanted:
        return []
    found = {t.name: t for t in session.execute(select(Team).where(Team.name.in_(wanted)))
             .scalars()}
    for name in wanted:
        if name not in found:
            found[name] = Team(name=name)
            session.add(found[name])
    session.flush()
    return [found[n] for n in wanted]


def check_password(user: User, password: str) -> bool:
    return bool(user.password_hash) and check_password_hash(user.password_hash or "", password)


def issue_token(session: DbSession, user: User, label: str = "") -> str:
    """A new API token for ``user``. Only its hash is stored: show it once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(user_id=user.id, digest=_digest(token), label=label))
    return token


def revoke_tokens(session: DbSession, user: User) -> int:
    tokens = session.execute(select(Token).where(Token.user_id == user.id,
                                                 Token.revoked_at.is_(None))).scalars().all()
    for token in tokens:
        token.revoked_at = utcnow()
    return len(tokens)


#: Built once: this runs on every API request, and building the statement took
#: longer than running it.
_BY_TOKEN = (
    select(User.id, User.name, User.roles, User.locale, Team.id, Team.name)
    .join(Token, Token.user_id == User.id)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Team, Team.id == Membership.team_id)
    .where(Token.digest == bindparam("digest"), Token.revoked_at.is_(None),
           User.active.is_(True)))


def actor_for_token(session: DbSession, token: str, *, sees_all_roles: Iterable[str] = ()
                    ) -> Actor | None:
    """The actor holding a valid token, with their teams, in one query."""
    # On the connection: plain columns need none of the ORM's result handling (2.5x).
    rows = session.connection().execute(_BY_TOKEN, {"digest": _digest(token)}).all()
    if not rows:
        return None
    user_id, name, roles_list, locale = rows[0][:4]
    roles = frozenset(roles_list or ())
    return Actor(name=name, roles=roles, id=user_id, lang=locale or "zh",
                 teams=frozenset(r[4] for r in rows if r[4] is not None),
                 team_names=frozenset(r[5] for r in rows if r[5] is not None),
                 sees_all=bool(roles & set(sees_all_roles)))


def actor_for(session: DbSession, user: User, *, sees_all_roles: Iterable[str] = ()) -> Actor:
    teams = session.execute(select(Team.id, Team.name).join(
        Membership, Membership.team_id == Team.id).where(Membership.user_id == user.id)).all()
    roles = frozenset(user.roles or ())
    return Actor(name=user.name, roles=roles, id=user.id, lang=user.locale or "zh",
                 teams=frozenset(t.id for t in teams), team_names=frozenset(t.name for t in teams),
                 sees_all=bool(roles & set(sees_all_roles)))


def adopt(session: DbSession, actor: Actor, *, sees_all_roles: Iterable[str] = ()) -> Actor:
    """A host application's user as a Caseloop actor with a row of its own.

    Hosts authenticate people themselves (``user_loader``); Caseloop still needs
    an id for ``created_by``, assignment and history, and team ids for
    visibility. The row is made on first sight and its roles follow the host's.
    This runs in a session of its own: the host's pending work is neither
    committed nor rolled back here.
    """
    for attempt in range(2):
        with Session(bind=session.get_bind()) as own:
            try:
                user, teams = _adopt(own, actor)
                own.flush()
                user_id, team_ids = user.id, frozenset(t.id for t in teams)
                own.commit()
                break
            except IntegrityError:  # the same person's first two requests raced
                own.rollback()
                if attempt:
                    raise
    return Actor(name=actor.name, roles=actor.roles, id=user_id, lang=actor.lang,
                 teams=team_ids, team_names=actor.team_names,
                 sees_all=actor.sees_all or bool(actor.roles & set(sees_all_roles)))


def _adopt(session: Session, actor: Actor) -> tuple[User, list[Team]]:
    user = session.execute(select(User).where(User.name == actor.name)).scalar_one_or_none()
    if user is None:
        user = User(name=actor.name, display_name=actor.name, roles=sorted(actor.roles),
                    locale=actor.lang, active=True)
        session.add(user)
        session.flush()
    elif sorted(user.roles or ()) != sorted(actor.roles):
        user.roles = sorted(actor.roles)
    have = set(session.execute(select(Membership.team_id).where(
        Membership.user_id == user.id)).scalars())
    teams = ensure_teams(session, actor.team_names)
    for team in teams:
        if team.id not in have:
            session.add(Membership(user_id=user.id, team_id=team.id))
    return user, teams


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def known_zone(name: str) -> bool:
    """An IANA time zone this machine knows (tzdata ships them everywhere)."""
    if not name or len(name) > 64:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
