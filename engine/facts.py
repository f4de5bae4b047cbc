"""Reporting facts kept in the unit of work, so metrics are aggregates over indexed
columns and never a scan of case data in Python.

- On the case: the dimensions (``channel``, ``category``, ``segment`` — the fields of
  those names, or the parent's for a revisit without them), the first response by a
  person, the last resolution, how often it was reopened, whether it repeats an
  earlier case of the same customer and category.
- ``caseloop_answers``: one row per scored answer (a field of type ``nps`` or ``ces``,
  or one declaring ``metric: csat|nps|ces``), with the dimensions copied at answer
  time. A corrected answer replaces its row; an emptied one removes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from . import rollup
from .models import Base, Case, DbSession, Id, UTCDateTime
from .spec.model import Field, Workflow

DIMENSIONS = ("channel", "category", "segment")
#: What the hourly rollup needs of an answer.
ROLLED = ("workflow", "parent_workflow", "metric", "report", "value", "low", "high",
          "answered_at")
#: The field holding a call's outcome code (reach rate of revisits).
OUTCOME = "call_outcome"
#: A customer's new case of the same workflow and category within this many days of
#: an earlier one is a repeat.
REPEAT_DAYS = 30
SCALES = {"nps": (0, 10), "ces": (1, 7), "rating": (1, 5)}


class Answer(Base):
    """A scored answer, for satisfaction metrics."""

    __tablename__ = "caseloop_answers"
    __table_args__ = (
        UniqueConstraint("case_id", "field", name="uq_caseloop_answers_case_field"),
        # Covering a period's aggregate: a range of answered_at, every column it reads
        # in the index (no lookups into the table for a million answers).
        Index("ix_caseloop_answers_period", "answered_at", "metric", "report", "value", "low",
              "high", "workflow", "parent_workflow"),
        # The same columns metric first: SQLite reads them in GROUP BY order (skip-scan
        # over the few metrics) instead of sorting a period's rows; PostgreSQL, without
        # skip-scan, takes the one above.
        Index("ix_caseloop_answers_metric", "metric", "report", "answered_at", "value", "low",
              "high", "workflow", "parent_workflow"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("caseloop_cases.id", ondelete="CASCADE"))
    #: The answering case's workflow, and its parent's (a revisit of a complaint).
    workflow: Mapped[str] = mapped_column(String(64))
    parent_workflow: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    #: nps, csat or ces; how CSAT is reported (mean or top2box).
    metric: Mapped[str] = mapped_column(String(8))
    report: Mapped[str | None] = mapped_column(String(8))
    value: Mapped[int] = mapped_column(Integer)
    low: Mapped[int] = mapped_column(Integer)
    high: Mapped[int] = mapped_column(Integer)
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    team_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(64))


class ActionRow(Base):
    """A row of an action list (a group field with a ``due`` date and a ``status``
    choice offering ``done``): when it was done, for "completed on time"."""

    __tablename__ = "caseloop_action_rows"
    __table_args__ = (
        UniqueConstraint("case_id", "field", "row", name="uq_caseloop_action_rows_row"),
        Index("ix_caseloop_action_rows_due", "due"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("caseloop_cases.id", ondelete="CASCADE"))
    workflow: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    row: Mapped[int] = mapped_column(Integer)
    due: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str | None] = mapped_column(String(32))
    #: The day it was marked done, in the install's time zone (CASELOOP_TIMEZONE).
    done_on: Mapped[dt.date | None] = mapped_column(Date)


ANSWERS: Table = Answer.__table__  # type: ignore[assignment]
ACTION_ROWS: Table = ActionRow.__table__  # type: ignore[assignment]
CASES: Table = Case.__table__  # type: ignore[assignment]


def metric_of(f: Field) -> str | None:
    """Which metric a field feeds: by its type (nps, ces) or its ``metric`` key."""
    if f.metric:
        return f.metric
    return f.type if f.type in ("nps", "ces") else None


def dimensions(wf: Workflow, case: Case, parent: Case | None = None) -> None:
    """Copy the dimension fields to their columns (a child without them keeps its
    parent's, copied at creation), and a revisit call's outcome."""
    if wf.form.field(OUTCOME) is not None:
        value = (case.data or {}).get(OUTCOME)
        case.outcome = str(value)[:32] if value not in (None, "") else None
    for name in DIMENSIONS:
        if wf.form.field(name) is not None:
            value = (case.data or {}).get(name)
            setattr(case, name, str(value)[:64] if value not in (None, "") else None)
        elif parent is not None:
            setattr(case, name, getattr(parent, name))


def created(session: DbSession, wf: Workflow, case: Case, parent: Case | None,
            now: dt.datetime, zone: str = "UTC") -> None:
    """A new case (after its INSERT): repeat flag, its first answers and actions."""
    if case.customer_ref and case.category:
        earlier = session.execute(select(Case.id).where(
            Case.workflow == case.workflow, Case.customer_ref == case.customer_ref,
            Case.category == case.category, Case.id != case.id,
            Case.created_at >= now - dt.timedelta(days=REPEAT_DAYS)).limit(1)).first()
        case.repeat = earlier is not None
    changed(session, wf, case, {}, now, zone, parent)


def changed(session: DbSession, wf: Workflow, case: Case, before: Mapping[str, Any],
            now: dt.datetime, zone: str = "UTC", parent: Case | None = None) -> None:
    """The case's data changed (``before`` is what it was): answers and action rows."""
    answers(session, wf, case, before, now, parent)
    action_lists(session, wf, case, before, now.astimezone(ZoneInfo(zone)).date())
    old, new = before.get(OUTCOME), (case.data or {}).get(OUTCOME)
    if old != new and wf.form.field(OUTCOME) is not None:
        if parent is None and case.parent_id is not None:
            parent = session.get(Case, case.parent_id)
        rollup.outcome(session, case.created_at, case.workflow,
                       parent.workflow if parent is not None else None, old, new)


def moved(wf: Workflow, case: Case, source: str, now: dt.datetime, *, person: bool) -> None:
    """A transition: resolution and reopening by state category; the first response."""
    was_done = wf.states[source].category == "done" if source in wf.states else False
    is_done = wf.states[case.state].category == "done"
    if is_done and not was_done:
        case.resolved_at = now
    elif was_done and not is_done:
        case.reopened = (case.reopened or 0) + 1
        case.resolved_at = None
    if person:
        responded(case, now)


def responded(case: Case, now: dt.datetime) -> None:
    if case.first_response_at is None:
        case.first_response_at = now


def first_comment(session: DbSession, case: Case, now: dt.datetime) -> None:
    """A person's comment is a response too. A plain UPDATE, not the ORM: a comment
    must not bump the case's version (someone's open form would turn stale)."""
    session.execute(update(CASES).where(CASES.c.id == case.id,
                                        CASES.c.first_response_at.is_(None))
                    .values(first_response_at=now))


def answers(session: DbSession, wf: Workflow, case: Case, before: Mapping[str, Any],
            now: dt.datetime, parent: Case | None = None, *, only: str | None = None
            ) -> None:
    """Keep the answer rows of the case's scored fields in step with its data."""
    data = case.data or {}
    for f in wf.form.fields:
        metric = metric_of(f)
        if metric is None or data.get(f.name) == before.get(f.name) or (
                only is not None and f.name != only):
            continue
        gone = session.execute(delete(ANSWERS).where(
            ANSWERS.c.case_id == case.id, ANSWERS.c.field == f.name).returning(
            *(ANSWERS.c[k] for k in ROLLED))).mappings().all()
        rollup.add(session, (rollup.contribution(dict(old), -1) for old in gone))
        value = data.get(f.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        low, high = _scale(f)
        if parent is None and case.parent_id is not None:
            parent = session.get(Case, case.parent_id)
        row = {"workflow": case.workflow,
               "parent_workflow": parent.workflow if parent is not None else None,
               "metric": metric, "report": f.report if metric == "csat" else None,
               "value": int(value), "low": low, "high": high, "answered_at": now}
        session.execute(insert(ANSWERS).values(
            case_id=case.id, field=f.name, team_id=case.team_id,
            assignee_id=case.assignee_id, channel=case.channel, category=case.category,
            segment=case.segment, **row))
        rollup.add(session, [rollup.contribution(row, 1)])


def action_lists(session: DbSession, wf: Workflow, case: Case, before: Mapping[str, Any],
                 today: dt.date, *, only: str | None = None) -> None:
    """Keep the rows of action lists in step: a row turning ``done`` gets today as its
    done day, a row that stays done keeps it (rows are matched by position)."""
    data = case.data or {}
    for f in wf.form.fields:
        if not _is_action_list(f) or data.get(f.name) == before.get(f.name) or (
                only is not None and f.name != only):
            continue
        known = {r.row: r.done_on for r in session.execute(select(
            ACTION_ROWS.c.row, ACTION_ROWS.c.done_on).where(
            ACTION_ROWS.c.case_id == case.id, ACTION_ROWS.c.field == f.name))}
        session.execute(delete(ACTION_ROWS).where(ACTION_ROWS.c.case_id == case.id,
                                                  ACTION_ROWS.c.field == f.name))
        rows = [r for r in data.get(f.name) or [] if isinstance(r, dict)]
        if rows:
            session.execute(insert(ACTION_ROWS), [{
                "case_id": case.id, "workflow": case.workflow, "field": f.name, "row": i,
                "due": _date(r.get("due")), "status": r.get("status"),
                "done_on": (known.get(i) or today) if r.get("status") == "done" else None}
                for i, r in enumerate(rows)])


def _is_action_list(f: Field) -> bool:
    if f.type != "group":
        return False
    parts = {sub.name: sub for sub in f.fields}
    status = parts.get("status")
    return (parts.get("due") is not None and parts["due"].type == "date" and status is not None
            and any(c.value == "done" for c in status.choices))


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _scale(f: Field) -> tuple[int, int]:
    low, high = SCALES.get(f.type, (1, 5))
    if isinstance(f.min, (int, float)):
        low = int(f.min)
    if isinstance(f.max, (int, float)):
        high = int(f.max)
    return low, high


def rebuild(session: DbSession, wf: Workflow, case: Case, events: list[Any],
            parent: Case | None, zone: str = "UTC") -> None:
    """Recompute a case's facts from its data and history (``caseloop metrics
    rebuild``: cases from before the facts existed, or after a definition changed
    which fields are scores). ``events``: its history, oldest first."""
    dimensions(wf, case, parent)
    case.first_response_at = next(
        (e.at for e in events if e.kind in ("transition", "comment")
         and e.actor_name not in ("system", "public")), None)
    case.resolved_at, case.reopened = None, 0
    changed: dict[str, dt.datetime] = {}
    for e in events:
        if e.kind == "transition" and e.from_state and e.to_state:
            done = [wf.states[s].category == "done" if s in wf.states else False
                    for s in (e.from_state, e.to_state)]
            if done[1] and not done[0]:
                case.resolved_at = e.at
            elif done[0] and not done[1]:
                case.reopened, case.resolved_at = case.reopened + 1, None
        payload = e.payload or {}
        for name in payload.get("data" if e.kind == "created" else "changes") or {}:
            changed[name] = e.at  # when each field last changed: when it was answered
    # The hourly rollup is recomputed once at the end (rollup.rebuild), not per case.
    session.execute(delete(ANSWERS).where(ANSWERS.c.case_id == case.id))
    session.execute(delete(ACTION_ROWS).where(ACTION_ROWS.c.case_id == case.id))
    for f in wf.form.fields:
        at = changed.get(f.name, case.updated_at)
        if metric_of(f) is not None and f.name in (case.data or {}):
            answers(session, wf, case, {}, at, parent, only=f.name)
        elif _is_action_list(f):
            # History keeps the list's changes, not each row's: rows done count as done
            # on the day the list last changed (an approximation, said in the README).
            action_lists(session, wf, case, {}, at.astimezone(ZoneInfo(zone)).date(),
                         only=f.name)
