"""Reporting facts: dimensions and timings on cases, scored answers.

Revision ID: 0006
Revises: 0005
Created: 2026-11-23

Cases get ``channel``, ``category``, ``segment`` (copied from the fields of those
names), ``first_response_at``, ``resolved_at``, ``reopened`` and ``repeat``;
``caseloop_answers`` holds one row per scored answer (``caseloop_answer_hours`` their
sums per UTC hour), ``caseloop_action_rows`` one per
row of an action list (due date, status, the day it was done). Existing cases get their
dimensions and first response here; ``caseloop metrics rebuild`` fills the rest
(it needs the definitions: which states are 'done', which fields are scores).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DIMENSIONS = ("channel", "category", "segment")


def upgrade() -> None:
    with op.batch_alter_table("caseloop_cases") as batch:
        batch.add_column(sa.Column("first_response_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("reopened", sa.Integer(), server_default="0",
                                   nullable=False))
        batch.add_column(sa.Column("repeat", sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
        for name in DIMENSIONS:
            batch.add_column(sa.Column(name, sa.String(64)))
        batch.add_column(sa.Column("outcome", sa.String(32)))
        batch.create_index("ix_caseloop_cases_created", ["workflow", "created_at"])
        batch.create_index("ix_caseloop_cases_outcome", ["outcome", "created_at"])
    op.create_index("ix_caseloop_survey_links_sent", "caseloop_survey_links",
                    ["created_at", "answered_at"])
    op.create_table(
        "caseloop_answers",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("parent_workflow", sa.String(64)),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(8), nullable=False),
        sa.Column("report", sa.String(8)),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("low", sa.Integer(), nullable=False),
        sa.Column("high", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_id", sa.Integer()),
        sa.Column("assignee_id", sa.Integer()),
        *(sa.Column(name, sa.String(64)) for name in DIMENSIONS),
        sa.ForeignKeyConstraint(["case_id"], ["caseloop_cases.id"], ondelete="CASCADE",
                                name=op.f("fk_caseloop_answers_case_id_caseloop_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_answers")),
        sa.UniqueConstraint("case_id", "field", name="uq_caseloop_answers_case_field"),
    )
    op.create_index("ix_caseloop_answers_period", "caseloop_answers",
                    ["answered_at", "metric", "report", "value", "low", "high", "workflow",
                     "parent_workflow"])
    op.create_index("ix_caseloop_answers_metric", "caseloop_answers",
                    ["metric", "report", "answered_at", "value", "low", "high", "workflow",
                     "parent_workflow"])
    op.create_table(
        "caseloop_answer_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(8), nullable=False),
        sa.Column("report", sa.String(8), nullable=False),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("parent_workflow", sa.String(64), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            "n", "nine_up", "six_down", "total", "total_sq", "top2", "agree", "low", "high")),
        sa.PrimaryKeyConstraint("hour", "metric", "report", "workflow", "parent_workflow",
                                name=op.f("pk_caseloop_answer_hours")),
    )
    op.create_table(
        "caseloop_outcome_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("parent_workflow", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "workflow", "parent_workflow", "outcome",
                                name=op.f("pk_caseloop_outcome_hours")),
    )
    op.create_table(
        "caseloop_action_rows",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("due", sa.Date()),
        sa.Column("status", sa.String(32)),
        sa.Column("done_on", sa.Date()),
        sa.ForeignKeyConstraint(["case_id"], ["caseloop_cases.id"], ondelete="CASCADE",
                                name=op.f("fk_caseloop_action_rows_case_id_caseloop_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caseloop_action_rows")),
        sa.UniqueConstraint("case_id", "field", "row", name="uq_caseloop_action_rows_row"),
    )
    op.create_index("ix_caseloop_action_rows_due", "caseloop_action_rows", ["due"])
    _backfill()


def _backfill() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, source, size in (*((d, d, 64) for d in DIMENSIONS),
                               ("outcome", "call_outcome", 32)):
        pick = (f"json_extract(data, '$.{source}')" if sqlite else f"data->>'{source}'")
        op.execute(f"UPDATE caseloop_cases SET {name} = substr({pick}, 1, {size}) "
                   f"WHERE {pick} IS NOT NULL")
    op.execute("UPDATE caseloop_cases SET first_response_at = (SELECT min(e.at) FROM "
               "caseloop_events e WHERE e.case_id = caseloop_cases.id AND e.kind IN "
               "('transition', 'comment') AND e.actor_name NOT IN ('system', 'public'))")


def downgrade() -> None:
    op.drop_table("caseloop_outcome_hours")
    op.drop_table("caseloop_answer_hours")
    op.drop_index("ix_caseloop_action_rows_due", table_name="caseloop_action_rows")
    op.drop_table("caseloop_action_rows")
    op.drop_index("ix_caseloop_answers_metric", table_name="caseloop_answers")
    op.drop_index("ix_caseloop_answers_period", table_name="caseloop_answers")
    op.drop_index("ix_caseloop_survey_links_sent", table_name="caseloop_survey_links")
    op.drop_table("caseloop_answers")
    with op.batch_alter_table("caseloop_cases") as batch:
        batch.drop_index("ix_caseloop_cases_outcome")
        batch.drop_index("ix_caseloop_cases_created")
        for name in (*DIMENSIONS, "outcome", "repeat", "reopened", "resolved_at",
                     "first_response_at"):
            batch.drop_column(name)
