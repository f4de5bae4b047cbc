"""The public intake page: ``/intake/<workflow>`` for a workflow with ``public: true``
and an ``intake`` (its fields, the values the page sets, the team whose queue new
cases land in, the thank-you text). No login: the case is opened by
``Actor.public()``, which ``Cases.create`` lets fill the intake's fields only.

- In the customer's language: ``?lang=`` (the page's links, a hidden field when
  sending), else the browser's, else ``CASELOOP_DEFAULT_LANGUAGE``.
- The form is the workflow's form bound to its initial state with only the intake's
  fields; errors come back next to the fields in the customer's language with the
  input kept, and nothing is stored. Anything else posted (``priority=urgent``, a
  hidden field) is not on the form, so it is never read — and the engine would
  refuse it from the public anyway.
- Spam: a honeypot input (``HONEYPOT``, hidden from people and screen readers) that
  a person leaves empty; filled, the page answers as if it had worked (the same
  thank-you, without a reference) and stores nothing. Every submission that stores
  a case (or trips the honeypot) counts against the address: at most
  ``CASELOOP_INTAKE_ATTEMPTS`` within ``CASELOOP_INTAKE_WINDOW`` seconds per
  workflow (four times that over all workflows), then a 429 page saying when to
  try again. The counters are in this process's memory, as the login throttle's.
- After sending, the browser is redirected to the thank-you page (reloading it does
  not send the complaint twice); the reference travels in the session.
- CSRF: the token alone (the page is in ``NO_REFERRER``: its layout sends no
  Referer). A missing or stale token brings the form back with the input kept.
"""

from __future__ import annotations

import math
from typing import Any

from flask import current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from werkzeug.wrappers import Response

from .. import forms, values
from ..cases import Actor
from ..errors import CaseError, Invalid
from ..extension import state
from ..spec.model import Workflow
from . import blueprint, i18n
from .throttle import LoginThrottle, minutes

ENDPOINT = "caseloop_views.intake"
#: The honeypot input's name: not a field name (those cannot start with '_').
HONEYPOT = "_website"
#: The session key holding the reference to show on the thank-you page.
THANKS_KEY = "caseloop_intake"
Page = tuple[str, int] | tuple[str, int, dict[str, str]] | Response


def throttle() -> LoginThrottle:
    """Submissions per workflow and address (made on first use, one per application)."""
    found = current_app.extensions.get("caseloop_intake_throttle")
    if found is None:
        found = current_app.extensions.setdefault("caseloop_intake_throttle", LoginThrottle(
            int(current_app.config["CASELOOP_INTAKE_ATTEMPTS"]),
            float(current_app.config["CASELOOP_INTAKE_WINDOW"])))
    assert isinstance(found, LoginThrottle)
    return found


def public_workflow(name: str) -> Workflow | None:
    wf = state().registry.workflow(name)
    return wf if wf is not None and wf.public and wf.intake is not None else None


@blueprint.route("/intake/<workflow>", methods=["GET", "POST"])
def intake(workflow: str) -> Page:
    g.caseloop_lang = lang = language()
    wf = public_workflow(workflow)
    if wf is None:
        return _message(None, "missing", 404)
    post = request.method == "POST"
    form = _bind(wf, lang, post)
    if not post:
        return _page(wf, form, 200)
    address = request.remote_addr or "-"
    wait = throttle().wait(wf.name, address)
    if wait:
        page, status = _message(wf, "throttled", 429, minutes=minutes(wait))
        return page, status, {"Retry-After": str(math.ceil(wait))}
    if request.form.get(HONEYPOT, ""):
        throttle().failed(wf.name, address)  # counted, stored nowhere, answered as a success
        session.pop(THANKS_KEY, None)
        return redirect(url_for(ENDPOINT + "_thanks", workflow=wf.name, lang=lang))
    if form.validate_on_submit():
        db = state().db.session
        try:
            case = state().cases().create(wf.name, forms.submitted_data(form),
                                          Actor.public(lang))
        except Invalid as exc:
            db.rollback()
            forms.apply_errors(form, exc.fields)
            if not exc.fields:
                form.form_errors.append(exc.message)
        except CaseError:
            db.rollback()
            return _message(None, "missing", 404)
        else:
            reference = case.reference
            db.commit()
            throttle().failed(wf.name, address)
            session[THANKS_KEY] = [wf.name, reference]
            return redirect(url_for(ENDPOINT + "_thanks", workflow=wf.name, lang=lang))
    return _page(wf, form, 422)


@blueprint.post("/intake/<workflow>/live")
def intake_live(workflow: str) -> Any:
    """The intake form's conditions on what it holds now (visible, required, computed
    per field), for case.js; nothing is stored, and the server decides again on
    sending. Public like the form, CSRF-checked like it, never rate-limited: it
    only evaluates the definition's own expressions."""
    g.caseloop_lang = lang = language()
    wf = public_workflow(workflow)
    if wf is None:
        return _message(None, "missing", 404)
    return jsonify(forms.live(_bind(wf, lang, True)))


@blueprint.get("/intake/<workflow>/thanks")
def intake_thanks(workflow: str) -> Page:
    g.caseloop_lang = language()
    wf = public_workflow(workflow)
    if wf is None:
        return _message(None, "missing", 404)
    kept = session.pop(THANKS_KEY, None)
    reference = kept[1] if isinstance(kept, list) and len(kept) == 2 and \
        kept[0] == wf.name else None
    return _message(wf, "thanks", 200, reference=reference)


def expired_form() -> tuple[str, int]:
    """Sent without a valid CSRF token (the page was open too long, or cookies are
    off): nothing is stored; the form comes back with the input and a fresh token."""
    g.caseloop_lang = lang = language()
    wf = public_workflow((request.view_args or {}).get("workflow", ""))
    if wf is None:
        return _message(None, "missing", 404)
    form = _bind(wf, lang, True)
    form.form_errors.append(i18n.text(lang, "intake_resend"))
    return _page(wf, form, 400)


def language() -> str:
    return i18n.customer_language()


def _bind(wf: Workflow, lang: str, post: bool) -> Any:
    assert wf.intake is not None
    cases = state().cases()
    data = values.defaults(wf.form)
    spoken = wf.form.field("preferred_language")
    if spoken is not None and spoken.type == "choice" and \
            any(c.value == lang for c in spoken.choices):
        data["preferred_language"] = lang  # the page's language, unless they choose
    now = cases.clock()
    scope = {"now": now, "state": wf.initial, "reference": "", "created_at": now,
             "user": Actor.public(lang).names()}
    cls = forms.form_class(wf.form, lang, FlaskForm)
    return forms.bind(cls, wf.states[wf.initial], data, request.form if post else None,
                      scope=scope, choices={}, tz=i18n.zone(), region=cases.region,
                      new=True, only=list(wf.intake.fields))


def _page(wf: Workflow, form: Any, status: int) -> tuple[str, int]:
    lang = g.caseloop_lang
    b = forms.binding(form)
    fields = [{"def": f, "wt": form[f.name], "mode": b.modes[f.name],
               "add": forms.add_row_name(f.name) if f.type == "group" else None,
               "remove": [forms.remove_row_name(f.name, i) for i in
                          range(len(form[f.name].entries))] if f.type == "group" else []}
              for f in b.definition.fields if f.name in form]
    order = {name: i for i, name in enumerate(wf.intake.fields if wf.intake else ())}
    fields.sort(key=lambda item: order.get(item["def"].name, len(order)))
    return render_template(
        "caseloop/intake.html", wf=wf, form=form, fields=fields, honeypot=HONEYPOT,
        title=wf.title.get(lang), description=wf.form.description.get(lang)
        if wf.form.description else "", switch=True), status


def _message(wf: Workflow | None, kind: str, status: int, **values_: Any) -> tuple[str, int]:
    lang = g.caseloop_lang
    thanks = wf.intake.thanks.get(lang) if wf is not None and wf.intake is not None \
        and wf.intake.thanks else ""
    return render_template("caseloop/intake_message.html", kind=kind, wf=wf,
                           thanks=thanks, switch=kind != "thanks", **values_), status
