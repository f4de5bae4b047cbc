"""`caseloop simulate WORKFLOW SCENARIO.yaml` through Flask's CLI runner: the shipped
scenarios, the trace's timing, problems reported as path:line:col, failures, refusals,
and nothing left behind (no files, no network)."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from caseloop import notify
from caseloop.simulation import handlers, simulate

from .conftest import ROOT

SCENARIOS = sorted((ROOT / "workflows" / "scenarios").glob("*.yaml"))
LOOP = ROOT / "workflows" / "scenarios" / "complaint_loop.yaml"
IMPROVEMENT = ROOT / "workflows" / "scenarios" / "improvement_loop.yaml"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))

PEOPLE = """\
scenario: A small one
start: 2026-11-20 15:00
people:
  - {name: li.na, roles: [agent], teams: [care]}
steps:
  - create:
      data: {customer_name: 王芳, phone: "138 0013 8000", category: delivery,
             subject: Late parcel, description: The parcel arrived five days late.}
"""


def run(runner: FlaskCliRunner, path: Path | str, *options: str,
        workflow: str = "complaint") -> Result:
    return runner.invoke(args=["simulate", workflow, str(path), *options])


def scenario(tmp_path: Path, steps: str, head: str = PEOPLE) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(head + steps, "utf-8")
    return path


def workflow_of(path: Path) -> str:
    found = re.search(r"^workflow: *(\w+)", path.read_text("utf-8"), re.M)
    assert found, f"{path.name}: say which workflow it is for ('workflow: complaint')"
    return found.group(1)


def timeline(output: str) -> list[tuple[dt.datetime, str, str]]:
    """(local time, case reference, text) of each trace line, from the day headings."""
    lines, day = [], None
    for line in output.splitlines():
        if re.match(r"^\w+day \d\d \w+ \d{4}$", line):
            day = dt.datetime.strptime(line, "%A %d %B %Y").date()
        elif (m := re.match(r"^  (\d\d):(\d\d)  (\S*) +(.*)$", line)) and day is not None:
            at = dt.datetime.combine(day, dt.time(int(m[1]), int(m[2])))
            lines.append((at, m[3] if "-" in m[3] else "", m[4] if "-" in m[3]
                          else f"{m[3]} {m[4]}".strip()))
    return lines


def when(lines: list[tuple[dt.datetime, str, str]], case: str, pattern: str) -> dt.datetime:
    found = [at for at, ref, text in lines if ref == case and re.search(pattern, text)]
    assert found, f"no line of {case} matching {pattern!r}"
    return found[0]


# -- the shipped scenarios ----------------------------------------------------------------
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_runs(runner: FlaskCliRunner, path: Path) -> None:
    result = run(runner, path, workflow=workflow_of(path))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert re.search(r"^OK: \d+ steps, \d+ expectations met\.$", result.output, re.M)


def test_the_complaint_loop_closes_by_itself(runner: FlaskCliRunner) -> None:
    result = run(runner, LOOP)
    assert result.exit_code == 0, result.output
    lines = timeline(result.output)
    cmp, rev = "CMP-2026-000001", "REV-2026-000002"
    # Friday 15:00 in Shanghai: 4 working hours to the first response, 3 of them on
    # Friday, so the deadline is Monday 10:00, warned at 09:30 and breached at 10:00.
    assert when(lines, cmp, r"^SLA First response due Mon 23 Nov 10:00$") == \
        dt.datetime(2026, 11, 20, 15, 0)
    assert when(lines, cmp, r"^SLA warning: First response") == dt.datetime(2026, 11, 23, 9, 30)
    assert when(lines, cmp, r"^SLA First response breached") == dt.datetime(2026, 11, 23, 10, 0)
    # The revisit starts, by the worker, three days after the resolution.
    resolved = when(lines, cmp, r"→ resolved \(accept_decision\) by li\.na")
    started = when(lines, cmp, rf"^started revisit {rev}$")
    assert started - resolved == dt.timedelta(days=3)
    assert when(lines, rev, r"^created by system in scheduled.*linked to " + cmp) == started
    # A low score reopens the complaint, fired by the revisit's on-enter action.
    answered = when(lines, rev, r"→ answered \(complete_survey\).*csat 2")
    assert when(lines, rev, rf"^fired 'reopen' on {cmp}$") == answered
    assert when(lines, cmp, r"^resolved → reopened \(reopen\) by system$") == answered
    # The trace is in time order, and the timer of a state left in time is skipped then.
    assert [at for at, _, _ in lines] == sorted(at for at, _, _ in lines)
    assert when(lines, cmp, r"^timer skipped: the case left state 'acknowledged'") == \
        dt.datetime(2026, 11, 24, 10, 15)
    assert "✗ 'respond' by li.na refused: Complaints of severity 3 or more need a root " \
           "cause before we respond. Investigate first. (as expected)" in result.output


def test_jobs_and_sla_moments_run_at_their_own_time(app: Flask) -> None:
    """One long wait still shows each moment when it came (the runner, not the CLI)."""
    with app.app_context():
        result = simulate("complaint", str(LOOP), config=app.config)
    assert result.ok, result.failure
    moments = {h.kind: h.at.astimezone(SHANGHAI) for h in result.trace}
    assert moments["sla:warning"] == dt.datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
    starts = [h for h in result.trace if h.kind == "job:start"]
    assert [h.facts["status"] for h in starts] == ["done"]
    assert starts[0].at.astimezone(SHANGHAI) == dt.datetime(2026, 11, 27, 13, 0,
                                                          tzinfo=SHANGHAI)
    states = {c["workflow"]: c["state"] for c in result.cases}
    assert states == {"complaint": "reopened", "revisit": "closed"}


def test_json_and_chinese(runner: FlaskCliRunner) -> None:
    data = json.loads(run(runner, LOOP, "--json").output)
    assert data["ok"] is True and data["failure"] is None
    assert data["timezone"] == "Asia/Shanghai"
    warning = next(h for h in data["trace"] if h["kind"] == "sla:warning")
    assert warning["at"] == "2026-11-23T09:30:00+08:00"
    zh = run(runner, LOOP, "--lang", "zh")
    assert zh.exit_code == 0, zh.output
    assert "2026年11月23日 周一" in zh.output
    assert "时限预警：「首次响应」将于 11月23日 周一 10:00 到期" in zh.output


# -- problems in the scenario ---------------------------------------------------------------
@pytest.mark.parametrize(("text", "where", "message"), [
    ("scenario: x\nstart: [2026\n", "3:1", "expected ',' or ']'"),
    (PEOPLE + "  - fire: acknowlege\n", "9:11",
     "workflow 'complaint' has no trigger 'acknowlege' (did you mean 'acknowledge'?)"),
    (PEOPLE + "  - fire: acknowledge\n    as: lina\n", "10:9",
     "unknown person 'lina' (did you mean 'li.na'?)"),
    (PEOPLE + "  - wait: 2 hours\n", "9:11", "'2 hours' is not a duration"),
    (PEOPLE + "  - until: 2026-11-19 09:00\n", "9:12", "is in the past"),
    (PEOPLE + "  - expect: {case: revisits, state: closed}\n", "9:20",
     "unknown case 'revisits'"),
    (PEOPLE + "  - fire: assess\n    data: {severty: 2}\n", "10:12",
     "form 'complaint' has no field 'severty' (did you mean 'severity'?)"),
    (PEOPLE.replace("start: 2026-11-20 15:00", "start: Friday"), "2:8",
     "'Friday' is not a date and time"),
    (PEOPLE.replace("[agent]", "[agnet]"), "4:27", "unknown role 'agnet' (did you mean"),
    (PEOPLE + "  - fire: acknowledge\n    wait: 1h\n", "9:5", "a step does one thing"),
])
def test_a_bad_scenario_is_reported_where_it_is(runner: FlaskCliRunner, tmp_path: Path,
                                               text: str, where: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, "utf-8")
    result = run(runner, path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"{path}:{where}: "), result.output
    assert message in first
    assert result.output.rstrip().endswith("nothing was run")


def test_every_problem_is_reported_at_once(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = scenario(tmp_path, "  - fire: acknowlege\n    as: lina\n  - wait: soon\n")
    result = run(runner, path)
    assert result.exit_code == 1
    assert len(re.findall(rf"^{re.escape(str(path))}:\d+:\d+: ", result.output, re.M)) == 3
    assert "3 problems in the scenario; nothing was run" in result.output


def test_an_unknown_workflow_lists_the_loaded_ones(runner: FlaskCliRunner,
                                                   tmp_path: Path) -> None:
    result = run(runner, scenario(tmp_path, ""), workflow="complain")
    assert result.exit_code == 1
    assert "unknown workflow 'complain' (did you mean 'complaint'?); loaded: complaint" \
        in result.output
    assert "Traceback" not in result.output


def test_a_missing_file_is_a_problem_too(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = run(runner, tmp_path / "nope.yaml")
    assert result.exit_code == 1
    assert f"{tmp_path / 'nope.yaml'}:1:1: cannot read the file" in result.output


# -- failures while running -------------------------------------------------------------------
def test_a_failed_expectation_says_what_was_expected_and_found(runner: FlaskCliRunner,
                                                               tmp_path: Path) -> None:
    path = scenario(tmp_path, "  - fire: acknowledge\n"
                              "  - expect: {state: assessed, fields: {channel: email}}\n"
                              "  - wait: 1d\n")
    result = run(runner, path)
    assert result.exit_code == 1
    assert f"{path}:10:13: CMP-2026-000001: expected state 'assessed', found " \
           "'acknowledged'; channel 'email', found 'web'" in result.output
    assert "✗ not as expected" in result.output
    assert "FAILED" in result.output
    assert "Saturday 21 November" not in result.output  # the run stopped at the failed step


def test_refusals_are_shown_and_fail_unless_expected(runner: FlaskCliRunner,
                                                     tmp_path: Path) -> None:
    steps = "  - fire: acknowledge\n  - fire: assess\n    data: {severity: 2}\n"
    result = run(runner, scenario(tmp_path, steps))
    assert result.exit_code == 1
    assert "✗ 'assess' by li.na refused: some fields are not valid; impact: " in result.output
    assert "(if that is what you expect, add 'refused: true' to the step)" in result.output
    expected = run(runner, scenario(tmp_path, steps + "    refused: true\n"))
    assert expected.exit_code == 0, expected.output
    assert "(as expected)" in expected.output
    done = run(runner, scenario(tmp_path, "  - fire: acknowledge\n    refused: true\n"))
    assert done.exit_code == 1
    assert "expected 'acknowledge' to be refused, but it was done" in done.output


def test_a_linked_case_that_does_not_exist_yet(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = run(runner, scenario(tmp_path, "  - fire: start_call\n    case: revisit\n"))
    assert result.exit_code == 1
    assert "there is no revisit case yet (at 2026-11-20 15:00)" in result.output


# -- nothing left behind, nothing sent ---------------------------------------------------------
def test_nothing_is_left_behind(runner: FlaskCliRunner, app: Flask, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    scratch, cwd = tmp_path / "scratch", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(cwd)
    instance = set(Path(app.instance_path).glob("*")) if Path(app.instance_path).exists() \
        else set()
    ok = run(runner, LOOP)
    failed = run(runner, scenario(tmp_path, "  - expect: {state: closed}\n"))
    bad = run(runner, scenario(tmp_path, "  - wait: soon\n"))
    assert (ok.exit_code, failed.exit_code, bad.exit_code) == (0, 1, 1)
    assert list(scratch.iterdir()) == []
    assert list(cwd.iterdir()) == []
    after = set(Path(app.instance_path).glob("*")) if Path(app.instance_path).exists() \
        else set()
    assert after == instance


def test_nothing_goes_out(runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the simulation opened a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(notify, "post_webhook", refuse)
    monkeypatch.setattr(notify, "send_email", refuse)
    monkeypatch.setenv("CASELOOP_SMTP_URL", "smtp://mail.example.com:25")
    result = run(runner, LOOP)
    assert result.exit_code == 0, result.output
    assert "zhang.wei@example.com (email, logged only)" in result.output
    assert "crm not sent (simulation): case" in result.output
    table = handlers()
    assert table["webhook"] is not notify.webhook
    assert table.get("some_plugin_push") is table["webhook"]  # a plugin's kind: not sent
    # The inbox and the mail log as in the service (the email above); a plugin's channel
    # is recorded, not sent (tests/test_plugin_channels.py).
    assert table["notify"] is not notify.deliver


@pytest.mark.parametrize(("block", "path"), [(0, LOOP), (1, IMPROVEMENT)],
                         ids=["complaint_loop", "improvement_loop"])
def test_the_readme_examples_are_what_the_shipped_scenarios_print(
        runner: FlaskCliRunner, block: int, path: Path) -> None:
    readme = (ROOT / "README.md").read_text("utf-8").split("## Simulating a workflow", 1)[1]
    readme = readme.split("\n## ", 1)[0]
    example = readme.split("```text\n")[block + 1].split("```", 1)[0]
    output = run(runner, path).output.splitlines()
    missing = [line for line in example.splitlines() if line and line not in output]
    assert missing == [], "README lines the scenario no longer prints"


def test_the_whole_loop_runs_by_itself_to_a_measured_improvement(
        runner: FlaskCliRunner) -> None:
    result = run(runner, IMPROVEMENT)
    assert result.exit_code == 0, result.output
    lines = timeline(result.output)
    answered = when(lines, "REV-2026-000003", r"survey answered by the customer via email")
    started = when(lines, "IMP-2026-000004", r"^created by system in draft")
    assert answered == started  # the answer closes the complaint, which starts the plan
    assert when(lines, "IMP-2026-000004", r"^reminded li\.na") == dt.datetime(2026, 12, 9, 9)
    assert when(lines, "IMP-2026-000004", r"^overdue: .* escalation 1") == \
        dt.datetime(2026, 12, 15, 9)
    assert when(lines, "IMP-2026-000004", r"→ standardised \(standardise\) by system") == \
        dt.datetime(2027, 1, 15, 10)


def test_update_and_answer_steps(runner: FlaskCliRunner, tmp_path: Path) -> None:
    steps = ("  - update: {order_number: 20261104-88}\n"
             "  - fire: acknowledge\n"
             "  - update: {subject: Changed}\n    refused: true\n"
             "  - answer: {description: Fine now.}\n")
    result = run(runner, scenario(tmp_path, steps))
    assert result.exit_code == 1, result.output
    assert "li.na changed order_number 20261104-88" in result.output
    assert "✗ 'update' by li.na refused: some fields are not valid; subject:" in result.output
    assert "CMP-2026-000001 has no survey link to answer" in result.output
    bad = run(runner, scenario(tmp_path, "  - update: order_number\n  - answer: {colour: red}\n"))
    assert bad.exit_code == 1
    assert "write the fields as a mapping, e.g. update: {actions: [...]}" in bad.output
    assert "form 'complaint' has no field 'colour'" in bad.output


def test_a_failing_job_is_retried_at_its_times_then_dead_lettered(
        runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import caseloop.simulation

    def down(ctx: Any) -> str:
        raise OSError("the inbox is down")

    real = caseloop.simulation.builtin
    monkeypatch.setattr(caseloop.simulation, "builtin", lambda: {**real(), "notify": down})
    result = run(runner, scenario(tmp_path, "  - wait: 6h\n"))
    assert result.exit_code == 0, result.output
    lines = timeline(result.output)
    tries = [(at, text) for at, _, text in lines if text.startswith("notify failed (try")]
    assert len(tries) == 7 and "OSError: the inbox is down" in tries[0][1]
    # Backoff 30 s x 2^(n-1), three quarters of it here (the jitter is fixed at one half):
    # each try shows at its own minute, the last one 47 minutes after the first.
    assert [at.minute for at, _ in tries] == [0, 0, 1, 2, 5, 11, 23]
    assert "next try Fri 20 Nov 15:47" in tries[-1][1]
    assert when(lines, "CMP-2026-000001", r"^notify failed for good after 8 tries") == \
        dt.datetime(2026, 11, 20, 15, 47)


def test_kinds_without_words_still_get_a_line() -> None:
    import zoneinfo

    from caseloop.cli.simulate import Words, describe
    from caseloop.simulation import Happening

    w = Words("en", zoneinfo.ZoneInfo("UTC"))
    at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    later = {"payload": {"action": "escalate_to_ceo", "workflow": "revisit",
                         "cases": ["REV-1"]}}
    assert describe(Happening(at, "C", "w", "event:action", later), w) == \
        "escalate_to_ceo: workflow=revisit, cases=[REV-1]"
    cancel = {"payload": {"action": "cancel", "workflow": "revisit", "cases": ["REV-1"],
                          "scheduled_dropped": 1}}
    assert describe(Happening(at, "C", "w", "event:action", cancel), w) == \
        "withdrew revisit: 1 scheduled dropped, cancelling REV-1"
    assert describe(Happening(at, "C", "w", "event:comment", {"payload": {"text": "hi"}}),
                    w) == "event:comment: text=hi"
    assert describe(Happening(at, "C", "w", "job:survey", {"status": "done", "result": "sent",
                                                           "payload": {}}), w) == "survey: sent"
