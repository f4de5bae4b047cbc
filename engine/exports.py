"""Exports of cases and metrics as CSV and XLSX: the rows, and the writers that turn
rows into bytes. No Flask here (the API streams what these produce).

* Cases are read in keyset chunks of :data:`CHUNK` ordered by id, as plain columns
  (no ORM objects piling up in the session), so memory stays flat however many
  cases there are; who may see which case is decided in SQL, by the inbox's rule.
* Every text cell is written so that a spreadsheet never runs it: CSV cells that
  start like a formula get a leading apostrophe, XLSX cells are typed strings.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import xlsxwriter
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import aliased

from .cases import Actor
from .inbox import visible_sql as visible  # the one SQL form of cases.visible()
from .models import Case, DbSession, Team, User, reference

#: Cases read per query. Small enough that a chunk's rows are a few MB at most,
#: large enough that a million cases are a thousand indexed queries.
CHUNK = 1000
#: The case columns of an export, before the workflow's fields.
CASE_COLUMNS = ("reference", "workflow", "state", "created_at", "updated_at", "closed",
                "assignee", "team", "priority", "channel", "category", "segment", "due_at",
                "sla_breached", "first_response_at", "resolved_at", "reopened")
#: Form fields are named ``data.<field>``: the form has fields called channel and
#: category too (the case columns are the reporting dimensions, which a revisit
#: inherits from its complaint; the data columns are what the form holds).
DATA_PREFIX = "data."
METRIC_COLUMNS = ("report", "from", "to", "timezone", "workflow", "group_by", "group",
                  "metric", "value", "n", "ci95_low", "ci95_high", "small_sample", "counts",
                  "details")
#: What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: The most rows an XLSX sheet holds (Excel's limit); more continue on a new sheet.
XLSX_ROWS = 1_048_576
#: Integers beyond this lose digits as spreadsheet numbers (IEEE doubles): text instead.
EXACT_INT = 2**53
#: Bytes of CSV gathered before a piece is handed to the server.
CSV_PIECE = 64 * 1024


# -- cases ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseFilters:
    """Narrowing an export; ``created_from``/``created_before``: UTC instants."""

    workflow: str | None = None
    state: str | None = None
    open: bool | None = None
    created_from: dt.datetime | None = None
    created_before: dt.datetime | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    priority: str | None = None
    channel: str | None = None
    category: str | None = None
    segment: str | None = None
    customer: str | None = None


def case_header(fields: Sequence[str] = ()) -> list[str]:
    """One header row of machine names, not labels: a file is read back by programs
    (re-import, pandas, COPY) that need one header row of stable names, the same in
    every language and after a label is reworded; a second row of labels would be
    taken for a case by each of them. Labels in any language are in
    ``GET /api/workflows/<name>``."""
    return [*CASE_COLUMNS, *(DATA_PREFIX + name for name in fields)]


def case_rows(session: DbSession, actor: Actor, f: CaseFilters,
              fields: Sequence[str] = ()) -> Iterator[list[Any]]:
    """The cases ``actor`` may see under ``f``, oldest first, one list per case in
    the order of :func:`case_header`. Lazy: nothing is read before the first row
    is asked for, then one query per :data:`CHUNK` cases."""
    assignee, team = aliased(User), aliased(Team)
    c = Case
    columns = [c.id, c.reference_prefix, c.workflow, c.state, c.created_at, c.updated_at,
               c.closed, assignee.name, team.name, c.priority, c.channel, c.category,
               c.segment, c.due_at, c.sla_breached, c.first_response_at, c.resolved_at,
               c.reopened]
    if fields:
        columns.append(c.data)
    base = (select(*columns).outerjoin(assignee, assignee.id == c.assignee_id)
            .outerjoin(team, team.id == c.team_id)
            .where(visible(actor), *_conditions(f)).order_by(c.id))
    last: int | None = None
    while True:
        stmt = base if last is None else base.where(c.id > last)
        rows: Sequence[Any] = session.execute(stmt.limit(CHUNK)).all()
        for row in rows:
            case_id, prefix, *values = row[:18]
            out: list[Any] = [reference(prefix, values[2], case_id), *values]
            if fields:
                data = row[18] if isinstance(row[18], dict) else {}
                out.extend(data.get(name) for name in fields)
            yield out
        if len(rows) < CHUNK:
            return
        last = int(rows[-1][0])


def _conditions(f: CaseFilters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    for column, value in ((Case.workflow, f.workflow), (Case.state, f.state),
                          (Case.team_id, f.team_id), (Case.assignee_id, f.assignee_id),
                          (Case.priority, f.priority), (Case.channel, f.channel),
                          (Case.category, f.category), (Case.segment, f.segment),
                          (Case.customer_ref, f.customer)):
        if value is not None:
            out.append(column == value)
    if f.open is not None:
        out.append(Case.closed.is_(not f.open))
    if f.created_from is not None:
        out.append(Case.created_at >= f.created_from)
    if f.created_before is not None:
        out.append(Case.created_at < f.created_before)
    return out


# -- metrics --------------------------------------------------------------------------------
#: Keys of a metric shown in their own columns; any others go to ``details`` as JSON.
_OWN = frozenset({"value", "n", "ci95", "counts", "small_sample"})


def metric_rows(report: str, answer: dict[str, Any]) -> Iterator[list[Any]]:
    """One row per (group, metric) of an answer of :mod:`caseloop.metrics`, in the
    order of :data:`METRIC_COLUMNS`; the period on every row, so a file that travels
    alone still says what it counts. The operations backlog is one row: the open
    cases now, its age buckets as counts."""
    head = [report, answer.get("from"), answer.get("to"), answer.get("timezone"),
            answer.get("workflow"), answer.get("group_by")]
    for group in answer["groups"]:
        for name, m in group["metrics"].items():
            low, high = m.get("ci95") or (None, None)
            details = {k: v for k, v in m.items() if k not in _OWN}
            yield [*head, group["key"], name, m.get("value"), m.get("n"), low, high,
                   m.get("small_sample"), _json(m.get("counts") or {}),
                   _json(details) if details else None]
    if "backlog" in answer:
        total = sum(answer["backlog"].values())
        yield [*head, None, "backlog", total, total, None, None, None,
               _json(answer["backlog"]), None]


# -- CSV ------------------------------------------------------------------------------------
def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """UTF-8 CSV (RFC 4180, CRLF) in pieces of about :data:`CSV_PIECE` bytes.

    It starts with a byte order mark: Excel reads a CSV without one in the
    machine's legacy code page (GBK on a Chinese Windows, 1252 elsewhere) and
    shows Chinese as mojibake; with it, Excel, LibreOffice, pandas (utf-8-sig)
    and Python's csv all read UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([csv_cell(h) for h in header])
    # The header at once: the download starts before the first (maybe slow) query.
    yield buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        if buffer.tell() >= CSV_PIECE:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def csv_cell(value: Any) -> str:
    """A value as CSV text: numbers as written by Python, true/false, UTC times in
    ISO 8601, lists and objects as JSON, and text that a spreadsheet would take
    for a formula behind an apostrophe (Excel shows it without; the cell is text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return guard(text_of(value))


def guard(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def text_of(value: Any) -> str:
    """Text for what is neither a number nor a boolean (times in UTC, 'Z')."""
    if isinstance(value, dt.datetime):
        moment: dt.datetime = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | dict | tuple):
        return _json(value)
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# -- XLSX -----------------------------------------------------------------------------------
def write_xlsx(out: IO[bytes], header: Sequence[str], rows: Iterable[Sequence[Any]], *,
               sheet: str) -> int:
    """An XLSX workbook of ``rows`` into ``out`` (a file open for writing); the
    number of rows written.

    XlsxWriter's constant-memory mode writes each row to a temporary file as it
    comes and keeps one row in memory. Numbers and booleans are typed cells; times
    are ISO 8601 UTC text as in the CSV (spreadsheet dates have no time zone, and
    ISO text sorts in time order); everything else is a string cell — never a
    formula — and one that starts like a formula also carries Excel's quote prefix,
    so that editing the cell keeps it text."""
    book = xlsxwriter.Workbook(out, {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False})
    quoted = book.add_format({"quote_prefix": True})
    bold = book.add_format({"bold": True})
    pages, written, at = 0, 0, XLSX_ROWS
    worksheet: Any = None
    for row in rows:
        if at == XLSX_ROWS:
            pages += 1
            worksheet = book.add_worksheet(sheet if pages == 1 else f"{sheet} ({pages})")
            worksheet.set_column(0, max(len(header) - 1, 0), 18)
            worksheet.freeze_panes(1, 0)
            for col, name in enumerate(header):
                worksheet.write_string(0, col, name, bold)
            at = 1
        for col, value in enumerate(row):
            _xlsx_cell(worksheet, at, col, value, quoted)
        at += 1
        written += 1
    if worksheet is None:  # no rows: still a sheet with the header
        worksheet = book.add_worksheet(sheet)
        for col, name in enumerate(header):
            worksheet.write_string(0, col, name, bold)
    book.close()
    return written


def _xlsx_cell(sheet: Any, row: int, col: int, value: Any, quoted: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
        return
    if isinstance(value, int | float) and math.isfinite(value) and abs(value) < EXACT_INT:
        sheet.write_number(row, col, value)
        return
    text = repr(value) if isinstance(value, int | float) else text_of(value)
    if text.startswith(FORMULA_START):
        sheet.write_string(row, col, text, quoted)
    else:
        sheet.write_string(row, col, text)


def file_chunks(f: IO[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """A finished file from its start, in pieces; closes it when done or abandoned."""
    try:
        f.seek(0)
        while piece := f.read(size):
            yield piece
    finally:
        f.close()
