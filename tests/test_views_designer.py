"""The designer's pages through Flask's test client (views/designer.py and
views/designer_live.py): designers only, the list and New, the live check and the draft
saved by revision, the preview and outline (escaped; framable only the preview),
publishing with a state map (SQLite and PostgreSQL), the versions, a conflict with the
files, and a simulation against the draft."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from caseloop import outline
from caseloop.extension import state
from caseloop.models import Draft, Publication
from caseloop.spec import check_texts

from .conftest import ROOT, make_app, postgresql_url
from .test_cases import dispose
from .test_cli_commands import TICKET_V1, TICKET_V2, _cases, _open, _ticket_app
from .test_views_auth import add, login, token
from .test_views_cases import NEW

WF = "/designer/workflow/complaint"
TK = "/designer/workflow/ticket"
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NAV = 'href="/designer"'

#: One request to every designer route (the first test checks none is missing).
ROUTES = [("GET", "/designer"), ("POST", "/designer/new"), ("GET", WF), ("POST", WF),
          ("POST", f"{WF}/discard"), ("POST", f"{WF}/rebase"), ("POST", f"{WF}/take-file"),
          ("GET", f"{WF}/publish"), ("POST", f"{WF}/publish"), ("GET", f"{WF}/versions"),
          ("POST", f"{WF}/check"), ("POST", f"{WF}/draft"), ("GET", f"{WF}/preview?lang=en"),
          ("POST", f"{WF}/preview"), ("GET", f"{WF}/outline"),
          ("GET", "/designer/schema/workflow.json"), ("POST", "/designer/form/complaint/model"),
          ("POST", "/designer/form/complaint/layout"), ("POST", f"{WF}/simulate")]

XSS_FORM = f"""\
form: xss
title: {{en: "{SCRIPT} Title", zh: "{SCRIPT} 标题"}}
fields:
  - name: summary
    type: text
    label: {{en: "{SCRIPT} Summary", zh: "{SCRIPT} 摘要"}}
    help: {{en: "{SCRIPT} Help", zh: "{SCRIPT} 帮助"}}
"""
XSS_FLOW = f"""\
workflow: xss
title: {{en: "{SCRIPT} Flow", zh: "{SCRIPT} 流程"}}
form: xss
roles: [agent]
start: [agent]
initial: open
states:
  open: {{label: {{en: "{SCRIPT} Open", zh: "{SCRIPT} 处理中"}}}}
  closed: {{label: {{en: Closed, zh: 已关闭}}, category: done, final: true}}
transitions:
  - {{trigger: close, from: open, to: closed, allow: [agent],
     label: {{en: "{SCRIPT} Close", zh: "{SCRIPT} 关闭"}}}}
"""


def client_of(app: Flask, name: str = "dora", roles: tuple[str, ...] = ("designer",)
              ) -> tuple[FlaskClient, str]:
    """A logged-in client reading English, and its CSRF token."""
    add(app, name, roles=roles)
    client = app.test_client()
    client.set_cookie("caseloop_lang", "en")
    assert login(client, name).status_code == 302
    return client, token(client, "/home")


def post_json(client: FlaskClient, path: str, csrf: str, body: Any) -> TestResponse:
    return client.post(path, json=body, headers={"X-CSRFToken": csrf})


def text_of(resp: TestResponse) -> str:
    """The page with its entities resolved (messages quote names: 'ticket')."""
    return html.unescape(resp.get_data(as_text=True))


def drafts_in(app: Flask) -> dict[tuple[str, str], tuple[str, int, str]]:
    with app.app_context():
        session = state().db.session
        session.expire_all()
        return {(d.kind, d.name): (d.text, d.revision, d.updated_by)
                for d in session.execute(select(Draft)).scalars()}


def publications(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        rows = state().db.session.execute(select(Publication)).scalars()
        return [{"by": p.published_by, "note": p.note, "versions": p.versions,
                 "state_map": p.state_map, "migrated": p.migrated} for p in rows]


def in_effect(app: Flask, kind: str, name: str) -> tuple[str, str]:
    with app.app_context():
        found = state().registry.text(kind, name)
        assert found is not None
        return found


def position(text: str, word: str) -> tuple[int, int]:
    line = next(i for i, row in enumerate(text.splitlines(), 1) if word in row)
    return line, text.splitlines()[line - 1].index(word) + 1


@pytest.fixture(params=["sqlite", "postgresql"])
def tickets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The small 'ticket' definitions (tests/test_cli_commands.py), on both databases."""
    app = _ticket_app(tmp_path, postgresql_url() if request.param == "postgresql" else "")
    yield app
    dispose(app)


# -- who may design ------------------------------------------------------------------------
def any_body(client: FlaskClient, method: str, path: str, csrf: str) -> TestResponse:
    """``path`` asked for as a designer's page would, with a body fit for any POST."""
    if method == "GET":
        return client.get(path)
    return post_json(client, path, csrf, {"text": "form: x\n", "revision": 0, "scenario": "x",
                                          "model": {}})


def test_every_designer_route_is_for_designers_only(app: Flask) -> None:
    adapter = app.url_map.bind("localhost")
    assert {adapter.match(path.split("?")[0], method=method)[0] for method, path in ROUTES} \
        == {r.endpoint for r in app.url_map.iter_rules()
            if r.endpoint.startswith("caseloop_views.designer")}
    anonymous = app.test_client()
    csrf = token(anonymous)  # the login page's
    for method, path in ROUTES:
        resp = any_body(anonymous, method, path, csrf)
        assert resp.status_code == 302 and resp.location.startswith("/login?next=/designer")
    for name, roles in (("amy", ("agent",)), ("ada", ("admin", "supervisor", "agent"))):
        client, csrf = client_of(app, name, roles)
        for method, path in ROUTES:
            resp = any_body(client, method, path, csrf)
            assert resp.status_code == 403, (name, method, path)
            assert "Only designers may see this page." in resp.get_data(as_text=True)
        assert NAV not in client.get("/home").get_data(as_text=True)
    assert drafts_in(app) == {} and publications(app) == []
    designer, _ = client_of(app)
    home = designer.get("/home").get_data(as_text=True)
    assert re.search(r'href="/designer"[^>]*>Designer</a>', home)


def test_the_designer_roles_come_from_the_configuration(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'roles.sqlite3'}", tmp_path,
                   CASELOOP_DESIGNER_ROLES=["builder"])
    builder, _ = client_of(app, "bob", ("builder",))
    assert builder.get("/designer").status_code == 200
    assert NAV in builder.get("/home").get_data(as_text=True)
    designer, _ = client_of(app, "dora", ("designer",))
    assert designer.get("/designer").status_code == 403
    assert NAV not in designer.get("/home").get_data(as_text=True)


# -- the list and New ----------------------------------------------------------------------
def _row(page: str, key: str) -> str:
    found = re.search(rf'<tr data-definition="{key}">(.*?)</tr>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def test_the_list_shows_versions_sources_and_drafts(app: Flask) -> None:
    client, csrf = client_of(app)
    with app.app_context():
        current = state().registry.current
        wf, form = current.workflows["complaint"], current.forms["complaint"]
    page = client.get("/designer").get_data(as_text=True)
    for key, item in (("workflow:complaint", wf), ("form:complaint", form)):
        row = _row(page, key)
        assert item.version in row and f"file {item.path}" in row and "no draft" in row
    assert "Customer complaint" in _row(page, "form:complaint")
    path, text = in_effect(app, "workflow", "complaint")
    assert post_json(client, f"{WF}/draft", csrf, {"text": text + "# mine\n",
                                                    "revision": 0}).status_code == 200
    assert "draft by dora" in _row(client.get("/designer").get_data(as_text=True),
                                   "workflow:complaint")


def test_new_makes_a_draft_from_a_template_or_says_why_not(app: Flask) -> None:
    client, csrf = client_of(app)
    made = client.post("/designer/new", data={"csrf_token": csrf, "kind": "form",
                                               "name": "warranty"})
    assert made.status_code == 302 and made.location == "/designer/form/warranty"
    ((key, (text, revision, who)),) = drafts_in(app).items()
    assert key == ("form", "warranty") and text.startswith("form: warranty\n")
    assert (revision, who) == (1, "dora")
    assert "No problems." in client.get(made.location).get_data(as_text=True)
    listed = client.get("/designer").get_data(as_text=True)
    assert '<a href="/designer/form/warranty">form <code>warranty</code></a>' in listed
    for name, why in (("Bad Name", "'Bad Name' cannot name a form"),
                      ("complaint", "a form named 'complaint' exists already")):
        bad = client.post("/designer/new", data={"csrf_token": csrf, "kind": "form",
                                                  "name": name}, follow_redirects=True)
        assert bad.status_code == 200 and why in text_of(bad)
    assert list(drafts_in(app)) == [("form", "warranty")]


# -- the live check and saving ---------------------------------------------------------------
def test_the_check_answers_what_caseloop_check_does_with_positions(app: Flask) -> None:
    client, csrf = client_of(app)
    path, text = in_effect(app, "workflow", "complaint")
    broken = text.replace("    to: closed\n", "    to: closd\n")
    with app.app_context():
        registry = state().registry
        _, expected = check_texts({**registry.snapshot(), path: broken},
                                  extensions=registry.extensions)
    resp = post_json(client, f"{WF}/check", csrf, {"text": broken})
    assert resp.status_code == 200
    got = resp.get_json()["problems"]
    assert [(p["path"], p["line"], p["col"], p["code"], p["message"]) for p in got] == [
        (p.path, p.line, p.col, p.code, p.message) for p in expected]
    error = next(p for p in got if p["severity"] == "error")
    assert "closd" in error["message"] and error["here"] and error["code"].startswith("CL")
    assert (error["line"], error["col"]) == position(broken, "closd")
    for bad in ({"data": "not json", "content_type": "text/plain"},
                {"data": "{", "content_type": "application/json"}, {"json": ["text"]},
                {"json": {"text": 5}}, {"json": {"text": "#" * (256 * 1024 + 1)}}):
        refused = client.post(f"{WF}/check", headers={"X-CSRFToken": csrf}, **bad)
        assert refused.status_code == 422, bad
        assert "at most 256 KiB" in refused.get_json()["error"]["message"]
    assert drafts_in(app) == {}


def test_drafts_save_by_revision_and_a_stale_save_is_refused(app: Flask) -> None:
    dora, dora_csrf = client_of(app)
    eve, eve_csrf = client_of(app, "eve")
    _, text = in_effect(app, "workflow", "complaint")
    first = post_json(dora, f"{WF}/draft", dora_csrf, {"text": text + "# 1\n", "revision": 0})
    assert first.status_code == 200
    assert first.get_json()["revision"] == 2 and first.get_json()["stale"] is False
    assert drafts_in(app) == {("workflow", "complaint"): (text + "# 1\n", 2, "dora")}
    assert post_json(eve, f"{WF}/draft", eve_csrf,
                     {"text": text + "# 2\n", "revision": 2}).get_json()["revision"] == 3
    for revision in (2, 0):  # dora's editor still holds revision 2; a page with no draft
        late = post_json(dora, f"{WF}/draft", dora_csrf, {"text": "late", "revision": revision})
        message = late.get_json()["error"]["message"]
        assert late.status_code == 409
        assert ("eve saved this draft" if revision else "last saved by eve") in message
    assert drafts_in(app) == {("workflow", "complaint"): (text + "# 2\n", 3, "eve")}
    bad = post_json(dora, f"{WF}/draft", dora_csrf, {"text": "x", "revision": "3"})
    assert bad.status_code == 422 and "revision" in bad.get_json()["error"]["message"]
    # Without script, the editor's form posts the text and the revision it was loaded at.
    saved = dora.post(WF, data={"csrf_token": dora_csrf, "text": text + "# 3\n",
                                "revision": "3"})
    assert saved.status_code == 302 and saved.location == WF
    assert drafts_in(app) == {("workflow", "complaint"): (text + "# 3\n", 4, "dora")}
    page = dora.get(WF).get_data(as_text=True)
    assert "Draft saved (revision 4)." in page and 'name="revision" value="4"' in page
    stale = eve.post(WF, data={"csrf_token": eve_csrf, "text": "old", "revision": "3"},
                     follow_redirects=True)
    assert "dora saved this draft" in stale.get_data(as_text=True)
    assert drafts_in(app)[("workflow", "complaint")][0] == text + "# 3\n"
    gone = dora.post(f"{WF}/discard", data={"csrf_token": dora_csrf})
    assert gone.location == "/designer" and drafts_in(app) == {}
    after = post_json(eve, f"{WF}/draft", eve_csrf, {"text": "x", "revision": 4})
    assert after.status_code == 409 and "published or discarded" in \
        after.get_json()["error"]["message"]


def test_a_page_loaded_before_the_draft_existed_does_not_overwrite_it(app: Flask) -> None:
    dora, dora_csrf = client_of(app)
    eve, eve_csrf = client_of(app, "eve")
    _, text = in_effect(app, "workflow", "complaint")
    assert 'name="revision" value="0"' in eve.get(WF).get_data(as_text=True)
    post_json(dora, f"{WF}/draft", dora_csrf, {"text": text + "# dora\n", "revision": 0})
    refused = eve.post(WF, data={"csrf_token": eve_csrf, "text": text + "# eve\n",
                                 "revision": "0"})
    assert refused.status_code == 409
    assert "# eve" in refused.get_data(as_text=True)  # eve's text comes back to her
    assert drafts_in(app)[("workflow", "complaint")] == (text + "# dora\n", 2, "dora")


def test_a_revision_that_is_no_number_is_refused_not_a_crash(app: Flask) -> None:
    client, csrf = client_of(app)
    resp = client.post(WF, data={"csrf_token": csrf, "text": "x", "revision": "abc"})
    assert resp.status_code == 409 and drafts_in(app) == {}


# -- preview and outline -------------------------------------------------------------------
def test_the_preview_shows_the_form_in_both_languages_and_may_be_framed(app: Flask) -> None:
    client, csrf = client_of(app)
    zh = client.get("/designer/form/complaint/preview?lang=zh")
    en = client.get("/designer/form/complaint/preview?lang=en")
    assert zh.status_code == en.status_code == 200
    assert '<html lang="zh-CN">' in zh.get_data(as_text=True)
    assert "客户投诉" in zh.get_data(as_text=True) and "受理渠道" in zh.get_data(as_text=True)
    assert "Customer complaint" in en.get_data(as_text=True)
    assert "Received via" in en.get_data(as_text=True)
    assert "受理渠道" not in en.get_data(as_text=True)
    for framed in (zh, en):
        assert framed.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in framed.headers["Content-Security-Policy"]
    for path in ("/designer", WF, f"{WF}/outline", f"{WF}/publish", f"{WF}/versions"):
        resp = client.get(path, follow_redirects=True)
        assert resp.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
    in_state = client.get(f"{WF}/preview?lang=en&state=acknowledged").get_data(as_text=True)
    assert "<code>acknowledged</code>" in in_state
    live = client.post("/designer/form/complaint/preview?lang=en", headers={
        "X-CSRFToken": csrf}, data={**NEW, "segment": "high_value"})
    assert live.status_code == 200 and live.get_json()["is_vip"]["value"] is True


def test_labels_are_text_in_the_preview_outline_and_list(tmp_path: Path) -> None:
    for folder, text in (("forms", XSS_FORM), ("workflows", XSS_FLOW)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "xss.yaml").write_text(text, "utf-8")
    app = make_app(f"sqlite:///{tmp_path / 'xss.sqlite3'}", tmp_path, CASELOOP_DEFINITIONS=[
        str(tmp_path / "forms"), str(tmp_path / "workflows")])
    client, _ = client_of(app)
    pages = {path: client.get(path) for path in (
        "/designer", "/designer/workflow/xss", "/designer/form/xss/preview?lang=en",
        "/designer/form/xss/preview?lang=zh", "/designer/workflow/xss/preview?lang=en",
        "/designer/workflow/xss/outline?lang=en", "/designer/form/xss/outline?lang=zh")}
    for path, resp in pages.items():
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200 and SCRIPT not in body and ESCAPED in body, path
    preview = pages["/designer/form/xss/preview?lang=en"].get_data(as_text=True)
    assert f"{ESCAPED} Summary" in preview and f"{ESCAPED} Help" in preview
    assert f"{ESCAPED} 帮助" in pages["/designer/form/xss/preview?lang=zh"].get_data(as_text=True)
    fragment = pages["/designer/workflow/xss/outline?lang=en"].get_data(as_text=True)
    tables = re.findall(r"<table.*?</table>", fragment, re.S)
    assert any(f"{ESCAPED} Open" in tb for tb in tables)
    assert any(f"{ESCAPED} Summary" in tb for tb in tables)
    attribute = re.search(r'data-diagram="([^"]*)"', fragment)
    assert attribute and "<" not in attribute.group(1) and "#60;script#62;" in attribute.group(1)
    with app.app_context():
        wf = state().registry.workflow("xss")
        assert wf is not None
        assert html.unescape(attribute.group(1)) == outline.diagram(wf, "en")


# -- publishing ----------------------------------------------------------------------------
def test_a_rename_with_open_cases_publishes_only_with_a_state_map(tickets: Flask) -> None:
    app = tickets
    triage, new, done = _open(app, "sort"), _open(app), _open(app, "finish")
    before = _cases(app)
    old = before[triage][0]
    client, csrf = client_of(app)
    assert post_json(client, f"{TK}/draft", csrf, {"text": TICKET_V2,
                                                    "revision": 0}).status_code == 200
    page = text_of(client.get(f"{TK}/publish"))
    assert "-  triage: {label: {en: Triage" in page and "+  assessing: {label:" in page
    assert 'name="map.ticket.triage"' in page
    assert "1 open case(s) would be stranded" in page
    refused = client.post(f"{TK}/publish", data={"csrf_token": csrf, "do": "publish",
                                                  "migrate": "on", "note": "no map"})
    assert refused.status_code == 422
    assert "Not published: 1 open 'ticket' case(s)" in text_of(refused)
    assert publications(app) == [] and _cases(app) == before
    assert ("workflow", "ticket") in drafts_in(app)
    dry = text_of(client.post(f"{TK}/publish", data={
        "csrf_token": csrf, "do": "check", "map.ticket.triage": "assessing"}))
    assert f"1 open case(s) on version {old} in 'triage' → assessing" in dry
    assert publications(app) == [] and _cases(app) == before
    published = client.post(f"{TK}/publish", data={
        "csrf_token": csrf, "do": "publish", "map.ticket.triage": "assessing",
        "migrate": "on", "note": "rename triage"})
    assert published.status_code == 302 and published.location == f"{TK}/versions"
    (pub,) = publications(app)
    version = pub["versions"]["workflow:ticket"]
    assert (pub["by"], pub["note"]) == ("dora", "rename triage")
    assert pub["state_map"] == {"ticket": {"triage": "assessing"}}
    assert pub["migrated"]["ticket"]["count"] == 2
    after = _cases(app)
    assert after[triage][:2] == (version, "assessing") and after[new][:2] == (version, "new")
    assert after[done] == before[done]
    assert drafts_in(app) == {}
    versions = text_of(client.get(published.location))
    assert "Published workflow 'ticket' (publication #1)." in versions
    assert "2 open case(s) moved to the new version." in versions
    assert "#1 by dora" in versions and "rename triage" in versions
    assert f"<code>{version}</code> <strong>in effect</strong>" in versions
    compared = text_of(client.get(f"{TK}/versions?a={old}&b={version}"))
    assert f"{old} → {version}" in compared
    assert "-  triage: {label" in compared and "+  assessing: {label" in compared


def test_an_invalid_draft_shows_where_and_is_never_published(tmp_path: Path) -> None:
    app = _ticket_app(tmp_path)
    client, csrf = client_of(app)
    broken = TICKET_V1.replace("to: done", "to: closd")
    post_json(client, f"{TK}/draft", csrf, {"text": broken, "revision": 0})
    line, col = position(broken, "closd")
    page = client.get(f"{TK}/publish").get_data(as_text=True)
    problems = re.search(r'id="publish-problems".*?</div>', page, re.S)
    assert problems and f"ticket.yaml:{line}:{col}:" in problems.group(0)
    assert "closd" in problems.group(0) and 'id="publish-form"' not in page
    assert f'data-line="{line}" data-col="{col}"' in client.get(TK).get_data(as_text=True)
    refused = client.post(f"{TK}/publish", data={"csrf_token": csrf, "do": "publish"})
    assert refused.status_code == 422
    assert "Not published: the draft has errors" in refused.get_data(as_text=True)
    assert publications(app) == [] and drafts_in(app)[("workflow", "ticket")][0] == broken


def test_a_file_changed_after_a_publication_is_a_conflict_to_resolve(tmp_path: Path) -> None:
    app = _ticket_app(tmp_path)
    client, csrf = client_of(app)
    post_json(client, f"{TK}/draft", csrf, {"text": TICKET_V1.replace("Sort", "Sort out"),
                                            "revision": 0})
    assert client.post(f"{TK}/publish", data={"csrf_token": csrf,
                                              "do": "publish"}).status_code == 302
    edited = TICKET_V1.replace("Finish", "Complete")
    (tmp_path / "workflows" / "ticket.yaml").write_text(edited, "utf-8")
    with app.app_context():
        state().registry.load()  # as a restart would
    listed = text_of(client.get("/designer"))
    assert "Files changed since they were published from the designer" in listed
    assert "changed since workflow 'ticket' was published from the designer (#1 by dora)" \
        in listed
    editor = client.get(TK).get_data(as_text=True)
    assert 'id="conflict"' in editor and f'action="{TK}/take-file"' in editor
    took = client.post(f"{TK}/take-file", data={"csrf_token": csrf}, follow_redirects=True)
    assert "The draft now holds the file's text" in text_of(took)
    assert drafts_in(app)[("workflow", "ticket")][0] == edited
    assert client.post(f"{TK}/publish", data={"csrf_token": csrf,
                                              "do": "publish"}).status_code == 302
    assert "Files changed since" not in client.get("/designer").get_data(as_text=True)
    assert 'id="conflict"' not in client.get(TK).get_data(as_text=True)


# -- simulation ----------------------------------------------------------------------------
def test_a_scenario_runs_against_the_draft(app: Flask) -> None:
    client, csrf = client_of(app)
    scenario = (ROOT / "workflows" / "scenarios" / "complaint_loop.yaml").read_text("utf-8")
    assert ">complaint_loop</option>" in client.get(WF).get_data(as_text=True)
    ran = post_json(client, f"{WF}/simulate", csrf, {"scenario": scenario, "lang": "en"})
    assert ran.status_code == 200
    result = ran.get_json()
    assert result["ok"] is True and result["problems"] == [] and len(result["lines"]) > 10
    assert result["lines"][0].startswith("Scenario: Complaint on a Friday afternoon")
    broken = scenario.replace("  - wait: 1h\n", "  - wait: soon\n", 1)
    failed = post_json(client, f"{WF}/simulate", csrf, {"scenario": broken}).get_json()
    line, col = position(broken, "soon")
    assert failed["ok"] is False and failed["lines"] == []
    assert failed["problems"] == [f"scenario:{line}:{col}: 'soon' is not a duration: write a "
                                  "duration such as '30m', '4h', '2d' or '1d 4h' (w, d, h, m)"]
    for body in ({}, {"scenario": 7}, {"text": scenario}):
        missing = post_json(client, f"{WF}/simulate", csrf, body)
        assert missing.status_code == 422 and "scenario" in missing.get_json()["error"]["message"]
    assert drafts_in(app) == {}


def test_comparing_workflow_versions_shows_the_form_change_that_made_them(app: Flask) -> None:
    client, csrf = client_of(app)
    before = in_effect(app, "workflow", "complaint")
    with app.app_context():
        old = state().registry.workflow("complaint").version  # type: ignore[union-attr]
    _, form = in_effect(app, "form", "complaint")
    changed = form.replace("en: Received via", "en: Came in via", 1)
    assert post_json(client, "/designer/form/complaint/draft", csrf,
                     {"text": changed, "revision": 0}).status_code == 200
    done = client.post("/designer/form/complaint/publish",
                       data={"csrf_token": csrf, "do": "publish"})
    assert done.status_code == 302
    assert in_effect(app, "workflow", "complaint") == before  # its own file is unchanged
    with app.app_context():
        state().registry.refresh(state().db.session, force=True)
        new = state().registry.workflow("complaint").version  # type: ignore[union-attr]
    assert new != old
    page = text_of(client.get(f"{WF}/versions?a={old}&b={new}"))
    assert f"forms/complaint.yaml ({old})" in page
    assert "-      en: Received via" in page and "+      en: Came in via" in page


def test_while_the_draft_is_broken_its_own_problems_are_listed_not_their_echo(
        app: Flask) -> None:
    client, csrf = client_of(app)
    _, text = in_effect(app, "workflow", "complaint")
    broken = text.replace("workflow: complaint", "workflow: complaint\n  oops", 1)
    with app.app_context():
        registry = state().registry
        path = registry.text("workflow", "complaint")[0]  # type: ignore[index]
        _, everything = check_texts({**registry.snapshot(), path: broken},
                                    extensions=registry.extensions)
    others = [p for p in everything if p.path != path]
    assert others  # improvement_plan and revisit no longer find the workflow 'complaint'
    answer = post_json(client, f"{WF}/check", csrf, {"text": broken}).get_json()
    assert {p["path"] for p in answer["problems"]} == {path}
    assert answer["elsewhere"] == len(others)
    saved = post_json(client, f"{WF}/draft", csrf, {"text": broken, "revision": 0}).get_json()
    assert saved["elsewhere"] == len(others)
    page = text_of(client.get(WF))
    assert f"{len(others)} more problem(s) in other files" in page
    assert "improvement_plan.yaml:" not in page
