"""`caseloop docs`: Markdown pages of the loaded definitions, through Flask's CLI runner.
Needs no database: the pages come from the definitions alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from caseloop import outline
from caseloop.app import create_app
from caseloop.extension import state

from .conftest import SHIPPED


def make(tmp_path: Path, definitions: list[str]) -> Flask:
    app = create_app({
        "TESTING": True,
        "CASELOOP_DEFINITIONS": definitions,
        "CASELOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "CASELOOP_SECRET_KEY": "test",
    })
    app.instance_path = str(tmp_path / "instance")
    return app


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make(tmp_path, [str(p) for p in SHIPPED])


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def page(app: Flask, name: str, lang: str = "en") -> str:
    with app.app_context():
        return outline.markdown(state().registry.current, name, lang)


def fails(result: Result, code: int, *texts: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for wanted in texts:
        assert wanted in result.output, result.output


def test_a_page_is_written_per_name_and_each_path_printed(app: Flask, runner: FlaskCliRunner,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "pages"
    result = runner.invoke(args=["docs", "complaint", "customer_contact", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"wrote {out / 'complaint.md'}",
                                          f"wrote {out / 'customer_contact.md'}"]
    assert (out / "complaint.md").read_text("utf-8") == page(app, "complaint")
    assert (out / "customer_contact.md").read_text("utf-8").startswith("# Customer contact")
    assert sorted(p.name for p in out.iterdir()) == ["complaint.md", "customer_contact.md"]


def test_the_default_folder_is_docs_definitions(runner: FlaskCliRunner, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(args=["docs", "revisit"])
    assert result.exit_code == 0, result.output
    written = tmp_path / "docs" / "definitions" / "revisit.md"
    assert result.output == f"wrote {Path('docs/definitions/revisit.md')}\n"
    assert written.read_text("utf-8").startswith("# Customer revisit\n")


def test_all_writes_every_workflow_and_form_and_again_the_same(
        runner: FlaskCliRunner, tmp_path: Path) -> None:
    out = tmp_path / "all"
    first = runner.invoke(args=["docs", "--all", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in out.iterdir()) == [
        "complaint.md", "customer_contact.md", "improvement_plan.md", "revisit.md"]
    before = {p.name: p.read_text("utf-8") for p in out.iterdir()}
    again = runner.invoke(args=["docs", "--all", "--out", str(out)])
    assert again.exit_code == 0
    assert {p.name: p.read_text("utf-8") for p in out.iterdir()} == before  # reviewable diffs


def test_out_dash_prints_the_page_in_the_language_asked(app: Flask, runner: FlaskCliRunner,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(args=["docs", "complaint", "--lang", "zh", "--out", "-"])
    assert result.exit_code == 0, result.output
    assert result.output == page(app, "complaint", "zh")
    assert result.output.startswith("# 客户投诉\n")
    assert not (tmp_path / "docs").exists()


def test_an_unknown_name_suggests_and_lists_and_writes_nothing(runner: FlaskCliRunner,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "none"
    result = runner.invoke(args=["docs", "complaint", "complant", "--out", str(out)])
    fails(result, 1, "no workflow or form named 'complant' (did you mean 'complaint'?); "
          "known: complaint, customer_contact, improvement_plan, revisit")
    assert not out.exists()
    far = runner.invoke(args=["docs", "zzz", "--out", str(out)])
    fails(far, 1, "no workflow or form named 'zzz' (known: complaint, customer_contact, "
          "improvement_plan, revisit)")


def test_names_or_all_are_needed_but_not_both(runner: FlaskCliRunner) -> None:
    fails(runner.invoke(args=["docs"]), 2, "Name a workflow or form", "--all")
    fails(runner.invoke(args=["docs", "complaint", "--all"]), 2, "not both")
    fails(runner.invoke(args=["docs", "complaint", "--lang", "fr"]), 2, "'fr' is not one of")


def test_broken_definitions_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "defs"
    broken.mkdir()
    (broken / "f.yaml").write_text("form: f\ntitle: F\nfields:\n  - {name: a, type: txt, "
                                   "label: A}\n", "utf-8")
    result = make(tmp_path, [str(broken)]).test_cli_runner().invoke(args=["docs", "--all"])
    fails(result, 1, "cannot write the docs: the definitions have 1 error:",
          "fix them, then check with 'caseloop check'")


def test_a_folder_that_cannot_be_made_is_one_line(runner: FlaskCliRunner,
                                                  tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", "utf-8")
    result = runner.invoke(args=["docs", "complaint", "--out", str(blocker)])
    fails(result, 1, f"cannot write into {blocker}", "--out")
