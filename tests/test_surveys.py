"""Tokenised survey links (surveys.py, api/surveys.py): sent through the outbox,
answered once over the public endpoint, refused when expired, spent, moved on,
tampered with or malformed — and an invalid answer spends nothing. On SQLite and
PostgreSQL (the ``loop`` fixture), through real HTTP with Flask's test client."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from caseloop.cases import Actor
from caseloop.models import Case, Job, Notification, SurveyLink
from caseloop.surveys import digest

from . import test_loop
from .test_loop import Loop

CUSTOMER = {"reason": "periodic_care", "customer_name": "Emily Zhou",
            "email": "emily.zhou@example.com", "preferred_language": "en",
            "care_topic": "annual_review"}
ANSWER = {"csat": 4, "nps": 9, "ces": 6, "issue_resolved": True,
          "comment": "Quick and friendly."}


#: The fixture, on SQLite and PostgreSQL.
loop = test_loop.loop


@pytest.fixture(autouse=True)
def _real_time(loop: Loop) -> None:
    """The public endpoints run on the real clock: the engine's starts there too, so
    that a link made through the engine expires when the endpoints think it does
    (whatever today's date is)."""
    loop.clock.now = dt.datetime.now(dt.UTC)


def _sent(loop: Loop, data: dict[str, Any] | None = None) -> tuple[int, str]:
    """A revisit whose survey link was sent; its id and the link's token."""
    case = loop.cases().create("revisit", data or CUSTOMER, Actor.system())
    case.team_id = min(loop.agent.teams)  # the agent's team works it
    loop.session.commit()
    loop.fire(case.id, "send_survey")
    job = loop.session.execute(select(Job).where(
        Job.case_id == case.id, Job.kind == "notify", Job.payload["survey"].as_string() != ""
    )).scalars().all()
    token = next(j.payload["survey"] for j in job if j.payload.get("survey"))
    return case.id, token


def _client(loop: Loop) -> FlaskClient:
    return loop.app.test_client()


def _answer(loop: Loop, token: str, data: dict[str, Any]) -> Any:
    return _client(loop).post(f"/api/surveys/{token}", json={"data": data})


def test_the_link_goes_out_by_email_and_only_its_digest_is_stored(loop: Loop) -> None:
    case_id, token = _sent(loop)
    row = loop.session.execute(select(SurveyLink).where(SurveyLink.case_id == case_id)).scalar_one()
    assert row.digest == digest(token) and token not in row.digest
    assert (row.channel, row.trigger, row.state) == ("email", "survey_answered", "survey_sent")
    assert row.expires_at - row.created_at == dt.timedelta(days=7)
    loop.work()
    mail = loop.session.execute(select(Notification).where(
        Notification.case_id == case_id, Notification.channel == "email")).scalar_one()
    assert mail.address == "emily.zhou@example.com" and mail.status == "logged"
    assert f"http://127.0.0.1:5000/s/{token}" in mail.body and mail.lang == "en"


def test_sms_when_the_customer_has_only_a_phone(loop: Loop) -> None:
    data = {**CUSTOMER, "phone": "138 0013 8000"}
    del data["email"]
    case_id, _ = _sent(loop, data)
    row = loop.session.execute(select(SurveyLink).where(SurveyLink.case_id == case_id)).scalar_one()
    assert row.channel == "sms"


def test_no_address_no_link_and_the_history_says_so(loop: Loop) -> None:
    from caseloop.extension import state
    from caseloop.surveys import issue

    case = loop.cases().create("revisit", CUSTOMER, Actor.system())
    loop.session.commit()
    case.data = {k: v for k, v in case.data.items() if k not in ("email", "phone")}
    cases = loop.cases()
    wf = cases.workflow_of(case)
    survey = next(a.survey for a in wf.states["survey_sent"].on_enter if a.survey)
    assert issue(cases, wf, case, survey, {"now": loop.clock()}, "system") is None
    loop.session.commit()
    notes = [e.payload.get("note") for e in loop.events(case.id, "action")]
    assert "survey not sent: the customer has no email or phone" in notes
    assert loop.session.execute(select(SurveyLink)).first() is None
    assert state() is not None


def test_the_customer_reads_the_questions_in_their_language(loop: Loop) -> None:
    _, token = _sent(loop)
    resp = _client(loop).get(f"/api/surveys/{token}")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert [f["name"] for f in body["fields"]] == [
        "csat", "nps", "ces", "issue_resolved", "drivers", "comment"]
    csat = body["fields"][0]
    assert csat["required"] is True and body["lang"] == "en"
    zh = {**CUSTOMER, "preferred_language": "zh", "email": "li@example.com"}
    _, token_zh = _sent(loop, zh)
    assert _client(loop).get(f"/api/surveys/{token_zh}").get_json()["lang"] == "zh"


def test_an_answer_is_recorded_once_and_fires_the_transition(loop: Loop) -> None:
    case_id, token = _sent(loop)
    resp = _answer(loop, token, ANSWER)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["message"] == "Thank you for your answer."
    case = loop.get(case_id)
    assert case.state == "answered" and case.data["csat"] == 4 and case.data["nps"] == 9
    assert [e.payload["channel"] for e in loop.events(case_id, "survey")] == ["email"]
    again = _answer(loop, token, ANSWER)
    assert again.status_code == 410 and again.get_json()["error"]["code"] == "gone"
    assert "already been answered" in again.get_json()["error"]["message"]
    assert _client(loop).get(f"/api/surveys/{token}").status_code == 410


def test_an_invalid_answer_spends_nothing(loop: Loop) -> None:
    case_id, token = _sent(loop)
    bad = _answer(loop, token, {**ANSWER, "csat": 9})
    assert bad.status_code == 422 and "csat" in bad.get_json()["error"]["fields"]
    missing = _answer(loop, token, {"comment": "no score"})
    assert missing.status_code == 422 and "csat" in missing.get_json()["error"]["fields"]
    stray = _answer(loop, token, {**ANSWER, "cancel_reason": "x", "customer_name": "Eve"})
    assert stray.status_code == 422
    assert set(stray.get_json()["error"]["fields"]) == {"cancel_reason", "customer_name"}
    assert loop.get(case_id).state == "survey_sent"
    assert _answer(loop, token, ANSWER).status_code == 200


def test_an_expired_link_is_refused_and_the_revisit_closes_unanswered(loop: Loop) -> None:
    case_id, token = _sent(loop)
    loop.session.execute(update(SurveyLink).values(
        expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    loop.session.commit()
    resp = _answer(loop, token, ANSWER)
    assert resp.status_code == 410 and "expired" in resp.get_json()["error"]["message"]
    loop.clock.advance(days=7, minutes=1)
    loop.work()
    assert loop.get(case_id).state == "closed"


def test_a_link_dies_when_the_case_moves_on(loop: Loop) -> None:
    case_id, token = _sent(loop)
    loop.fire(case_id, "start_call")  # the agent calls instead
    resp = _client(loop).get(f"/api/surveys/{token}")
    assert resp.status_code == 410 and "moved on" in resp.get_json()["error"]["message"]
    assert loop.get(case_id).state == "calling"


@pytest.mark.parametrize("token", ["nope", "A" * 43, "x" * 64])
def test_unknown_tokens_are_404_and_need_no_login(loop: Loop, token: str) -> None:
    resp = _client(loop).get(f"/api/surveys/{token}")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    resp = _answer(loop, token, ANSWER)
    assert resp.status_code == 404


def test_a_malformed_answer_is_a_400_and_spends_nothing(loop: Loop) -> None:
    case_id, token = _sent(loop)
    c = _client(loop)
    resp = c.post(f"/api/surveys/{token}", data="{", content_type="application/json")
    assert resp.status_code == 400
    resp = c.post(f"/api/surveys/{token}", json={"data": ANSWER, "extra": 1})
    assert resp.status_code in (400, 422)
    assert loop.get(case_id).state == "survey_sent"
    spent = loop.session.execute(select(SurveyLink.answered_at)).scalar_one()
    assert spent is None


def test_the_complaint_loop_closes_through_a_survey_link(loop: Loop) -> None:
    """A revisit after a complaint, answered online with a good score, closes the complaint."""
    from .test_api import COMPLAINT, WALK

    complaint_id = loop.create("complaint", {**COMPLAINT, "email": "li.wei@example.com"}).id
    for trigger, _, step in WALK[:-1]:
        loop.fire(complaint_id, trigger, step)
    loop.clock.advance(days=3, minutes=1)
    loop.work()
    revisit_id = loop.session.execute(select(Case.id).where(Case.parent_id == complaint_id)
                                      ).scalar_one()
    loop.fire(revisit_id, "send_survey")
    token = next(j.payload["survey"] for j in loop.session.execute(select(Job).where(
        Job.case_id == revisit_id, Job.kind == "notify")).scalars() if j.payload.get("survey"))
    assert _answer(loop, token, ANSWER).status_code == 200
    # The request ran on the real clock: its jobs are due from then.
    loop.clock.now = max(loop.clock.now, dt.datetime.now(dt.UTC)) + dt.timedelta(minutes=1)
    loop.work()
    assert loop.get(complaint_id).state == "closed"
    assert loop.get(revisit_id).data["call_outcome"] == "survey_link"
