"""Satisfaction and operations metrics, computed in SQL for a period, filters and a
grouping; each value with its n and 95% interval (see :mod:`caseloop.stats`).

A fixed number of aggregate queries per call, whatever the data size: rows are
bucketed and grouped by the database, Python only turns the few resulting sums
into estimates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Select, Table, case, func, literal, select

from ..models import Case, DbSession, Team, User
from . import periods

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")
CASES: Table = Case.__table__  # type: ignore[assignment]
#: What metrics may be grouped by: a dimension, or a period in the caller's zone.
GROUPS = ("workflow", "team", "agent", "channel", "category", "segment", *periods.UNITS)


@dataclass(frozen=True)
class Filters:
    """A period (local dates, inclusive, in ``zone``) and the filters of a request."""

    end: dt.date
    zone: str
    start: dt.date | None = None  # None: all time
    workflow: str | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    channel: str | None = None
    category: str | None = None
    segment: str | None = None
    group_by: str | None = None
    #: Below this n an estimate is flagged small_sample.
    minimum: int = 30

    def instants(self) -> tuple[dt.datetime | None, dt.datetime]:
        return periods.bounds(self.start, self.end, self.zone)


def dimension_filters(f: Filters, table: Any) -> list[ColumnElement[bool]]:
    """The equality filters on a table holding the dimension columns."""
    out: list[ColumnElement[bool]] = []
    for name, value in (("team_id", f.team_id), ("assignee_id", f.assignee_id),
                        ("channel", f.channel), ("category", f.category),
                        ("segment", f.segment)):
        if value is not None:
            out.append(table.c[name] == value)
    return out


def group_key(session: DbSession, f: Filters, table: Any, moment: Any) -> ColumnElement[Any]:
    """The SQL expression rows are grouped by: a column, or the period a moment falls
    in (a CASE over the buckets' UTC starts; over all time the buckets start at the
    table's earliest row)."""
    by = f.group_by
    if by is None:
        return literal("all")
    if by in periods.UNITS:
        start_day = f.start
        if start_day is None:
            first = session.execute(select(func.min(moment))).scalar()  # moment's table
            if first is None:
                return literal("none")
            start_day = first.astimezone(_zone(f.zone)).date()
        found = periods.buckets(start_day, f.end, by, f.zone)
        if len(found) == 1:
            return literal(found[0][0])
        whens = [(moment < nxt, lbl) for (lbl, _), (_, nxt) in zip(found, found[1:],
                                                                      strict=False)]
        return case(*whens, else_=found[-1][0])
    column = {"team": "team_id", "agent": "assignee_id"}.get(by, by)
    return table.c[column]  # type: ignore[no-any-return]


def grouped(key: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """What to GROUP BY for a group key: nothing when the key is a constant (no
    grouping, or a period of one bucket). A bound constant in GROUP BY makes SQLite
    sort every row through a temporary B-tree (a quarter of a 30-day satisfaction
    query over 1M answers, bench/metrics.py)."""
    return [] if isinstance(key, BindParameter) else [key]


def names(session: DbSession, by: str | None, keys: set[Any]) -> dict[Any, str]:
    """Team and agent ids as names, in one query (labels for the groups)."""
    ids = [k for k in keys if isinstance(k, int)]
    if by == "team" and ids:
        return dict(session.execute(select(Team.id, Team.name).where(Team.id.in_(ids))).all())
    if by == "agent" and ids:
        return {i: (d or n) for i, n, d in session.execute(
            select(User.id, User.name, User.display_name).where(User.id.in_(ids))).all()}
    return {}


def label_of(key: Any, by: str | None, known: dict[Any, str]) -> Any:
    if by is None:
        return None
    if key is None:
        return None
    return known.get(key, key)


def order(by: str | None, keys: list[Any]) -> list[Any]:
    # Periods sort by their labels (ISO dates, 2026-W07, 2026-Q1); others too, empty last.
    return sorted(keys, key=lambda k: (k is None, str(k)))


def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def window(stmt: S, moment: Any, f: Filters) -> S:
    """``stmt`` limited to the period: ``moment`` from local midnight of the first day
    to local midnight after the last."""
    start, end = f.instants()
    stmt = stmt.where(moment < end)
    return stmt.where(moment >= start) if start is not None else stmt


def shape(session: DbSession, f: Filters, groups: dict[Any, dict[str, Any]],
          metrics: tuple[str, ...]) -> dict[str, Any]:
    """The answer: the request echoed, then one entry per group with every metric
    (an empty one as value null, n 0: a period without answers is not an error)."""
    if not groups and f.group_by is None:
        groups = {"all": {}}
    known = names(session, f.group_by, set(groups))
    empty: dict[str, Any] = {"value": None, "n": 0, "ci95": None, "counts": {},
                             "small_sample": True}
    out = []
    for k in order(f.group_by, list(groups)):
        found = groups[k]
        out.append({"key": label_of(k, f.group_by, known),
                    "metrics": {m: found.get(m, empty) for m in metrics}})
    return {"from": f.start.isoformat() if f.start else None, "to": f.end.isoformat(),
            "timezone": f.zone, "workflow": f.workflow, "group_by": f.group_by,
            "minimum": f.minimum, "groups": out}
