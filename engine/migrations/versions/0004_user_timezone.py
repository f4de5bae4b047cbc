"""Each user's time zone for the pages.

Revision ID: 0004
Revises: 0003
Created: 2026-11-23

``caseloop_users.timezone``: the IANA zone the pages show a user times in;
empty (as for every user before this revision) means CASELOOP_TIMEZONE.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("caseloop_users") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("caseloop_users") as batch:
        batch.drop_column("timezone")
