"""The case pages: a new case, the case page (fields by permission, linked cases,
history, actions with their "why not", comments), step forms for transitions and
the edit form, with conflicts answered by what changed and the input kept.

The forms come from :mod:`caseloop.forms`; :mod:`caseloop.cases` judges
everything (the same rules as the API), and nothing is stored on an error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from sqlalchemy import select
from werkzeug.wrappers import Response

from .. import forms, values
from ..cases import Actor, Cases, visible
from ..crm import lookup as crm_lookup
from ..errors import CaseError, Conflict, Invalid, NotFound
from ..extension import state
from ..models import Case, Team, User
from ..spec.model import Form, State, Transition, Workflow
from ..users import actor_for
from . import blueprint, case_history, current_user, error_page, i18n, login_required, t

#: Largest id a path may name (the id columns are 64-bit).
CASE_ID = f"<int(max={2**63 - 1}):case_id>"
Page = tuple[str, int] | Response


def actor() -> Actor:
    user = current_user()
    assert user is not None
    found = actor_for(state().db.session, user,
                      sees_all_roles=current_app.config["CASELOOP_SEE_ALL_ROLES"])
    return replace(found, lang=g.caseloop_lang)


def choices(wf: Workflow) -> dict[str, list[tuple[str, str]]]:
    """The options of the form's user pickers: active users (with the field's roles)
    or teams, by ``bind(choices=…)`` key."""
    return form_choices(wf.form)


def form_choices(form: Form) -> dict[str, list[tuple[str, str]]]:
    """:func:`choices` of one form (the designer previews forms without a workflow)."""
    pickers = forms.pickers(form)
    if not pickers:
        return {}
    session = state().db.session
    users = session.execute(select(User).where(User.active.is_(True)).order_by(User.name)
                            ).scalars().all()
    teams = session.execute(select(Team.name).order_by(Team.name)).scalars().all()
    out = {}
    for key, f in pickers.items():
        if f.of == "team":
            out[key] = [(name, name) for name in teams]
        else:
            out[key] = [(u.name, u.display_name or u.name) for u in users
                        if not f.roles or set(u.roles or ()) & set(f.roles)]
    return out


def _bind(wf: Workflow, st: State | None, data: Any, *, case: Case | None, who: Actor,
          post: bool, **kw: Any) -> Any:
    cls = forms.form_class(wf.form, g.caseloop_lang, FlaskForm)
    cases = state().cases()
    if case is not None:
        scope = cases.scope(wf, case, who, case.data)
    else:
        now = cases.clock()
        scope = {"now": now, "state": wf.initial, "reference": "", "created_at": now,
                 "user": who.names()}
    return forms.bind(cls, st, data, request.form if post else None, scope=scope,
                      choices=choices(wf), tz=i18n.zone(), region=cases.region, **kw)


def _fail(exc: CaseError) -> Page:
    state().db.session.rollback()
    if isinstance(exc, NotFound):
        return error_page(404, "not_found")
    return error_page(403, "case_forbidden")


# -- a new case -------------------------------------------------------------------------
@blueprint.route("/cases/new/<workflow>", methods=["GET", "POST"])
@login_required
def case_new(workflow: str) -> Page:
    wf = state().registry.workflow(workflow)
    if wf is None:
        return error_page(404, "not_found")
    who = actor()
    if not wf.start_roles & who.acting_roles:
        return error_page(403, "case_forbidden")
    form = _bind(wf, wf.states[wf.initial], values.defaults(wf.form), case=None, who=who,
                 post=request.method == "POST", new=True)
    status = 200
    taken = files.take(form, {}) if form.validate_on_submit() else None
    if taken is not None:
        session = state().db.session
        attached, new = taken
        saved = False
        try:
            case = state().cases().create(wf.name, {**forms.submitted_data(form), **attached},
                                          who)
        except Invalid as exc:
            session.rollback()
            forms.apply_errors(form, exc.fields)
            if not exc.fields:
                form.form_errors.append(exc.message)
        except CaseError as exc:
            return _fail(exc)
        else:
            reference, case_id, data = case.reference, case.id, dict(case.data)
            session.commit()
            saved = True
            files.settle(new, data)
            flash(t("case_opened", reference=reference))
            return redirect(url_for("caseloop_views.case", case_id=case_id))
        finally:
            if not saved:  # nothing of a case that was not saved is kept
                files.discard(new)
    if request.method == "POST":
        status = 422
    return render_template("caseloop/case_form.html", mode="new", wf=wf, form=form,
                           title=t("case_new_title", workflow=wf.title.get(g.caseloop_lang)),
                           fields=shown_fields(form), case=None, notice=None, changed=[],
                           version=None, seen=None, crm_enabled=state().crm is not None), status


# -- the case page --------------------------------------------------------------------------
@blueprint.get(f"/cases/{CASE_ID}")
@login_required
def case(case_id: int) -> Page:
    return _case_page(case_id)


@blueprint.post(f"/cases/{CASE_ID}/comment")
@login_required
def case_comment(case_id: int) -> Page:
    who, session = actor(), state().db.session
    text = request.form.get("text", "")
    try:
        state().cases().comment(case_id, text, who)
    except Invalid as exc:
        session.rollback()
        return _case_page(case_id, comment=text,
                          comment_errors=exc.fields.get("text", [exc.message]), status=422)
    except CaseError as exc:
        return _fail(exc)
    session.commit()
    flash(t("case_commented"))
    return redirect(url_for("caseloop_views.case", case_id=case_id) + "#history")


def _case_page(case_id: int, *, comment: str = "", comment_errors: list[str] | None = None,
               status: int = 200) -> Page:
    who = actor()
    cases = state().cases()
    try:
        found = cases.get(case_id, who)
    except NotFound:
        return error_page(404, "not_found")
    wf = cases.workflow_of(found)
    st = wf.states[found.state]
    lang = g.caseloop_lang
    session = state().db.session
    assignee = session.get(User, found.assignee_id) if found.assignee_id else None
    team = session.get(Team, found.team_id) if found.team_id else None
    return render_template(
        "caseloop/case.html", case=found, wf=wf, st=st, lang=lang,
        workflow_title=wf.title.get(lang), state_label=st.label.get(lang),
        state_description=st.description.get(lang) if st.description else "",
        assignee=(assignee.display_name or assignee.name) if assignee else None,
        team=team.name if team else None,
        fields=case_history.fields(wf, st, found.data),
        linked=_linked(found, who), history=case_history.history(wf, st, found.id),
        crm=crm_lookup.status(session, found.id),
        actions=_actions(cases, found, who, wf), seen=case_history.last_event(found.id),
        assignment=assignment.options(found, who, wf),
        may_edit=bool(wf.roles & who.acting_roles) and _editable(wf, st),
        comment=comment, comment_errors=comment_errors or []), status


def _actions(cases: Cases, found: Case, who: Actor, wf: Workflow) -> list[dict[str, Any]]:
    out = []
    for a in cases.actions(found, who):
        t_ = next(x for x in wf.transitions_from(found.state) if x.trigger == a["trigger"])
        if not t_.allow & who.acting_roles and "system" in t_.allow and not a["available"]:
            continue  # the system's own transitions (timers): not the reader's to take
        a["quick"] = not t_.requires  # a button; otherwise a step form
        out.append(a)
    return out


def _editable(wf: Workflow, st: State) -> list[str]:
    return [f.name for f in wf.form.fields
            if st.fields.of(f.name) == "editable" and not f.computed]


def _linked(found: Case, who: Actor) -> dict[str, Any]:
    session = state().db.session
    parent = session.get(Case, found.parent_id) if found.parent_id else None
    children = session.execute(select(Case).where(Case.parent_id == found.id)
                               .order_by(Case.id)).scalars().all()

    def row(c: Case) -> dict[str, Any]:
        wf = state().registry.pinned(c.workflow, c.definition_version, session)
        return {"id": c.id, "reference": c.reference, "workflow": wf.title.get(g.caseloop_lang),
                "state": case_history.state_label(wf, c.state), "visible": visible(c, who)}

    return {"parent": row(parent) if parent is not None else None,
            "children": [row(c) for c in children]}


# -- step forms and the edit form ---------------------------------------------------------
@blueprint.route(f"/cases/{CASE_ID}/do/<trigger>", methods=["GET", "POST"])
@login_required
def case_step(case_id: int, trigger: str) -> Page:
    return _change(case_id, trigger)


@blueprint.route(f"/cases/{CASE_ID}/edit", methods=["GET", "POST"])
@login_required
def case_edit(case_id: int) -> Page:
    return _change(case_id, None)


def _int(name: str) -> int | None:
    raw = request.form.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


def _change(case_id: int, trigger: str | None) -> Page:
    """A step form (``trigger``) or the edit form (None): show, save, or say why not."""
    who, cases, session = actor(), state().cases(), state().db.session
    try:
        found = cases.get(case_id, who)
    except NotFound:
        return error_page(404, "not_found")
    wf = cases.workflow_of(found)
    tr = _transition(wf, found, trigger)
    if trigger is not None and tr is None:
        if not any(x.trigger == trigger for x in wf.transitions):
            return error_page(404, "not_found")
        if request.method == "GET":
            flash(t("case_not_now", state=case_history.state_label(wf, found.state)), "error")
            return redirect(url_for("caseloop_views.case", case_id=case_id))
    if tr is not None and not tr.allow & who.acting_roles:
        return error_page(403, "case_forbidden")
    if trigger is None and not wf.roles & who.acting_roles:
        return error_page(403, "case_forbidden")
    post = request.method == "POST"
    version, seen = found.version, case_history.last_event(found.id)
    if post:
        version, seen = _int("_version") or found.version, _int("_seen") or 0
    quick = post and request.form.get("_quick") == "1"
    form = _form(wf, found, tr, who, post and not quick)
    notice, changed, status = None, [], 200
    taken: tuple[dict[str, Any], list[str]] | None = None
    if post and not quick and form.validate_on_submit():
        taken = files.take(form, found.data)
    if quick or taken is not None:
        attached, new = taken if taken is not None else ({}, [])
        data = {} if quick else {**forms.submitted_data(form), **attached}
        saved = False
        try:
            if trigger is not None:
                result = cases.fire(case_id, trigger, data, who, expected_version=version)
            else:
                result = cases.update(case_id, data, who, expected_version=version)
        except Invalid as exc:
            session.rollback()
            if exc.code == "guard_failed" or not exc.fields:
                notice = exc.message
            forms.apply_errors(form, exc.fields)
            status = 422
        except Conflict as exc:
            session.rollback()
            status = 409
            found = cases.get(case_id, who)
            if exc.code == "wrong_state":
                notice = t("case_moved", state=case_history.state_label(wf, found.state))
            else:
                notice = t("case_stale")
            st = wf.states[found.state]
            changed = case_history.history(wf, st, found.id, after=seen)
            version, seen = found.version, case_history.last_event(found.id)
            tr = _transition(wf, found, trigger)
            if trigger is not None and tr is None:
                notice = t("case_moved", state=case_history.state_label(wf, found.state))
            if trigger is None or tr is not None:  # the input, on top of the new data
                form = _form(wf, found, tr, who, not quick)
        except CaseError as exc:
            return _fail(exc)
        else:
            reference, kept = result.reference, dict(result.data)
            session.commit()
            saved = True
            files.settle(new, kept)
            flash(t("case_done" if trigger else "case_saved", reference=reference))
            return redirect(url_for("caseloop_views.case", case_id=case_id))
        finally:
            if not saved:
                files.discard(new)
    elif post:
        status = 422
    if tr is not None:
        title = tr.label.get(g.caseloop_lang)
    else:
        title = t("case_edit_title") if trigger is None else trigger
    return render_template(
        "caseloop/case_form.html", mode="step" if trigger else "edit", wf=wf, form=form,
        title=title, description=tr.description.get(g.caseloop_lang)
        if tr is not None and tr.description else "", fields=shown_fields(form), case=found,
        notice=notice, changed=changed, version=version, seen=seen, trigger=trigger,
        blocked=trigger is not None and tr is None,
        state_label=case_history.state_label(wf, found.state)), status


def _transition(wf: Workflow, found: Case, trigger: str | None) -> Transition | None:
    if trigger is None:
        return None
    return next((x for x in wf.transitions_from(found.state) if x.trigger == trigger), None)


def _form(wf: Workflow, found: Case, tr: Transition | None, who: Actor, post: bool) -> Any:
    st = wf.states[found.state]
    requires = tr.requires if tr is not None else ()
    only = [f.name for f in wf.form.fields
            if st.fields.of(f.name) == "editable" or f.name in requires]
    return _bind(wf, st, found.data, case=found, who=who, post=post, required=requires,
                 only=only)


def shown_fields(form: Any) -> list[dict[str, Any]]:
    """The fields on the page, in the form's order, with how each is shown."""
    b = forms.binding(form)
    out = []
    for f in b.definition.fields:
        if f.name not in form:
            continue  # hidden in this state
        mode = b.modes[f.name]
        attached = [x for x in (b.base.get(f.name) or []) if isinstance(x, dict)
                    and isinstance(x.get("id"), str)] if f.type == "file" else []
        out.append({"def": f, "wt": form[f.name], "mode": mode, "files": attached,
                    "remove_name": files.REMOVE.format(f.name),
                    "add": forms.add_row_name(f.name) if f.type == "group" else None,
                    "remove": [forms.remove_row_name(f.name, i) for i in
                               range(len(form[f.name].entries))] if f.type == "group" else []})
    return out


# -- live conditions ----------------------------------------------------------------------
@blueprint.post("/forms/live/<workflow>")
@login_required
def case_live(workflow: str) -> Any:
    """The conditions on what the page holds now, for case.js (visible, required,
    readonly, computed value per field); the server decides again on saving."""
    who = actor()
    wf = state().registry.workflow(workflow)
    case_id = _int("_case")
    found = None
    if case_id is not None:
        try:
            found = state().cases().get(case_id, who)
        except NotFound:
            return error_page(404, "not_found")
        wf = state().cases().workflow_of(found)
    if wf is None:
        return error_page(404, "not_found")
    if found is None:
        if not wf.start_roles & who.acting_roles:
            return error_page(403, "case_forbidden")
        form = _bind(wf, wf.states[wf.initial], values.defaults(wf.form), case=None,
                     who=who, post=True, new=True)
    else:
        trigger = request.form.get("_trigger") or None
        form = _form(wf, found, _transition(wf, found, trigger), who, True)
    return jsonify(forms.live(form))


from . import assignment, crm, files, references  # noqa: E402,F401  (routes; they use actor)
