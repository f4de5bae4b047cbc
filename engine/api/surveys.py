"""The public survey endpoints: a customer with a survey link reads its questions
and answers once. No token header: the link's own token is the credential."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from .. import surveys
from ..extension import state
from ..models import SurveyLink
from . import blueprint
from .routes import TRANSITION_BODY, _json
from .schemas import load

TOKEN = "<string(maxlength=64):token>"
THANKS = {"en": "Thank you for your answer.", "zh": "感谢您的反馈。"}


def _lang(link: SurveyLink | None = None) -> str:
    """The customer's language: the case's, else the browser's, else the default."""
    for value in ((link.lang if link else ""), request.accept_languages.best_match(["zh", "en"]),
                  current_app.config["CASELOOP_DEFAULT_LANGUAGE"]):
        text = str(value or "").lower()
        if text.startswith(("zh", "en")):
            return text[:2]
    return "en"


@blueprint.get(f"/surveys/{TOKEN}")
def survey(token: str) -> Response:
    cases = state().cases()
    link, case = surveys.find(cases, token, cases.clock())
    return jsonify(surveys.questions(cases, link, case, _lang(link)))


@blueprint.post(f"/surveys/{TOKEN}")
def answer_survey(token: str) -> Response:
    body = load(TRANSITION_BODY, _json())
    st = state()
    cases = st.cases()
    link, _ = surveys.find(cases, token, cases.clock())
    lang = _lang(link)
    case = surveys.answer(cases, token, body["data"], lang)
    reference = case.reference
    st.db.session.commit()
    return jsonify({"answered": True, "reference": reference, "message": THANKS[lang]})
