"""The inbox over the API: a tab of cases with filters, search, counts per tab and
keyset pages (:mod:`caseloop.inbox`); claiming a case from the team queue, and
reassigning and commenting on a case."""

from __future__ import annotations

import datetime as dt

from flask import Response, current_app, jsonify, request

from .. import inbox
from ..extension import state
from ..models import utcnow
from . import blueprint
from .routes import (
    CASE_ID,
    _case_headers,
    _cursor,
    _if_match,
    _json,
    _limit,
    _make_cursor,
    _names,
    actor,
    case_json,
)
from .schemas import AssignBody, CommentBody, InboxQuery, load

INBOX_QUERY, COMMENT_BODY, ASSIGN_BODY = InboxQuery(), CommentBody(), AssignBody()


@blueprint.get("/inbox")
def get_inbox() -> Response:
    query = load(INBOX_QUERY, request.args.to_dict())
    filters = inbox.Filters(**{k: query.get(k) for k in (
        "workflow", "state", "priority", "channel", "customer", "q")})
    soon = dt.timedelta(hours=float(current_app.config["CASELOOP_DUE_SOON_HOURS"]))
    found = inbox.page(state().db.session, actor(), query["tab"], filters, now=utcnow(),
                       soon=soon, limit=_limit(query),
                       after=_cursor(query["cursor"]) if "cursor" in query else None)
    return jsonify({
        "tab": query["tab"], "counts": found.counts,
        "items": [case_json(c, names=_names(c)) for c in found.cases],
        "next_cursor": _make_cursor(*found.next) if found.next else None})


@blueprint.post(f"/cases/{CASE_ID}/claim")
def claim_case(case_id: int) -> tuple[Response, int, dict[str, str]]:
    st = state()
    case = st.cases().claim(case_id, actor(), expected_version=_if_match())
    out = case_json(case, names=_names(case))
    st.db.session.commit()
    return jsonify(out), 200, _case_headers(out)


@blueprint.post(f"/cases/{CASE_ID}/comments")
def comment_case(case_id: int) -> tuple[Response, int]:
    body = load(COMMENT_BODY, _json())
    st = state()
    case = st.cases().comment(case_id, body["text"], actor())
    reference = case.reference
    st.db.session.commit()
    return jsonify({"case": reference, "text": body["text"].strip()}), 201


@blueprint.post(f"/cases/{CASE_ID}/assign")
def assign_case(case_id: int) -> tuple[Response, int, dict[str, str]]:
    body = load(ASSIGN_BODY, _json())
    st = state()
    case = st.cases().assign(case_id, body["user"], actor(), expected_version=_if_match())
    out = case_json(case, names=_names(case))
    st.db.session.commit()
    return jsonify(out), 200, _case_headers(out)
