"""Operations metrics from the cases table: volume, first response and resolution
times (median, p90), SLA compliance, reopen and repeat rates, and the open backlog
by age."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import case as when
from sqlalchemy import func, select

from .. import stats
from ..facts import ACTION_ROWS
from ..models import Case, DbSession
from . import CASES, Filters, dimension_filters, group_key, shape, window

#: The improvement plan's fields: the measured result (filled once the effect was
#: checked) and the boolean saying the target was met.
RESULT_FIELD, TARGET_FIELD = "effectiveness_result", "target_met"
#: The open backlog's age buckets: upper bounds in days (the last is open-ended).
AGES = ((1, "<1d"), (3, "1-3d"), (7, "3-7d"), (30, "7-30d"))
METRICS = ("volume", "first_response", "resolution", "sla_compliance", "reopen_rate",
           "repeat_rate", "open")


def operations(session: DbSession, f: Filters, *, now: dt.datetime, extras: bool = True
               ) -> dict[str, Any]:
    """Per group: the operations figures; with ``extras`` also the open backlog by age
    and the improvement figures (they do not depend on the grouping)."""
    c = CASES.c
    key = group_key(session, f, CASES, c.created_at).label("key")
    conds = _filters(f)
    with_sla = c.sla_policy.is_not(None)
    resolved_once = (c.resolved_at.is_not(None)) | (c.reopened > 0)
    stmt = window(select(
        key, func.count().label("n"),
        func.sum(when((with_sla, 1), else_=0)).label("sla_n"),
        func.sum(when((with_sla & ~c.sla_breached, 1), else_=0)).label("sla_ok"),
        func.sum(when((resolved_once, 1), else_=0)).label("resolved_n"),
        func.sum(when((c.reopened > 0, 1), else_=0)).label("reopened_n"),
        func.sum(when((c.customer_ref.is_not(None), 1), else_=0)).label("known_n"),
        func.sum(when((c.repeat, 1), else_=0)).label("repeat_n"),
        func.sum(when((~c.closed, 1), else_=0)).label("open_n"),
    ).where(*conds), c.created_at, f).group_by(key)
    groups: dict[Any, dict[str, Any]] = defaultdict(dict)
    m = f.minimum
    for row in session.execute(stmt):
        groups[row.key].update({
            "volume": {"value": int(row.n), "n": int(row.n), "ci95": None,
                       "counts": {"cases": int(row.n), "open": int(row.open_n)},
                       "small_sample": int(row.n) < m},
            "sla_compliance": stats.rate(int(row.sla_ok), int(row.sla_n), minimum=m,
                                         label="met").as_json(),
            "reopen_rate": stats.rate(int(row.reopened_n), int(row.resolved_n), minimum=m,
                                      label="reopened").as_json(),
            "repeat_rate": stats.rate(int(row.repeat_n), int(row.known_n), minimum=m,
                                      label="repeat").as_json(),
        })
    for name, moment in (("first_response", c.first_response_at),
                         ("resolution", c.resolved_at)):
        for k, value in _percentiles(session, f, key, moment).items():
            groups[k][name] = value
    out = shape(session, f, groups, METRICS[:-1])
    if extras:
        out["backlog"] = backlog(session, f, now)
        out["improvement"] = improvement(session, f)
    return out


def _filters(f: Filters) -> list[Any]:
    conds = dimension_filters(f, CASES)
    if f.workflow:
        conds.append(CASES.c.workflow == f.workflow)
    return conds


def _seconds(session: DbSession, later: Any, earlier: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _percentiles(session: DbSession, f: Filters, key: Any, moment: Any
                 ) -> dict[Any, dict[str, Any]]:
    """Median and p90 of (moment - created) per group, by nearest rank: the rows at
    ranks ceil(n/2) and ceil(9n/10), picked by window functions in SQL."""
    c = CASES.c
    seconds = _seconds(session, moment, c.created_at).label("s")
    ranked = window(select(
        key, seconds,
        func.row_number().over(partition_by=key, order_by=seconds).label("rank"),
        func.count().over(partition_by=key).label("n"),
    ).where(moment.is_not(None), *_filters(f)), c.created_at, f).subquery()
    r = ranked.c
    median_rank, p90_rank = (r.n + 1) // 2, (r.n * 9 + 9) // 10
    stmt = select(r.key, r.s, r.rank, r.n, median_rank.label("mr"), p90_rank.label("pr")
                  ).where((r.rank == median_rank) | (r.rank == p90_rank))
    out: dict[Any, dict[str, Any]] = {}
    for row in session.execute(stmt):
        entry = out.setdefault(row.key, {"value": None, "n": int(row.n), "ci95": None,
                                         "counts": {}, "small_sample": int(row.n) < f.minimum,
                                         "unit": "hours", "p90": None})
        hours = round(float(row.s) / 3600, 2)
        if row.rank == int(row.mr):
            entry["value"] = hours  # the median
        if row.rank == int(row.pr):
            entry["p90"] = hours
    return out


def improvement(session: DbSession, f: Filters) -> dict[str, Any]:
    """Improvement actions due in the period done on time (by their due day), and
    plans started in the period whose effectiveness was checked: the share that met
    the target (a plan's boolean ``target_met`` field)."""
    r = ACTION_ROWS.c
    rows = select(func.count().label("n"), func.sum(when(
        (r.done_on.is_not(None) & (r.done_on <= r.due), 1), else_=0)).label("on_time")
    ).where(r.due <= f.end, r.status.is_distinct_from("cancelled"))
    if f.start is not None:
        rows = rows.where(r.due >= f.start)
    if f.workflow:
        rows = rows.where(r.workflow == f.workflow)
    actions = session.execute(rows).one()
    c = CASES.c
    met = Case.data[TARGET_FIELD].as_boolean()
    checked_ = Case.data[RESULT_FIELD].as_float().is_not(None)
    plans = window(select(func.count().label("n"), func.sum(when((met, 1), else_=0)
                                                             ).label("met"))
                   .where(checked_, *_filters(f)), c.created_at, f)
    checked = session.execute(plans).one()
    return {"actions_on_time": stats.rate(int(actions.on_time or 0), int(actions.n),
                                          minimum=f.minimum, label="on_time").as_json(),
            "plans_effective": stats.rate(int(checked.met or 0), int(checked.n),
                                          minimum=f.minimum, label="met").as_json()}


def backlog(session: DbSession, f: Filters, now: dt.datetime) -> dict[str, int]:
    """Open cases now by age (not limited to the period: what is waiting today)."""
    c = CASES.c
    whens = [(c.created_at > now - dt.timedelta(days=days), name) for days, name in AGES]
    age = when(*whens, else_=">30d").label("age")
    rows = session.execute(select(age, func.count()).where(~c.closed, *_filters(f))
                           .group_by(age)).all()
    found = {str(a): int(n) for a, n in rows}
    return {name: found.get(name, 0) for name in [*(n for _, n in AGES), ">30d"]}


