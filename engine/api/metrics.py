"""``GET /api/metrics/satisfaction`` and ``/operations``: the numbers of the dashboard,
each with its n and 95% interval. For roles in ``CASELOOP_METRICS_ROLES``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app, jsonify, request

from .. import metrics
from ..errors import Forbidden
from ..extension import state
from ..metrics import operations, periods, query, satisfaction
from ..models import User, utcnow
from . import ApiError, blueprint
from .routes import actor


def request_filters(args: Mapping[str, str] | None = None) -> metrics.Filters:
    """The metrics request of the caller: 403 outside CASELOOP_METRICS_ROLES, 422 for a
    bad query (the API and the exports share it)."""
    who = actor()
    if not who.roles & set(current_app.config["CASELOOP_METRICS_ROLES"]):
        raise Forbidden("only roles in CASELOOP_METRICS_ROLES may see metrics")
    session = state().db.session
    user = session.get(User, who.id) if who.id is not None else None
    zone = (user.timezone if user is not None and user.timezone else
            current_app.config["CASELOOP_TIMEZONE"])
    today = utcnow().astimezone(ZoneInfo(zone)).date()
    try:
        return query.filters(session, request.args if args is None else args, zone=zone,
                             today=today,
                             minimum=int(current_app.config["CASELOOP_METRICS_MINIMUM"]))
    except query.BadQuery as exc:
        raise ApiError(422, "invalid", "the metrics query is not valid", exc.fields) from None


def _answer(compute: Callable[[metrics.Filters], dict[str, Any]]) -> Response:
    f = request_filters()
    try:
        return jsonify(compute(f))
    except periods.TooManyPeriods as exc:
        raise ApiError(422, "invalid", str(exc), {"group_by": [str(exc)]}) from None


@blueprint.get("/metrics/satisfaction")
def metrics_satisfaction() -> Response:
    return _answer(lambda f: satisfaction.satisfaction(state().db.session, f))


@blueprint.get("/metrics/operations")
def metrics_operations() -> Response:
    now = dt.datetime.now(dt.UTC)
    return _answer(lambda f: operations.operations(state().db.session, f, now=now))
