"""The JSON API blueprint: authentication, body limits and JSON errors for every route.

Every error, expected or not, is ``{"error": {"code", "message", "fields"}}``
with a fitting status; nothing ever answers with an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, default_exceptions

from ..errors import CaseError
from ..extension import state
from ..users import actor_for_token, adopt

blueprint = Blueprint("caseloop_api", __name__)
log = logging.getLogger("caseloop.api")

#: Routes anyone may call: the document describing the API, and the survey
#: endpoints (a survey link's token is its own credential).
PUBLIC = frozenset({"caseloop_api.openapi", "caseloop_api.survey",
                    "caseloop_api.answer_survey", "caseloop_api.crm_hook"})


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def error_response(status: int, code: str, message: str,
                   fields: dict[str, Any] | None = None) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message, "fields": fields or {}}}), status


@blueprint.before_request
def _before() -> tuple[Response, int] | None:
    limit = current_app.config["CASELOOP_MAX_BODY"]
    if request.content_length is not None and request.content_length > limit:
        return error_response(413, "too_large", f"the body is larger than {limit} bytes")
    if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        # PostgreSQL cannot compare text holding NUL; no filter value needs one.
        return error_response(400, "bad_query", "the query string may not contain NUL (%00)")
    if request.endpoint in PUBLIC:
        return None
    st = state()
    if st.load_error is not None:
        return error_response(503, "definitions_invalid",
                              "the definitions have errors; run 'caseloop check'")
    st.registry.refresh(st.db.session)
    actor = st.user_loader() if st.user_loader is not None else None
    if actor is not None and actor.id is None:
        # Ids never change: adopt each (name, roles, teams) once per process.
        key = ("adopted", actor.name, actor.roles, actor.team_names, actor.lang)
        adopted = st.adopted.get(key)
        if adopted is None:
            if len(st.adopted) > 10_000:
                st.adopted.clear()
            adopted = st.adopted[key] = adopt(
                st.db.session, actor, sees_all_roles=current_app.config["CASELOOP_SEE_ALL_ROLES"])
        actor = adopted
    if actor is None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("send 'Authorization: Bearer <token>' (caseloop users token)")
        actor = actor_for_token(st.db.session, token.strip(),
                                sees_all_roles=current_app.config["CASELOOP_SEE_ALL_ROLES"])
        if actor is None:
            return _unauthorized("the token is unknown or revoked")
    lang = request.accept_languages.best_match(["zh", "en"])
    if lang and lang != actor.lang and "Accept-Language" in request.headers:
        from dataclasses import replace

        actor = replace(actor, lang=lang)
    g.caseloop_actor = actor
    return None


def _unauthorized(message: str) -> tuple[Response, int]:
    response, status = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="caseloop"'
    return response, status


@blueprint.errorhandler(CaseError)
def _case_error(exc: CaseError) -> tuple[Response, int]:
    state().db.session.rollback()
    return error_response(exc.status, exc.code, exc.message, exc.fields)


@blueprint.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    state().db.session.rollback()
    return error_response(exc.status, exc.code, exc.message, exc.fields)


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 500, code, exc.description or exc.name or "error")


@blueprint.errorhandler(Exception)
def _unexpected(exc: Exception) -> tuple[Response, int]:
    state().db.session.rollback()
    log.exception("unexpected error in %s %s", request.method, request.path)
    return error_response(500, "internal", "something went wrong on our side; it was logged")


def json_errors_under(app: Flask, prefix: str) -> None:
    """Unknown routes and wrong methods under the API prefix answer in JSON too
    (a blueprint's own handlers never see routing errors). Elsewhere the host
    application's own handlers still answer, whether registered before or after."""
    for status in (404, 405):
        previous = app.error_handler_spec[None][status].get(default_exceptions[status])
        app.register_error_handler(status, _json_under(app, prefix, previous))


def _json_under(app: Flask, prefix: str, previous: Callable[[Any], Any] | None
                ) -> Callable[[HTTPException], Any]:
    def handler(exc: HTTPException) -> Any:
        if request.path.startswith(prefix + "/") or request.path == prefix:
            return _http_error(exc)
        if previous is not None:  # the host's handler for this status, replaced by ours
            return previous(exc)
        for cls in type(exc).__mro__:  # the host's catch-all, as Flask would have chosen it
            found = app.error_handler_spec[None][None].get(cls)
            if found is not None:
                return found(exc)
        return exc

    return handler


from . import crm, exports, inbox, jobs, metrics, openapi, routes, surveys  # noqa: E402,F401  (routes register on the blueprint)
