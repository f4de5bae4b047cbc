"""CRM endpoints: inbound webhooks, customer lookup for intake, a case's sync status.

``POST /hooks/<crm>`` is public (the CRM cannot send our bearer token): the
connector verifies the signature or shared token instead. It stores the events
and answers at once; the worker does the rest (CRMs give up on slow endpoints).
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from ..crm import inbound, lookup
from ..crm.connections import Connection, CRMSetupError
from ..crm.contract import InboundRequest
from ..crm.errors import CRMError, WebhookAuthError
from ..extension import state
from ..models import utcnow
from . import ApiError, blueprint, error_response
from .routes import actor


def _connection(name: str) -> Connection:
    st = state()
    if st.crm_error is not None:
        raise ApiError(503, "crm_misconfigured", f"CASELOOP_CRM cannot be used: {st.crm_error}")
    if st.crm is None or name not in st.crm.names():
        raise ApiError(404, "unknown_crm", f"no CRM '{name}' is configured")
    try:
        return st.crm.get(name)
    except CRMSetupError as exc:
        raise ApiError(503, "crm_misconfigured", str(exc)) from None


@blueprint.post("/hooks/<string(maxlength=64):crm>")
def crm_hook(crm: str) -> Response | tuple[Response, int]:
    conn = _connection(crm)
    if "webhooks" not in conn.capabilities:
        raise ApiError(404, "no_webhooks", f"{crm} does not send webhooks to Caseloop; it is "
                                           "polled instead")
    call = InboundRequest(request.method, request.url, dict(request.headers),
                          request.get_data(cache=False))
    now = utcnow()
    try:
        conn.connector.verify_webhook(call, now=now)
    except WebhookAuthError as exc:
        return error_response(401, "webhook_rejected", exc.message)
    try:
        events = conn.connector.parse_webhook(call)
    except CRMError as exc:
        return error_response(400, "webhook_unreadable", exc.message)
    session = state().db.session
    new, dupes = inbound.store(session, events, "webhook", now)
    session.commit()
    acknowledge = getattr(type(conn.connector), "acknowledgement", None)
    if callable(acknowledge):  # Salesforce Outbound Messages want a SOAP <Ack>
        return Response(acknowledge(conn.connector), status=200,
                        content_type="text/xml; charset=utf-8")
    return jsonify({"accepted": new, "duplicates": dupes})


@blueprint.get("/crm/customers")
def crm_customers() -> Response:
    """Customers matching ``email`` or ``phone`` in the configured CRMs, with their
    segment; CRMs that cannot answer within the lookup timeout are listed apart."""
    actor()  # staff only (the before_request hook authenticated)
    email = (request.args.get("email") or "").strip()[:254] or None
    phone = (request.args.get("phone") or "").strip()[:40] or None
    if not email and not phone:
        raise ApiError(400, "bad_query", "give 'email' or 'phone'")
    st = state()
    if st.crm is None:
        return jsonify({"customers": [], "unavailable": [], "configured": False})
    if phone:
        parsed = lookup.e164(phone, current_app.config["CASELOOP_PHONE_REGION"])
        if parsed is None:
            raise ApiError(400, "bad_query", f"'{phone}' is not a phone number")
        phone = parsed
    found = lookup.find(st.db.session, st.crm, email=email, phone=phone, now=utcnow())
    st.db.session.commit()
    return jsonify({"customers": found.customers, "unavailable": found.unavailable,
                    "configured": True})


@blueprint.get("/cases/<int:case_id>/crm")
def case_crm(case_id: int) -> Response:
    """The case's CRM records (with links out) and how its last sync went."""
    st = state()
    case = st.cases().get(case_id, actor())
    return jsonify({"links": lookup.status(st.db.session, case.id)})
