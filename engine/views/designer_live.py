"""The designer editor's live parts, answered as the designer types: the check (the
same as ``caseloop check``), saving the draft, the preview of the form as frontline
staff see it (conditions working), the diagram and tables, the guided builder's
round trip, and a simulation against the draft.

JSON in and out (the page script sends the CSRF token in ``X-CSRFToken``), except the
preview, a page of its own shown in a frame, and the outline, an HTML fragment the
templates escape like any page.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flask import current_app, g, jsonify, render_template, request, send_file
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from werkzeug.wrappers import Response

from .. import forms, layout, outline, values
from ..cli.simulate import render as render_trace
from ..designer import drafts
from ..extension import state
from ..scenario import ScenarioError
from ..simulation import SimulationError, simulate
from ..spec import Definitions, Problem
from . import blueprint, i18n
from .cases import actor, form_choices, shown_fields
from .designer import WHICH, designer_required, user_name, working

#: Largest YAML text or scenario the editor may send (a definition file's own limit).
MAX_TEXT = 256 * 1024
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _text(data: dict[str, Any], key: str = "text") -> str | None:
    text = data.get(key)
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return None
    return text


def _bad(message: str, status: int = 422) -> tuple[Response, int]:
    return jsonify({"error": {"message": message}}), status


def problem_json(p: Problem, path: str) -> dict[str, Any]:
    return {"line": p.line, "col": p.col, "code": p.code, "message": p.message,
            "hint": p.hint, "severity": "error" if p.is_error else "warning",
            "path": p.path, "here": p.path == path}


def problems_json(problems: list[Problem], path: str) -> dict[str, Any]:
    shown, elsewhere = drafts.listed(problems, path)
    return {"problems": [problem_json(p, path) for p in shown], "elsewhere": elsewhere}


@blueprint.post(f"{WHICH}/check")
@designer_required
def designer_check(kind: str, name: str) -> Any:
    text = _text(_body())
    if text is None:
        return _bad(f"send {{\"text\": \"…\"}} of at most {MAX_TEXT // 1024} KiB")
    draft = working(kind, name)
    checked = drafts.check(state().registry, draft, text)
    state().db.session.rollback()
    return jsonify(problems_json(checked.problems, draft.path))


@blueprint.post(f"{WHICH}/draft")
@designer_required
def designer_save(kind: str, name: str) -> Any:
    data = _body()
    text, revision = _text(data), data.get("revision")
    if text is None or not isinstance(revision, int):
        return _bad("send {\"text\": \"…\", \"revision\": N} (0 when there is no draft yet)")
    st = state()
    session = st.db.session
    try:
        draft = drafts.save_as_loaded(session, st.registry, kind, name, text, revision,
                                      user_name())
    except drafts.StaleRevision as exc:
        session.rollback()
        return _bad(str(exc), 409)
    except drafts.DraftError as exc:
        session.rollback()
        return _bad(str(exc))
    session.commit()
    checked = drafts.check(st.registry, draft)
    return jsonify({"revision": draft.revision, "stale": drafts.stale(st.registry, draft),
                    **problems_json(checked.problems, draft.path)})


def _definitions(kind: str, name: str) -> Definitions | None:
    checked = drafts.check(state().registry, working(kind, name))
    return checked.definitions if checked.ok else None


# -- the preview -----------------------------------------------------------------------------
@blueprint.route(f"{WHICH}/preview", methods=["GET", "POST"])
@designer_required
def designer_preview(kind: str, name: str) -> Any:
    """The draft's form as a frontline user sees it on a new case (a workflow: in the
    state asked for), in the language asked for; posting answers the live conditions."""
    lang = request.args.get("lang") if request.args.get("lang") in i18n.LANGUAGES else None
    g.caseloop_lang = lang or g.caseloop_lang
    d = _definitions(kind, name)
    wf = d.workflows.get(name) if d is not None and kind == "workflow" else None
    form_def = wf.form if wf is not None else (d.forms.get(name) if d is not None else None)
    if form_def is None:
        return render_template("caseloop/designer_preview.html", form=None, fields=[],
                               title="", state_name="", kind=kind, name=name)
    state_name = request.args.get("state", "")
    st = (wf.states.get(state_name) or wf.states[wf.initial]) if wf is not None else None
    cases = state().cases()
    now = cases.clock()
    scope = {"now": now, "state": st.name if st is not None else "", "reference": "",
             "created_at": now, "user": actor().names()}
    cls = forms.form_class(form_def, g.caseloop_lang, FlaskForm)
    post = request.method == "POST"
    bound = forms.bind(cls, st, values.defaults(form_def), request.form if post else None,
                       scope=scope, choices=form_choices(form_def), tz=i18n.zone(),
                       region=cases.region, new=wf is None or st is wf.states[wf.initial])
    if post:
        return jsonify(forms.live(bound))
    return render_template("caseloop/designer_preview.html", form=bound,
                           fields=shown_fields(bound), title=form_def.title.get(g.caseloop_lang),
                           state_name=st.name if st is not None else "", kind=kind, name=name)


@blueprint.get(f"{WHICH}/outline")
@designer_required
def designer_outline(kind: str, name: str) -> Any:
    """The diagram (mermaid text, escaped by :mod:`caseloop.outline`) and the tables."""
    lang = request.args.get("lang") if request.args.get("lang") in i18n.LANGUAGES else None
    lang = lang or g.caseloop_lang
    d = _definitions(kind, name)
    wf = d.workflows.get(name) if d is not None and kind == "workflow" else None
    form_def = wf.form if wf is not None else (d.forms.get(name) if d is not None else None)
    return render_template(
        "caseloop/designer_outline.html", ok=d is not None, wf=wf,
        diagram=outline.diagram(wf, lang) if wf is not None else "",
        permissions=outline.permissions(wf, lang) if wf is not None else None,
        requirements=outline.requirements(wf, lang) if wf is not None else None,
        sla=outline.sla(wf, lang) if wf is not None and wf.sla is not None else None,
        fields=outline.fields(form_def, lang) if form_def is not None else None)


@blueprint.get("/designer/schema/<any(form, workflow):kind>.json")
@designer_required
def designer_schema(kind: str) -> Response:
    """The JSON Schema the editor completes keys from (``caseloop schema`` writes it)."""
    return send_file(SCHEMAS / f"{kind}.json", mimetype="application/json")


# -- the guided builder -------------------------------------------------------------------
@blueprint.post("/designer/form/<name>/model")
@designer_required
def designer_model(name: str) -> Any:
    text = _text(_body())
    if text is None:
        return _bad("send {\"text\": \"…\"}")
    try:
        return jsonify(layout.model(text))
    except layout.LayoutError as exc:
        return _bad(str(exc))


@blueprint.post("/designer/form/<name>/layout")
@designer_required
def designer_layout(name: str) -> Any:
    data = _body()
    text, model = _text(data), data.get("model")
    if text is None or not isinstance(model, dict):
        return _bad("send {\"text\": \"…\", \"model\": {…}}")
    try:
        return jsonify({"text": layout.apply(text, model)})
    except layout.LayoutError as exc:
        return _bad(str(exc))


# -- simulation ----------------------------------------------------------------------------
@blueprint.post("/designer/workflow/<name>/simulate")
@designer_required
def designer_simulate(name: str) -> Any:
    """Run a scenario against the draft, on a temporary database, with a fake clock."""
    data = _body()
    scenario = _text(data, "scenario")
    lang = str(data["lang"]) if data.get("lang") in i18n.LANGUAGES else str(g.caseloop_lang)
    if scenario is None:
        return _bad("send {\"scenario\": \"…\"} (a scenario as in workflows/scenarios/)")
    bundle = drafts.bundle(state().registry, working("workflow", name))
    state().db.session.rollback()
    folder = Path(tempfile.mkdtemp(prefix="caseloop-designer-"))
    try:
        definitions = _write_bundle(folder / "definitions", bundle)
        path = folder / "scenario.yaml"
        path.write_text(scenario, "utf-8")
        config = {**current_app.config, "CASELOOP_DEFINITIONS": definitions}
        try:
            result = simulate(name, str(path), config=config, lang=lang)
        except ScenarioError as exc:
            lines = [line.replace(str(path), "scenario") for line in exc.lines]
            return jsonify({"ok": False, "problems": lines, "lines": []})
        except SimulationError as exc:
            return jsonify({"ok": False, "problems": [str(exc)], "lines": []})
        return jsonify({"ok": result.ok, "problems": [], "failure": result.failure,
                        "lines": list(render_trace(result, lang))})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_bundle(root: Path, bundle: dict[str, str]) -> list[str]:
    """The files in effect under ``root``, one folder per original folder (file names
    must stay: a definition is named like its file)."""
    folders: dict[str, Path] = {}
    for path, text in bundle.items():
        parent = str(Path(path).parent)
        folder = folders.setdefault(parent, root / f"d{len(folders)}_{secrets.token_hex(2)}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / Path(path).name).write_text(text, "utf-8")
    return [str(f) for f in folders.values()]
