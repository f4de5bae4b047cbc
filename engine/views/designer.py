"""The designer's pages: the definitions in effect with their drafts and conflicts, the
editor page, publishing (diff, state map, dry run, migration) and the versions.

Designers only (``CASELOOP_DESIGNER_ROLES``). The work is done by
:mod:`caseloop.designer`; the editor's live parts (lint, save, preview, builder,
simulation) are in :mod:`.designer_live`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from ..designer import drafts
from ..designer.overlay import Conflict, text_hash
from ..designer.publish import PublishError, history, plan, publish, take_file
from ..extension import state
from ..models import Case, DefinitionVersion, Draft, User
from . import blueprint, current_user, error_page, i18n, login_required, t
from .designer_words import MESSAGES

i18n.MESSAGES.update(MESSAGES)

View = TypeVar("View", bound=Callable[..., Any])
Page = str | tuple[str, int] | Response
#: A definition in the address: /designer/<kind>/<name>.
WHICH = "/designer/<any(form, workflow):kind>/<name>"


def may_design(user: User | None) -> bool:
    return user is not None and bool(set(user.roles or ()) & set(
        current_app.config["CASELOOP_DESIGNER_ROLES"]))


def designer_required(view: View) -> View:
    """Designers only; others get a 403 page (the address is no secret)."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not may_design(current_user()):
            return error_page(403, "designer_forbidden")
        if state().load_error is not None:
            return error_page(503, "definitions_invalid")
        return view(*args, **kwargs)

    return login_required(cast(View, wrapped))


@blueprint.app_context_processor
def _designer_globals() -> dict[str, Any]:
    if "caseloop_lang" not in g:
        return {}
    return {"may_design": may_design(current_user())}


def user_name() -> str:
    user = current_user()
    assert user is not None
    return user.name


def working(kind: str, name: str) -> Draft:
    """The draft of a definition, or (not added to the session) its text in effect."""
    st = state()
    found = drafts.find(st.db.session, kind, name)
    if found is not None:
        return found
    current = st.registry.text(kind, name)
    if current is None:
        abort(404)
    path, text = current
    return Draft(kind=kind, name=name, path=path, text=text, base=text_hash(text), revision=0,
                 updated_by="", updated_at=None)


def conflict_of(kind: str, name: str) -> Conflict | None:
    return next((c for c in state().registry.effect.conflicts
                 if (c.kind, c.name) == (kind, name)), None)


# -- the list ------------------------------------------------------------------------------
@blueprint.get("/designer")
@designer_required
def designer_home() -> Page:
    st = state()
    lang = g.caseloop_lang
    current = st.registry.current
    effect = st.registry.effect
    waiting = {(d.kind, d.name): d for d in drafts.all_drafts(st.db.session)}

    def row(kind: str, name: str, title: str, path: str, version: str) -> dict[str, Any]:
        pub = effect.published.get((kind, name))
        draft = waiting.pop((kind, name), None)
        return {"kind": kind, "name": name, "title": title, "version": version,
                "source": t("designer_from_publication", n=pub.sequence, who=pub.published_by)
                if pub is not None else t("designer_from_file", path=path),
                "draft": draft, "stale": draft is not None and drafts.stale(st.registry, draft)}

    forms_ = [row("form", f.name, f.title.get(lang), f.path, f.version)
              for f in sorted(current.forms.values(), key=lambda f: f.name)]
    workflows = [row("workflow", w.name, w.title.get(lang), w.path, w.version)
                 for w in sorted(current.workflows.values(), key=lambda w: w.name)]
    # Drafts of definitions not published yet (made with "New").
    fresh = [{"kind": d.kind, "name": d.name, "title": "", "version": "", "source": d.path,
              "draft": d, "stale": False} for d in waiting.values()]
    return render_template("caseloop/designer.html", forms=forms_, workflows=workflows,
                           fresh=fresh, conflicts=effect.conflicts)


@blueprint.post("/designer/new")
@designer_required
def designer_new() -> Page:
    kind = request.form.get("kind", "")
    name = request.form.get("name", "").strip()
    st = state()
    try:
        drafts.create(st.db.session, st.registry, kind, name, user_name())
    except drafts.DraftError as exc:
        st.db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("caseloop_views.designer_home"))
    st.db.session.commit()
    return redirect(url_for("caseloop_views.designer_edit", kind=kind, name=name))


# -- the editor page -------------------------------------------------------------------------
@blueprint.route(WHICH, methods=["GET", "POST"])
@designer_required
def designer_edit(kind: str, name: str) -> Page:
    """The editor. Without script, the text area posts here and is saved as the draft."""
    st = state()
    session = st.db.session
    posted, status = None, 200
    if request.method == "POST":
        posted = request.form.get("text", "")
        try:
            draft = drafts.save_as_loaded(session, st.registry, kind, name, posted,
                                          _revision(request.form.get("revision")), user_name())
        except drafts.DraftError as exc:
            # The page comes back with the text as sent: nothing typed is lost.
            session.rollback()
            flash(t("designer_unsaved", why=str(exc)), "error")
            status = 409
        else:
            session.commit()
            flash(t("designer_saved", revision=draft.revision))
            return redirect(url_for("caseloop_views.designer_edit", kind=kind, name=name))
    draft = working(kind, name)
    checked = drafts.check(st.registry, draft)
    problems, elsewhere = drafts.listed(checked.problems, draft.path)
    wf = checked.definitions.workflows.get(name) if kind == "workflow" else None
    current = st.registry.text(kind, name)
    return render_template(
        "caseloop/designer_edit.html", kind=kind, name=name, draft=draft,
        problems=problems, elsewhere=elsewhere, states=list(wf.states) if wf else [],
        stale=draft.revision > 0 and drafts.stale(st.registry, draft),
        conflict=conflict_of(kind, name), scenarios=_scenarios(name) if wf else [],
        diff=drafts.diff(current[1] if current else "", draft.text, "published", "draft")
        if draft.revision > 0 else [], text=draft.text if posted is None else posted), status


def _revision(raw: str | None) -> int:
    try:
        return int(raw or "0")
    except ValueError:
        raise drafts.DraftError("the form was changed: reload the page") from None


def _scenarios(workflow: str) -> list[dict[str, str]]:
    """The shipped scenarios that run this workflow, to start a simulation from."""
    found = []
    for raw in current_app.config["CASELOOP_DEFINITIONS"]:
        folder = Path(str(raw)) / "scenarios"
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            text = path.read_text("utf-8", errors="replace")
            if f"workflow: {workflow}" in text or f"create: {workflow}" in text:
                found.append({"name": path.stem, "text": text})
    return found


@blueprint.post(f"{WHICH}/discard")
@designer_required
def designer_discard(kind: str, name: str) -> Response:
    session = state().db.session
    draft = drafts.find(session, kind, name)
    if draft is not None:
        session.delete(draft)
        session.commit()
        flash(t("designer_discarded"))
    return redirect(url_for("caseloop_views.designer_home"))


@blueprint.post(f"{WHICH}/rebase")
@designer_required
def designer_rebase(kind: str, name: str) -> Response:
    st = state()
    draft = drafts.find(st.db.session, kind, name)
    if draft is not None:
        drafts.rebase(st.registry, draft, user_name())
        st.db.session.commit()
        flash(t("designer_rebased"))
    return redirect(url_for("caseloop_views.designer_edit", kind=kind, name=name))


@blueprint.post(f"{WHICH}/take-file")
@designer_required
def designer_take_file(kind: str, name: str) -> Response:
    st = state()
    try:
        take_file(st.db.session, st.registry, kind, name, user_name())
    except PublishError as exc:
        st.db.session.rollback()
        flash(str(exc), "error")
    else:
        st.db.session.commit()
        flash(t("designer_took_file"))
    return redirect(url_for("caseloop_views.designer_edit", kind=kind, name=name))


# -- publishing ----------------------------------------------------------------------------
@blueprint.route(f"{WHICH}/publish", methods=["GET", "POST"])
@designer_required
def designer_publish(kind: str, name: str) -> Page:
    st = state()
    session = st.db.session
    draft = drafts.find(session, kind, name)
    if draft is None:
        return redirect(url_for("caseloop_views.designer_edit", kind=kind, name=name))
    state_map = _state_map(request.form if request.method == "POST" else request.args)
    note = request.form.get("note", "")
    migrate = request.form.get("migrate") == "on"
    status = 200
    if request.method == "POST" and request.form.get("do") == "publish":
        try:
            done = publish(session, st.registry, draft, user_name(), state_map=state_map,
                           migrate=migrate, note=note)
        except PublishError as exc:
            session.rollback()
            flash(t("designer_cannot_publish", why=str(exc)), "error")
            status = 422
        else:
            n, moved = done.sequence, sum(int(m.get("count", 0)) for m in done.migrated.values())
            session.commit()
            st.registry.refresh(session, force=True)
            flash(t("designer_published", kind=t(f"designer_kind_{kind}"), name=name, n=n))
            if migrate:
                flash(t("designer_migrated", count=moved))
            return redirect(url_for("caseloop_views.designer_versions", kind=kind, name=name))
        draft = drafts.find(session, kind, name)
        assert draft is not None
    found = plan(session, st.registry, draft, state_map)
    session.rollback()  # the dry run wrote nothing; hold no transaction while rendering
    current = st.registry.text(kind, name)
    targets = {c.workflow: list(found.definitions.workflows[c.workflow].states)
               for c in found.changes if found.definitions is not None}
    return render_template(
        "caseloop/designer_publish.html", kind=kind, name=name, draft=draft, plan=found,
        state_map=state_map, targets=targets, note=note, migrate=migrate,
        stale=drafts.stale(st.registry, draft), conflict=conflict_of(kind, name),
        diff=drafts.diff(current[1] if current else "", draft.text,
                         current[0] if current else draft.path, draft.path)), status


def _state_map(form: Any) -> dict[str, dict[str, str]]:
    """``map.<workflow>.<state>=<new state>`` fields -> {workflow: {old: new}}."""
    out: dict[str, dict[str, str]] = {}
    for key in form:
        if not key.startswith("map."):
            continue
        _, _, rest = key.partition(".")
        workflow, _, old = rest.partition(".")
        new = str(form.get(key, "")).strip()
        if workflow and old and new:
            out.setdefault(workflow, {})[old] = new
    return out


# -- versions ------------------------------------------------------------------------------
@blueprint.get(f"{WHICH}/versions")
@designer_required
def designer_versions(kind: str, name: str) -> Page:
    st = state()
    versions, publications = history(st.db.session, st.registry, kind, name)
    if not versions and not publications:
        abort(404)
    current = st.registry.text(kind, name)
    in_effect = text_hash(current[1]) if current else ""
    by_version = {v.version: v for v in versions}
    a, b = request.args.get("a", ""), request.args.get("b", "")
    diff: list[str] = []
    if a in by_version and b in by_version:
        diff = _bundle_diff(by_version[a], by_version[b])
    open_cases: dict[str, int] = {}
    if kind == "workflow":
        open_cases = dict(st.db.session.execute(
            select(Case.definition_version, func.count()).where(
                Case.workflow == name, Case.closed.is_(False))
            .group_by(Case.definition_version)).all())
    rows = [{"row": v, "current": text_hash(_text(v)) == in_effect,
             "open": open_cases.get(v.version, 0)} for v in reversed(versions)]
    return render_template("caseloop/designer_versions.html", kind=kind, name=name, rows=rows,
                           publications=publications, diff=diff, a=a, b=b)


def _text(version: DefinitionVersion) -> str:
    return version.bundle.get(version.path, "")


def _bundle_diff(a: DefinitionVersion, b: DefinitionVersion) -> list[str]:
    """Every file that differs between two versions' bundles: a workflow's version also
    changes when only its form (or a form it includes) did."""
    lines: list[str] = []
    for path in sorted(set(a.bundle) | set(b.bundle)):
        old, new = a.bundle.get(path, ""), b.bundle.get(path, "")
        if old != new:
            lines += drafts.diff(old, new, f"{path} ({a.version})", f"{path} ({b.version})")
    return lines

