"""Tokenised survey links: sent to the customer when a case enters a state with a
``survey`` action, answered once through the public survey endpoint, dead after
they expire.

The token is 192 random bits. The links table keeps only its SHA-256, so the
link cannot be rebuilt from it; the link itself travels in the notification job
(the outbox builds the URL from ``CASELOOP_PUBLIC_URL`` when it sends) and stays
in the message's copy in the mail log, like any message sent. The API and the
pages never show it, and a link dies once answered or expired.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from .errors import CaseError, Invalid, NotFound
from .models import Case, Event, Job, SurveyLink, append
from .spec.model import Survey, Workflow

if TYPE_CHECKING:
    from .cases import Cases

#: The address field type for each channel.
ADDRESS = {"email": "email", "sms": "phone"}
#: Where the survey page answers, under CASELOOP_PUBLIC_URL.
PATH = "/s/"


class Gone(CaseError):
    """The link worked once: it has expired, was answered, or its case moved on."""

    status, code = 410, "gone"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + PATH + token


def issue(cases: Cases, wf: Workflow, case: Case, survey: Survey, scope: dict[str, Any],
          actor_name: str) -> str | None:
    """Create a link for ``case`` and queue its message on the first channel the
    customer has an address for; returns the token (None if none could be sent)."""
    now: dt.datetime = scope["now"]
    channel = next((c for c in survey.channels if _address(wf, case, c)), None)
    if channel is None:
        append(cases.session, Event, case_id=case.id, kind="action", actor_name=actor_name,
               at=now, payload={"action": "survey", "note": "survey not sent: the customer "
                                f"has no {' or '.join(ADDRESS[c] for c in survey.channels)}"})
        return None
    token = secrets.token_urlsafe(24)
    lang = str(case.data.get("preferred_language") or "")[:8]
    cases.session.add(SurveyLink(case_id=case.id, digest=digest(token), state=case.state,
                                 trigger=survey.fire, channel=channel, lang=lang,
                                 created_at=now, expires_at=now + survey.expires))
    append(cases.session, Job, kind="notify", case_id=case.id, run_at=now, created_at=now,
           payload={"to": ["customer"], "channel": channel, "state": case.state,
                    "message": {"en": survey.message.en, "zh": survey.message.zh},
                    "survey": token})
    if survey.expired is not None:  # the workflow moves on when nobody answers
        append(cases.session, Job, kind="timer", case_id=case.id,
               run_at=now + survey.expires, created_at=now,
               payload={"trigger": survey.expired, "state": case.state,
                        "entered_at": now.isoformat()})
    append(cases.session, Event, case_id=case.id, kind="action", actor_name=actor_name,
           at=now, payload={"action": "survey", "channel": channel,
                            "expires_at": (now + survey.expires).isoformat()})
    return token


def _address(wf: Workflow, case: Case, channel: str) -> bool:
    return any(f.type == ADDRESS[channel] and str(case.data.get(f.name) or "").strip()
               for f in wf.form.fields)


def find(cases: Cases, token: str, now: dt.datetime) -> tuple[SurveyLink, Case]:
    """The link of ``token`` and its case, if it may still be answered."""
    found = cases.session.execute(select(SurveyLink).where(
        SurveyLink.digest == digest(token))).scalar_one_or_none() if token else None
    if found is None:
        raise NotFound("this survey link is not valid; check that it was copied whole")
    if found.answered_at is not None:
        raise Gone("this survey has already been answered. Thank you!")
    if now >= found.expires_at:
        raise Gone("this survey link has expired")
    case = cases.session.get(Case, found.case_id)
    if case is None or case.state != found.state:
        raise Gone("this survey is closed: the case has moved on")
    return found, case


def definition(cases: Cases, link_row: SurveyLink, case: Case) -> tuple[Workflow, Survey]:
    """The survey action that sent the link (its questions), in the case's version."""
    wf = cases.workflow_of(case)
    state = wf.states.get(link_row.state)
    for action in state.on_enter if state is not None else ():
        if action.survey is not None and action.survey.fire == link_row.trigger:
            return wf, action.survey
    raise Gone("this survey is closed: its definition has changed")


def questions(cases: Cases, link_row: SurveyLink, case: Case, lang: str) -> dict[str, Any]:
    """What the survey page shows: the survey's fields, in ``lang``."""
    wf, survey = definition(cases, link_row, case)
    t = next((t for t in wf.transitions_from(case.state) if t.trigger == link_row.trigger), None)
    required = set(t.requires) if t is not None else set()
    fields = []
    for name in survey.fields:
        f = wf.form.field(name)
        if f is None:
            continue
        item: dict[str, Any] = {"name": f.name, "type": f.type, "label": f.label.get(lang),
                                "required": f.required or f.name in required}
        if f.help is not None:
            item["help"] = f.help.get(lang)
        if f.choices:
            item["choices"] = [{"value": c.value, "label": c.label.get(lang)}
                               for c in f.choices]
        if f.min is not None or f.max is not None:
            item["min"], item["max"] = f.min, f.max
        fields.append(item)
    return {"reference": case.reference, "title": wf.title.get(lang), "lang": lang,
            "expires_at": link_row.expires_at.isoformat(), "fields": fields}


def answer(cases: Cases, token: str, data: dict[str, Any], lang: str) -> Case:
    """Record the customer's answer: the link is spent and the case takes the
    link's transition, in one transaction (an invalid answer spends nothing)."""
    from dataclasses import replace

    from .cases import Actor

    now = cases.clock()
    found, case = find(cases, token, now)
    _, survey = definition(cases, found, case)
    strays = sorted(set(data) - set(survey.fields))
    if strays:
        raise Invalid("some fields are not questions of this survey",
                      fields={k: ["not a question of this survey"] for k in strays})
    spent = cases.session.execute(
        update(SurveyLink).where(SurveyLink.id == found.id, SurveyLink.answered_at.is_(None))
        .values(answered_at=now))
    if getattr(spent, "rowcount", 1) != 1:  # answered by a concurrent request
        raise Gone("this survey has already been answered. Thank you!")
    case = cases.fire(case.id, found.trigger, data, replace(Actor.system(), lang=lang))
    append(cases.session, Event, case_id=case.id, kind="survey", actor_name="customer",
           at=now, payload={"answered": sorted(data), "channel": found.channel})
    return case
