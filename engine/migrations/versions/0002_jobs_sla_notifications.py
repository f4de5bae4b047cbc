"""The worker's bookkeeping, SLA clocks on cases, and notifications.

Revision ID: 0002
Revises: 0001
Created: 2026-11-23

Jobs get ``finished_at`` and ``result``; cases get when they entered their state
and their SLA (policy, per-target detail, earliest deadline, breach flag, pause,
next moment for the worker); ``caseloop_notifications`` holds the in-app inbox
and the mail log. The new NOT NULL columns of existing tables carry a server
default so that rows written before this revision stay valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "caseloop_notifications",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("case_id", ID, nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _at("created_at", nullable=False),
        _at("read_at"),
        sa.ForeignKeyConstraint(["case_id"], ["caseloop_cases.id"], ondelete="CASCADE",
                                name=op.f("fk_caseloop_notifications_case_id_caseloop_cases")),
        sa.ForeignKeyConstraint(["job_id"], ["caseloop_jobs.id"], ondelete="SET NULL",
                                name=op.f("fk_caseloop_notifications_job_id_caseloop_jobs")),
        sa.ForeignKeyConstraint(["user_id"], ["caseloop_users.id"], ondelete="CASCADE",
                                name=op.f("fk_caseloop_notifications_user_id_caseloop_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_notifications")),
    )
    op.create_index(op.f("ix_caseloop_notifications_case_id"), "caseloop_notifications",
                    ["case_id"])
    op.create_index("ix_caseloop_notifications_user", "caseloop_notifications",
                    ["user_id", "id"])

    with op.batch_alter_table("caseloop_cases") as batch:
        batch.add_column(_at("entered_at"))
        batch.add_column(sa.Column("sla_policy", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sla", sa.JSON(none_as_null=True), nullable=False,
                                   server_default="{}"))
        batch.add_column(_at("due_at"))
        batch.add_column(sa.Column("sla_breached", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(_at("paused_at"))
        batch.add_column(_at("sla_next_at"))
        batch.create_index("ix_caseloop_cases_due", ["closed", "due_at"])
        batch.create_index("ix_caseloop_cases_sla_next", ["sla_next_at"])

    with op.batch_alter_table("caseloop_jobs") as batch:
        batch.add_column(_at("finished_at"))
        batch.add_column(sa.Column("result", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("caseloop_jobs") as batch:
        batch.drop_column("result")
        batch.drop_column("finished_at")
    with op.batch_alter_table("caseloop_cases") as batch:
        batch.drop_index("ix_caseloop_cases_sla_next")
        batch.drop_index("ix_caseloop_cases_due")
        for column in ("sla_next_at", "paused_at", "sla_breached", "due_at", "sla",
                       "sla_policy", "entered_at"):
            batch.drop_column(column)
    op.drop_index("ix_caseloop_notifications_user", "caseloop_notifications")
    op.drop_index(op.f("ix_caseloop_notifications_case_id"), "caseloop_notifications")
    op.drop_table("caseloop_notifications")
