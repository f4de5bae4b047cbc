"""The dashboard (``/dashboard``): satisfaction and operations metrics of a period as
tiles (each with its n and 95% interval), trends, breakdowns, SLA and backlog, and
the improvement plans' states. For roles in ``CASELOOP_METRICS_ROLES``.

The filters are a GET form (the address can be shared) read by the API's parser
(:func:`caseloop.metrics.query.filters`); values it refuses show the form again with
what to fix, never a 500. The numbers come from :mod:`caseloop.metrics` — a fixed
number of aggregate queries per call — so the page costs the same number of
queries for ten cases as for a million. Charts are drawn by the vendored Chart.js
(``static/vendor/chart.umd.js``, 4.6.1, MIT) from ``<script type="application/json">``
blocks, and every chart has a table with the same numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, g, render_template, request
from sqlalchemy import func, select

from ..extension import state
from ..metrics import CASES, GROUPS, Filters, dimension_filters, periods, query, window
from ..metrics.operations import AGES, operations
from ..metrics.satisfaction import satisfaction
from ..models import DbSession, Team, User, utcnow
from ..spec.model import Workflow
from . import blueprint, current_user, error_page, i18n, login_required, t

#: The query string the form sends (and a shared link may hold); others are ignored.
ARGS = ("workflow", "from", "to", "all", "team", "agent", "channel", "category", "segment",
        "group_by")
DEFAULT_WORKFLOW, DEFAULT_UNIT, PLAN = "complaint", "week", "improvement_plan"
#: Always broken down by these; a group_by of another dimension adds its own.
BREAKDOWNS = ("category", "channel")
DIMENSIONS = tuple(g for g in GROUPS if g not in periods.UNITS)
#: The tiles: metric, and which call computes it.
TILES = (("nps", "sat"), ("csat", "sat"), ("ces", "sat"), ("response_rate", "sat"),
         ("sla_compliance", "ops"), ("reopen_rate", "ops"), ("first_response", "ops"),
         ("resolution", "ops"))
MINUS = "\u2212"  # a typographic minus: "−12", not the hyphen "-12"


def may_see_metrics(user: User | None) -> bool:
    return user is not None and bool(set(user.roles or ()) &
                                     set(current_app.config["CASELOOP_METRICS_ROLES"]))


@blueprint.context_processor
def _nav() -> dict[str, Any]:
    return {"may_see_metrics": may_see_metrics(current_user())}


@blueprint.get("/dashboard")
@login_required
def dashboard() -> tuple[str, int]:
    if not may_see_metrics(current_user()):
        return error_page(403, "dash_forbidden")
    session, workflows = state().db.session, _workflows()
    args = {k: v.strip() for k in ARGS if (v := request.args.get(k, "")).strip()}
    if "workflow" not in request.args and DEFAULT_WORKFLOW in workflows:
        args["workflow"] = DEFAULT_WORKFLOW  # absent: the complaints; empty: every workflow
    problems = {k: t("dash_bad_value") for k, v in args.items()
                if any(ord(c) < 32 for c in v)}  # NUL reaches no database
    zone = i18n.zone_name()
    f: Filters | None = None
    if not problems:
        try:
            f = query.filters(session, args, zone=zone,
                              today=utcnow().astimezone(ZoneInfo(zone)).date(),
                              minimum=int(current_app.config["CASELOOP_METRICS_MINIMUM"]))
        except query.BadQuery as exc:
            problems = {k: _problem(k, args) for k in exc.fields}
        except OverflowError:  # 'to=0001-01-02': thirty days before it is no date
            problems = {"from": t("dash_bad_range")}
    page: dict[str, Any] = {}
    if f is not None:
        try:
            page = _page(session, f, workflows)
        except periods.TooManyPeriods:
            problems = {"group_by": t("dash_too_many", limit=periods.MAX_BUCKETS)}
        except OverflowError:  # a first or last day at the ends of the calendar
            problems = {"from": t("dash_bad_range")}
    values = {k: args.get(k, "") for k in ARGS}
    if f is not None:
        values.update({"from": f.start.isoformat() if f.start else "",
                       "to": f.end.isoformat()})
    values["group_by"] = values["group_by"] or DEFAULT_UNIT
    html = render_template("caseloop/dashboard.html", values=values, problems=problems,
                           choices=_choices(session, workflows, values), zone=zone,
                           f=f if not problems else None, **page)
    return html, 400 if problems else 200


def _problem(name: str, args: Mapping[str, str]) -> str:
    """What to do about a value the parser refused, in the reader's language."""
    if name == "from" and _is_date(args.get("from")) and _is_date(args.get("to")):
        return t("dash_from_after_to")
    if name in ("from", "to"):
        return t(f"dash_bad_{name}")
    if name in ("team", "agent"):
        return t(f"dash_bad_{name}", value=args.get(name, ""))
    if name == "group_by":
        return t("dash_bad_group")
    return t("dash_bad_text") if name in args else t("dash_bad_value")


def _is_date(value: str | None) -> bool:
    try:
        dt.date.fromisoformat(value or "")
    except ValueError:
        return False
    return True


# -- the numbers ------------------------------------------------------------------------
def _page(session: DbSession, f: Filters, workflows: Mapping[str, Workflow]) -> dict[str, Any]:
    """Tiles and charts: eight metrics calls (whole period, trend, two breakdowns, each
    satisfaction and operations), two more for an extra breakdown, one plan count."""
    lang, now = g.caseloop_lang, dt.datetime.now(dt.UTC)
    unit = f.group_by if f.group_by in periods.UNITS else DEFAULT_UNIT
    by = dict.fromkeys(BREAKDOWNS)
    if f.group_by in DIMENSIONS and f.group_by not in by:
        by[f.group_by] = None
    whole = _calls(session, dataclasses.replace(f, group_by=None), now, extras=True)
    trend = _calls(session, dataclasses.replace(f, group_by=unit), now)
    dims = {d: _calls(session, dataclasses.replace(f, group_by=d), now) for d in by}
    totals = {"sat": whole[0]["groups"][0]["metrics"], "ops": whole[1]["groups"][0]["metrics"]}
    tiles = [_tile(name, totals[source][name], f.minimum) for name, source in TILES]
    labels = _trend_labels(f, unit, trend)
    per = t("dash_unit_" + unit)
    trends = [
        _chart(f"{m}-trend", "line", t("dash_by", metric=t("dash_" + m), by=per),
               t("dash_period_col"), labels, labels, trend[0]["groups"], m)
        for m in ("nps", "csat", "ces")
    ] + [_chart("volume-trend", "bar", t("dash_by", metric=t("dash_volume"), by=per),
                t("dash_period_col"), labels, labels, trend[1]["groups"], "volume")]
    breakdowns = []
    for d, (sat, ops) in dims.items():
        keys = sorted({gr["key"] for gr in [*sat["groups"], *ops["groups"]]},
                      key=lambda k: (k is None, str(k)))
        shown = [_dimension_label(d, k, workflows, lang) for k in keys]
        head = t("dash_dim_" + d).capitalize()
        breakdowns += [
            _chart(f"volume-{d}", "bar", t("dash_by", metric=t("dash_volume"),
                                          by=t("dash_dim_" + d)), head, keys, shown,
                   ops["groups"], "volume"),
            _chart(f"nps-{d}", "bar", t("dash_by", metric=t("dash_nps"),
                                       by=t("dash_dim_" + d)), head, keys, shown,
                   sat["groups"], "nps")]
    ages = [name for _, name in AGES] + [">30d"]
    backlog = whole[1]["backlog"]
    sla = [
        _counts("backlog", t("dash_backlog"), t("dash_age"), t("dash_open_cases"),
                [(t("dash_age_" + a), backlog[a]) for a in ages]),
        _chart("sla-trend", "line", t("dash_by", metric=t("dash_sla_compliance"), by=per),
               t("dash_period_col"), labels, labels, trend[1]["groups"], "sla_compliance"),
    ]
    plans = None
    if PLAN in workflows:
        plans = _counts("plans", t("dash_plans_caption"), t("state"), t("dash_plans_count"),
                        _plan_states(session, f, workflows[PLAN], lang))
    charts = [*trends, *breakdowns, *sla, *([plans] if plans else [])]
    return {"tiles": tiles, "trends": trends, "breakdowns": breakdowns, "sla": sla,
            "plans": plans, "charts": [c["spec"] for c in charts], "unit": unit}


def _calls(session: DbSession, f: Filters, now: dt.datetime, *, extras: bool = False
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    # The backlog and improvement figures do not depend on the grouping: once per page.
    return satisfaction(session, f), operations(session, f, now=now, extras=extras)


def _trend_labels(f: Filters, unit: str, trend: tuple[dict[str, Any], dict[str, Any]]
                  ) -> list[Any]:
    """Every period of the range, those without data too (a gap, not a missing week)."""
    if f.start is not None:
        return [lbl for lbl, _ in periods.buckets(f.start, f.end, unit, f.zone)]
    found = {gr["key"] for result in trend for gr in result["groups"]}
    return sorted(k for k in found if isinstance(k, str))


def _plan_states(session: DbSession, f: Filters, wf: Workflow, lang: str
                 ) -> list[tuple[str, int]]:
    """The plans opened in the period (and the filters' team, agent, dimensions) by
    state now, in the workflow's order: one GROUP BY."""
    c = CASES.c
    stmt = window(select(c.state, func.count()).where(
        c.workflow == PLAN, *dimension_filters(f, CASES)), c.created_at, f).group_by(c.state)
    found = {str(s): int(n) for s, n in session.execute(stmt).all()}
    out = [(s.label.get(lang) or s.name, found.pop(name, 0)) for name, s in wf.states.items()]
    return out + sorted(found.items())  # states the definition no longer has


# -- formatting -------------------------------------------------------------------------
def _kind(name: str, metric: Mapping[str, Any]) -> str:
    if name == "nps":
        return "score"
    if name == "ces" or (name == "csat" and metric.get("report") == "mean"):
        return "mean"
    if name in ("first_response", "resolution"):
        return "hours"
    return "count" if name == "volume" else "percent"


def _number(kind: str, value: float | None) -> str:
    if value is None:
        return "—"
    if kind == "mean":
        text = f"{value:.1f}"
    elif kind == "hours":
        text = (t("dash_hours", value=f"{value:.1f}") if value < 48
                else t("dash_days", value=f"{value / 24:.1f}"))
    else:
        text = str(round(value)) + ("%" if kind == "percent" else "")
    return text.replace("-", MINUS)


def _detail(name: str, metric: Mapping[str, Any]) -> str:
    """``n = 10, 95% CI −18 to 78`` (or the p90 of a time; or the n alone)."""
    kind, n = _kind(name, metric), int(metric.get("n") or 0)
    if kind == "hours" and metric.get("p90") is not None:
        return t("dash_n_p90", n=n, p90=_number(kind, metric["p90"]))
    ci = metric.get("ci95")
    if ci:
        return t("dash_n_ci", n=n, low=_number(kind, ci[0]), high=_number(kind, ci[1]))
    return t("dash_n", n=n)


def _tile(name: str, metric: Mapping[str, Any], minimum: int) -> dict[str, Any]:
    n = int(metric.get("n") or 0)
    kind = _kind(name, metric)
    note = ""
    if name == "csat" and n:
        note = t("dash_csat_mean") if kind == "mean" else t("dash_csat_top2box")
    return {"name": name, "label": t("dash_" + name), "note": note, "n": n,
            "value": _number(kind, metric.get("value")), "detail": _detail(name, metric),
            "small": bool(metric.get("small_sample")) and n > 0}


def _dimension_label(by: str, key: Any, workflows: Mapping[str, Workflow], lang: str) -> str:
    """A breakdown's key as the reader knows it: a choice's label, a workflow's title
    (teams and agents come named from the metrics)."""
    if key is None:
        return t("dash_none")
    if by == "workflow" and key in workflows:
        return workflows[key].title.get(lang)
    if by in ("channel", "category", "segment"):
        return dict(_field_choices(workflows.values(), by, lang)).get(str(key), str(key))
    return str(key)


def _chart(chart_id: str, kind: str, title: str, head: str, keys: list[Any],
           shown: list[str], groups: Iterable[Mapping[str, Any]], name: str) -> dict[str, Any]:
    """A chart of one metric over ``keys`` (periods or a dimension's values), its table
    rows, and the spec dashboard.js draws (values rounded, tooltips pre-formatted)."""
    found = {gr["key"]: gr["metrics"][name] for gr in groups}
    empty: dict[str, Any] = {"value": None, "n": 0, "ci95": None}
    metrics = [found.get(k, empty) for k in keys]
    kinds = [_kind(name, m) for m in metrics]
    values = [None if m["value"] is None else round(float(m["value"]), 1) for m in metrics]
    cells = [_number(k, m["value"]) for k, m in zip(kinds, metrics, strict=True)]
    if name == "volume":
        rows = [[lbl, cell] for lbl, cell in zip(shown, cells, strict=True)]
        columns, tips = [head, t("dash_volume")], cells
    else:
        details = [_detail(name, m) for m in metrics]
        rows = [[lbl, cell, str(m["n"]), _interval(k, m)]
                for lbl, cell, m, k in zip(shown, cells, metrics, kinds, strict=True)]
        columns = [head, t("dash_" + name), "n", t("dash_ci_col")]
        tips = [f"{cell} ({d})" for cell, d in zip(cells, details, strict=True)]
    scale = {"score": [-100, 100], "percent": [0, 100]}.get(_kind(name, {}))
    if name == "csat" and "mean" in kinds:
        scale = None
    spec = {"id": chart_id, "type": kind, "label": t("dash_" + name), "labels": shown,
            "values": values, "tips": tips, "scale": scale}
    return {"id": chart_id, "title": title, "columns": columns, "rows": rows,
            "has_data": any(int(m.get("n") or 0) for m in metrics), "spec": spec}


def _interval(kind: str, metric: Mapping[str, Any]) -> str:
    ci = metric.get("ci95")
    return f"{_number(kind, ci[0])} – {_number(kind, ci[1])}" if ci else "—"


def _counts(chart_id: str, title: str, head: str, column: str,
            items: list[tuple[str, int]]) -> dict[str, Any]:
    labels = [lbl for lbl, _ in items]
    values = [n for _, n in items]
    spec = {"id": chart_id, "type": "bar", "label": column, "labels": labels,
            "values": values, "tips": [str(n) for n in values], "scale": None}
    return {"id": chart_id, "title": title, "columns": [head, column],
            "rows": [[lbl, str(n)] for lbl, n in items], "has_data": any(values),
            "spec": spec}


# -- the form ---------------------------------------------------------------------------
def _workflows() -> dict[str, Workflow]:
    st = state()
    return dict(st.registry.current.workflows) if st.load_error is None else {}


def _field_choices(workflows: Iterable[Workflow], name: str, lang: str
                   ) -> list[tuple[str, str]]:
    """(value, label) of the choices of the fields called ``name``, once each."""
    out: dict[str, str] = {}
    for wf in workflows:
        found = wf.form.field(name)
        for c in found.choices if found is not None else ():
            out.setdefault(c.value, c.label.get(lang) or c.value)
    return list(out.items())


def _choices(session: DbSession, workflows: Mapping[str, Workflow],
             values: Mapping[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The selects' options (two queries: teams, people), each keeping the value in
    the address when it is none of them (a link from before a definition changed)."""
    lang = g.caseloop_lang
    ordered = sorted(workflows.values(), key=lambda wf: wf.title.get(lang))
    chosen = workflows.get(values["workflow"])
    shown = [chosen] if chosen is not None else ordered
    out = {
        "workflow": [(wf.name, wf.title.get(lang)) for wf in ordered],
        "team": [(n, n) for n in session.execute(select(Team.name).order_by(Team.name))
                 .scalars()],
        "agent": [(n, d or n) for n, d in session.execute(
            select(User.name, User.display_name).where(User.active).order_by(User.name))],
        **{d: _field_choices(shown, d, lang) for d in ("channel", "category", "segment")},
    }
    for name, options in out.items():
        value = values[name]
        if value and not any(v == value for v, _ in options):
            options.append((value, value))
    return out
