"""``GET /api/exports/cases.csv|.xlsx`` — the cases you may see, with the inbox's and
the case list's filters — and ``/api/exports/metrics.csv|.xlsx`` — the satisfaction
and operations metrics of the same query as ``/api/metrics/*``.

The query is checked and the rights are checked before anything is sent, so
mistakes are the API's JSON errors (422, 403). Then:

* CSV is streamed as it is read, a chunk of cases at a time: the first bytes
  leave at once and memory stays flat for a million cases.
* XLSX is a zip archive whose directory comes last, so no byte of it is usable
  before the whole is written: it is built in constant memory into a temporary
  file, then sent from that file (with its length) and the file removed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, current_app, request, stream_with_context
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from .. import exports
from ..extension import state
from ..metrics import operations, periods, satisfaction
from ..models import Team, User, utcnow
from . import ApiError, blueprint
from .metrics import request_filters as metrics_filters
from .routes import actor
from .schemas import load

CSV_TYPE = "text/csv"  # Flask adds '; charset=utf-8' to text types
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAME = validate.Length(1, 64)


class ExportQuery(Schema):
    """The filters of an export of cases (those of ``GET /api/cases`` and the inbox,
    and the metrics' dimensions)."""

    class Meta:
        unknown = RAISE

    workflow = fields.String(validate=NAME, metadata={
        "description": "one workflow; its form's fields follow as data.<field> columns"})
    state = fields.String(validate=NAME)
    open = fields.Boolean(metadata={"description": "only open (true) or closed (false)"})
    from_ = fields.Date(data_key="from", metadata={
        "description": "created on or after this day (ISO date, in 'tz')"})
    to = fields.Date(metadata={"description": "created on or before this day (inclusive)"})
    tz = fields.String(validate=validate.Length(1, 64), metadata={
        "description": "IANA time zone of 'from' and 'to' (default: yours)"})
    team = fields.String(validate=NAME, metadata={"description": "team name"})
    assignee = fields.String(validate=NAME, metadata={"description": "user name, or 'me'"})
    priority = fields.String(validate=validate.Length(1, 32))
    channel = fields.String(validate=NAME)
    category = fields.String(validate=NAME)
    segment = fields.String(validate=NAME)
    customer = fields.String(validate=validate.Length(1, 200))

    @validates_schema
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("'from' is after 'to'", "from")


EXPORT_QUERY = ExportQuery()


@blueprint.get("/exports/cases.csv")
def export_cases_csv() -> Response:
    return cases_file("csv", request.args.to_dict())


@blueprint.get("/exports/cases.xlsx")
def export_cases_xlsx() -> Response:
    return cases_file("xlsx", request.args.to_dict())


@blueprint.get("/exports/metrics.csv")
def export_metrics_csv() -> Response:
    return metrics_file("csv", request.args.to_dict())


@blueprint.get("/exports/metrics.xlsx")
def export_metrics_xlsx() -> Response:
    return metrics_file("xlsx", request.args.to_dict())


def cases_file(fmt: str, args: dict[str, str]) -> Response:
    """The cases the caller (``g.caseloop_actor``) may see, as a download; the pages
    offer it too."""
    header, rows, name = _cases(args)
    if fmt == "csv":
        return _csv(header, rows, f"{name}.csv")
    return _xlsx(header, rows, f"{name}.xlsx", sheet="cases")


def metrics_file(fmt: str, args: dict[str, str]) -> Response:
    rows, name = _metrics(args)
    if fmt == "csv":
        return _csv(exports.METRIC_COLUMNS, rows, f"{name}.csv")
    return _xlsx(exports.METRIC_COLUMNS, rows, f"{name}.xlsx", sheet="metrics")


def _cases(args: dict[str, str]) -> tuple[list[str], Iterable[list[Any]], str]:
    """Header, rows (lazy: read while sent) and file name, after every check."""
    q = load(EXPORT_QUERY, args)
    who, st = actor(), state()
    session = st.db.session
    zone = _zone(q.get("tz"))
    names: list[str] = []
    workflow = q.get("workflow")
    if workflow is not None:
        wf = st.registry.workflow(workflow)
        if wf is None:
            raise _invalid("workflow", f"no workflow '{workflow}' (GET /api/workflows lists "
                                       "them)")
        names = [f.name for f in wf.form.fields]
    team_id = assignee_id = None
    if "team" in q:
        team_id = session.execute(select(Team.id).where(Team.name == q["team"])).scalar()
        if team_id is None:
            raise _invalid("team", f"no team '{q['team']}'")
    if "assignee" in q:
        if q["assignee"] == "me":
            assignee_id = who.id if who.id is not None else -1  # nobody's: no rows
        else:
            assignee_id = session.execute(
                select(User.id).where(User.name == q["assignee"])).scalar()
            if assignee_id is None:
                raise _invalid("assignee", f"no user '{q['assignee']}'")
    low = periods.bounds(q["from_"], q["from_"], zone)[0] if "from_" in q else None
    high = periods.bounds(q["to"], q["to"], zone)[1] if "to" in q else None
    f = exports.CaseFilters(
        workflow=workflow, state=q.get("state"), open=q.get("open"), created_from=low,
        created_before=high, team_id=team_id, assignee_id=assignee_id,
        priority=q.get("priority"), channel=q.get("channel"), category=q.get("category"),
        segment=q.get("segment"), customer=q.get("customer"))
    rows = exports.case_rows(session, who, f, names)
    label = f"caseloop-cases-{workflow}" if workflow else "caseloop-cases"
    return exports.case_header(names), rows, f"{label}-{_today(zone).isoformat()}"


def _metrics(args: dict[str, str]) -> tuple[list[list[Any]], str]:
    f = metrics_filters(args)  # 403 outside CASELOOP_METRICS_ROLES, 422 for a bad query
    session = state().db.session
    try:
        rows = [*exports.metric_rows("satisfaction", satisfaction.satisfaction(session, f)),
                *exports.metric_rows("operations", operations.operations(
                    session, f, now=dt.datetime.now(dt.UTC)))]
    except periods.TooManyPeriods as exc:
        raise ApiError(422, "invalid", str(exc), {"group_by": [str(exc)]}) from None
    return rows, f"caseloop-metrics-{_today(f.zone).isoformat()}"


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    # stream_with_context: the generator reads the database after the view has
    # returned, so the request (and its session) must live until it is done.
    body = stream_with_context(exports.csv_chunks(header, rows))
    return Response(body, mimetype=CSV_TYPE, headers=_download(filename))


def _xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str, *,
          sheet: str) -> Response:
    # An unnamed temporary file: gone from the disk even if the process dies, and
    # closed (freed) by file_chunks when the response is sent or abandoned.
    out = tempfile.TemporaryFile(prefix="caseloop-export-")
    try:
        exports.write_xlsx(out, header, rows, sheet=sheet)
        size = os.fstat(out.fileno()).st_size
    except BaseException:
        out.close()
        raise
    headers = {**_download(filename), "Content-Length": str(size)}
    return Response(exports.file_chunks(out), mimetype=XLSX_TYPE, headers=headers)


def _download(filename: str) -> dict[str, str]:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    # Exports hold customers' personal data: no shared cache may keep a copy.
    return {"Content-Disposition": f'attachment; filename="{safe}"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _zone(asked: str | None) -> str:
    """The zone of the dates: the one asked for, else the user's, else the site's."""
    if asked is not None:
        try:
            ZoneInfo(asked)
        except (ZoneInfoNotFoundError, ValueError):
            raise _invalid("tz", f"unknown time zone '{asked}' (an IANA name such as "
                                 "Asia/Shanghai)") from None
        return asked
    who = actor()
    user = state().db.session.get(User, who.id) if who.id is not None else None
    zone: str = (user.timezone if user is not None and user.timezone else
                 current_app.config["CASELOOP_TIMEZONE"])
    return zone


def _today(zone: str) -> dt.date:
    return utcnow().astimezone(ZoneInfo(zone)).date()


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", "the export query is not valid", {field: [message]})
