"""Attachments on the case pages: uploaded with a new complaint or later, listed on
the case page, downloaded as attachments by those who may see the case; refused
(nothing stored) when too large, of the wrong type, or too many."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from caseloop.views.files import disposition

from .conftest import make_app
from .test_views_auth import add, login, token
from .test_views_cases import NEW, agent, case_row, count, form_of

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n" + b"0" * 2000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 500
NAME = "投诉 报告 (1).pdf"


def uploads(app: Flask) -> list[Path]:
    root = Path(app.instance_path) / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def get(client: FlaskClient, path: str) -> Any:
    """A GET whose response (an open file, for a download) is closed at once."""
    with client.get(path) as resp:
        resp.get_data()
        return resp


def post_new(client: FlaskClient, *files: tuple[bytes, str], **data: Any) -> Any:
    return client.post("/cases/new/complaint", data={
        "csrf_token": token(client, "/cases/new/complaint"), **NEW, **data,
        "attachments": [(io.BytesIO(body), name) for body, name in files]},
        content_type="multipart/form-data")


def new_with(client: FlaskClient, *files: tuple[bytes, str]) -> int:
    resp = post_new(client, *files)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.location.rsplit("/", 1)[1])


def test_a_complaint_with_a_pdf_is_stored_listed_and_downloaded(any_db_app: Flask) -> None:
    app = any_db_app
    client = agent(app)
    page = client.get("/cases/new/complaint").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page
    assert re.search(r'<input[^>]*accept="\.jpg,[^"]*\.pdf[^"]*"[^>]*name="attachments"'
                     r'|<input[^>]*name="attachments"[^>]*accept=', page)
    case_id = new_with(client, (PDF, NAME))
    [desc] = case_row(app, case_id).data["attachments"]
    assert desc["name"] == NAME and desc["size"] == len(PDF)
    assert desc["type"] == "application/pdf"
    [path] = uploads(app)
    assert path.name == desc["id"] and path.read_bytes() == PDF
    static = Path(app.root_path) / "static"
    assert static not in path.parents and Path(app.instance_path) in path.parents

    shown = client.get(f"/cases/{case_id}").get_data(as_text=True)
    link = f"/files/{case_id}/{desc['id']}"
    assert f'href="{link}"' in shown and NAME in shown

    resp = get(client, link)
    assert resp.status_code == 200 and resp.data == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    cd = resp.headers["Content-Disposition"]
    assert cd.startswith("attachment;") and "inline" not in cd
    assert f"filename*=UTF-8''{quote(NAME, safe='')}" in cd
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


def test_the_disposition_header_cannot_be_broken_by_a_name() -> None:
    cd = disposition('a"; filename=evil.exe\r\n.pdf')
    assert "\r" not in cd and "\n" not in cd
    assert cd.startswith('attachment; filename="a filename=evil.exe.pdf"; filename*=UTF-8\'\'')
    assert disposition("报告.pdf").endswith("filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf")


def test_an_oversized_file_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path,
                   CASELOOP_MAX_UPLOAD=1024)
    client = agent(app)
    resp = post_new(client, (PNG, "ok.png"), (PDF, "big.pdf"))
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "big.pdf: too large: at most 1 KB." in page
    assert 'id="attachments-error"' in page
    assert count(app) == 0 and uploads(app) == []
    assert form_of(page, "customer_name") == NEW["customer_name"]  # the input is kept


def test_a_renamed_executable_is_refused_in_the_readers_language(app: Flask) -> None:
    client = agent(app, lang="zh")
    resp = post_new(client, (EXE, "invoice.pdf"))
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "invoice.pdf：不接受此文件类型，可用类型：JPG, JPEG, PNG, HEIC, PDF, MP4, MOV。" in page
    assert count(app) == 0 and uploads(app) == []
    en = agent(app, "eve")
    page = post_new(en, (b"plain text", "notes.txt")).get_data(as_text=True)
    assert "notes.txt: this type is not accepted: JPG, JPEG, PNG, HEIC, PDF, MP4, MOV." in page


def test_too_many_files_are_refused(app: Flask) -> None:
    client = agent(app)
    resp = post_new(client, *[(PNG, f"p{i}.png") for i in range(6)])
    assert resp.status_code == 422
    assert "Too many files: at most 5." in resp.get_data(as_text=True)
    assert count(app) == 0 and uploads(app) == []


def test_files_of_a_case_that_is_not_saved_are_removed(app: Flask) -> None:
    client = agent(app)
    resp = post_new(client, (PDF, "a.pdf"), subject="")  # the case is invalid
    assert resp.status_code == 422
    assert 'id="subject-error"' in resp.get_data(as_text=True)
    assert count(app) == 0 and uploads(app) == []


def test_a_failed_write_removes_the_new_files(app: Flask,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from caseloop.cases import Cases

    client = agent(app)

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(Cases, "create", boom)
    with pytest.raises(RuntimeError):
        post_new(client, (PDF, "a.pdf"))
    assert uploads(app) == []


def test_only_those_who_see_the_case_download_and_ids_cannot_be_probed(app: Flask) -> None:
    amy = agent(app)
    case_id = new_with(amy, (PDF, "a.pdf"))
    other_id = new_with(amy, (PNG, "b.png"))
    file_id = case_row(app, case_id).data["attachments"][0]["id"]
    other_file = case_row(app, other_id).data["attachments"][0]["id"]
    assert get(amy, f"/files/{case_id}/{file_id}").status_code == 200
    assert app.test_client().get(f"/files/{case_id}/{file_id}").status_code == 302  # log in
    add(app, "bob", roles=["agent"], teams=["sales"])
    bob = app.test_client()
    login(bob, "bob")
    resp = bob.get(f"/files/{case_id}/{file_id}")
    assert resp.status_code == 404 and resp.data != PDF
    for path in (f"/files/{case_id}/{other_file}",   # another case's file
                 f"/files/{case_id}/..%2F..%2Fcaseloop.sqlite3",
                 f"/files/{case_id}/../../caseloop.sqlite3",
                 f"/files/{case_id}/{file_id[:2]}%2F{file_id}",
                 f"/files/{case_id}/{'0' * 32}", f"/files/{case_id}/{file_id.upper()}",
                 f"/files/999999/{file_id}", f"/files/{case_id}/%2e%2e"):
        assert amy.get(path).status_code == 404, path


def test_the_edit_form_adds_and_removes_files(app: Flask) -> None:
    client = agent(app)
    case_id = new_with(client, (PDF, "first.pdf"), (PNG, "second.png"))
    first, second = case_row(app, case_id).data["attachments"]
    page = client.get(f"/cases/{case_id}/edit").get_data(as_text=True)
    assert "first.pdf" in page and f'name="_remove:attachments" value="{first["id"]}"' in page
    resp = client.post(f"/cases/{case_id}/edit", data={
        "csrf_token": form_of(page, "csrf_token"), "_version": form_of(page, "_version"),
        "_seen": form_of(page, "_seen"), **{k: v for k, v in NEW.items()
                                            if k not in ("channel", "subject", "description")},
        "_remove:attachments": first["id"],
        "attachments": [(io.BytesIO(PDF), "third.pdf")]}, content_type="multipart/form-data")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    now = case_row(app, case_id).data["attachments"]
    assert [x["name"] for x in now] == ["second.png", "third.pdf"]
    assert now[0] == second
    assert client.get(f"/files/{case_id}/{first['id']}").status_code == 404
    assert get(client, f"/files/{case_id}/{now[1]['id']}").data == PDF


def test_a_request_too_large_gets_a_clear_413_page(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path,
                   CASELOOP_MAX_PAGE_BODY=4096)
    client = agent(app)
    resp = post_new(client, (PDF * 4, "big.pdf"))
    assert resp.status_code == 413
    assert "The files sent are too large (at most 4 KB in all)." in resp.get_data(as_text=True)
    assert count(app) == 0 and uploads(app) == []
