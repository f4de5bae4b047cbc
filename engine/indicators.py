"""Indicators measured over cases in SQL: the effectiveness check of an improvement plan.

``measure`` (an on-enter action) counts the cases of a workflow created in a
window, or averages one of their numeric fields, among the cases whose fields
equal values taken from the measuring case, e.g. "complaints of this plan's
category in the 30 days since it was implemented". One aggregate query on the
indexed ``workflow`` and ``created_at`` columns; rows never reach Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from .expr import ExprError
from .models import Case, DbSession
from .spec.model import Measure


@dataclass(frozen=True)
class Figure:
    """The measured value (None when there was nothing to average) and how."""

    value: float | None
    n: int
    since: dt.datetime
    until: dt.datetime
    measure: Measure
    where: Mapping[str, Any] = field(default_factory=dict)

    def describe(self, lang: str = "en") -> str:
        """The figures in words, for the case's history and its report field."""
        m = self.measure
        filters = ", ".join(f"{k} = {v}" for k, v in self.where.items())
        since, until = self.since.date().isoformat(), self.until.date().isoformat()
        shown = "-" if self.value is None else f"{self.value:g}"
        if lang == "zh":
            what = (f"{m.workflow} 案件数" if m.aggregate == "count"
                    else f"{m.workflow} 的 {m.field_name} 平均值（{self.n} 个案件）")
            return f"{since} 至 {until}，{what}" + (f"（{filters}）" if filters else "") + \
                f"：{shown}"
        what = (f"{m.workflow} cases" if m.aggregate == "count"
                else f"mean {m.field_name} of {self.n} {m.workflow} cases")
        return f"{since} to {until}: {what}" + (f" where {filters}" if filters else "") + \
            f": {shown}"


class NotMeasurable(Exception):
    """A filter has no value on the measuring case (e.g. the plan has no category)."""


def measure(session: DbSession, m: Measure, scope: Mapping[str, Any],
            now: dt.datetime) -> Figure:
    since = now - m.window
    where: dict[str, Any] = {}
    clauses = [Case.workflow == m.workflow, Case.created_at >= since, Case.created_at < now]
    for name, expr in m.where.items():
        try:
            value = expr.evaluate(scope)
        except ExprError:
            value = None
        if value is None or value == "":
            raise NotMeasurable(f"'{name}' has no value to compare with")
        where[name] = value
        column = Case.data[name]
        if isinstance(value, bool):
            clauses.append(column.as_boolean() == value)
        elif isinstance(value, int | float):
            clauses.append(column.as_float() == float(value))
        else:
            clauses.append(column.as_string() == str(value))
    if m.aggregate == "count":
        n = session.execute(select(func.count()).select_from(Case).where(*clauses)).scalar_one()
        return Figure(float(n), int(n), since, now, m, where)
    assert m.field_name is not None
    number = Case.data[m.field_name].as_float()
    mean, n = session.execute(select(func.avg(number), func.count(number))
                              .where(*clauses)).one()
    value = None if mean is None else round(float(mean), 4)
    return Figure(value, int(n), since, now, m, where)
