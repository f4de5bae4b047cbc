"""The administrators' pages (views/admin.py): who may see them, the job queue with
its tabs, filters and pages, retry and discard through the page, the mail log, and
data shown as text (never markup, never a survey token). On SQLite and PostgreSQL
where the queries differ."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from caseloop.extension import state
from caseloop.jobs import enqueue
from caseloop.models import Job, Notification

from .test_api import COMPLAINT, make_user
from .test_views_auth import add, login, token

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SECRET = "s3cr3t-survey-token-AbC_12"
#: 2026-01-05 01:30 UTC: 09:30 in Asia/Shanghai.
WHEN = dt.datetime(2026, 1, 5, 1, 30, tzinfo=dt.UTC)


def a_case(app: Flask) -> tuple[int, str]:
    headers = make_user(app, "agent0", roles=["agent"], teams=["care"])
    resp = app.test_client().post("/api/cases", json={"workflow": "complaint",
                                                      "data": COMPLAINT}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"], resp.get_json()["reference"]


def jobs(app: Flask, case_id: int | None = None, n_dead: int = 2, n_pending: int = 2
         ) -> list[int]:
    """Dead webhooks (ids returned, a survey token and an XSS error each), then
    pending notifications due later."""
    with app.app_context():
        session = state().db.session
        for i in range(n_dead):
            enqueue(session, "webhook", run_at=WHEN + dt.timedelta(minutes=i), case_id=case_id,
                    url="https://hooks.example.com/x", survey=SECRET)
        for i in range(n_pending):
            enqueue(session, "notify", run_at=WHEN + dt.timedelta(days=i + 1), to=["team"])
        session.commit()
        dead = session.query(Job).filter(Job.kind == "webhook").order_by(Job.id).all()
        for job in dead:
            job.status, job.attempts, job.last_error = "dead", 8, f"HTTP 500 {XSS}"
        session.commit()
        return [j.id for j in dead]


def status_of(app: Flask, job_id: int) -> str:
    with app.app_context():
        job = state().db.session.get(Job, job_id)
        assert job is not None
        return job.status


def admin_client(app: Flask, lang: str = "en") -> FlaskClient:
    add(app, "ada", roles=["admin"])
    client = app.test_client()
    client.set_cookie("caseloop_lang", lang)
    assert login(client, "ada").status_code == 302
    return client


@pytest.mark.parametrize("path", ["/admin/jobs", "/admin/mail"])
def test_anonymous_readers_are_sent_to_log_in_and_others_get_403(app: Flask,
                                                                 path: str) -> None:
    dead = jobs(app)
    client = app.test_client()
    client.set_cookie("caseloop_lang", "en")
    assert client.get(path).location == f"/login?next={path}"
    add(app, "mona", roles=["manager"])
    login(client, "mona")
    page = client.get(path)
    assert page.status_code == 403
    assert "Only administrators may see this page." in page.get_data(as_text=True)
    home = client.get("/home").get_data(as_text=True)
    assert "/admin/jobs" not in home and "/admin/mail" not in home
    resp = client.post(f"/admin/jobs/{dead[0]}/retry",
                       data={"csrf_token": token(client, "/home")})
    assert resp.status_code == 403 and status_of(app, dead[0]) == "dead"


def test_the_jobs_page_lists_dead_letters_with_their_error_as_text(any_db_app: Flask) -> None:
    case_id, reference = a_case(any_db_app)
    dead = jobs(any_db_app, case_id)
    client = admin_client(any_db_app)
    resp = client.get("/admin/jobs?status=dead")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="count-dead">2<' in html and 'id="count-running">0<' in html
    for job_id in dead:
        assert f'id="job-{job_id}"' in html
        assert f'/admin/jobs/{job_id}/retry' in html and f'/admin/jobs/{job_id}/discard' in html
    assert reference in html and "8 / 8" in html and "5 Jan 2026, 09:30" in html
    assert XSS not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert SECRET not in html and "survey" in html
    assert html.count('class="job status-') == 2  # the pending ones are on other tabs
    by_kind = client.get("/admin/jobs?kind=webhook").get_data(as_text=True)
    assert by_kind.count('class="job status-dead"') == 2 and 'class="job status-pending' \
        not in by_kind


def test_pages_of_jobs_follow_the_cursor_without_gaps_or_repeats(app: Flask) -> None:
    app.config["CASELOOP_PAGE_SIZE"] = 2
    jobs(app, n_dead=3, n_pending=4)
    client = admin_client(app)
    seen: list[str] = []
    url: str | None = "/admin/jobs"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += re.findall(r'id="job-(\d+)"', html)
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) == 7
    bad = client.get("/admin/jobs?cursor=%%%nonsense").get_data(as_text=True)
    assert "That page link is not valid" in bad and bad.count('class="job ') == 2


def test_retry_and_discard_from_the_page(any_db_app: Flask) -> None:
    first, second = jobs(any_db_app)
    client = admin_client(any_db_app)
    csrf = token(client, "/admin/jobs")
    resp = client.post(f"/admin/jobs/{first}/retry",
                       data={"csrf_token": csrf, "next": "/admin/jobs?status=dead"})
    assert resp.status_code == 302 and resp.location == "/admin/jobs?status=dead"
    page = client.get(resp.location).get_data(as_text=True)
    assert f"Job {first} is queued again, due now." in page
    with any_db_app.app_context():
        job = state().db.session.get(Job, first)
        assert job is not None and (job.status, job.attempts) == ("pending", 0)
    resp = client.post(f"/admin/jobs/{second}/discard",
                       data={"csrf_token": csrf, "next": "https://evil.example/"})
    assert resp.location == "/admin/jobs" and status_of(any_db_app, second) == "cancelled"
    assert f"Job {second} is discarded" in client.get("/admin/jobs").get_data(as_text=True)
    # Neither is a dead letter now: refused with a message, nothing changes.
    for action, job_id, now in (("retry", second, "cancelled"), ("discard", first, "pending")):
        resp = client.post(f"/admin/jobs/{job_id}/{action}", data={"csrf_token": csrf},
                           follow_redirects=True)
        assert (f"Job {job_id} is {now.capitalize()}: only dead letters can be retried or "
                "discarded.") in resp.get_data(as_text=True)
        assert status_of(any_db_app, job_id) == now
    missing = client.post("/admin/jobs/999999/retry", data={"csrf_token": csrf},
                          follow_redirects=True)
    assert "There is no job 999999." in missing.get_data(as_text=True)


def test_retry_without_a_csrf_token_changes_nothing(app: Flask) -> None:
    dead = jobs(app)
    client = admin_client(app)
    for data in ({}, {"csrf_token": "forged"}):
        resp = client.post(f"/admin/jobs/{dead[0]}/retry", data=data)
        assert resp.status_code == 400
        resp = client.post(f"/admin/jobs/{dead[1]}/discard", data=data)
        assert resp.status_code == 400
    assert [status_of(app, j) for j in dead] == ["dead", "dead"]


def test_the_jobs_page_in_chinese(app: Flask) -> None:
    jobs(app)
    html = admin_client(app, "zh").get("/admin/jobs?status=dead").get_data(as_text=True)
    assert "死信" in html and "重试" in html and "2026年1月5日 09:30" in html


def _mail(app: Flask, case_id: int) -> None:
    with app.app_context():
        session = state().db.session
        for i in range(3):
            session.add(Notification(
                case_id=case_id, channel="email", address=f"c{i}@example.com", lang="en",
                subject=f"Subject {i} {XSS}", status="logged",
                body=f"Dear customer,\n{XSS}\nhttp://127.0.0.1:5000/s/{SECRET}",
                created_at=WHEN + dt.timedelta(hours=i)))
        session.add(Notification(case_id=case_id, channel="sms", address="+8613800138000",
                                 subject="", body="SMS text", status="failed",
                                 created_at=WHEN + dt.timedelta(hours=5)))
        session.add(Notification(case_id=case_id, channel="inbox", body="for staff only",
                                 status="sent", created_at=WHEN))
        session.commit()


def test_the_mail_log_shows_messages_newest_first_as_text(any_db_app: Flask) -> None:
    case_id, reference = a_case(any_db_app)
    _mail(any_db_app, case_id)
    client = admin_client(any_db_app)
    html = client.get("/admin/mail").get_data(as_text=True)
    assert html.index("+8613800138000") < html.index("c2@example.com") < \
        html.index("c0@example.com")
    assert "for staff only" not in html and reference in html
    assert XSS not in html and "&lt;script&gt;" in html and "Dear customer," in html
    assert SECRET not in html and "/s/…" in html
    assert "Logged" in html and "Failed" in html and "5 Jan 2026, 11:30" in html


def test_the_mail_log_pages_back_in_time(app: Flask) -> None:
    case_id, _ = a_case(app)
    _mail(app, case_id)
    app.config["CASELOOP_PAGE_SIZE"] = 3
    client = admin_client(app)
    first = client.get("/admin/mail").get_data(as_text=True)
    assert first.count('class="message"') == 3 and 'rel="next"' in first
    older = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert older is not None
    second = client.get(older.group(1)).get_data(as_text=True)
    assert second.count('class="message"') == 1 and "c0@example.com" in second
    assert 'rel="next"' not in second


def test_home_shows_my_cases_and_the_dead_letters_to_admins(app: Flask) -> None:
    jobs(app)
    client = admin_client(app)
    html = client.get("/home").get_data(as_text=True)
    assert 'id="count-mine">0<' in html and "2 dead letters need a decision" in html
    assert 'href="/admin/jobs?status=dead"' in html
