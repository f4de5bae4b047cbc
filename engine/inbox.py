"""The frontline inbox: which open cases a person sees in each tab, with filters,
search, counts per tab and keyset pages. Free of Flask (the pages and the API
call it with an :class:`~caseloop.cases.Actor` and a session).

Tabs:

* ``mine`` — assigned to me; ``team`` — my teams' unassigned queue, to claim;
* ``overdue`` — past their earliest SLA deadline; ``due_soon`` — due within
  ``soon`` (both among the cases I may see), the most urgent first;
* ``recent`` — every case I may see, the latest activity first (closed ones too).

Each tab is one indexed query (see the ``caseloop_cases`` indexes); counts are
``COUNT(*)`` of the same queries, never rows counted in Python.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, extract, false, func, or_, select, tuple_

from .cases import Actor
from .models import Case, DbSession

TABS = ("mine", "team", "overdue", "due_soon", "recent")
#: Tabs ordered by deadline (the most urgent first); the others by latest activity.
BY_DEADLINE = frozenset({"overdue", "due_soon"})
_REFERENCE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)-(\d{4})-0*(\d{1,18})\s*$")
_DIGITS = re.compile(r"\d")


@dataclass(frozen=True)
class Filters:
    """Narrowing a tab: exact values, and ``q`` — a reference (CMP-2026-000123), a
    phone number (7 digits or more, any punctuation) or part of a customer's name."""

    workflow: str | None = None
    state: str | None = None
    priority: str | None = None
    channel: str | None = None
    customer: str | None = None
    q: str | None = None


@dataclass(frozen=True)
class Page:
    cases: Sequence[Case]
    #: The keyset of the last case when another page follows, for ``after=``.
    next: tuple[Any, int] | None = None
    counts: dict[str, int] = field(default_factory=dict)


def page(session: DbSession, actor: Actor, tab: str, filters: Filters, *,
         now: dt.datetime, soon: dt.timedelta = dt.timedelta(hours=24), limit: int = 50,
         after: tuple[Any, int] | None = None, with_counts: bool = True) -> Page:
    """One page of a tab, and (by default) how many cases each tab holds."""
    if tab not in TABS:
        raise ValueError(f"unknown tab '{tab}' (one of {', '.join(TABS)})")
    stmt = _narrow(select(Case).where(_tab(tab, actor, now, soon)), filters)
    if tab in BY_DEADLINE:
        keys: tuple[Any, Any] = (Case.due_at, Case.id)
        if after is not None:
            stmt = stmt.where(tuple_(*keys) > tuple_(*after))
        stmt = stmt.order_by(Case.due_at, Case.id)
    else:
        keys = (Case.updated_at, Case.id)
        if after is not None:
            stmt = stmt.where(tuple_(*keys) < tuple_(*after))
        stmt = stmt.order_by(Case.updated_at.desc(), Case.id.desc())
    rows = list(session.execute(stmt.limit(limit + 1)).scalars())
    last = rows[limit - 1] if len(rows) > limit else None
    following = None
    if last is not None:
        following = (last.due_at if tab in BY_DEADLINE else last.updated_at, last.id)
    counts = counts_of(session, actor, filters, now=now, soon=soon) if with_counts else {}
    return Page(rows[:limit], following, counts)


def counts_of(session: DbSession, actor: Actor, filters: Filters, *, now: dt.datetime,
              soon: dt.timedelta = dt.timedelta(hours=24)) -> dict[str, int]:
    """How many cases each tab holds under ``filters``."""
    return {tab: int(session.execute(_narrow(
        select(func.count()).select_from(Case).where(_tab(tab, actor, now, soon)), filters)
    ).scalar_one()) for tab in TABS}


def visible_sql(actor: Actor) -> ColumnElement[bool]:
    """The record-level rule of :func:`caseloop.cases.visible`, in SQL."""
    if actor.sees_all:
        return Case.id.is_not(None)
    mine = [Case.assignee_id == actor.id, Case.created_by == actor.id] if actor.id else []
    teams = [Case.team_id.in_(sorted(actor.teams))] if actor.teams else []
    return or_(*mine, *teams) if mine or teams else false()


def _tab(tab: str, actor: Actor, now: dt.datetime, soon: dt.timedelta) -> ColumnElement[bool]:
    open_ = Case.closed.is_(False)
    if tab == "mine":
        return (Case.assignee_id == actor.id) & open_ if actor.id else false()
    if tab == "team":
        if not actor.teams:
            return false()
        return Case.team_id.in_(sorted(actor.teams)) & Case.assignee_id.is_(None) & open_
    if tab == "overdue":
        return visible_sql(actor) & open_ & (Case.due_at < now)
    if tab == "due_soon":
        return visible_sql(actor) & open_ & (Case.due_at >= now) & (Case.due_at < now + soon)
    return visible_sql(actor)


def _narrow(stmt: Select[Any], f: Filters) -> Select[Any]:
    for column, value in ((Case.workflow, f.workflow), (Case.state, f.state),
                          (Case.priority, f.priority), (Case.customer_ref, f.customer)):
        if value:
            stmt = stmt.where(column == value)
    if f.channel:
        stmt = stmt.where(Case.data["channel"].as_string() == f.channel)
    if f.q and f.q.strip():
        stmt = stmt.where(_search(f.q))
    return stmt


def _search(q: str) -> ColumnElement[bool]:
    """A reference finds its case; 7+ digits a phone number (stored in E.164, so the
    digits as typed, without a leading 0, are a substring); anything else a name."""
    text = q.strip()
    found = _REFERENCE.match(text)
    if found:
        prefix, year, number = found.group(1).upper(), found.group(2), int(found.group(3))
        if number > 2**63 - 1:
            return false()
        return ((Case.id == number) & (Case.reference_prefix == prefix)
                & (extract("year", Case.created_at) == int(year)))
    digits = "".join(_DIGITS.findall(text))
    if len(digits) >= 7 and len(digits) >= len(text.replace(" ", "")) - 3:
        phone: ColumnElement[bool] = Case.data["phone"].as_string().contains(
            digits.lstrip("0"), autoescape=True)
        return phone
    name = Case.data["customer_name"].as_string()
    return func.lower(name).contains(text.lower(), autoescape=True)
