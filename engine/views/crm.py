"""The customer lookup of the new-case page: as an agent types a phone number or an
email, case.js asks here and shows who the customer is in the CRM (segment, value
tier, lifecycle stage) and fills empty name fields. Staff only: the public intake
page never looks anyone up, it would show CRM data to strangers."""

from __future__ import annotations

from flask import current_app, jsonify, request
from werkzeug.wrappers import Response

from ..crm import lookup
from ..extension import state
from ..models import utcnow
from . import blueprint, login_required


@blueprint.get("/forms/customers")
@login_required
def case_customers() -> Response:
    st = state()
    email = request.args.get("email", "").strip()[:254] or None
    phone = request.args.get("phone", "").strip()[:40] or None
    if st.crm is None or not (email or phone):
        return jsonify({"customers": [], "unavailable": []})
    if email is not None and "@" not in email:
        email = None
    if phone is not None:
        phone = lookup.e164(phone, current_app.config["CASELOOP_PHONE_REGION"],
                            valid_only=True)
    if not (email or phone):
        return jsonify({"customers": [], "unavailable": []})
    found = lookup.find(st.db.session, st.crm, email=email, phone=phone, now=utcnow())
    st.db.session.commit()
    return jsonify({"customers": found.customers, "unavailable": found.unavailable})
