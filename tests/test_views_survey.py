"""The customer's survey page (views/survey.py, ``/s/<token>``): the questions in the
customer's language with a widget per type, an answer typed and recorded once, the
form again with the engine's messages and the input kept, a friendly page for dead
links, CSRF for a first-time visitor, and headers that keep the token private. On
SQLite and PostgreSQL (the ``loop`` fixture), through Flask's test client."""

from __future__ import annotations

import contextvars
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from caseloop.cases import Actor, Cases
from caseloop.extension import state
from caseloop.models import Job, SurveyLink
from caseloop.views import CSP

from . import test_loop
from .test_api import COMPLAINT
from .test_loop import Loop
from .test_surveys import CUSTOMER, _sent

#: The fixture, on SQLite and PostgreSQL.
loop = test_loop.loop

#: A whole answer as a browser posts it.
FORM = {"csat": "4", "nps": "9", "ces": "6", "issue_resolved": "true",
        "drivers": ["response_speed", "staff_attitude"], "comment": "Quick and friendly."}
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Browser(FlaskClient):
    """A test client whose requests each run in a context of their own, as in a
    server: the ``loop`` fixture keeps an application context open, which requests
    would otherwise share — and with it ``flask.g``, where Flask-WTF keeps the CSRF
    token it handed out, so every client would get the first one's token."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response: TestResponse = contextvars.Context().run(super().open, *args, **kwargs)
        return response


def visitor(loop: Loop) -> FlaskClient:
    return Browser(loop.app, loop.app.response_class, use_cookies=True)


def sent(loop: Loop, lang: str = "en", *, after_complaint: bool = True, **data: Any
         ) -> tuple[int, str]:
    """A revisit in ``survey_sent`` (after a complaint, else a care call), its link in
    ``lang``: the case id and the token."""
    if after_complaint:
        complaint = loop.create("complaint", COMPLAINT)
        data = {"reason": "after_resolution", "complaint_reference": complaint.reference,
                **data}
    case_id, token = _sent(loop, {**CUSTOMER, "preferred_language": lang, **data})
    # The page runs on the real clock, the fixture on a fixed one: a week from now.
    loop.session.execute(update(SurveyLink).where(SurveyLink.case_id == case_id).values(
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=7)))
    loop.session.commit()
    return case_id, token


def csrf(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return found.group(1)


def answer(client: FlaskClient, token: str, form: dict[str, Any], **headers: str
           ) -> TestResponse:
    """Open the page (as the customer's browser does first), then send ``form``."""
    page = client.get(f"/s/{token}", headers=headers)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(f"/s/{token}", data={"csrf_token": csrf(page), **form}, headers=headers)


def link_of(loop: Loop, case_id: int) -> SurveyLink:
    loop.session.expire_all()
    row: SurveyLink = loop.session.execute(
        select(SurveyLink).where(SurveyLink.case_id == case_id)).scalar_one()
    return row


def untouched(loop: Loop, case_id: int) -> None:
    case = loop.get(case_id)
    assert case.state == "survey_sent" and "csat" not in case.data
    assert link_of(loop, case_id).answered_at is None
    assert loop.events(case_id, "survey") == []


def test_the_customer_sees_the_questions_in_english_without_logging_in(loop: Loop) -> None:
    _, token = sent(loop, "en")
    client = visitor(loop)
    resp = client.get(f"/s/{token}", headers={"Accept-Language": "zh-CN"})  # the link wins
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and '<html lang="en">' in html
    # The first visit opens a session: it holds the CSRF token the answer must carry.
    assert resp.headers["Set-Cookie"].startswith("caseloop_session=")
    assert "How satisfied are you with how we handled this?" in html
    assert "How likely are you to recommend us" in html and "Customer&#39;s comments" in html
    # Scales are radio buttons in a fieldset, their ends spoken with the end numbers.
    for name, low, high in (("csat", 1, 5), ("nps", 0, 10), ("ces", 1, 7)):
        values = re.findall(rf'type="radio" name="{name}" value="(\d+)"', html)
        assert values == [str(n) for n in range(low, high + 1)], name
    assert '<fieldset class="question scale scale-11' in html
    assert "Not at all likely" in html and "Extremely likely" in html
    assert "Very dissatisfied" in html and "Strongly agree" in html
    assert '0<span class="visually-hidden"> – Not at all likely</span>' in html
    assert re.findall(r'name="issue_resolved" value="(\w+)"', html) == ["true", "false"]
    assert len(re.findall(r'type="checkbox" name="drivers"', html)) == 7
    assert re.search(r'<textarea id="q-comment" name="comment" rows="5" maxlength="4000"', html)
    assert '<label for="q-comment">' in html and "Up to 4000 characters." in html
    # csat is required (the transition requires it): marked, and required on its radios.
    csat = html.split('id="q-csat"', 1)[1].split("</fieldset>", 1)[0]
    assert '<span class="req">required</span>' in csat and "required" in csat.split("<input")[1]
    assert "<a " not in html.split("<main", 1)[1].replace('<a class="lang-choice"', "")
    assert "REV-" in html and "This link can be used once, until" in html


def test_the_questions_in_chinese_and_the_language_switch(loop: Loop) -> None:
    case_id, token = sent(loop, "zh", email="li@example.com")
    client = visitor(loop)
    html = client.get(f"/s/{token}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "您对本次处理的满意程度？" in html and "完全不可能" in html and "极有可能" in html
    assert "提交" in html and '<span class="req">必填</span>' in html
    assert 'href="?lang=en"' in html and 'aria-current="true">中文' in html
    english = client.get(f"/s/{token}?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Send my answers" in english
    assert '<input type="hidden" name="lang" value="en">' in english
    # No language on the link: the browser's, else CASELOOP_DEFAULT_LANGUAGE (zh).
    loop.session.execute(update(SurveyLink).where(SurveyLink.case_id == case_id).values(lang=""))
    loop.session.commit()
    browser = client.get(f"/s/{token}", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in browser.get_data(as_text=True)
    assert '<html lang="zh-CN">' in client.get(f"/s/{token}").get_data(as_text=True)
    assert '<html lang="zh-CN">' in client.get(f"/s/{token}?lang=fr").get_data(as_text=True)


def test_an_answer_is_typed_recorded_once_and_fires_the_transition(loop: Loop) -> None:
    case_id, token = sent(loop, "en")
    client = visitor(loop)  # a first-time visitor: no session before the page
    resp = answer(client, token, FORM)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    assert "Thank you!" in html and "Your answers have been recorded." in html
    case = loop.get(case_id)
    assert case.state == "answered"
    picked = {k: case.data[k] for k in ("csat", "nps", "ces", "issue_resolved", "drivers",
                                         "comment")}
    assert picked == {"csat": 4, "nps": 9, "ces": 6, "issue_resolved": True,
                      "drivers": ["response_speed", "staff_attitude"],
                      "comment": "Quick and friendly."}
    assert link_of(loop, case_id).answered_at is not None
    assert [e.payload["answered"] for e in loop.events(case_id, "survey")] == [
        ["ces", "comment", "csat", "drivers", "issue_resolved", "nps"]]
    # The back button and a second press: a thank-you, not an error, and nothing more.
    session_token = csrf(client.get("/login"))  # the same session's token, as the form had
    for resp in (client.get(f"/s/{token}"), client.post(f"/s/{token}", data={
            "csrf_token": session_token, **{**FORM, "csat": "1"}})):
        html = resp.get_data(as_text=True)
        assert resp.status_code == 410
        assert "This survey has already been answered. Thank you" in html
        assert "410" not in html and "gone" not in html.lower()
    assert loop.get(case_id).data["csat"] == 4
    assert len(loop.events(case_id, "survey")) == 1


def test_a_partial_answer_leaves_the_rest_unset(loop: Loop) -> None:
    case_id, token = sent(loop, "en", after_complaint=False)
    page = visitor(loop).get(f"/s/{token}").get_data(as_text=True)
    # A care call has no complaint to have resolved: the form hides the question.
    assert 'name="csat"' in page and 'name="issue_resolved"' not in page
    resp = answer(visitor(loop), token, {"csat": "2", "comment": "Slow\r\nreply",
                                         "issue_resolved": "true"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data = loop.get(case_id).data
    assert data["csat"] == 2 and data["comment"] == "Slow\nreply"
    assert "nps" not in data and "drivers" not in data and data["low_score"] is True


@pytest.mark.parametrize("lang, required, invalid", [
    ("en", "Please answer this question.", "Enter a whole number."),
    ("zh", "请回答此问题。", "请输入整数。")])
def test_an_invalid_answer_comes_back_with_errors_and_the_input_kept(
        loop: Loop, lang: str, required: str, invalid: str) -> None:
    case_id, token = sent(loop, lang)
    client = visitor(loop)
    bad = {"nps": "11", "ces": "easy", "issue_resolved": "false",
           "drivers": ["staff_attitude"], "comment": f"Line one\r\n{XSS}"}
    resp = answer(client, token, bad)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422, html
    untouched(loop, case_id)
    # Each message next to its field (and in the summary at the top, linked to it).
    errors = dict(re.findall(r'<p class="field-error" id="q-(\w+)-error">([^<]*)</p>', html))
    assert set(errors) == {"csat", "nps", "ces"}
    assert errors["csat"] == required and errors["ces"] == invalid
    assert ("10" in errors["nps"]) and 'href="#q-csat"' in html
    assert 'aria-describedby="q-csat-error"' in html and 'aria-invalid="true"' in html
    # What was entered is kept; the comment's markup is text.
    assert re.search(r'name="issue_resolved" value="false" checked', html)
    assert not re.search(r'name="issue_resolved" value="true" checked', html)
    assert re.search(r'name="drivers" value="staff_attitude" checked', html)
    assert not re.search(r'name="drivers" value="response_speed" checked', html)
    assert "Line one\n&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x " \
           "onerror=alert(1)&gt;</textarea>" in html
    assert "<script>alert" not in html and "<img src=x" not in html
    # The same link still works: nothing was spent.
    fixed = client.post(f"/s/{token}", data={"csrf_token": csrf(resp), **bad, "csat": "5",
                                              "nps": "10", "ces": "7"})
    assert fixed.status_code == 200, fixed.get_data(as_text=True)
    assert loop.get(case_id).data["comment"] == f"Line one\n{XSS}"


def test_questions_are_the_only_fields_an_answer_can_set(loop: Loop) -> None:
    case_id, token = sent(loop, "en")
    resp = answer(visitor(loop), token, {
        **FORM, "customer_name": "Eve", "cancel_reason": "x", "low_score": "true",
        "drivers": ["response_speed", "<b>bribe</b>"]})
    assert resp.status_code == 422
    assert "Choose one of the options." in resp.get_data(as_text=True)
    untouched(loop, case_id)
    ok = answer(visitor(loop), token, {**FORM, "customer_name": "Eve"})
    assert ok.status_code == 200
    assert loop.get(case_id).data["customer_name"] == "Emily Zhou"


def test_without_a_valid_csrf_token_nothing_is_stored(loop: Loop) -> None:
    case_id, token = sent(loop, "en")
    client = visitor(loop)
    page = client.get(f"/s/{token}")
    stranger = csrf(visitor(loop).get(f"/s/{token}"))
    for form in (FORM, {**FORM, "csrf_token": ""}, {**FORM, "csrf_token": stranger},
                 {**FORM, "csrf_token": csrf(page)[:-4] + "AAAA"}):
        resp = client.post(f"/s/{token}", data=form)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400, html
        # The customer's answers come back with a fresh token, rather than an error page.
        assert "please check your answers and send them again" in html
        assert re.search(r'name="nps" value="9" checked', html)
        assert "Quick and friendly." in html
        untouched(loop, case_id)
    # A client that never opened the page (no session cookie) is refused just the same.
    assert visitor(loop).post(f"/s/{token}", data={
        **FORM, "csrf_token": stranger}).status_code == 400
    untouched(loop, case_id)
    retried = client.post(f"/s/{token}", data={**FORM, "csrf_token": csrf(resp)})
    assert retried.status_code == 200


def test_over_https_an_answer_needs_no_referer(loop: Loop) -> None:
    """The page withholds the Referer (the token is in its address), so its form is
    checked for the CSRF token alone; the staff pages keep Flask-WTF's referrer check."""
    case_id, token = sent(loop, "en")
    client = visitor(loop)
    https = "https://care.example.com"
    page = client.get(f"/s/{token}", base_url=https)
    resp = client.post(f"/s/{token}", base_url=https,
                       data={"csrf_token": csrf(page), **FORM})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert loop.get(case_id).state == "answered"
    login = client.get("/login", base_url=https)
    refused = client.post("/login", base_url=https, data={
        "csrf_token": csrf(login), "username": "ann", "password": "x"})
    assert refused.status_code == 400


def test_an_expired_link_gets_a_friendly_page(loop: Loop) -> None:
    case_id, token = sent(loop, "zh", email="li@example.com")
    loop.session.execute(update(SurveyLink).values(
        expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    loop.session.commit()
    client = visitor(loop)
    page = client.get(f"/s/{token}")
    assert page.status_code == 410
    assert "链接已过期" in page.get_data(as_text=True)
    english = client.get(f"/s/{token}?lang=en").get_data(as_text=True)
    assert "This survey link has expired and can no longer be answered." in english
    assert "<form" not in english
    resp = client.post(f"/s/{token}", data={"csrf_token": csrf(
        client.get("/login")), **FORM})
    assert resp.status_code == 410 and "此调查链接已过期" in resp.get_data(as_text=True)
    untouched(loop, case_id)


def test_a_link_whose_case_moved_on_gets_a_friendly_page(loop: Loop) -> None:
    case_id, token = sent(loop, "en")
    client = visitor(loop)
    page = client.get(f"/s/{token}")
    loop.fire(case_id, "start_call")  # the agent calls instead, while the page is open
    resp = client.post(f"/s/{token}", data={"csrf_token": csrf(page), **FORM})
    assert resp.status_code == 410
    assert "This survey is no longer open" in resp.get_data(as_text=True)
    assert client.get(f"/s/{token}").status_code == 410
    case = loop.get(case_id)
    assert case.state == "calling" and "csat" not in case.data
    assert link_of(loop, case_id).answered_at is None


@pytest.mark.parametrize("token", ["nope", "A" * 32, "x" * 64, "y" * 300])
def test_an_unknown_link_is_a_404_page(loop: Loop, token: str) -> None:
    client = visitor(loop)
    resp = client.get(f"/s/{token}", headers={"Accept-Language": "en"})
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert "This survey link is not valid." in resp.get_data(as_text=True)
    post = client.post(f"/s/{token}", data={"csrf_token": csrf(client.get("/login")), **FORM})
    assert post.status_code == 404


def test_the_pages_keep_the_token_private_and_out_of_search_engines(loop: Loop) -> None:
    case_id, token = sent(loop, "en")
    client = visitor(loop)
    form = client.get(f"/s/{token}")
    answered = client.post(f"/s/{token}", data={"csrf_token": csrf(form), **FORM})
    for resp in (form, answered, client.get(f"/s/{token}"), client.get("/s/unknown"),
                 client.post(f"/s/{token}", data=FORM)):
        assert resp.headers["Content-Security-Policy"] == CSP
        assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Robots-Tag"] == "noindex, nofollow"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Frame-Options"] == "DENY"
        html = resp.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert "<style" not in html and " style=" not in html
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", re.sub(r'"[^"]*"', '""', html))
        assert '<meta name="referrer" content="no-referrer">' in html
    # The staff pages keep theirs.
    assert client.get("/login").headers["Referrer-Policy"] == "same-origin"
    assert "X-Robots-Tag" not in client.get("/login").headers


def revisit_link(app: Any, db: Any, lang: str = "en") -> tuple[int, str]:
    """Outside the ``loop`` fixture, on the real clock: a revisit after a complaint,
    its survey link sent in ``lang``; the revisit's id and the token."""
    with app.app_context():
        cases = Cases(db.session, state().registry)
        complaint = cases.create("complaint", COMPLAINT, Actor.system())
        case = cases.create("revisit", {
            **CUSTOMER, "preferred_language": lang, "reason": "after_resolution",
            "complaint_reference": complaint.reference}, Actor.system())
        db.session.commit()
        cases.fire(case.id, "send_survey", {},
                   Actor("ana", roles=frozenset({"agent"}), sees_all=True))
        db.session.commit()
        token = next(j.payload["survey"] for j in db.session.execute(select(Job).where(
            Job.case_id == case.id, Job.kind == "notify")).scalars() if j.payload.get("survey"))
        return case.id, str(token)


def case_of(app: Any, db: Any, case_id: int) -> tuple[str, dict[str, Any]]:
    """The state and data of a case, read afresh."""
    from caseloop.models import Case

    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case is not None
        return str(case.state), dict(case.data)


def test_the_page_answers_where_an_embedding_app_mounts_the_pages(tmp_path: Path) -> None:
    from .test_extension import dispose, make_host

    app, db = make_host(tmp_path)
    try:
        case_id, token = revisit_link(app, db)
        client = app.test_client()
        assert client.get(f"/s/{token}").status_code == 404  # the host's, not ours
        page = client.get(f"/care/s/{token}")
        assert page.status_code == 200
        assert 'href="/care/assets/caseloop.css"' in page.get_data(as_text=True)
        resp = client.post(f"/care/s/{token}", data={"csrf_token": csrf(page), **FORM})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert case_of(app, db, case_id)[0] == "answered"
    finally:
        dispose(app, db)
