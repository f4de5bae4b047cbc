"""`caseloop db`, `serve`, `users` and `cases migrate` through Flask's CLI runner, and the
real console script where its output is a contract (`users token`) or it serves HTTP."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select as query
from sqlalchemy import text

from caseloop import migrations
from caseloop.app import create_app
from caseloop.cases import Cases
from caseloop.extension import state
from caseloop.migrate import MigrationError, migrate
from caseloop.models import Case, Event, User
from caseloop.server import Server
from caseloop.users import actor_for, add_user, check_password

from .conftest import SHIPPED, make_app, postgresql_url

CASELOOP = Path(sys.executable).with_name("caseloop")

TICKET_FORM = """\
form: ticket
title: {en: Ticket, zh: 工单}
fields:
  - name: note
    type: text
    label: {en: Note, zh: 备注}
"""
TICKET_V1 = """\
workflow: ticket
title: {en: Ticket, zh: 工单}
form: ticket
reference_prefix: TKT
roles: [agent]
start: [agent]
initial: new
states:
  new: {label: {en: New, zh: 新建}}
  triage: {label: {en: Triage, zh: 分诊}}
  done: {label: {en: Done, zh: 完成}, category: done, final: true}
transitions:
  - {trigger: sort, from: new, to: triage, allow: [agent], label: {en: Sort, zh: 分拣}}
  - {trigger: finish, from: [new, triage], to: done, allow: [agent],
     label: {en: Finish, zh: 完成}}
"""
#: Version 2 renames 'triage' to 'assessing'.
TICKET_V2 = TICKET_V1.replace("triage", "assessing")


def fails(result: Result, code: int, *texts: str) -> None:
    """A clean failure: the exit code, the message, and no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for wanted in texts:
        assert wanted in result.output, result.output


def bare_app(tmp_path: Path, url: str = "", **config: object) -> Flask:
    """The app on a database nobody has migrated yet."""
    app = create_app({
        "TESTING": True,
        "CASELOOP_DEFINITIONS": [str(p) for p in SHIPPED],
        "CASELOOP_DATABASE_URL": url or f"sqlite:///{tmp_path / 'bare.sqlite3'}",
        "CASELOOP_SECRET_KEY": "test",
        **config,
    })
    app.instance_path = str(tmp_path / "instance")
    return app


# -- caseloop db -----------------------------------------------------------------------


def test_db_upgrade_is_idempotent_and_current_tells_the_revision(tmp_path: Path) -> None:
    runner = bare_app(tmp_path).test_cli_runner()
    assert runner.invoke(args=["db", "current"]).output.startswith("none (an empty database")
    first = runner.invoke(args=["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "from empty to 0007 (head)" in first.output
    again = runner.invoke(args=["db", "upgrade"])
    assert again.exit_code == 0
    assert "is at 0007 (head): nothing to do" in again.output
    current = runner.invoke(args=["db", "current"])
    assert current.output == "0007 (head)\n"


def test_commands_on_an_unmigrated_database_say_to_upgrade(tmp_path: Path) -> None:
    runner = bare_app(tmp_path).test_cli_runner()
    for args in (["users", "list"], ["users", "token", "alice"],
                 ["cases", "migrate", "complaint", "--to", "current"]):
        fails(runner.invoke(args=args), 1, "run 'caseloop db upgrade' first")


def test_tables_made_without_migrations_are_refused_then_stamped(tmp_path: Path) -> None:
    from caseloop.models import Base

    app = bare_app(tmp_path)
    with app.app_context():
        Base.metadata.create_all(state().db.engine)
    runner = app.test_cli_runner()
    fails(runner.invoke(args=["db", "upgrade"]), 1, "caseloop db stamp head")
    fails(runner.invoke(args=["db", "stamp", "nonsense"]), 1, "cannot stamp 'nonsense'")
    stamped = runner.invoke(args=["db", "stamp"])
    assert stamped.exit_code == 0, stamped.output
    assert "as being at 0007" in stamped.output
    assert "nothing to do" in runner.invoke(args=["db", "upgrade"]).output


def test_a_database_from_a_newer_caseloop_is_refused(app: Flask,
                                                     runner: FlaskCliRunner) -> None:
    with app.app_context():
        with state().db.engine.begin() as conn:
            conn.execute(text(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'"))
    for args in (["db", "upgrade"], ["users", "list"]):
        fails(runner.invoke(args=args), 1, "the database is at revision 9999, which this "
              "version of Caseloop does not know (its newest is 0007): a newer Caseloop")
    assert runner.invoke(args=["db", "current"]).output.startswith("9999 (unknown: ")


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    app = bare_app(tmp_path, "postgresql+psycopg://caseloop@127.0.0.1:1/nowhere")
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    fails(result, 1, "the database postgresql+psycopg://caseloop@127.0.0.1:1/nowhere failed",
          "check CASELOOP_DATABASE_URL")
    assert len(result.output.strip().splitlines()) == 1


# -- caseloop serve -----------------------------------------------------------------------


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> list[Server]:
    """``Server.run`` returns at once (after closing its socket) instead of serving."""
    ran: list[Server] = []

    def run(self: Server) -> None:
        ran.append(self)
        self.close()

    monkeypatch.setattr(Server, "run", run)
    return ran


def test_serve_migrates_records_and_prints_the_url(tmp_path: Path,
                                                   no_serving: list[Server]) -> None:
    app = bare_app(tmp_path)
    result = app.test_cli_runner().invoke(args=["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    (server,) = no_serving
    url = server.url
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
    assert f"Caseloop is listening on {url}" in result.output
    assert "at 0007" in result.output
    assert "3 workflows, 4 forms (7 new versions recorded)" in result.output
    with app.app_context():
        assert migrations.current(state().db.engine) == "0007"
        assert len(state().registry.versions("complaint", state().db.session)) == 1
    # A second start records nothing new.
    again = app.test_cli_runner().invoke(args=["serve", "--port", "0"])
    assert "(0 new versions recorded)" in again.output


def test_serve_refuses_broken_definitions_one_line_each(tmp_path: Path,
                                                        no_serving: list[Server]) -> None:
    broken = tmp_path / "defs"
    broken.mkdir()
    (broken / "ticket.yaml").write_text(
        TICKET_V1.replace("to: done", "to: dne").replace("from: new,", "from: nw,"), "utf-8")
    (broken / "form.yaml").write_text(TICKET_FORM, "utf-8")
    app = bare_app(tmp_path, CASELOOP_DEFINITIONS=[str(broken)])
    result = app.test_cli_runner().invoke(args=["serve"])
    fails(result, 1, "cannot serve: the definitions have 2 errors:",
          "fix them, then check with 'caseloop check'")
    lines = result.output.strip().splitlines()
    assert len(lines) == 4
    assert "CL023 unknown state 'dne' (did you mean 'done'?)" in lines[2]
    assert "hint:" not in result.output
    assert no_serving == []
    with app.app_context():  # nothing touched
        assert migrations.current(state().db.engine) is None


def test_serve_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = bare_app(tmp_path).test_cli_runner().invoke(args=["serve", "--port", str(port)])
    fails(result, 1, f"cannot listen on 127.0.0.1:{port}", "choose another with --port")


def test_serve_on_an_unknown_host_says_so(tmp_path: Path) -> None:
    result = bare_app(tmp_path).test_cli_runner().invoke(
        args=["serve", "--host", "no-such-host.invalid"])
    fails(result, 1, "cannot listen on no-such-host.invalid: ", "give an IP address")


def test_serve_rejects_a_bad_port(runner: FlaskCliRunner) -> None:
    fails(runner.invoke(args=["serve", "--port", "70000"]), 2, "70000 is not in the range")


# -- caseloop users -----------------------------------------------------------------------


def test_users_add_list_token_revoke(app: Flask, runner: FlaskCliRunner) -> None:
    added = runner.invoke(args=["users", "add", "alice", "--role", "agent", "--team", "care",
                                "--team", "vip", "--display-name", "Alice Li",
                                "--locale", "en"])
    assert added.exit_code == 0, added.output
    assert added.output == ("added user alice (roles: agent; teams: care, vip; "
                            "no password: API tokens only)\n")
    issued = runner.invoke(args=["users", "token", "alice", "--label", "crm-sync"])
    assert issued.exit_code == 0, issued.output
    token = issued.output.splitlines()[-1]
    assert token.startswith("cl_") and " " not in token
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/workflows", headers=auth).status_code == 200

    listed = runner.invoke(args=["users", "list"])
    assert listed.exit_code == 0
    header, row = listed.output.splitlines()
    assert header.split() == ["NAME", "DISPLAY", "NAME", "ROLES", "TEAMS", "LOCALE", "TOKENS"]
    assert row.split() == ["alice", "Alice", "Li", "agent", "care,vip", "en", "1"]

    revoked = runner.invoke(args=["users", "revoke", "alice"])
    assert revoked.output == "revoked 1 token of alice\n"
    assert client.get("/api/workflows", headers=auth).status_code == 401
    assert runner.invoke(args=["users", "list"]).output.splitlines()[1].split()[-1] == "0"


def test_users_add_with_a_password_asks_twice(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "add", "bo", "--role", "supervisor", "--password"],
                           input="short\nlong-enough\nmismatch!\nlong-enough\nlong-enough\n")
    assert result.exit_code == 0, result.output
    assert "use at least 8 characters" in result.output
    assert "do not match" in result.output  # click's confirmation
    assert "password set" in result.output
    assert "long-enough" not in result.output  # never echoed
    with app.app_context():
        user = state().db.session.execute(query(User).where(User.name == "bo")).scalar_one()
        assert check_password(user, "long-enough")
        assert user.locale == "zh" and user.display_name == "bo"


def test_users_errors_are_one_line(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["users", "list"]).output == (
        "no users yet; add one with 'caseloop users add NAME --role ROLE'\n")
    runner.invoke(args=["users", "add", "alice", "--role", "agent"])
    duplicate = runner.invoke(args=["users", "add", "alice", "--role", "agent"])
    fails(duplicate, 1, "a user named 'alice' exists already")
    assert len(duplicate.output.strip().splitlines()) == 1
    for args in (["users", "token", "alcie"], ["users", "revoke", "alcie"]):
        result = runner.invoke(args=args)
        fails(result, 1, "no user named 'alcie' (did you mean 'alice'?); add one with "
                         "'caseloop users add alcie --role ROLE'")
        assert len(result.output.strip().splitlines()) == 1
    fails(runner.invoke(args=["users", "add", "carol"]), 2, "Missing option '--role'")
    fails(runner.invoke(args=["users", "add", "carol", "--role", "Agent"]), 2,
          "'Agent': use lower-case letters")
    fails(runner.invoke(args=["users", "add", "carol", "--role", "agent", "--team", "care team"]),
          2, "--team")
    fails(runner.invoke(args=["users", "add", "car ol", "--role", "agent"]), 2, "NAME")
    fails(runner.invoke(args=["users", "add", "carol", "--role", "agent", "--locale", "fr"]), 2,
          "'fr' is not one of 'zh', 'en'")
    fails(runner.invoke(args=["users", "token", "alice", "--label", "x" * 101]), 2,
          "at most 100 characters")


def test_users_add_warns_about_roles_no_workflow_uses(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "add", "dan", "--role", "agnet", "--role", "system"])
    assert result.exit_code == 0
    assert "warning: no workflow uses role 'agnet' (did you mean 'agent'?)" in result.output
    assert "warning: role 'system' lets this user fire" in result.output
    admin = runner.invoke(args=["users", "add", "eve", "--role", "admin"])  # a see-all role
    assert "warning" not in admin.output


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "CASELOOP_DATABASE_URL": url, "CASELOOP_SECRET_KEY": "test",
            "CASELOOP_DEFINITIONS": os.pathsep.join(str(p) for p in SHIPPED)}


def test_users_token_is_alone_on_the_last_line_of_the_real_script(
        app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    runner.invoke(args=["users", "add", "alice", "--role", "agent"])
    env = _env(f"sqlite:///{tmp_path / 'caseloop.sqlite3'}")  # the app fixture's database
    shell = subprocess.run(["sh", "-c", f'"{CASELOOP}" users token alice | tail -1'],
                           env=env, capture_output=True, text=True, timeout=60, check=True)
    token = shell.stdout.strip()
    assert shell.stdout == f"{token}\n" and token.startswith("cl_")
    assert "shown only this once" in shell.stderr
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/workflows", headers=headers).status_code == 200
    unknown = subprocess.run([str(CASELOOP), "users", "token", "nobody"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("Error: no user named 'nobody'")
    assert "Traceback" not in unknown.stderr


def test_the_real_serve_answers_http(tmp_path: Path) -> None:
    env = _env(f"sqlite:///{tmp_path / 'served.sqlite3'}")

    def cli(*args: str) -> str:
        return subprocess.run([str(CASELOOP), *args], env=env, capture_output=True, text=True,
                              timeout=60, check=True).stdout

    cli("db", "upgrade")
    cli("users", "add", "alice", "--role", "agent")
    token = cli("users", "token", "alice").strip()
    proc = subprocess.Popen([str(CASELOOP), "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output: list[str] = []
    try:
        url = _wait_for_url(proc, output)
        request = urllib.request.Request(f"{url}api/workflows",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Server"] == "caseloop"
            body: Any = json.load(response)
        assert "complaint" in json.dumps(body)
    finally:
        proc.send_signal(signal.SIGTERM)  # what docker stop and systemd send
        proc.wait(timeout=20)  # not communicate(): the reader thread owns stdout
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    # The reader thread owns stdout: give it a moment to take the last line.
    deadline = time.monotonic() + 5
    while not "".join(output).endswith("stopped\n") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.stderr.close()
    assert proc.stdout is not None
    proc.stdout.close()
    assert "".join(output).endswith("stopped\n")
    assert "Traceback" not in err


def _wait_for_url(proc: subprocess.Popen[str], seen: list[str]) -> str:
    """The URL serve prints, read by a thread (which keeps collecting every line into
    ``seen``) so that a silent server cannot hang the test."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def read() -> None:
        for line in stdout:
            seen.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if "listening on " in line:
            return line.split("listening on ", 1)[1].split()[0]
    proc.kill()
    raise AssertionError(f"serve did not start: {''.join(seen)}")


# -- caseloop cases migrate -----------------------------------------------------------------


def _ticket_app(tmp_path: Path, url: str = "") -> Flask:
    (tmp_path / "forms").mkdir()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "forms" / "ticket.yaml").write_text(TICKET_FORM, "utf-8")
    (tmp_path / "workflows" / "ticket.yaml").write_text(TICKET_V1, "utf-8")
    return make_app(url or f"sqlite:///{tmp_path / 'tickets.sqlite3'}", tmp_path,
                    CASELOOP_DEFINITIONS=[str(tmp_path / "forms"), str(tmp_path / "workflows")])


def _open(app: Flask, *fire: str) -> int:
    """A ticket case, moved on by the triggers ``fire``; its id."""
    with app.app_context():
        st = state()
        session = st.db.session
        user = session.execute(query(User).where(User.name == "agent")).scalar_one_or_none()
        if user is None:
            user = add_user(session, "agent", roles=["agent"])
        actor = actor_for(session, user)
        cases = Cases(session, st.registry)
        case = cases.create("ticket", {"note": "printer on fire"}, actor)
        for trigger in fire:
            cases.fire(case.id, trigger, {}, actor)
        session.commit()
        return case.id


def _new_version(app: Flask, tmp_path: Path, text: str = TICKET_V2) -> str:
    """Change the workflow file and reload, as a restart would; the new version."""
    (tmp_path / "workflows" / "ticket.yaml").write_text(text, "utf-8")
    with app.app_context():
        st = state()
        st.registry.load()
        st.registry.record(st.db.session)
        st.db.session.commit()
        wf = st.registry.workflow("ticket")
        assert wf is not None
        return wf.version


def _cases(app: Flask) -> dict[int, tuple[str, str, bool, int]]:
    with app.app_context():
        st = state()
        st.db.session.expire_all()
        rows = st.db.session.execute(query(Case).order_by(Case.id)).scalars()
        return {c.id: (c.definition_version, c.state, c.closed, c.version) for c in rows}


def _migrated_events(app: Flask) -> list[tuple[int, str | None, str | None, dict[str, Any]]]:
    with app.app_context():
        rows = state().db.session.execute(query(Event).where(Event.kind == "migrated")
                                          .order_by(Event.id)).scalars()
        return [(e.case_id, e.from_state, e.to_state, e.payload) for e in rows]


@pytest.fixture
def two_versions(tmp_path: Path) -> tuple[Flask, str, str, dict[str, int]]:
    """Tickets on version 1 (new, triage x2, done) and one opened on version 2."""
    app = _ticket_app(tmp_path)
    with app.app_context():
        wf = state().registry.workflow("ticket")
        assert wf is not None
        v1 = wf.version
    ids = {"new": _open(app), "triage1": _open(app, "sort"), "triage2": _open(app, "sort"),
           "done": _open(app, "finish")}
    v2 = _new_version(app, tmp_path)
    ids["v2"] = _open(app)
    return app, v1, v2, ids


def test_migrate_refuses_an_unmapped_state_and_says_which(
        two_versions: tuple[Flask, str, str, dict[str, int]]) -> None:
    app, v1, v2, ids = two_versions
    before = _cases(app)
    for extra in ([], ["--dry-run"]):
        result = app.test_cli_runner().invoke(
            args=["cases", "migrate", "ticket", "--to", "current", *extra])
        fails(result, 1, f"refused: 2 open cases of 'ticket' are in a state that version {v2} "
                         "does not have; map each with --map OLD=NEW (states of "
                         f"{v2}: new, assessing, done)",
              f"state 'triage' (version {v1}): 2 open cases: TKT-", "nothing was changed")
        year = time.gmtime().tm_year
        assert f"TKT-{year}-{ids['triage1']:06d}, TKT-{year}-{ids['triage2']:06d}" in \
            result.output
    assert _cases(app) == before
    assert _migrated_events(app) == []


def test_migrate_dry_run_reports_and_changes_nothing(
        two_versions: tuple[Flask, str, str, dict[str, int]]) -> None:
    app, v1, v2, _ = two_versions
    before = _cases(app)
    result = app.test_cli_runner().invoke(args=[
        "cases", "migrate", "ticket", "--to", v2[:6], "--map", "triage=assessing",
        "--map", "nowhere=new", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"would move 3 open cases of 'ticket' to version {v2} (dry run: nothing changed)",
        f"      1 from {v1}  new    -> new",
        f"      2 from {v1}  triage -> assessing (--map)",
        "note: --map nowhere=… matches no open case",
    ]
    assert _cases(app) == before
    assert _migrated_events(app) == []


def test_migrate_moves_open_cases_in_one_go(
        two_versions: tuple[Flask, str, str, dict[str, int]]) -> None:
    app, v1, v2, ids = two_versions
    before = _cases(app)
    result = app.test_cli_runner().invoke(
        args=["cases", "migrate", "ticket", "--to", "current", "--map", "triage=assessing"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"moved 3 open cases of 'ticket' to version {v2}"
    after = _cases(app)
    assert after[ids["new"]] == (v2, "new", False, before[ids["new"]][3] + 1)
    for key in ("triage1", "triage2"):
        assert after[ids[key]] == (v2, "assessing", False, before[ids[key]][3] + 1)
    assert after[ids["done"]] == before[ids["done"]]  # closed: stays on its version
    assert after[ids["v2"]] == before[ids["v2"]]  # already there
    assert _migrated_events(app) == [
        (ids["new"], "new", "new", {"from_version": v1, "to_version": v2,
                                    "from_state": "new", "to_state": "new"}),
        (ids["triage1"], "triage", "assessing", {"from_version": v1, "to_version": v2,
                                                 "from_state": "triage",
                                                 "to_state": "assessing"}),
        (ids["triage2"], "triage", "assessing", {"from_version": v1, "to_version": v2,
                                                 "from_state": "triage",
                                                 "to_state": "assessing"}),
    ]
    # The moved cases now follow version 2: 'finish' leaves 'assessing'.
    with app.app_context():
        st = state()
        session = st.db.session
        agent = actor_for(session, session.execute(query(User)).scalar_one())
        done = Cases(session, st.registry).fire(ids["triage1"], "finish", {}, agent)
        assert (done.state, done.closed) == ("done", True)
        session.commit()
    again = app.test_cli_runner().invoke(args=["cases", "migrate", "ticket", "--to", "current"])
    assert again.exit_code == 0
    assert again.output == (f"no open 'ticket' cases on a version other than {v2}: "
                            "nothing to move\n")


def test_migrate_back_to_an_older_version_and_into_a_final_state(
        two_versions: tuple[Flask, str, str, dict[str, int]]) -> None:
    app, v1, v2, ids = two_versions
    result = app.test_cli_runner().invoke(
        args=["cases", "migrate", "ticket", "--to", v1, "--map", "new=done"])
    assert result.exit_code == 0, result.output
    assert f"1 from {v2}  new -> done (--map) (closes them)" in result.output
    assert _cases(app)[ids["v2"]][:3] == (v1, "done", True)


def test_migrate_bad_input_is_one_clear_line(
        two_versions: tuple[Flask, str, str, dict[str, int]]) -> None:
    app, v1, v2, _ = two_versions
    runner = app.test_cli_runner()

    def run(*args: str) -> Result:
        return runner.invoke(args=["cases", "migrate", *args])

    fails(run("tiket", "--to", "current"), 1, "no workflow 'tiket' (did you mean 'ticket'?)")
    fails(run("ticket", "--to", "abc123"), 1,
          f"'abc123' is not a version of workflow 'ticket'; use 'current' or one of: {v1}, {v2}")
    fails(run("ticket", "--to", v2[:2]), 1, "is not a version")  # too short to be a prefix
    fails(run("ticket", "--to", "current", "--map", "triage=asessing"), 1,
          f"--map triage=asessing: version {v2} of 'ticket' has no state 'asessing' "
          "(did you mean 'assessing'?)")
    fails(run("ticket", "--to", "current", "--map", "triage"), 2,
          "'triage' is not OLD=NEW (e.g. --map triage=assessing)")
    fails(run("ticket", "--to", "current", "--map", "a=b", "--map", "a=c"), 2,
          "'a' is mapped twice (b, c)")
    fails(run("ticket"), 2, "Missing option '--to'")


def test_migrate_to_current_refuses_while_definitions_are_broken(
        two_versions: tuple[Flask, str, str, dict[str, int]], tmp_path: Path) -> None:
    app, v1, v2, _ = two_versions
    (tmp_path / "workflows" / "ticket.yaml").write_text("workflow: ticket\n", "utf-8")
    broken = make_app(f"sqlite:///{tmp_path / 'tickets.sqlite3'}", tmp_path / "other",
                      CASELOOP_DEFINITIONS=[str(tmp_path / "forms"),
                                            str(tmp_path / "workflows")])
    runner = broken.test_cli_runner()
    fails(runner.invoke(args=["cases", "migrate", "ticket", "--to", "current"]), 1,
          "cannot migrate to the current version: the definitions have")
    # A recorded version still works: it is rebuilt from the files stored with it.
    moved = runner.invoke(args=["cases", "migrate", "ticket", "--to", v1, "--dry-run"])
    assert moved.exit_code == 0, moved.output
    assert f"1 from {v2}  new -> new" in moved.output


def test_migrate_gives_up_when_a_case_changes_meanwhile(
        two_versions: tuple[Flask, str, str, dict[str, int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, v1, v2, ids = two_versions
    before = _cases(app)
    with app.app_context():
        st = state()
        engine = st.db.engine

        def meanwhile(session: object) -> list[object]:
            # Another writer moves a case on between our read and our write.
            with engine.begin() as other:
                other.execute(Case.__table__.update().where(Case.id == ids["new"]).values(
                    version=Case.version + 1))
            return []

        monkeypatch.setattr(st.registry, "record", meanwhile)
        with pytest.raises(MigrationError, match="changed while they were being migrated"):
            migrate(st.db.session, st.registry, "ticket", "current",
                    {"triage": "assessing"})
        st.db.session.rollback()
    after = _cases(app)
    assert after[ids["triage1"]] == before[ids["triage1"]]
    assert _migrated_events(app) == []


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_migrate_function_on_each_database(db: str, tmp_path: Path) -> None:
    app = _ticket_app(tmp_path, postgresql_url() if db == "postgresql" else "")
    triage = _open(app, "sort")
    v2 = _new_version(app, tmp_path)
    with app.app_context():
        st = state()
        report = migrate(st.db.session, st.registry, "ticket", "current",
                         {"triage": "assessing"})
        st.db.session.commit()
        assert report.applied and report.count == 1 and report.to_version == v2
        case = st.db.session.get(Case, triage)
        assert case is not None and (case.state, case.definition_version) == ("assessing", v2)
        st.db.session.remove()
        st.db.engine.dispose()
