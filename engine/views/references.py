"""Finding a case for a reference field as one types: the cases the reader may see,
of the field's workflow, found by reference, phone or name (the inbox's search),
newest activity first. case.js fills the field's suggestions from it."""

from __future__ import annotations

from flask import g, jsonify, request
from werkzeug.wrappers import Response

from .. import inbox
from ..extension import state
from ..models import utcnow
from . import blueprint, login_required
from .cases import actor

#: Suggestions offered at most.
LIMIT = 10


@blueprint.get("/forms/references")
@login_required
def case_references() -> Response:
    q = request.args.get("q", "").strip()[:200]
    workflow = request.args.get("workflow", "").strip()[:64] or None
    if len(q) < 2 or "\x00" in q:
        return jsonify([])
    found = inbox.page(state().db.session, actor(), "recent",
                       inbox.Filters(workflow=workflow, q=q), now=utcnow(), limit=LIMIT,
                       with_counts=False)
    registry, lang = state().registry, g.caseloop_lang
    out = []
    for case in found.cases:
        wf = registry.workflow(case.workflow)
        about = str(case.data.get("subject") or case.data.get("title")
                    or case.data.get("customer_name") or "")
        out.append({"reference": case.reference,
                    "label": " · ".join(p for p in (
                        case.reference, wf.title.get(lang) if wf else case.workflow,
                        about[:80]) if p)})
    return jsonify(out)
