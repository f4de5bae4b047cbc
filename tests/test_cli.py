"""`caseloop check` and `caseloop schema` through the real CLI (Flask's runner)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flask.testing import FlaskCliRunner

from caseloop.spec.schema import SCHEMAS

BROKEN_WORKFLOW = """\
workflow: broken
form: mini
roles: [agent]
states:
  open: {}
  closed: {final: true}
transitions:
  - {trigger: close, from: open, to: closd, allow: [agent]}
"""
MINI_FORM = """\
form: mini
fields:
  - {name: note, type: text, label: {en: Note}}
"""


def write(folder: Path, **files: str) -> Path:
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, "utf-8")
    return folder


def test_check_shipped_definitions_is_clean(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["check", "--strict"])
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings" in result.output


def test_check_reports_position_code_and_hint(runner: FlaskCliRunner, tmp_path: Path) -> None:
    write(tmp_path, broken=BROKEN_WORKFLOW, mini=MINI_FORM)
    result = runner.invoke(args=["check", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    problem = next(line for line in lines if "CL023" in line)
    path, line, col, rest = problem.split(":", 3)
    assert path.endswith("broken.yaml")
    assert (line, col) == ("8", "38")
    assert rest.strip() == "CL023 unknown state 'closd' (did you mean 'closed'?)"
    assert "1 error" in result.output


def test_check_warnings_pass_unless_strict(runner: FlaskCliRunner, tmp_path: Path) -> None:
    write(tmp_path, mini=MINI_FORM)  # 'note' lacks its zh label: CL050 warning
    relaxed = runner.invoke(args=["check", str(tmp_path)])
    assert relaxed.exit_code == 0
    assert "CL050 warning: no 'zh' translation" in relaxed.output
    strict = runner.invoke(args=["check", "--strict", str(tmp_path)])
    assert strict.exit_code == 1


def test_check_json_format(runner: FlaskCliRunner, tmp_path: Path) -> None:
    write(tmp_path, broken=BROKEN_WORKFLOW, mini=MINI_FORM)
    result = runner.invoke(args=["check", "--format", "json", str(tmp_path)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["files"] == 2
    assert report["errors"] == 1
    assert {"path", "line", "col", "code", "severity", "message", "hint"} <= set(
        report["problems"][0])
    codes = {(p["code"], p["line"], p["col"]) for p in report["problems"]}
    assert ("CL023", 8, 38) in codes
    assert report["definitions"]["forms"]["mini"]  # the version hash


def test_check_missing_path(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "CL001 no such file or folder" in result.output


def test_check_uses_configured_definitions(tmp_path: Path) -> None:
    from caseloop.app import create_app

    write(tmp_path, broken=BROKEN_WORKFLOW, mini=MINI_FORM)
    app = create_app({"CASELOOP_DEFINITIONS": [str(tmp_path)]})
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "CL023" in result.output


def test_schema_prints_and_writes(runner: FlaskCliRunner, tmp_path: Path) -> None:
    printed = runner.invoke(args=["schema", "workflow"])
    assert printed.exit_code == 0
    assert json.loads(printed.output) == SCHEMAS["workflow"]
    written = runner.invoke(args=["schema", "--out", str(tmp_path / "s")])
    assert written.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "calendar.json", "form.json", "workflow.json"]
    neither = runner.invoke(args=["schema"])
    assert neither.exit_code == 2
    assert "Name a kind" in neither.output


def test_console_script_runs_without_a_traceback(tmp_path: Path) -> None:
    """The installed `caseloop` entry point, as a user runs it, on garbage input."""
    (tmp_path / "garbage.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (tmp_path / "tabs.yaml").write_text("form: x\nfields:\n\t- name: a\n", "utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", "from caseloop.cli import main; main()", "check", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "CL001" in proc.stdout
    assert "CL004" in proc.stdout
