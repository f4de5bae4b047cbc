"""A form class bound to one page: a case's state, its data, what the browser sent.

:func:`bind` decides per field, as the case engine will when the data is saved:
hidden in this state (not rendered, not read), read-only (rendered disabled,
not read), editable; required (the ``required`` attribute), visible by its
``visible_if``. A read-only or hidden field posted anyway is reported — next to
the field, or at the top of the form — and is not passed on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import wtforms

from .. import values
from ..spec.model import Field, Form, State
from .browser import read, shown, takes, to_browser
from .build import BLANK, definition_of, option
from .conditions import Condition, conditions
from .rows import RowAction, apply_row_action, row_action

#: The attribute of a bound form holding its :class:`Binding`.
BINDING = "caseloop"
_PATH = re.compile(r"^([a-z][a-z0-9_]*)(?:\[(\d+)\]\.([a-z][a-z0-9_]*))?$")

Permission = Literal["editable", "readonly", "hidden"]


@dataclass(frozen=True)
class Mode:
    """How a field is shown on this page."""

    permission: Permission
    #: ``visible_if`` on the current input (a template hides the field when false and
    #: the page script shows it again as the user types).
    visible: bool = True
    required: bool = False
    #: Not editable here: a read-only permission, ``readonly_if`` or a computed value.
    readonly: bool = False


@dataclass
class Binding:
    """What :func:`bind` decided, kept on the bound form as ``form.caseloop``."""

    definition: Form
    lang: str
    base: Mapping[str, Any]
    scope: Mapping[str, Any]
    require: tuple[str, ...]
    tz: dt.tzinfo
    region: str
    #: Top-level field name -> its mode; hidden fields are not in the form.
    modes: dict[str, Mode] = field(default_factory=dict)
    #: Conditions on the current input, by clean()'s paths (rows: ``actions[0].due``).
    conditions: dict[str, Condition] = field(default_factory=dict)
    #: Fields posted although they could not be changed here.
    tampered: list[str] = field(default_factory=list)
    #: The add / remove row button pressed: show the page again, save nothing.
    row_action: RowAction | None = None
    #: The messages about tampered fields, by clean()'s paths (kept across validate()).
    messages: dict[str, list[str]] = field(default_factory=dict)

    def validated(self, form: wtforms.Form, ok: bool) -> bool:
        """After ``form.validate()``: the tampering messages back on their fields (the
        validation reset them); whether the form may be saved."""
        for path, messages in self.messages.items():
            target = _target(form, path)
            if target is not None and not set(messages) <= set(target.errors):
                target.errors = [*target.errors, *messages]
        return ok and not self.tampered and self.row_action is None


def bind(form_cls: type[wtforms.Form], state: State | None, data: Mapping[str, Any],
         formdata: Any = None, *, required: tuple[str, ...] = (), new: bool = False,
         only: Collection[str] | None = None, scope: Mapping[str, Any] | None = None,
         choices: Mapping[str, Sequence[tuple[str, str]]] | None = None,
         tz: dt.tzinfo = dt.UTC, region: str = "CN") -> wtforms.Form:
    """An instance of ``form_cls`` for one page.

    :param state: the case's state (its field permissions); None: everything editable.
    :param data: the stored data (``case.data``; ``values.defaults(form)`` for a new case).
    :param formdata: what the browser posted (``request.form``), or None to show ``data``.
    :param required: the fields the transition being taken requires (editable here).
    :param new: a new case: fields the initial state makes read-only may be filled, as
        ``cases.create`` allows.
    :param only: show only these fields (a transition's step form); the others keep
        their stored values.
    :param scope: the names expressions see besides the fields (``now``, ``state``…).
    :param choices: the options of user pickers by field (``owner``) or row field
        (``actions.owner``): ``[(value, label)]``, filtered by the field's ``of`` and
        ``roles`` (see :func:`pickers`).
    :param tz: the reader's time zone (``datetime-local`` inputs).
    """
    definition = definition_of(form_cls)
    b = Binding(definition, getattr(form_cls, "caseloop_lang", "en"), data, dict(scope or {}),
                required, tz, region)
    for f in definition.fields:
        b.modes[f.name] = Mode(_permission(f, state, required, new, only))
    action = row_action(formdata) if formdata is not None else None
    if action is not None:
        group = b.modes.get(action.group)
        if group is not None and group.permission == "editable":
            b.row_action = action
            formdata = apply_row_action(definition, formdata, action)
    form = form_cls(formdata=formdata, data=to_browser(definition, data, tz))
    setattr(form, BINDING, b)
    before = {**b.scope, **values.expression_values(definition, data)}
    for f in definition.fields:
        mode = b.modes[f.name]
        posted = formdata is not None and _posted(f.name, formdata)
        if mode.permission == "hidden":
            del form[f.name]
            if posted:
                _tamper(form, b, f, None)
            continue
        locked = f.computed or mode.permission == "readonly" or (
            f.readonly_if is not None and f.readonly_if.test(before))
        b.modes[f.name] = Mode(mode.permission, readonly=locked)
        wt = form[f.name]
        if locked:
            wt.process(None, shown(f, data.get(f.name), tz))  # what is stored, not what came
            for cell in [wt, *(c for e in getattr(wt, "entries", []) for c in e.form)]:
                cell.render_kw = {**(cell.render_kw or {}), "disabled": True}
            if posted:
                _tamper(form, b, f, wt)
        elif f.type == "group":
            _rows(f, wt, formdata, b)
    _pickers(form, definition, b.lang, choices or {})
    current = submitted_data(form)  # what is shown: stored data or input, and new rows
    b.conditions = conditions(definition, current, b.scope, base=data, region=region,
                              require=required)
    _apply_conditions(form, b)
    return form


def binding(form: wtforms.Form) -> Binding:
    """The :class:`Binding` of a form returned by :func:`bind`."""
    found = getattr(form, BINDING, None)
    if not isinstance(found, Binding):
        raise TypeError("this form was not bound by caseloop.forms.bind")
    return found


def submitted_data(form: wtforms.Form) -> dict[str, Any]:
    """What the browser sent, as :func:`values.clean` takes it: every field editable on
    this page (empty ones as None or ``[]``, so clearing works), never a read-only,
    hidden or computed one, nor a file (the pages store uploads themselves)."""
    b = binding(form)
    out: dict[str, Any] = {}
    for f in b.definition.fields:
        mode = b.modes[f.name]
        if mode.permission != "editable" or mode.readonly or not takes(f) or f.name not in form:
            continue
        out[f.name] = read(f, form[f.name], b.tz)
    return out


def apply_errors(form: wtforms.Form, errors: Mapping[str, Sequence[str]]) -> None:
    """Put clean()'s errors next to their fields (``actions[1].due`` on that row's
    field); those of fields not on the page go to ``form.form_errors`` with the label."""
    b = binding(form)
    for path, messages in errors.items():
        target = _target(form, path)
        if target is not None:
            target.errors = [*target.errors, *messages]
        else:
            f = b.definition.field(path.split("[", 1)[0])
            label = f.label.get(b.lang) if f is not None else path
            form.form_errors.extend(f"{label}: {m}" for m in messages)


def live(form: wtforms.Form) -> dict[str, Condition]:
    """The conditions on what the browser sent (for the page script's endpoint)."""
    b = binding(form)
    return conditions(b.definition, submitted_data(form), b.scope, base=b.base,
                      region=b.region, require=b.require)


def pickers(form: Form) -> dict[str, Field]:
    """The user pickers of a form, by ``bind(choices=…)`` key: ``owner`` or
    ``actions.owner``; each field's ``of`` (user / team) and ``roles`` filter them."""
    out: dict[str, Field] = {}
    for f in form.fields:
        if f.type == "user":
            out[f.name] = f
        for sub in f.fields if f.type == "group" else ():
            if sub.type == "user":
                out[f"{f.name}.{sub.name}"] = sub
    return out


def _permission(f: Field, state: State | None, required: tuple[str, ...], new: bool,
                only: Collection[str] | None) -> Permission:
    if only is not None and f.name not in only:
        return "hidden"
    if state is None or f.name in required:
        return "editable"
    found = state.fields.of(f.name)
    if new and found == "readonly":
        return "editable"
    return "hidden" if found == "hidden" else "readonly" if found == "readonly" else "editable"


def _posted(name: str, formdata: Any) -> bool:
    return any(key == name or key.startswith(f"{name}-") for key in formdata)


def _tamper(form: wtforms.Form, b: Binding, f: Field, wt: Any) -> None:
    b.tampered.append(f.name)
    message = values.MESSAGES["computed" if f.computed else "readonly"].get(b.lang)
    if wt is not None:
        wt.errors = [*wt.errors, message]
        b.messages[f.name] = [message]
    else:
        form.form_errors.append(f"{f.label.get(b.lang)}: {message}")


def _rows(f: Field, wt: Any, formdata: Any, b: Binding) -> None:
    """Computed row fields: disabled, and reported when posted."""
    for sub in f.fields:
        if not sub.computed:
            continue
        for entry in wt.entries:
            cell = entry.form[sub.name]
            if formdata is not None and cell.name in formdata:
                b.tampered.append(f"{f.name}.{sub.name}")
                message = values.MESSAGES["computed"].get(b.lang)
                cell.errors = [*cell.errors, message]
                b.messages[f"{f.name}[{cell.name.split('-')[-2]}].{sub.name}"] = [message]


def _pickers(form: wtforms.Form, definition: Form, lang: str,
             choices: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    for key in pickers(definition):
        cells = []
        name, _, sub = key.partition(".")
        if name not in form:
            continue
        if sub:
            cells = [entry.form[sub] for entry in getattr(form[name], "entries", [])]
        else:
            cells = [form[name]]
        given = [("", BLANK.get(lang)), *choices.get(key, ())]
        for cell in cells:
            options = list(given)
            if cell.data and all(value != cell.data for value, _ in options):
                options.append((cell.data, cell.data))  # keep what is stored, e.g. a leaver
            cell.choices = [option(value, label) for value, label in options]


def _apply_conditions(form: wtforms.Form, b: Binding) -> None:
    for name, mode in list(b.modes.items()):
        if mode.permission == "hidden" or name not in form:
            continue
        cond = b.conditions.get(name)
        if cond is None:
            continue
        wt: Any = form[name]
        f = b.definition.field(name)
        assert f is not None
        b.modes[name] = Mode(mode.permission, cond["visible"], cond["required"], mode.readonly)
        if f.computed:
            wt.process(None, shown(f, cond["value"], b.tz))
        if cond["required"] and not mode.readonly:
            _require(f, wt)
        if f.type == "group":
            for i, entry in enumerate(wt.entries):
                for sub in f.fields:
                    cell = b.conditions.get(f"{name}[{i}].{sub.name}")
                    if cell is None:
                        continue
                    if sub.computed:
                        entry.form[sub.name].process(None, shown(sub, cell["value"], b.tz))
                    elif cell["required"] and not mode.readonly:
                        _require(sub, entry.form[sub.name])


def _require(f: Field, wt: Any) -> None:
    """The ``required`` attribute, where the browser's meaning matches clean()'s: not on
    a checkbox (unticked is a value), checkboxes of a multichoice, a file or a group."""
    if f.type in ("multichoice", "file", "group") or (f.type == "boolean" and f.default
                                                       is not None):
        return
    wt.render_kw = {**(wt.render_kw or {}), "required": True}
    wt.flags.required = True


def _target(form: wtforms.Form, path: str) -> Any:
    m = _PATH.match(path)
    if m is None or m[1] not in form:
        return None
    wt = form[m[1]]
    if m[2] is None:
        return wt
    entries = getattr(wt, "entries", [])
    index = int(m[2])
    if index >= len(entries) or m[3] not in entries[index].form:
        return None
    return entries[index].form[m[3]]


__all__ = ["Binding", "Mode", "apply_errors", "bind", "binding", "live", "pickers",
           "submitted_data"]
