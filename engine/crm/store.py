"""The token store: one token per connection in the database, shared by every
process, refreshed under a row lock.

Without it each gunicorn worker and job worker would mint its own token, and
Zoho blocks a refresh token after 10 access tokens in 10 minutes. Whoever
takes the lock first asks the CRM; the others find the fresh token when the
lock is theirs and use it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..models import utcnow
from .contract import Token
from .tables import CRMToken

TOKENS: Table = CRMToken.__table__  # type: ignore[assignment]


class DatabaseTokens:
    """The :class:`~caseloop.crm.Tokens` of one connection."""

    def __init__(self, engine: Engine, crm: str, *, clock: Callable[[], dt.datetime] = utcnow
                 ) -> None:
        self.engine = engine
        self.crm = crm
        self.clock = clock
        #: The connector, set once it exists (it mints the tokens).
        self.connector: Any = None
        self._cached: Token | None = None

    def get(self) -> Token:
        now = self.clock()
        if self._cached is not None and not self._cached.expired(now):
            return self._cached
        with self.engine.connect() as conn:
            row = conn.execute(select(TOKENS).where(TOKENS.c.crm == self.crm)).first()
        stored = _token(row)
        if stored is not None and not stored.expired(now):
            self._cached = stored
            return stored
        return self._refresh(stored, force=False)

    def refresh(self, stale: Token | None) -> Token:
        return self._refresh(stale, force=True)

    def _refresh(self, stale: Token | None, *, force: bool) -> Token:
        with self.engine.begin() as conn:
            current = _token(self._lock(conn))
            now = self.clock()
            if current is not None and not current.expired(now) and (
                    not force or current != stale):
                self._cached = current  # another process refreshed while we waited
                return current
            fresh: Token = self.connector.refresh_token(current)
            conn.execute(update(TOKENS).where(TOKENS.c.crm == self.crm).values(
                access_token=fresh.access_token, refresh_token=fresh.refresh_token,
                expires_at=fresh.expires_at, extra=dict(fresh.extra),
                refreshes=TOKENS.c.refreshes + 1, updated_at=now))
        self._cached = fresh
        return fresh

    def _lock(self, conn: Connection) -> Any:
        """The connection's row, locked until the transaction ends: FOR UPDATE on
        PostgreSQL; on SQLite a write takes the database's write lock."""
        try:
            with conn.begin_nested():
                conn.execute(insert(TOKENS).values(crm=self.crm, extra={}, refreshes=0,
                                                   updated_at=self.clock()))
        except IntegrityError:
            pass  # the row exists
        if conn.dialect.name == "sqlite":
            conn.execute(update(TOKENS).where(TOKENS.c.crm == self.crm)
                         .values(crm=TOKENS.c.crm))
            return conn.execute(select(TOKENS).where(TOKENS.c.crm == self.crm)).first()
        return conn.execute(select(TOKENS).where(TOKENS.c.crm == self.crm)
                            .with_for_update()).first()


def _token(row: Any) -> Token | None:
    if row is None or not row.access_token:
        return None
    return Token(row.access_token, row.refresh_token, row.expires_at, row.extra or {})
