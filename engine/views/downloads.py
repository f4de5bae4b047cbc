"""Downloads from the dashboard: the metrics of the view and the cases behind it as
CSV or XLSX, for the person logged in (the same files as ``/api/exports/*``, whose
writers do the work; the pages authenticate by session, the API by token)."""

from __future__ import annotations

from typing import Any

from flask import g, request
from werkzeug.wrappers import Response

from ..api import ApiError
from ..api.exports import cases_file, metrics_file
from ..errors import CaseError
from . import blueprint, current_user, error_page, login_required
from .cases import actor
from .dashboard import ARGS, may_see_metrics

#: The dashboard's filters the case export understands (the rest are about grouping).
CASE_ARGS = {"workflow": "workflow", "from": "from", "to": "to", "team": "team",
             "agent": "assignee", "channel": "channel", "category": "category",
             "segment": "segment"}


@blueprint.get("/dashboard/metrics.<any(csv, xlsx):fmt>")
@login_required
def dashboard_metrics_file(fmt: str) -> Response | tuple[str, int]:
    return _file(fmt, metrics_file, {k: v for k in ARGS if (v := request.args.get(k, ""))})


@blueprint.get("/dashboard/cases.<any(csv, xlsx):fmt>")
@login_required
def dashboard_cases_file(fmt: str) -> Response | tuple[str, int]:
    return _file(fmt, cases_file, {ours: v for theirs, ours in CASE_ARGS.items()
                                   if (v := request.args.get(theirs, ""))})


def _file(fmt: str, make: Any, args: dict[str, str]) -> Response | tuple[str, int]:
    if not may_see_metrics(current_user()):
        return error_page(403, "dash_forbidden")
    g.caseloop_actor = actor()  # what the writers' visibility rules read
    try:
        response: Response = make(fmt, args)
        return response
    except (ApiError, CaseError):
        return error_page(400, "dash_bad_download")
