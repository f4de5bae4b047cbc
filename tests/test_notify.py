"""Notifications (caseloop.notify) under the real executor: inbox rows per user and
language, the customer's email (a fake SMTP server in-process) or SMS log, and the
signed webhook (a local HTTP server). Real rows on SQLite and PostgreSQL; no sleeps."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email
import http.server
import json
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from caseloop.cases import Actor, Cases
from caseloop.extension import state
from caseloop.jobs import Executor, Fail, enqueue
from caseloop.models import Case, Job, Notification, User
from caseloop.notify import (
    MAX_RETRY_AFTER,
    deliver,
    retry_after,
    send_email,
    sign,
    verify_signature,
    webhook,
)

from .test_api import COMPLAINT
from .test_cases import NOW, build_app, dispose, person, utc

SECRET_ENV = "CASELOOP_TEST_WEBHOOK_SECRET"
EN = "A new complaint has been received. Acknowledge it to the customer."
ZH = "收到一条新投诉，请向客户确认受理。"
ACK_ZH = "我们已收到您的投诉，并以本消息中的编号登记。"


# -- the app, people and the worker -----------------------------------------------------
@dataclass
class Env:
    app: Flask
    li: Actor  # agent of team care, reads English; opens the cases

    @property
    def session(self) -> Any:
        return state().db.session

    def cases(self) -> Cases:
        return dataclasses.replace(state().cases(), clock=lambda: NOW)

    def create(self, actor: Actor | None = None, **data: Any) -> Case:
        case = self.cases().create("complaint", {**COMPLAINT, **data}, actor or self.li)
        self.session.commit()
        return case

    def acknowledge(self, case: Case, actor: Actor | None = None) -> Case:
        case = self.cases().fire(case.id, "acknowledge", {}, actor or self.li)
        self.session.commit()
        return case

    def work(self, clock: dt.datetime = NOW, **settings: Any) -> Counter[str]:
        """Run every job due at ``clock`` with the notify and webhook handlers."""
        self.session.commit()
        executor = Executor(state().db.engine, state().registry,
                            {"notify": deliver, "webhook": webhook},
                            settings={**self.app.config, **settings}, clock=lambda: clock)
        done: Counter[str] = executor.run_due()
        self.session.expire_all()
        return done

    def jobs(self, case: Case | None, kind: str = "notify") -> list[Job]:
        stmt = select(Job).where(Job.kind == kind).order_by(Job.id)
        if case is not None:
            stmt = stmt.where(Job.case_id == case.id)
        return list(self.session.execute(stmt).scalars())

    def notes(self, job: Job) -> list[Notification]:
        return list(self.session.execute(select(Notification).where(
            Notification.job_id == job.id).order_by(Notification.id)).scalars())

    def name(self, user_id: int | None) -> str:
        user = self.session.get(User, user_id)
        return user.name if user is not None else ""


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    app = build_app(request.param, tmp_path)
    with app.app_context():
        yield Env(app, person(app, "li", ["agent"], ["care"], lang="en"))
        state().db.session.remove()
    dispose(app)


# -- inbox -------------------------------------------------------------------------------
def test_a_new_complaint_tells_the_team_and_its_supervisor_each_in_their_language(
        env: Env) -> None:
    person(env.app, "wang", ["agent"], ["care"], lang="zh")
    old = person(env.app, "old", ["agent"], ["care"])
    person(env.app, "sun", ["supervisor"], ["care"], lang="zh")
    person(env.app, "zhou", ["supervisor"], ["north"])  # has the role, not the team
    user = env.session.get(User, old.id)
    user.active = False  # left the company: told nothing
    case = env.create(segment="high_value")  # a VIP: the supervisor is told too
    assert env.work() == Counter(done=2)
    team, supervisor = env.jobs(case)
    assert (team.status, team.result, team.attempts) == ("done", "inbox: 3", 1)
    assert (supervisor.status, supervisor.result) == ("done", "inbox: 1")
    ref = case.reference
    got = {env.name(n.user_id): (n.lang, n.subject, n.body) for n in env.notes(team)}
    assert got == {
        "li": ("en", f"[{ref}] Customer complaint", f"{EN}\n\nCase {ref}, state: Received"),
        "wang": ("zh", f"[{ref}] 客户投诉", f"{ZH}\n\n案件编号：{ref}，当前状态：已受理"),
        "sun": ("zh", f"[{ref}] 客户投诉", f"{ZH}\n\n案件编号：{ref}，当前状态：已受理"),
    }
    (sun,) = env.notes(supervisor)  # the supervisor of the case's team, not zhou
    assert (env.name(sun.user_id), sun.lang, sun.subject) == ("sun", "zh", f"[{ref}] 客户投诉")
    assert {(n.channel, n.status, n.case_id, n.address, n.read_at) for n in
            env.notes(team) + env.notes(supervisor)} == {("inbox", "sent", case.id, "", None)}


def test_a_role_outside_the_team_is_told_when_the_team_has_nobody_with_it(env: Env) -> None:
    person(env.app, "zhou", ["supervisor"], ["north"])
    person(env.app, "qian", ["supervisor", "agent"], [])
    person(env.app, "supervisor_like", ["supervisors"], ["care"])  # a longer role name
    case = env.create(segment="high_value")
    env.work()
    supervisor = env.jobs(case)[1]
    assert sorted(env.name(n.user_id) for n in env.notes(supervisor)) == ["qian", "zhou"]


def test_nobody_to_tell_cancels_the_job_with_the_reason(env: Env) -> None:
    loner = person(env.app, "loner", ["agent"])  # no team: the case has none either
    case = env.acknowledge(env.create(loner), loner)  # the customer gave a phone, no email
    assert env.work()["cancelled"] == 2
    team, customer = env.jobs(case)
    assert (team.status, team.result) == ("cancelled", "nobody to notify: the case has no team")
    assert customer.result == "nobody to notify: the customer has no email address"
    assert env.notes(team) == env.notes(customer) == []


def test_each_user_once_texts_as_written_and_notes_for_who_was_not_reached(env: Env) -> None:
    wang = person(env.app, "wang", ["agent"], ["care"], lang="zh")
    case = env.create()
    text = "Hello {reference} {{ data.customer_name }} %(x)s <b>not html</b>"
    enqueue(env.session, "notify", case_id=case.id, run_at=NOW, channel="inbox",
            to=["creator", "team", "assignee", "customer", "role:quality", "nobody"],
            state="received", message={"en": text})  # English only
    env.work()
    job = env.jobs(case)[-1]
    assert job.result == ("inbox: 2; no active assignee; the customer has no inbox; "
                          "nobody has role 'quality'; unknown recipient 'nobody'")
    li, w = env.notes(job)  # li is the creator and in the team: told once
    assert (li.user_id, w.user_id) == (env.li.id, wang.id)
    assert w.body.startswith(text + "\n\n") and w.lang == "zh"  # falls back, verbatim


# -- the customer: email and SMS --------------------------------------------------------
def test_without_smtp_the_email_is_logged_in_the_customers_language(env: Env) -> None:
    case = env.acknowledge(env.create(email="li.lei@example.com", preferred_language="zh"))
    env.work()
    job = env.jobs(case)[-1]
    assert (job.status, job.result) == ("done", "email: 1 (logged)")
    (mail,) = env.notes(job)
    assert (mail.channel, mail.status, mail.user_id, mail.address, mail.lang) == (
        "email", "logged", None, "li.lei@example.com", "zh")
    assert mail.subject == f"[{case.reference}] 客户投诉"
    assert mail.body.startswith(ACK_ZH) and "当前状态：已确认受理" in mail.body


def test_sms_is_logged_with_the_phone_number(env: Env) -> None:
    case = env.create(preferred_language=None)  # emptied: the install's default applies
    assert "preferred_language" not in case.data
    enqueue(env.session, "notify", case_id=case.id, run_at=NOW, channel="sms",
            to=["customer", "assignee"], state="received", message={"en": "Hi", "zh": "您好"})
    env.work(CASELOOP_DEFAULT_LANGUAGE="en")
    job = env.jobs(case)[-1]
    assert job.result == "sms: 1 (logged); no active assignee"
    (sms,) = env.notes(job)
    assert (sms.channel, sms.status, sms.address, sms.lang, sms.body[:3]) == (
        "sms", "logged", "+8613800138000", "en", "Hi\n")


@dataclass
class Mailbox:
    """What the fake SMTP server received, and how it answers RCPT."""

    rcpt_reply: str = "250 OK"
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, QUIT."""

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        assert isinstance(self.server, _SMTPServer)
        box = self.server.box
        sender, rcpts = "", []
        self.reply("220 fake ESMTP")
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb, address = command[:4].upper(), command.partition("<")[2].rstrip(">")
            if verb == "EHLO":
                self.reply("250-fake\r\n250 AUTH PLAIN")
            elif verb == "AUTH":
                box.logins.append(base64.b64decode(command.split()[2]))
                self.reply("235 OK")
            elif verb == "MAIL":
                sender = address
                self.reply("250 OK")
            elif verb == "RCPT":
                if box.rcpt_reply.startswith("250"):
                    rcpts.append(address)
                self.reply(box.rcpt_reply)
            elif verb == "DATA":
                self.reply("354 go on")
                lines = []
                while (data := self.rfile.readline()) != b".\r\n":
                    lines.append(data[1:] if data.startswith(b"..") else data)
                message = email.message_from_bytes(b"".join(lines), policy=policy.default)
                box.messages.append((sender, rcpts, message))
                self.reply("250 queued")
            elif verb == "RSET":
                sender, rcpts = "", []
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not here")


class _SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    box: Mailbox


@pytest.fixture
def smtp() -> Iterator[tuple[str, Mailbox]]:
    server = _SMTPServer(("127.0.0.1", 0), _SMTPHandler)
    server.box = Mailbox()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"smtp://mailer:p%40ss%20word@127.0.0.1:{server.server_address[1]}", server.box
    server.shutdown()
    server.server_close()


def test_an_email_is_sent_over_smtp_with_the_jobs_id(env: Env, smtp: tuple[str, Mailbox]
                                                     ) -> None:
    url, box = smtp
    case = env.acknowledge(env.create(email="li.lei@example.com", preferred_language="zh"))
    env.work(CASELOOP_SMTP_URL=url, CASELOOP_MAIL_FROM="Care <care@example.com>")
    job = env.jobs(case)[-1]
    assert (job.status, job.result) == ("done", "email: 1 (sent)")
    assert box.logins == [b"\0mailer\0p@ss word"]
    ((sender, rcpts, msg),) = box.messages
    assert (sender, rcpts) == ("care@example.com", ["li.lei@example.com"])
    assert msg["Message-ID"] == f"<caseloop-job-{job.id}@example.com>"
    assert msg["X-Caseloop-Job"] == str(job.id)
    assert msg["Subject"] == f"[{case.reference}] 客户投诉" and msg["To"] == "li.lei@example.com"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().startswith(ACK_ZH)
    (row,) = env.notes(job)
    assert (row.channel, row.status, row.address) == ("email", "sent", "li.lei@example.com")


def test_a_temporary_refusal_is_retried_and_the_retry_carries_the_same_message_id(
        env: Env, smtp: tuple[str, Mailbox]) -> None:
    url, box = smtp
    box.rcpt_reply = "451 4.7.1 greylisted, try again later"
    case = env.acknowledge(env.create(email="li.lei@example.com"))
    assert env.work(CASELOOP_SMTP_URL=url)["retry"] == 1
    job = env.jobs(case)[-1]
    assert (job.status, job.attempts) == ("pending", 1)
    assert "451" in (job.last_error or "") and utc(job.run_at) > NOW
    assert env.notes(job) == [] and box.messages == []
    box.rcpt_reply = "250 OK"
    env.work(NOW + dt.timedelta(hours=1), CASELOOP_SMTP_URL=url)
    job = env.jobs(case)[-1]
    assert (job.status, job.attempts, job.result) == ("done", 2, "email: 1 (sent)")
    assert box.messages[0][2]["Message-ID"] == f"<caseloop-job-{job.id}@localhost>"


def test_a_permanent_refusal_is_a_dead_letter(env: Env, smtp: tuple[str, Mailbox]) -> None:
    url, box = smtp
    box.rcpt_reply = "550 5.1.1 no such mailbox"
    case = env.acknowledge(env.create(email="nobody@example.com"))
    env.work(CASELOOP_SMTP_URL=url)
    job = env.jobs(case)[-1]
    assert (job.status, job.attempts) == ("dead", 1)
    assert "550 5.1.1 no such mailbox" in (job.last_error or "")
    assert env.notes(job) == []


def test_a_mail_server_that_is_down_is_retried(env: Env) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    case = env.acknowledge(env.create(email="li.lei@example.com"))
    env.work(CASELOOP_SMTP_URL=f"smtp://127.0.0.1:{port}")
    job = env.jobs(case)[-1]
    assert job.status == "pending" and "unreachable" in (job.last_error or "")


@pytest.mark.parametrize("url", ["http://127.0.0.1:25", "smtp://:secret@:25",
                                 "smtp://u:secret@host:99999", "smtp://u:secret@host:x"])
def test_a_bad_smtp_url_fails_without_showing_the_password(url: str) -> None:
    with pytest.raises(Fail) as info:
        send_email(url, "a@example.com", "b@example.com", "s", "b", job_id=1)
    assert "CASELOOP_SMTP_URL" in str(info.value) and "secret" not in str(info.value)


# -- webhooks ----------------------------------------------------------------------------
@dataclass
class Site:
    """What the fake receiver got, and what it answers next (then 200)."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[str, Any, bytes]] = field(default_factory=list)


class _HookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        assert isinstance(self.server, _HookServer)
        site = self.server.site
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        site.requests.append((self.path, self.headers, raw))
        status, headers = site.answers.pop(0) if site.answers else (200, {})
        self.send_response(status)
        for key, value in {**headers, "Content-Length": "0"}.items():
            self.send_header(key, value)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _HookServer(http.server.ThreadingHTTPServer):
    site: Site


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Site]]:
    monkeypatch.setenv(SECRET_ENV, "whsec_test")
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy of the machine must not answer
    server = _HookServer(("127.0.0.1", 0), _HookHandler)
    server.site = Site()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.site
    server.shutdown()
    server.server_close()


def _hook(env: Env, url: str) -> Job:
    body = {"event": "case.updated", "reference": "CMP-2026-000001", "note": "中文"}
    enqueue(env.session, "webhook", run_at=NOW, url=url, secret_env=SECRET_ENV, body=body)
    env.work()
    return env.jobs(None, "webhook")[-1]


def test_a_webhook_is_posted_signed_with_an_idempotency_key(env: Env, site: tuple[str, Site]
                                                            ) -> None:
    base, got = site
    job = _hook(env, f"{base}/hooks/caseloop?token=abc")
    assert (job.status, job.result) == ("done", f"webhook: posted to {base}/hooks/caseloop")
    ((path, headers, raw),) = got.requests
    assert path == "/hooks/caseloop?token=abc"
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == f"caseloop-job-{job.id}"
    assert json.loads(raw) == {"event": "case.updated", "reference": "CMP-2026-000001",
                               "note": "中文"}
    signature = headers["X-Caseloop-Signature"]
    assert verify_signature("whsec_test", signature, raw, now=int(time.time()))
    assert not verify_signature("whsec_other", signature, raw, now=int(time.time()))
    assert not verify_signature("whsec_test", signature, raw + b" ", now=int(time.time()))
    (row,) = env.notes(job)  # the history shows where it went, not the token
    assert (row.channel, row.status, row.address) == ("webhook", "sent", f"{base}/hooks/caseloop")


def test_a_busy_receiver_is_retried_after_its_retry_after(env: Env, site: tuple[str, Site]
                                                          ) -> None:
    base, got = site
    got.answers.append((503, {"Retry-After": "120"}))
    job = _hook(env, f"{base}/hook")
    assert (job.status, job.attempts) == ("pending", 1)
    assert utc(job.run_at) == NOW + dt.timedelta(seconds=120)
    assert "503" in (job.last_error or "") and env.notes(job) == []


@pytest.mark.parametrize(("status", "headers", "error"), [
    (400, {}, "400"),
    (302, {"Location": "http://127.0.0.1:9/elsewhere"}, "redirects are not followed"),
])
def test_a_rejected_webhook_is_a_dead_letter(env: Env, site: tuple[str, Site], status: int,
                                             headers: dict[str, str], error: str) -> None:
    base, got = site
    got.answers.append((status, headers))
    job = _hook(env, f"{base}/hook")
    assert job.status == "dead" and error in (job.last_error or "")
    assert len(got.requests) == 1  # the redirect was not followed


def test_a_missing_secret_says_which_variable_to_set(env: Env, site: tuple[str, Site],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    base, got = site
    monkeypatch.delenv(SECRET_ENV)
    job = _hook(env, f"{base}/hook")
    assert job.status == "dead" and SECRET_ENV in (job.last_error or "")
    assert got.requests == []
    monkeypatch.setenv(SECRET_ENV, "whsec_test")
    job = _hook(env, "file:///etc/passwd")
    assert job.status == "dead" and "http://" in (job.last_error or "")


def test_verify_signature_refuses_what_it_should() -> None:
    raw = b'{"a":1}'
    header = sign("s3cret", raw, 1_000_000)
    assert verify_signature("s3cret", header, raw, now=1_000_000 + 300)
    assert not verify_signature("s3cret", header, raw, now=1_000_000 + 301)  # a replay
    assert not verify_signature("s3cret", header, raw, now=1_000_000 - 301)
    good = header.partition(",")[2]
    assert verify_signature("s3cret", f"t=1000000, v1=deadbeef, {good}", raw, now=1_000_000)
    for bad in ["", good, "t=1000000", "t=abc," + good, "t=1000000,t=1000000," + good,
                "t=-1000000," + good, "t=１０00000," + good, "t=1000000,v1=é"]:
        assert not verify_signature("s3cret", bad, raw, now=1_000_000), bad


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    assert retry_after("120", now) == dt.timedelta(seconds=120)
    assert retry_after("Mon, 02 Mar 2026 09:01:30 GMT", now) == dt.timedelta(seconds=90)
    assert retry_after("Mon, 02 Mar 2026 08:00:00 GMT", now) == dt.timedelta(0)
    assert retry_after("99999999", now) == MAX_RETRY_AFTER
    assert retry_after("soon", now) is None and retry_after(None, now) is None
