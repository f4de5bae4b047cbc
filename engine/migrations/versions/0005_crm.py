"""CRM connections: shared tokens, case links and sync status, inbound events,
poll cursors, fetched profiles; the plugin event listeners' cursor.

Revision ID: 0005
Revises: 0004
Created: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True)

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "caseloop_crm_tokens",
        sa.Column("crm", sa.String(64), primary_key=True),
        sa.Column("access_token", sa.Text()),
        sa.Column("refresh_token", sa.Text()),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("refreshes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", name="pk_caseloop_crm_tokens"),
    )
    op.create_table(
        "caseloop_crm_links",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID, sa.ForeignKey(
            "caseloop_cases.id", ondelete="CASCADE",
            name="fk_caseloop_crm_links_case_id_caseloop_cases"), nullable=False),
        sa.Column("crm", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("url", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("synced_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_caseloop_crm_links"),
        sa.UniqueConstraint("case_id", "crm", "object_type", name="uq_caseloop_crm_links_case"),
    )
    op.create_index("ix_caseloop_crm_links_case_id", "caseloop_crm_links", ["case_id"])
    op.create_index("ix_caseloop_crm_links_external_id", "caseloop_crm_links", ["external_id"])
    op.create_table(
        "caseloop_crm_inbound",
        sa.Column("id", ID, primary_key=True),
        sa.Column("crm", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(300), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("external_ids", JSON, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("raw", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_caseloop_crm_inbound"),
        sa.UniqueConstraint("crm", "event_id", name="uq_caseloop_crm_inbound_event"),
    )
    op.create_table(
        "caseloop_crm_cursors",
        sa.Column("crm", sa.String(64), primary_key=True),
        sa.Column("cursor", sa.Text()),
        sa.Column("polled_at", sa.DateTime(timezone=True)),
        sa.Column("subscribed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("crm", name="pk_caseloop_crm_cursors"),
    )
    op.create_table(
        "caseloop_crm_profiles",
        sa.Column("crm", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(300)),
        sa.Column("segment", sa.String(100)),
        sa.Column("value_tier", sa.String(100)),
        sa.Column("lifecycle_stage", sa.String(100)),
        sa.Column("url", sa.Text()),
        sa.Column("data", JSON, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", "external_id", name="pk_caseloop_crm_profiles"),
    )


    op.create_table(
        "caseloop_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_caseloop_cursors"),
    )


def downgrade() -> None:
    op.drop_table("caseloop_cursors")
    for table in ("caseloop_crm_profiles", "caseloop_crm_cursors", "caseloop_crm_inbound",
                  "caseloop_crm_links", "caseloop_crm_tokens"):
        op.drop_table(table)
