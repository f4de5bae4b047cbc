"""The tables. Plain SQLAlchemy 2 declarative models on Caseloop's own metadata.

They are not ``db.Model`` subclasses so that a host application can hand
Caseloop its own Flask-SQLAlchemy ``db``: the session and engine are the
host's, the tables (all prefixed ``caseloop_``) are ours.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    insert,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, scoped_session
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON on every backend (JSONB would tie us to PostgreSQL).
Json = JSON(none_as_null=True)
#: Integer primary keys that autoincrement on SQLite and are 64-bit on PostgreSQL.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any
                             ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


#: A session, or Flask-SQLAlchemy's scoped session that proxies one.
DbSession = Session | scoped_session[Any]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class DefinitionVersion(Base):
    """Every content version of a form or workflow ever loaded; never changed."""

    __tablename__ = "caseloop_definitions"
    __table_args__ = (UniqueConstraint("kind", "name", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(500))
    #: Every file needed to rebuild this version (display path -> YAML text).
    bundle: Mapped[dict[str, str]] = mapped_column(Json)
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Draft(Base):
    """The designer's unpublished edit of one form or workflow: one per definition,
    shared by its designers (``revision`` stops one silently overwriting another)."""

    __tablename__ = "caseloop_drafts"
    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    #: The hash of the published text the draft started from ('' for a new definition):
    #: when the definition changes meanwhile (a file, another publish) the draft is stale.
    base: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Publication(Base):
    """A definition text published from the designer (the audit of who and when). The
    newest one of a definition is in effect over its file until the file changes to
    the same text (``caseloop export``); a file changed otherwise is a conflict."""

    __tablename__ = "caseloop_publications"
    __table_args__ = (UniqueConstraint("kind", "name", "sequence"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    #: 1, 2, … per definition: two designers publishing at once cannot both win.
    sequence: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    #: Hash of the definition's file when this was published ('' without a file).
    file_hash: Mapped[str] = mapped_column(String(64))
    #: When its text was found in its file (``caseloop export``): later edits of the
    #: file lead again.
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Hash of the text this replaced.
    base: Mapped[str] = mapped_column(String(64))
    #: The versions this publish made current ({"workflow:complaint": "ab12…", …}).
    versions: Mapped[dict[str, str]] = mapped_column(Json)
    #: The state map declared for open cases ({workflow: {old: new}}) and what moved.
    state_map: Mapped[dict[str, dict[str, str]]] = mapped_column(Json)
    migrated: Mapped[dict[str, Any]] = mapped_column(Json)
    note: Mapped[str] = mapped_column(Text, default="")
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Team(Base):
    __tablename__ = "caseloop_teams"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class User(Base):
    __tablename__ = "caseloop_users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300))
    roles: Mapped[list[str]] = mapped_column(Json, default=list)
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The IANA zone the pages show this user times in (empty: CASELOOP_TIMEZONE).
    #: Added in revision 0004.
    timezone: Mapped[str | None] = mapped_column(String(64))


class Membership(Base):
    __tablename__ = "caseloop_memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("caseloop_users.id", ondelete="CASCADE"),
                                         primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("caseloop_teams.id", ondelete="CASCADE"),
                                         primary_key=True)


class Token(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "caseloop_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("caseloop_users.id", ondelete="CASCADE"),
                                         index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Case(Base):
    __tablename__ = "caseloop_cases"
    __table_args__ = (
        # Inbox and queue pages: keyset pagination on (updated_at, id) per owner.
        Index("ix_caseloop_cases_assignee", "assignee_id", "closed", "updated_at", "id"),
        Index("ix_caseloop_cases_team", "team_id", "closed", "updated_at", "id"),
        Index("ix_caseloop_cases_workflow", "workflow", "state", "updated_at", "id"),
        Index("ix_caseloop_cases_updated", "updated_at", "id"),
        # Lists of overdue / due-soon open cases, and the SLA sweep's next moments.
        Index("ix_caseloop_cases_due", "closed", "due_at"),
        Index("ix_caseloop_cases_sla_next", "sla_next_at"),
        # Operations metrics: a period of one workflow's cases.
        Index("ix_caseloop_cases_created", "workflow", "created_at"),
        Index("ix_caseloop_cases_outcome", "outcome", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workflow: Mapped[str] = mapped_column(String(64))
    #: The definition version the case is pinned to (the workflow's content hash).
    definition_version: Mapped[str] = mapped_column(String(32))
    reference_prefix: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(64))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    customer_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    priority: Mapped[str | None] = mapped_column(String(32))
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("caseloop_users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("caseloop_teams.id",
                                                           ondelete="SET NULL"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("caseloop_cases.id", ondelete="SET NULL"), index=True)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("caseloop_users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Optimistic lock: every change bumps it; a stale writer gets a conflict.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Added in revision 0002 (after 'version', where the migration puts them).
    #: When the case entered its current state (timers set there check it).
    entered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: The SLA policy that applies, chosen at creation (none without an SLA).
    sla_policy: Mapped[str | None] = mapped_column(String(64))
    #: Per target: {"due_at", "met_at", "breached", "paused_s", "warned", "level"}.
    sla: Mapped[dict[str, Any]] = mapped_column(Json, default=dict, server_default="{}")
    #: The earliest deadline of the targets not yet met (lists sort and filter on it).
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: A target was missed.
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Since when the clock is paused (a state of a paused category), else empty.
    paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: The next SLA moment (a warning, a breach, an escalation) the worker acts on.
    sla_next_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # -- reporting (engine/facts.py keeps them; metrics aggregate them in SQL) ------
    #: The first transition or comment by a person.
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When it last entered a state of the 'done' category (cleared when reopened).
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: How often it left 'done' for an open state again.
    reopened: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The customer had a case of this workflow and category shortly before.
    repeat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Dimensions metrics are filtered and grouped by: the fields of these names
    #: (a revisit without them takes its parent's).
    channel: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(64))
    #: A revisit call's outcome code (the ``call_outcome`` field), for the reach rate.
    outcome: Mapped[str | None] = mapped_column(String(32))

    __mapper_args__ = {"version_id_col": version}

    @property
    def reference(self) -> str:
        return reference(self.reference_prefix, self.created_at, self.id)


def reference(prefix: str, created_at: dt.datetime, case_id: int) -> str:
    """``CMP-2026-000123``: prefix, year of creation, id (unique and parseable)."""
    return f"{prefix}-{created_at.year}-{case_id:06d}"


class Event(Base):
    """The append-only history of a case, written in the transaction it records."""

    __tablename__ = "caseloop_events"
    __table_args__ = (Index("ix_caseloop_events_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("caseloop_cases.id", ondelete="CASCADE"))
    #: created, transition, comment, assigned, migrated, action
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("caseloop_users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    trigger: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    #: {"changes": {field: [before, after]}, "comment": ..., ...}
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Job(Base):
    """A timer or an outbox message, written in the transaction that causes it and
    executed after commit by a worker that leases it."""

    __tablename__ = "caseloop_jobs"
    __table_args__ = (Index("ix_caseloop_jobs_due", "status", "run_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: timer, start, notify, crm, fire
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("caseloop_cases.id", ondelete="CASCADE"), index=True)
    run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    #: pending, running, done, dead, cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    leased_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When it ended (done, dead or cancelled).
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: What the handler reported (a note for people: "case left the state", a message id).
    result: Mapped[str | None] = mapped_column(Text)


class Notification(Base):
    """A message to a person, written by the worker from a ``notify`` job: the
    in-app inbox, and the mail log of an install without SMTP."""

    __tablename__ = "caseloop_notifications"
    __table_args__ = (Index("ix_caseloop_notifications_user", "user_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("caseloop_jobs.id",
                                                          ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("caseloop_cases.id", ondelete="CASCADE"), index=True)
    #: inbox, email, sms, webhook or a plugin's channel
    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("caseloop_users.id",
                                                           ondelete="CASCADE"))
    #: Email address, phone number or URL; empty for the inbox.
    address: Mapped[str] = mapped_column(String(320), default="")
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    #: sent, logged (no SMTP configured), failed
    status: Mapped[str] = mapped_column(String(16), default="sent")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class SurveyLink(Base):
    """A tokenised survey link sent to a customer: answers once, until it expires.
    Only the token's SHA-256 is stored (the link itself travels in the message)."""

    __tablename__ = "caseloop_survey_links"
    # The response rate: links sent in a period, and how many were answered.
    __table_args__ = (Index("ix_caseloop_survey_links_sent", "created_at", "answered_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("caseloop_cases.id", ondelete="CASCADE"),
                                         index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: The case's state when sent, and the transition an answer takes from it.
    state: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


def team_named(session: DbSession, name: str) -> Team | None:
    """The team an assignment names (on-enter actions, delayed starts, escalations)."""
    return session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()


def append(session: DbSession, model: type[Event] | type[Job], **values: Any) -> None:
    """Write one history event or job row now, as a plain INSERT in the session's
    transaction.

    Both tables are append-only and nothing reads the row back in the same unit
    of work, so the ORM's identity map and flush bookkeeping would only cost time
    (about half of a transition's Python work). Column defaults still apply; a
    rollback of the session removes the row like any other.
    """
    # On the session's connection, not session.execute: that would autoflush the
    # case first, and an on-enter 'set' would then cost a second UPDATE.
    session.connection().execute(_INSERTS[model], values)


_INSERTS = {model: insert(cast(Table, model.__table__)) for model in (Event, Job)}


class IdempotentRequest(Base):
    """Replays of ``POST /api/cases`` with the same ``Idempotency-Key``."""

    __tablename__ = "caseloop_idempotency"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("caseloop_users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("caseloop_cases.id",
                                                           ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Cursor(Base):
    """How far a reader of the event history got (plugin listeners: the last event
    id queued for them)."""

    __tablename__ = "caseloop_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


# The CRM tables live with the CRM code; importing them here puts them on the one
# metadata that migrations and create_all see.
from . import facts as _facts  # noqa: E402,F401
from . import rollup as _rollup  # noqa: E402,F401
from .crm import tables as _crm_tables  # noqa: E402,F401
