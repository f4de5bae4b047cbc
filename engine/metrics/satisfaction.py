"""NPS, CSAT and CES from the answers table; revisit response and reach rates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Table, func, or_, select
from sqlalchemy import case as when

from .. import rollup, stats
from ..facts import ANSWERS
from ..models import DbSession, SurveyLink
from ..rollup import HOURS, OUTCOMES
from . import (
    CASES,
    Filters,
    dimension_filters,
    group_key,
    grouped,
    periods,
    shape,
    window,
)

PARENTS = CASES.alias("parent")
LINKS: Table = SurveyLink.__table__  # type: ignore[assignment]
#: The call outcome (facts.OUTCOME, copied to cases.outcome) that means "reached".
REACHED = "reached"


def satisfaction(session: DbSession, f: Filters) -> dict[str, Any]:
    """Per group: nps, csat (as the form declares it: mean or top-2-box), ces (mean
    and % agree), the survey response rate and the call reach rate."""
    stmt = _rolled(session, f) if _may_roll(f) else _answers(session, f)
    groups: dict[Any, dict[str, Any]] = defaultdict(dict)
    for row in session.execute(stmt):
        groups[row.key].update(_estimates(row, f.minimum))
    for k, rate in _responses(session, f).items():
        groups[k]["response_rate"] = rate
    for k, rate in _reach(session, f).items():
        groups[k]["reach_rate"] = rate
    return shape(session, f, groups, EMPTY_SATISFACTION)


def _answers(session: DbSession, f: Filters) -> Any:
    """The answers aggregate over the answers themselves (any filter or grouping)."""
    a = ANSWERS.c
    grouping = group_key(session, f, ANSWERS, a.answered_at)
    conds = dimension_filters(f, ANSWERS)
    if f.workflow:
        conds.append(or_(a.workflow == f.workflow, a.parent_workflow == f.workflow))
    return window(select(
        grouping.label("key"), a.metric, a.report, func.count().label("n"),
        func.sum(when((a.value >= 9, 1), else_=0)).label("nine_up"),
        func.sum(when((a.value <= 6, 1), else_=0)).label("six_down"),
        func.sum(a.value).label("total"), func.sum(a.value * a.value).label("total_sq"),
        func.sum(when((a.value >= a.high - 1, 1), else_=0)).label("top2"),
        func.sum(when((a.value >= 5, 1), else_=0)).label("agree"),
        func.min(a.low).label("low"), func.max(a.high).label("high"),
    ).where(*conds), a.answered_at, f).group_by(*grouped(grouping), a.metric, a.report)


def _rolled(session: DbSession, f: Filters) -> Any:
    """The same sums from the hourly rollup: a few thousand rows for a month."""
    h = HOURS.c
    grouping = group_key(session, f, HOURS, h.hour)
    conds = [or_(h.workflow == f.workflow, h.parent_workflow == f.workflow)] \
        if f.workflow else []
    return window(select(
        grouping.label("key"), h.metric, h.report,
        *(func.sum(h[name]).label(name) for name in rollup.SUMS),
        func.min(h.low).label("low"), func.max(h.high).label("high"),
    ).where(*conds), h.hour, f).group_by(*grouped(grouping), h.metric, h.report)


def _may_roll(f: Filters) -> bool:
    """The rollup serves a query without the answers' dimensions whose boundaries are
    all whole UTC hours (local midnights in almost every zone)."""
    if any(v is not None for v in (f.team_id, f.assignee_id, f.channel, f.category,
                                   f.segment)):
        return False
    if f.group_by not in (None, "workflow", *periods.UNITS):
        return False
    start, end = f.instants()
    edges: list[Any] = [start, end]
    if f.group_by in periods.UNITS and f.start is not None:
        edges += [at for _, at in periods.buckets(f.start, f.end, f.group_by, f.zone)]
    return rollup.usable(edges)


def _estimates(row: Any, minimum: int) -> dict[str, Any]:
    n = int(row.n)
    if row.metric == "nps":
        promoters, detractors = int(row.nine_up), int(row.six_down)
        return {"nps": stats.nps(promoters, n - promoters - detractors, detractors,
                                 minimum=minimum).as_json()}
    if row.metric == "ces":
        return {"ces": stats.mean(n, float(row.total), float(row.total_sq), minimum=minimum,
                                  bounds=(row.low, row.high)).as_json(),
                "ces_agree": stats.proportion(int(row.agree), n, minimum=minimum,
                                              label="agree").as_json()}
    if row.report == "mean":
        out = stats.mean(n, float(row.total), float(row.total_sq), minimum=minimum,
                         bounds=(row.low, row.high)).as_json()
    else:
        out = stats.proportion(int(row.top2), n, minimum=minimum, label="satisfied").as_json()
    return {"csat": {**out, "report": row.report or "top2box"}}


def _responses(session: DbSession, f: Filters) -> dict[Any, dict[str, Any]]:
    """Survey links answered / sent, by when they were sent."""
    link = LINKS.c
    key = group_key(session, f, CASES, link.created_at).label("key")
    conds = _case_filters(f)
    source: Any = LINKS
    # The cases (and their parents) only when a filter or the grouping needs them: a
    # join per link costs more than the count (every link has its case).
    if conds or (f.group_by is not None and f.group_by not in periods.UNITS):
        source = _with_parents(f, LINKS.join(CASES, CASES.c.id == link.case_id))
    stmt = window(select(key, func.count().label("sent"),
                         func.count(link.answered_at).label("answered"))
                  .select_from(source).where(*conds), link.created_at, f).group_by(key)
    return {row.key: stats.rate(int(row.answered), int(row.sent), minimum=f.minimum,
                                label="answered").as_json()
            for row in session.execute(stmt)}


def _reach(session: DbSession, f: Filters) -> dict[Any, dict[str, Any]]:
    """Calls by outcome code, and the share that reached the customer."""
    if _may_roll(f):  # the hourly counts: no case rows read
        o = OUTCOMES.c
        grouping = group_key(session, f, OUTCOMES, o.hour)
        conds = [or_(o.workflow == f.workflow, o.parent_workflow == f.workflow)] \
            if f.workflow else []
        stmt = window(select(grouping.label("key"), o.outcome.label("outcome"),
                             func.sum(o.n).label("n")).where(*conds), o.hour, f
                      ).group_by(*grouped(grouping), o.outcome)
    else:
        c = CASES.c
        outcome = c.outcome
        grouping = group_key(session, f, CASES, c.created_at)
        stmt = window(select(grouping.label("key"), outcome.label("outcome"),
                             func.count().label("n"))
                      .select_from(_with_parents(f, CASES))
                      .where(outcome.is_not(None), *_case_filters(f)), c.created_at, f
                      ).group_by(*grouped(grouping), outcome)
    counts: dict[Any, dict[str, int]] = defaultdict(dict)
    for row in session.execute(stmt):
        if int(row.n):  # an hour whose only call changed its outcome keeps a zero
            counts[row.key][str(row.outcome)] = int(row.n)
    out = {}
    for k, by in counts.items():
        total = sum(by.values())
        rate = stats.rate(by.get(REACHED, 0), total, minimum=f.minimum, label=REACHED)
        out[k] = {**rate.as_json(), "counts": {**by, "total": total}}
    return out


def _case_filters(f: Filters) -> list[Any]:
    """Filters on cases joined with their parents: a workflow's own cases and the
    revisits of its cases."""
    conds = dimension_filters(f, CASES)
    if f.workflow:
        conds.append(or_(CASES.c.workflow == f.workflow, PARENTS.c.workflow == f.workflow))
    return conds


def _with_parents(f: Filters, source: Any) -> Any:
    """Cases joined with their parents when a workflow filter needs them (a revisit
    counts for its complaint's workflow), else as they are: a lookup per case saved."""
    if not f.workflow:
        return source
    return source.outerjoin(PARENTS, PARENTS.c.id == CASES.c.parent_id)


EMPTY_SATISFACTION = ("nps", "csat", "ces", "ces_agree", "response_rate", "reach_rate")
