"""Tokenised survey links for revisits.

Revision ID: 0003
Revises: 0002
Created: 2026-11-23

``caseloop_survey_links`` holds one row per link sent to a customer: the
SHA-256 of its token, the case and the transition an answer takes, when it
expires and when it was answered (a link answers once).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "caseloop_survey_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["caseloop_cases.id"], ondelete="CASCADE",
                                name=op.f("fk_caseloop_survey_links_case_id_caseloop_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_survey_links")),
        sa.UniqueConstraint("digest", name=op.f("uq_caseloop_survey_links_digest")),
    )
    op.create_index(op.f("ix_caseloop_survey_links_case_id"), "caseloop_survey_links",
                    ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_caseloop_survey_links_case_id"), table_name="caseloop_survey_links")
    op.drop_table("caseloop_survey_links")
