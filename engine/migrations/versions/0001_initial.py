"""The initial schema: definitions, users, teams, tokens, cases, events, jobs, idempotency.

Revision ID: 0001
Revises:
Created: 2026-11-23

Written out in full rather than imported from ``caseloop.models``: a revision is
a frozen record of the schema at that point, and must not change when the
models do. ``tests/test_migrations.py`` checks that head equals the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: 64-bit keys on PostgreSQL; on SQLite only INTEGER PRIMARY KEY autoincrements.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, nullable=False)


def _ref(name: str, *, nullable: bool) -> sa.Column[int]:
    return sa.Column(name, ID, nullable=nullable)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "caseloop_definitions",
        _id(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("bundle", sa.JSON(), nullable=False),
        _at("loaded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_definitions")),
        sa.UniqueConstraint("kind", "name", "version",
                            name=op.f("uq_caseloop_definitions_kind")),
    )
    op.create_table(
        "caseloop_teams",
        _id(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_caseloop_teams_name")),
    )
    op.create_table(
        "caseloop_users",
        _id(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_users")),
        sa.UniqueConstraint("name", name=op.f("uq_caseloop_users_name")),
    )
    op.create_table(
        "caseloop_memberships",
        _ref("user_id", nullable=False),
        _ref("team_id", nullable=False),
        _fk("caseloop_memberships", "user_id", "caseloop_users", "CASCADE"),
        _fk("caseloop_memberships", "team_id", "caseloop_teams", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "team_id", name=op.f("pk_caseloop_memberships")),
    )
    op.create_table(
        "caseloop_tokens",
        _id(),
        _ref("user_id", nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        _fk("caseloop_tokens", "user_id", "caseloop_users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_caseloop_tokens_digest")),
    )
    op.create_index(op.f("ix_caseloop_tokens_user_id"), "caseloop_tokens", ["user_id"])

    op.create_table(
        "caseloop_cases",
        _id(),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("definition_version", sa.String(32), nullable=False),
        sa.Column("reference_prefix", sa.String(10), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("customer_ref", sa.String(200), nullable=True),
        sa.Column("priority", sa.String(32), nullable=True),
        _ref("assignee_id", nullable=True),
        _ref("team_id", nullable=True),
        _ref("parent_id", nullable=True),
        _ref("created_by", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk("caseloop_cases", "assignee_id", "caseloop_users", "SET NULL"),
        _fk("caseloop_cases", "team_id", "caseloop_teams", "SET NULL"),
        _fk("caseloop_cases", "parent_id", "caseloop_cases", "SET NULL"),
        _fk("caseloop_cases", "created_by", "caseloop_users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_cases")),
    )
    # Inbox and queue pages: keyset pagination on (updated_at, id) per owner.
    op.create_index("ix_caseloop_cases_assignee", "caseloop_cases",
                    ["assignee_id", "closed", "updated_at", "id"])
    op.create_index("ix_caseloop_cases_team", "caseloop_cases",
                    ["team_id", "closed", "updated_at", "id"])
    op.create_index("ix_caseloop_cases_workflow", "caseloop_cases",
                    ["workflow", "state", "updated_at", "id"])
    op.create_index("ix_caseloop_cases_updated", "caseloop_cases", ["updated_at", "id"])
    op.create_index(op.f("ix_caseloop_cases_customer_ref"), "caseloop_cases", ["customer_ref"])
    op.create_index(op.f("ix_caseloop_cases_parent_id"), "caseloop_cases", ["parent_id"])

    op.create_table(
        "caseloop_events",
        _id(),
        _ref("case_id", nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _ref("actor_id", nullable=True),
        sa.Column("actor_name", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=True),
        sa.Column("from_state", sa.String(64), nullable=True),
        sa.Column("to_state", sa.String(64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        _at("at"),
        _fk("caseloop_events", "case_id", "caseloop_cases", "CASCADE"),
        _fk("caseloop_events", "actor_id", "caseloop_users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_events")),
    )
    op.create_index("ix_caseloop_events_case", "caseloop_events", ["case_id", "id"])

    op.create_table(
        "caseloop_jobs",
        _id(),
        sa.Column("kind", sa.String(32), nullable=False),
        _ref("case_id", nullable=True),
        _at("run_at"),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        _at("lease_until", nullable=True),
        sa.Column("leased_by", sa.String(100), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        _at("created_at"),
        _fk("caseloop_jobs", "case_id", "caseloop_cases", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_jobs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_caseloop_jobs_dedupe_key")),
    )
    op.create_index(op.f("ix_caseloop_jobs_case_id"), "caseloop_jobs", ["case_id"])
    op.create_index("ix_caseloop_jobs_due", "caseloop_jobs", ["status", "run_at"])

    op.create_table(
        "caseloop_idempotency",
        _id(),
        _ref("user_id", nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        _ref("case_id", nullable=True),
        _at("created_at"),
        _fk("caseloop_idempotency", "user_id", "caseloop_users", "CASCADE"),
        _fk("caseloop_idempotency", "case_id", "caseloop_cases", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_idempotency")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_caseloop_idempotency_user_id")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents for the foreign keys.
    for table in ("caseloop_idempotency", "caseloop_jobs", "caseloop_events", "caseloop_cases",
                  "caseloop_tokens", "caseloop_memberships", "caseloop_users",
                  "caseloop_teams", "caseloop_definitions"):
        op.drop_table(table)
