"""Telling people: the handlers of ``notify`` and ``webhook`` jobs.

Notification rows commit with the job, so exactly once; an email or webhook goes at
least once, with the job's id (``Message-ID``, ``Idempotency-Key``) to drop repeats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import smtplib
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from sqlalchemy import String, cast, select

from . import __version__, plugins
from .crm.errors import CRMError
from .extension import DEFAULTS
from .jobs import Context, Fail, Retry, Skip
from .models import Case, Membership, Notification, User, utcnow
from .plugins import Channel
from .spec.model import Workflow
from .surveys import link

#: Longest Retry-After honoured: a receiver's typo must not park a job for a year.
MAX_RETRY_AFTER = dt.timedelta(days=1)
#: 7bit: non-ASCII text goes base64 or quoted-printable, so no server needs 8BITMIME.
MAIL_POLICY = policy.SMTP.clone(cte_type="7bit")
#: Channel -> why the customer is not reached on it.
CHANNELS = {"inbox": "the customer has no inbox", "email": "the customer has no email address",
            "sms": "the customer has no phone number"}


# -- notify ------------------------------------------------------------------------------
def deliver(ctx: Context) -> str | None:
    """Handle a ``notify`` job: inbox rows for users, an email, SMS or a plugin's
    channel to the customer."""
    if (case := ctx.case) is None:
        raise Skip("the case no longer exists")
    channel = str(ctx.payload.get("channel") or "inbox")
    extra = plugins.channels(ctx.plugins) if ctx.plugins is not None else {}
    plugin = extra.get(channel)  # never a built-in name: the app refuses such a plugin
    if channel not in CHANNELS and plugin is None:
        known = ", ".join([*CHANNELS, *sorted(extra)])
        raise Fail(f"unknown channel '{channel}' (known: {known}); install the plugin that "
                   "provides it, or change the workflow's notify action")
    wf = ctx.cases.workflow_of(case)
    default = _lang(ctx.settings.get("CASELOOP_DEFAULT_LANGUAGE"), "zh")
    users, customer, missing = _recipients(ctx, case, wf, channel, default, plugin)
    if not users and customer is None:
        raise Skip("nobody to notify: " + ("; ".join(missing) or "no recipients"))
    state = str(ctx.payload.get("state") or case.state)
    message = ctx.payload.get("message") or {}
    if token := ctx.payload.get("survey"):  # a survey invitation: the link goes last
        url = link(str(ctx.settings.get("CASELOOP_PUBLIC_URL") or
                       DEFAULTS["CASELOOP_PUBLIC_URL"]), str(token))
        message = {lang: f"{text}\n{url}" for lang, text in message.items()}
    for user in users:  # no user addresses are stored yet: users always get the inbox
        lang = _lang(user.locale, default)
        _record(ctx, case.id, "inbox", lang, *_compose(case, wf, state, message, lang),
                user_id=user.id, status="sent")
    parts = [f"inbox: {len(users)}"] if users else []
    if customer is not None:
        (address, lang), status = customer, "logged"  # no SMS gateway yet, or no SMTP
        subject, body = _compose(case, wf, state, message, lang)
        if plugin is not None:  # like SMTP: nothing flushed first, a failure retries
            send_through(plugin, address, subject, body, ctx.settings)
            status = "sent"
        elif channel == "email" and (url := str(ctx.settings.get("CASELOOP_SMTP_URL") or "")):
            # Nothing is flushed first: on SQLite that would hold the write lock for the
            # whole SMTP conversation. A failed commit means a retry, and a second mail.
            sender = str(ctx.settings.get("CASELOOP_MAIL_FROM") or DEFAULTS["CASELOOP_MAIL_FROM"])
            send_email(url, sender, address, subject, body, job_id=ctx.job.id, now=ctx.now)
            status = "sent"
        _record(ctx, case.id, channel, lang, subject, body, address=address[:320],
                status=status)
        parts.append(f"{channel}: 1 ({status})")
    return ", ".join(parts) + "".join(f"; {m}" for m in missing)


def _lang(value: object, default: str) -> str:
    text = str(value or "").lower()
    return "zh" if text.startswith("zh") else "en" if text.startswith("en") else default


def _recipients(ctx: Context, case: Case, wf: Workflow, channel: str, default: str,
                plugin: Channel | None = None
                ) -> tuple[list[User], tuple[str, str] | None, list[str]]:
    """Users (each once), the customer's (address, language), why entries reached nobody."""
    users: dict[int, User] = {}
    customer: tuple[str, str] | None = None
    missing: list[str] = []
    for who in ctx.payload.get("to") or []:
        found: list[User] = []
        if who in ("assignee", "creator"):
            uid = case.assignee_id if who == "assignee" else case.created_by
            user = ctx.session.get(User, uid) if uid is not None else None
            found, why = [user] if user is not None and user.active else [], f"no active {who}"
        elif who == "team":
            found = _members(ctx, case.team_id) if case.team_id is not None else []
            why = "the case has no team" if case.team_id is None else "nobody active in the team"
        elif who.startswith("role:"):
            found, why = _with_role(ctx, who[5:], case.team_id), f"nobody has role '{who[5:]}'"
        elif who.startswith("user:"):  # a named person, e.g. the owner of a plan's action
            user = ctx.session.execute(select(User).where(User.name == who[5:])
                                       ).scalar_one_or_none()
            found = [user] if user is not None and user.active else []
            why = f"no active user '{who[5:]}'"
        elif who == "customer":
            customer = _customer(case, wf, channel, default, plugin)
            why = CHANNELS.get(channel, f"the customer has no address for {channel}")
            if customer is not None:  # not a user: only noted when unreachable
                continue
        else:
            why = f"unknown recipient '{who}'"
        if not found:
            missing.append(why)
        for user in found:
            users.setdefault(user.id, user)
    return list(users.values()), customer, missing


def _members(ctx: Context, team_id: int) -> list[User]:
    stmt = (select(User).join(Membership, Membership.user_id == User.id)
            .where(Membership.team_id == team_id, User.active.is_(True)).order_by(User.id))
    return list(ctx.session.execute(stmt).scalars())


def _with_role(ctx: Context, role: str, team_id: int | None) -> list[User]:
    """Active holders of ``role``: those of the case's team (they know it) if any, else all."""
    # A LIKE on the JSON text narrows the rows on SQLite and PostgreSQL alike (the
    # column holds json.dumps output); the exact test is the Python one after it.
    like = cast(User.roles, String).contains(json.dumps(role), autoescape=True)
    stmt = select(User).where(User.active.is_(True), like).order_by(User.id)
    holders = [u for u in ctx.session.execute(stmt).scalars() if role in (u.roles or [])]
    team = {u.id for u in _members(ctx, team_id)} if team_id is not None else set()
    return [u for u in holders if u.id in team] or holders


def _customer(case: Case, wf: Workflow, channel: str, default: str,
              plugin: Channel | None = None) -> tuple[str, str] | None:
    if plugin is not None:  # the plugin knows which of the case's fields reach the customer
        address = str(plugin.address(dict(case.data or {})) or "").strip()
    else:
        kind = {"email": "email", "sms": "phone"}.get(channel)  # the inbox: not for customers
        field = next((f for f in wf.form.fields if f.type == kind), None)
        address = str(case.data.get(field.name) or "").strip() if field is not None else ""
    lang = case.data.get("preferred_language") if wf.form.field("preferred_language") else None
    return (address, _lang(lang, default)) if address else None


def _compose(case: Case, wf: Workflow, state: str, message: dict[str, Any], lang: str
             ) -> tuple[str, str]:
    """Subject and plain-text body in ``lang``. The texts are used as they are, never
    formatted or rendered as templates (a '{' in a message is just a brace)."""
    text = str(message.get(lang) or message.get("en" if lang == "zh" else "zh") or "")
    label = wf.states[state].label.get(lang) if state in wf.states else state
    line = (f"案件编号：{case.reference}，当前状态：{label}" if lang == "zh"
            else f"Case {case.reference}, state: {label}")
    # One line (a header must not break) and short enough for the subject column.
    subject = " ".join(f"[{case.reference}] {wf.title.get(lang)}".split())[:300]
    return subject, f"{text}\n\n{line}" if text else line


def _record(ctx: Context, case_id: int | None, channel: str, lang: str, subject: str,
            body: str, **more: Any) -> None:  # user_id, or address and status
    ctx.session.add(Notification(job_id=ctx.job.id, case_id=case_id, channel=channel, lang=lang,
                                 subject=subject, body=body, created_at=ctx.now, **more))


def send_through(channel: Channel, to: str, subject: str, body: str,
                 settings: Mapping[str, Any]) -> None:
    """Send with a plugin's channel, its errors as the job's: a retryable CRMError (after
    its retry_after, when it says) or an OSError retries; anything else fails for good."""
    try:
        channel.send(to, subject, body, settings)
    except (Retry, Fail, Skip):
        raise  # the plugin spoke the job's language itself
    except CRMError as exc:
        if not exc.retryable:
            raise Fail(f"{channel.name}: {exc}") from None
        after = (min(dt.timedelta(seconds=max(exc.retry_after, 0)), MAX_RETRY_AFTER)
                 if exc.retry_after is not None else None)
        raise Retry(f"{channel.name}: {exc}", after=after) from None
    except OSError as exc:  # refused, timed out, DNS: may pass later
        raise Retry(f"{channel.name} unreachable: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the plugin's refusal: retrying cannot help
        raise Fail(f"{channel.name} could not send: {type(exc).__name__}: {exc}") from None


# -- email -------------------------------------------------------------------------------
def send_email(url: str, sender: str, to: str, subject: str, body: str, *, job_id: int,
               now: dt.datetime | None = None, timeout: float = 10) -> None:
    """Send a plain-text email over ``smtp://user:pass@host:port[?starttls=1]`` or ``smtps://``:
    :class:`Retry` if later may work (no connection, timeout, 4xx), else :class:`Fail`."""
    u = urllib.parse.urlsplit(url)
    try:
        port = u.port
    except ValueError:  # not a number, or out of range
        port = -1
    if u.scheme not in ("smtp", "smtps") or not (host := u.hostname) or port == -1:
        # The URL holds a password: the message names the setting, never its value.
        raise Fail("CASELOOP_SMTP_URL must look like smtp://user:pass@host:587?starttls=1 "
                   "or smtps://user:pass@host:465")
    msg = EmailMessage(policy=MAIL_POLICY)
    try:
        msg["From"], msg["To"], msg["Subject"] = sender, to, subject
        msg["Date"] = format_datetime(now or utcnow())
        # From the job, not random: a retried send repeats it, so the copy is recognised.
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        msg["Message-ID"] = f"<caseloop-job-{job_id}@{domain}>"
        msg["X-Caseloop-Job"] = str(job_id)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
        msg.set_content(body)
    except (ValueError, TypeError) as exc:  # a line break in an address, say
        raise Fail(f"cannot build the email to {to!r}: {exc}") from None
    starttls = urllib.parse.parse_qs(u.query).get("starttls", [""])[0] in ("1", "true")
    context = ssl.create_default_context()
    try:
        smtp = (smtplib.SMTP_SSL(host, port or 465, timeout=timeout, context=context)
                if u.scheme == "smtps" else smtplib.SMTP(host, port or 25, timeout=timeout))
        try:
            if starttls:
                smtp.starttls(context=context)
            if u.username:
                smtp.login(unquote(u.username), unquote(u.password or ""))
            smtp.send_message(msg)
        finally:  # no QUIT: its reply must not turn a mail sent into an error
            smtp.close()
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise _by_code(code, reply, f"the mail server refused {to}") from None
    except smtplib.SMTPResponseException as exc:  # the greeting, AUTH, MAIL or DATA
        raise _by_code(exc.smtp_code, exc.smtp_error, "the mail server said") from None
    except smtplib.SMTPNotSupportedError as exc:  # STARTTLS asked of a server without it
        raise Fail(f"the mail server does not support this: {exc}") from None
    except OSError as exc:  # refused, timed out, TLS, dropped (SMTPException included)
        raise Retry(f"mail server unreachable: {type(exc).__name__}: {exc}") from None


def _by_code(code: int, reply: bytes | str, what: str) -> Exception:
    # 5xx is permanent (RFC 5321); 4xx, or no reply at all (-1), may pass later.
    note = f"{what}: {code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    return Fail(note) if code >= 500 else Retry(note)


# -- webhooks ----------------------------------------------------------------------------
def webhook(ctx: Context) -> str | None:
    """Handle a ``webhook`` job: ``{"url", "secret_env", "body"}``, POSTed signed."""
    url, name, body = (ctx.payload.get(k) for k in ("url", "secret_env", "body"))
    if not (url and isinstance(url, str) and name and isinstance(name, str)):
        raise Fail("a webhook job needs 'url' and 'secret_env' (the variable with its secret)")
    if not (secret := os.environ.get(name)):
        raise Fail(f"no secret for the webhook: set the environment variable {name}")
    body = body if isinstance(body, dict) else {}
    post_webhook(url, secret, body, job_id=ctx.job.id)
    # Without credentials or query (they may hold tokens): the history shows this.
    u = urllib.parse.urlsplit(url)
    target = f"{u.scheme}://{u.netloc.rpartition('@')[2]}{u.path}"
    _record(ctx, ctx.job.case_id, "webhook", _lang(ctx.settings.get("CASELOOP_DEFAULT_LANGUAGE"),
            "zh"), f"POST {target}"[:300], json.dumps(body, ensure_ascii=False),
            address=target[:320], status="sent")
    return f"webhook: posted to {target}"


def sign(secret: str, raw_body: bytes, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` (Stripe's scheme): the signed
    timestamp lets a receiver refuse the replay of an old request."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + raw_body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, raw_body: bytes, *, now: int,
                     tolerance: int = 300) -> bool:
    """Whether ``header`` signs ``raw_body`` with ``secret`` within ``tolerance`` s of
    ``now`` (any of several ``v1``: a sender rotating its secret)."""
    pairs = [part.strip().partition("=") for part in header.split(",")]
    stamps = [v for k, _, v in pairs if k == "t"]
    given = [v for k, _, v in pairs if k == "v1"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not given \
            or abs(now - int(stamps[0])) > tolerance:
        return False
    expected = sign(secret, raw_body, int(stamps[0])).rpartition("v1=")[2].encode()
    # Constant time, and every candidate compared: the timing tells nothing.
    return sum(hmac.compare_digest(expected, v.encode()) for v in given) > 0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would take the signed POST elsewhere (as a GET): it stays an error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_webhook(url: str, secret: str, body: dict[str, Any], *, job_id: int,
                 timeout: float = 10) -> None:
    """POST ``body`` as signed JSON. 2xx is done; 429, 5xx and network errors raise
    :class:`Retry` (after the reply's Retry-After); any other answer :class:`Fail`."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise Fail("a webhook URL must start with http:// or https://")  # not file://
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    request = urllib.request.Request(url, data=raw, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"caseloop/{__version__}",
        "X-Caseloop-Signature": sign(secret, raw, int(utcnow().timestamp())),
        "Idempotency-Key": f"caseloop-job-{job_id}"})
    try:
        # The answer's body is not read: a receiver cannot make us download much.
        urllib.request.build_opener(_NoRedirects()).open(request, timeout=timeout).close()
    except urllib.request.HTTPError as exc:
        detail = f"the webhook answered {exc.code} {exc.reason}"
        if exc.code == 429 or exc.code >= 500:
            raise Retry(detail, after=retry_after(exc.headers["Retry-After"], utcnow())) from None
        raise Fail(detail + (" (redirects are not followed)" if exc.code < 400 else "")) from None
    except (OSError, http.client.HTTPException) as exc:  # refused, DNS, timeout, dropped
        raise Retry(f"webhook unreachable: {type(exc).__name__}: {exc}") from None


def retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """Retry-After (seconds or HTTP-date) as a capped delay; None: the executor's backoff."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = (when.replace(tzinfo=when.tzinfo or dt.UTC) - now).total_seconds()
    return min(dt.timedelta(seconds=max(seconds, 0)), MAX_RETRY_AFTER)
