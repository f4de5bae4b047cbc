"""Answers summed by UTC hour: what a period's satisfaction query reads when it needs
no dimension of the answers, instead of every answer of the period.

Kept in the unit of work with the answers (``facts.answers`` adds and subtracts
each changed answer), so a 30-day window is some 2,000 rows however many answers
came in. Periods are local days: they start on whole UTC hours in almost every zone,
and where they do not (India, Nepal, parts of Australia) the query reads the
answers instead (:func:`usable`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Integer, String, Table, delete, text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, DbSession, UTCDateTime

#: The sums an hour keeps, and how one answer contributes to each.
SUMS = ("n", "nine_up", "six_down", "total", "total_sq", "top2", "agree")


class AnswerHour(Base):
    """The answers of one UTC hour, one metric and one workflow pair, summed."""

    __tablename__ = "caseloop_answer_hours"

    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    metric: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: '' for none (a key column cannot be NULL).
    report: Mapped[str] = mapped_column(String(8), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_workflow: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    nine_up: Mapped[int] = mapped_column(Integer, default=0)
    six_down: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    total_sq: Mapped[int] = mapped_column(Integer, default=0)
    top2: Mapped[int] = mapped_column(Integer, default=0)
    agree: Mapped[int] = mapped_column(Integer, default=0)
    low: Mapped[int] = mapped_column(Integer)
    high: Mapped[int] = mapped_column(Integer)


class OutcomeHour(Base):
    """Revisit calls by outcome code, counted by the UTC hour their case was opened
    (the reach rate's period is the cases'), per workflow pair."""

    __tablename__ = "caseloop_outcome_hours"

    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_workflow: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


HOURS: Table = AnswerHour.__table__  # type: ignore[assignment]
OUTCOMES: Table = OutcomeHour.__table__  # type: ignore[assignment]
KEY = ("hour", "metric", "report", "workflow", "parent_workflow")


def contribution(answer: Mapping[str, Any], sign: int) -> dict[str, Any]:
    """One answer's part of its hour (``sign`` -1 to take it back out)."""
    value, high = int(answer["value"]), int(answer["high"])
    at: dt.datetime = answer["answered_at"]
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return {
        "hour": at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0),
        "metric": answer["metric"], "report": answer["report"] or "",
        "workflow": answer["workflow"], "parent_workflow": answer["parent_workflow"] or "",
        "low": int(answer["low"]), "high": high,
        "n": sign, "nine_up": sign * (value >= 9), "six_down": sign * (value <= 6),
        "total": sign * value, "total_sq": sign * value * value,
        "top2": sign * (value >= high - 1), "agree": sign * (value >= 5)}


def add(session: DbSession, parts: Iterable[dict[str, Any]], *, table: Table = HOURS,
        key: tuple[str, ...] = KEY, sums: tuple[str, ...] = SUMS) -> None:
    """Add the contributions to their hours (an upsert: the row may not exist yet)."""
    dialect = session.get_bind().dialect.name
    for part in parts:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        stmt = upsert(table).values(**part)
        session.execute(stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={name: table.c[name] + stmt.excluded[name] for name in sums}))


def outcome(session: DbSession, created_at: dt.datetime, workflow: str,
            parent_workflow: str | None, old: Any, new: Any) -> None:
    """A call's outcome code changed from ``old`` to ``new`` (either may be empty)."""
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    hour = created_at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    parts = [{"hour": hour, "workflow": workflow, "parent_workflow": parent_workflow or "",
              "outcome": str(code)[:32], "n": sign}
             for code, sign in ((old, -1), (new, 1)) if code not in (None, "")]
    add(session, parts, table=OUTCOMES, key=("hour", "workflow", "parent_workflow",
                                             "outcome"), sums=("n",))


def rebuild(session: DbSession) -> int:
    """The hours recomputed from the answers, in one statement (metrics rebuild, bulk
    loads)."""
    session.execute(delete(HOURS))
    if session.get_bind().dialect.name == "postgresql":
        hour = "date_trunc('hour', answered_at)"
    else:
        hour = "strftime('%Y-%m-%d %H:00:00.000000', answered_at)"
    result = session.execute(text(f"""
        INSERT INTO caseloop_answer_hours (hour, metric, report, workflow, parent_workflow,
            n, nine_up, six_down, total, total_sq, top2, agree, low, high)
        SELECT {hour}, metric, coalesce(report, ''), workflow, coalesce(parent_workflow, ''),
            count(*), sum(CASE WHEN value >= 9 THEN 1 ELSE 0 END),
            sum(CASE WHEN value <= 6 THEN 1 ELSE 0 END), sum(value), sum(value * value),
            sum(CASE WHEN value >= high - 1 THEN 1 ELSE 0 END),
            sum(CASE WHEN value >= 5 THEN 1 ELSE 0 END), min(low), max(high)
        FROM caseloop_answers
        GROUP BY {hour}, metric, coalesce(report, ''), workflow, coalesce(parent_workflow, '')
    """))
    session.execute(delete(OUTCOMES))
    case_hour = hour.replace("answered_at", "c.created_at")
    session.execute(text(f"""
        INSERT INTO caseloop_outcome_hours (hour, workflow, parent_workflow, outcome, n)
        SELECT {case_hour}, c.workflow, coalesce(p.workflow, ''), c.outcome, count(*)
        FROM caseloop_cases c LEFT JOIN caseloop_cases p ON p.id = c.parent_id
        WHERE c.outcome IS NOT NULL
        GROUP BY {case_hour}, c.workflow, coalesce(p.workflow, ''), c.outcome
    """))
    return int(getattr(result, "rowcount", 0) or 0)


def usable(instants: Iterable[dt.datetime | None]) -> bool:
    """Whether every boundary of a query falls on a whole UTC hour."""
    return all(i is None or (i.minute == 0 and i.second == 0 and i.microsecond == 0)
               for i in instants)
