"""The designer: drafts of definitions and their publications.

Revision ID: 0007
Revises: 0006
Created: 2026-12-07

``caseloop_drafts`` holds one unpublished edit per form or workflow;
``caseloop_publications`` every text published from the browser, with who, when,
the versions it made current, the state map and what it migrated.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True)


def upgrade() -> None:
    op.create_table(
        "caseloop_drafts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("base", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_caseloop_drafts"),
        sa.UniqueConstraint("kind", "name", name="uq_caseloop_drafts_kind"),
    )
    op.create_table(
        "caseloop_publications",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("base", sa.String(64), nullable=False),
        sa.Column("versions", JSON, nullable=False),
        sa.Column("state_map", JSON, nullable=False),
        sa.Column("migrated", JSON, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_caseloop_publications"),
        sa.UniqueConstraint("kind", "name", "sequence", name="uq_caseloop_publications_kind"),
    )


def downgrade() -> None:
    op.drop_table("caseloop_publications")
    op.drop_table("caseloop_drafts")
