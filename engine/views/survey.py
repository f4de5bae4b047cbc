"""The customer's survey page, reached by the link in the survey email or SMS
(``surveys.link``: ``CASELOOP_PUBLIC_URL`` + ``/s/<token>``). No login: the link's
token is the credential, as for ``/api/surveys/<token>``, which this page mirrors.

- In the customer's language: a ``lang`` chosen on the page (``?lang=`` links, a
  hidden field when answering), else the link's (the case's preferred language when
  it was sent), else the browser's, else ``CASELOOP_DEFAULT_LANGUAGE``.
- The answer is typed as the engine expects (ints for scales, booleans, lists) and
  handed to ``surveys.answer``, which validates it, spends the link and fires its
  transition in one transaction; an invalid answer spends nothing and the form
  comes back with the engine's messages next to the fields and the input kept.
- The token is in the address, so the pages send ``Referrer-Policy: no-referrer``
  (and ``X-Robots-Tag: noindex``, ``Cache-Control: no-store``); nothing here logs it.
  With no Referer, Flask-WTF's HTTPS referrer check would refuse every answer, so
  the blueprint checks only the CSRF token for this page (see ``NO_REFERRER``).
- No rate limit: a token is 192 random bits (``secrets.token_urlsafe(24)``), so
  guessing one is hopeless at any request rate, and a known link answers once.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple

from flask import g, render_template, request
from sqlalchemy import select

from .. import surveys
from ..cases import Actor, Cases
from ..errors import CaseError, Invalid, NotFound
from ..extension import state
from ..models import Case, SurveyLink
from . import blueprint, i18n

#: The endpoint of the page (the blueprint treats it apart: see NO_REFERRER there).
ENDPOINT = "caseloop_views.survey"
#: Longer than any token issued (32 characters); anything longer is not looked up.
MAX_TOKEN = 64
#: Scales: (lowest, highest, message key of the low end, of the high end).
SCALES = {"rating": (1, 5, "csat_low", "csat_high"), "nps": (0, 10, "nps_low", "nps_high"),
          "ces": (1, 7, "ces_low", "ces_high")}
#: An integer question with a range this short is a scale too (no end labels).
SHORT_RANGE = 11
INPUT_TYPES = {"email": "email", "phone": "tel", "date": "date", "integer": "number",
               "decimal": "text"}
_INTEGER = re.compile(r"\s*-?\d{1,18}\s*")


@blueprint.route("/s/<token>", methods=["GET", "POST"])
def survey(token: str) -> tuple[str, int]:
    cases = state().cases()
    session = state().db.session
    found = _open(cases, token)
    if not isinstance(found, Opened):
        return found
    link, case, lang = found
    try:
        asked = _questions(cases, link, case, lang)
    except surveys.Gone:
        return _message("closed", 410)
    if request.method == "GET":
        return _form(asked, link, {}, {}, 200)
    data, kept = _typed(asked, request.form)
    try:
        surveys.answer(cases, token, data, lang)
    except Invalid as exc:
        session.rollback()  # the link was marked spent in this transaction: not any more
        # A question left blank gets the page's own words: a form's ``required`` message
        # may be written for the agent on the phone ("Ask the satisfaction question…").
        errors = {name: [i18n.text(lang, "survey_answer_this")]
                  if name in kept and name not in data else messages
                  for name, messages in exc.fields.items()}
        return _form(asked, link, kept, errors, 422,
                     problem=exc.message if exc.code == "guard_failed" else None)
    except surveys.Gone:
        session.rollback()
        return _message(_gone_reason(token), 410)
    except CaseError:  # the case changed under the answer (another transition won)
        session.rollback()
        return _message("closed", 410)
    session.commit()
    return _message("thanks", 200)


def expired_form() -> tuple[str, int]:
    """The answer came without a valid CSRF token (the page was open longer than the
    token lives, or the session cookie is gone): nothing is stored, and the form comes
    back with what was entered and a fresh token, rather than an error page."""
    token = (request.view_args or {}).get("token", "")
    cases = state().cases()
    found = _open(cases, token)
    if not isinstance(found, Opened):
        return found
    link, case, lang = found
    try:
        asked = _questions(cases, link, case, lang)
    except surveys.Gone:
        return _message(_gone_reason(token), 410)
    _, kept = _typed(asked, request.form)
    return _form(asked, link, kept, {}, 400, problem=i18n.text(lang, "survey_resend"))


class Opened(NamedTuple):
    link: SurveyLink
    case: Case
    lang: str


def _open(cases: Cases, token: str) -> Opened | tuple[str, int]:
    """The link of ``token``, its case and the customer's language (also set for the
    page); or the page saying why it cannot be answered (404 unknown, 410 gone)."""
    try:
        link, case = surveys.find(cases, token if len(token) <= MAX_TOKEN else "",
                                  cases.clock())
    except NotFound:
        g.caseloop_lang = _lang(None)
        return _message("unknown", 404)
    except surveys.Gone:
        g.caseloop_lang = _lang(_row(token))
        return _message(_gone_reason(token), 410)
    g.caseloop_lang = lang = _lang(link)
    return Opened(link, case, lang)


def _lang(link: SurveyLink | None) -> str:
    return i18n.customer_language(link.lang if link is not None else None)


def _row(token: str) -> SurveyLink | None:
    if not token or len(token) > MAX_TOKEN:
        return None
    found: SurveyLink | None = state().db.session.execute(select(SurveyLink).where(
        SurveyLink.digest == surveys.digest(token))).scalar_one_or_none()
    return found


def _gone_reason(token: str) -> str:
    """Why a link that exists no longer works, in the words the page uses."""
    row = _row(token)
    if row is None:
        return "closed"
    if row.answered_at is not None:
        return "answered"
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
    if state().cases().clock() >= expires:
        return "expired"
    return "closed"


def _message(kind: str, status: int) -> tuple[str, int]:
    """A page with only a heading and a sentence: thanks, or why the link is dead."""
    return render_template("caseloop/survey_message.html", kind=kind,
                           switch=kind != "thanks"), status


def _questions(cases: Any, link: SurveyLink, case: Any, lang: str) -> dict[str, Any]:
    """``surveys.questions`` with what the widgets need: the kind of input, the
    options of scales and choices, a text field's maximum length."""
    asked = surveys.questions(cases, link, case, lang)
    wf, _ = surveys.definition(cases, link, case)
    names = {q["name"] for q in asked["fields"]}
    scope = cases.scope(wf, case, Actor.system(), case.data)
    shown = []
    for q in asked["fields"]:
        f = wf.form.field(q["name"])
        cond = f.visible_if if f is not None else None
        if cond is not None and not cond.names & names and not cond.test(scope):
            # The form hides it for this case (``issue_resolved`` after a care call, not a
            # complaint): its answer would not be stored, so it is not asked. A condition
            # on another question's answer cannot be known yet: that one is asked.
            continue
        shown.append(q)
        q["max_length"] = f.max_length if f is not None else None
        q["widget"], q["options"], q["ends"] = _widget(q, lang)
        q["input_type"] = INPUT_TYPES.get(q["type"], "text")
    asked["fields"] = shown
    return asked


def _widget(q: dict[str, Any], lang: str) -> tuple[str, list[dict[str, str]], tuple[str, str]]:
    """How a question is asked: a scale of big radio buttons, yes / no, radios,
    checkboxes, a text area or a one-line input."""
    kind = q["type"]
    low = high = None
    ends = ("", "")
    if kind in SCALES:
        low, high, low_key, high_key = SCALES[kind]
        ends = (i18n.text(lang, low_key), i18n.text(lang, high_key))
    elif kind == "integer" and q.get("min") is not None and q.get("max") is not None \
            and 0 <= q["max"] - q["min"] < SHORT_RANGE:
        low, high = int(q["min"]), int(q["max"])
    if low is not None and high is not None:
        options = [{"value": str(n), "label": str(n)} for n in range(low, high + 1)]
        if ends[0]:  # the end labels, spoken with the end numbers
            options[0]["extra"], options[-1]["extra"] = ends
        return "scale", options, ends
    if kind == "boolean":
        return "scale", [{"value": "true", "label": i18n.text(lang, "yes")},
                         {"value": "false", "label": i18n.text(lang, "no")}], ends
    if kind == "choice":
        return "radios", [{"value": str(c["value"]), "label": c["label"]}
                          for c in q.get("choices", ())], ends
    if kind == "multichoice":
        return "checks", [{"value": str(c["value"]), "label": c["label"]}
                          for c in q.get("choices", ())], ends
    if kind == "textarea":
        return "textarea", [], ends
    return "input", [], ends


def _typed(asked: dict[str, Any], form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The posted form -> the answer in the engine's JSON types (unanswered questions
    left out), and what was entered, to show again. A value that does not fit its
    type (``"abc"`` for a scale) is passed on as it came: the engine says what is
    wrong with it, in the customer's language."""
    data: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for q in asked["fields"]:
        name, kind = q["name"], q["type"]
        if kind == "multichoice":
            picked = [v for v in form.getlist(name) if v]
            kept[name] = picked
            if picked:
                data[name] = picked
            continue
        raw = str(form.get(name, ""))
        if kind == "textarea":  # browsers send CRLF; the length counts what is stored
            raw = raw.replace("\r\n", "\n")
        kept[name] = raw
        if not raw.strip():
            continue
        if kind in SCALES or kind == "integer":
            data[name] = int(raw) if _INTEGER.fullmatch(raw) else raw
        elif kind == "boolean":
            data[name] = {"true": True, "false": False}.get(raw, raw)
        else:
            data[name] = raw
    return data, kept


def _form(asked: dict[str, Any], link: SurveyLink, kept: dict[str, Any],
          errors: dict[str, list[str]], status: int, problem: str | None = None
          ) -> tuple[str, int]:
    names = {q["name"] for q in asked["fields"]}
    others = [m for k, v in errors.items() if k not in names for m in v]  # no such question
    return render_template("caseloop/survey.html", asked=asked, kept=kept, errors=errors,
                           others=others, problem=problem, expires=link.expires_at,
                           switch=True), status
