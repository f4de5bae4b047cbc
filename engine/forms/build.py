"""Definition -> WTForms class: one field with a fitting widget per definition field.

The classes hold no validators: :func:`caseloop.values.clean` is the only judge of
what a case may hold. A field here renders an input and hands back what the
browser sent; choices are never checked by WTForms (``validate_choice=False``),
so ``validate()`` (Flask-WTF's CSRF check) adds no message of its own.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import wtforms
from wtforms import fields as wf
from wtforms import widgets
from wtforms.fields import choices as _choices

from ..spec.forms import SCALES  # the scales clean() checks: one source for both
from ..spec.model import Field, Form, Text
from .browser import checkbox, shown

#: Choices up to this many render as radio buttons, more as a select.
RADIO_MAX = 4
#: Remembered classes (oldest dropped first): a few versions of a few forms, two languages.
CACHE_SIZE = 256
#: The class attribute naming the definition a class was built from.
DEFINITION = "caseloop_form"
#: Yes / no for a boolean without a default (unanswered stays empty, not "no").
YES_NO = (("true", Text("Yes", "是")), ("false", Text("No", "否")))
BLANK = Text("— choose —", "— 请选择 —")

# WTForms 3.3 wants options as SelectChoice (tuples are deprecated); older ones take tuples.
_SelectChoice: Any = getattr(_choices, "SelectChoice", None)


def option(value: str, label: str) -> Any:
    """One option of a select, radio or checkbox list."""
    return _SelectChoice(value, label) if _SelectChoice is not None else (value, label)


_classes: dict[tuple[str, str, str, type[wtforms.Form]], type[wtforms.Form]] = {}
_lock = threading.Lock()


def language(lang: str) -> str:
    """``zh`` for any Chinese, else ``en`` (as :meth:`Text.get` decides)."""
    return "zh" if lang.startswith("zh") else "en"


def form_class(form: Form, lang: str, base: type[wtforms.Form] = wtforms.Form
               ) -> type[wtforms.Form]:
    """The WTForms class of ``form`` in ``lang``, built once per definition version.

    :param form: the definition (``workflow.form``).
    :param lang: ``en`` or ``zh``: labels, help, placeholders and choices.
    :param base: the base class; the pages pass ``FlaskForm`` for its CSRF token.
    """
    key = (form.name, form.version, language(lang), base)
    with _lock:
        cls = _classes.get(key)
        if cls is None:
            cls = _build(form, language(lang), base, f"{_camel(form.name)}Form")
            while len(_classes) >= CACHE_SIZE:
                del _classes[next(iter(_classes))]
            _classes[key] = cls
        return cls


def definition_of(form: wtforms.Form | type[wtforms.Form]) -> Form:
    """The definition a class from :func:`form_class` (or its instance) was built from."""
    found = getattr(form, DEFINITION, None)
    if not isinstance(found, Form):
        raise TypeError(f"{form!r} was not built by caseloop.forms.form_class")
    return found


#: Names a field cannot have here: WTForms' and Flask-WTF's own attributes and ours.
RESERVED = frozenset({"csrf_token", "data", "errors", "form_errors", "hidden_tag", "is_submitted",
                      "meta", "populate_obj", "post_process", "process", "validate",
                      "validate_on_submit", "caseloop", DEFINITION, "caseloop_lang"})


def _build(form: Form, lang: str, base: type[wtforms.Form], name: str, *,
           row: bool = False) -> type[wtforms.Form]:
    attrs: dict[str, Any] = {DEFINITION: form, "caseloop_lang": lang}
    for f in form.fields:
        if f.name in RESERVED or f.name.startswith("validate_"):
            raise ValueError(f"form '{form.name}': a field named '{f.name}' cannot be shown "
                             "on a page (WTForms uses the name itself); rename the field")
        attrs[f.name] = field_for(f, lang, row=row)
    cls = type(name, (base,), attrs)
    if not row:
        setattr(cls, "validate", _validator(cls))  # noqa: B010 (a method, set after the class)
    return cls


def _validator(cls: type[wtforms.Form]) -> Any:
    def validate(self: Any, extra_validators: Any = None) -> bool:
        """The base class's ``validate`` (Flask-WTF: the CSRF token; there are no other
        validators), then false as well when :func:`bind` found tampered fields or a row
        button was pressed: nothing is to be saved. Its messages survive the validation."""
        ok: bool = super(cls, self).validate(extra_validators)
        found = getattr(self, "caseloop", None)
        return found.validated(self, ok) if found is not None else ok

    return validate


def field_for(f: Field, lang: str, *, row: bool = False) -> Any:
    """The unbound WTForms field of one definition field. A row's fields carry their
    defaults (a new row starts with them); a form's come with the data it is bound to."""
    kw: dict[str, Any] = {"label": f.label.get(lang),
                          "description": f.help.get(lang) if f.help else
                          f.plugin.help if f.plugin is not None else "",
                          "render_kw": attributes(f, lang)}
    if row and f.default is not None:
        kw["default"] = shown(f, f.default, dt.UTC)
    t = f.type
    if t == "group":
        row_cls = _build(Form(f.name, f.row_label or f.label, None, f.fields, "", ""), lang,
                         wtforms.Form, f"{_camel(f.name)}Row", row=True)
        entry: Any = wf.FormField(row_cls, label=(f.row_label or f.label).get(lang))
        return wf.FieldList(entry, min_entries=f.min_rows or 0, **kw)
    if t in ("choice", "user"):
        choices = [option(c.value, c.label.get(lang)) for c in f.choices]
        if t == "choice" and len(choices) <= RADIO_MAX:
            return wf.RadioField(choices=choices, validate_choice=False, **kw)
        return wf.SelectField(choices=[option("", BLANK.get(lang)), *choices],
                              validate_choice=False, **kw)
    if t == "multichoice":
        return wf.SelectMultipleField(
            choices=[option(c.value, c.label.get(lang)) for c in f.choices], validate_choice=False,
            widget=widgets.ListWidget(prefix_label=False), option_widget=widgets.CheckboxInput(),
            **kw)
    if t in SCALES:
        low, high = SCALES[t]
        return wf.RadioField(choices=[option(str(i), str(i)) for i in range(low, high + 1)],
                             validate_choice=False, **kw)
    if t == "boolean":
        if checkbox(f):
            return wf.BooleanField(**kw)
        return wf.RadioField(choices=[option(v, label.get(lang)) for v, label in YES_NO],
                             validate_choice=False, **kw)
    if t == "file":
        many = (f.max_files or 1) > 1
        return (wf.MultipleFileField if many else wf.FileField)(**kw)
    if t == "textarea":
        return wf.TextAreaField(**kw)
    if f.plugin is not None:  # a plugin's type: the input it asks for (url, color, …)
        return wf.StringField(widget=widgets.TextInput(f.plugin.input_type), **kw)
    return wf.StringField(widget=_INPUTS.get(t, widgets.TextInput()), **kw)


_INPUTS: dict[str, widgets.Input] = {
    "integer": widgets.NumberInput(step=1),
    "decimal": widgets.NumberInput(),
    "date": widgets.DateInput(),
    "datetime": widgets.DateTimeLocalInput(),
    "email": widgets.EmailInput(),
    "phone": widgets.TelInput(),
    "reference": widgets.SearchInput(),
}


def attributes(f: Field, lang: str) -> dict[str, Any]:
    """HTML attributes of a field's widget: limits the browser can show and the
    conditions as data for the page script (sources and the names they read).

    All values go through WTForms' ``html_params``, which escapes them."""
    kw: dict[str, Any] = {"data-field": f.name, "data-type": f.type}
    if f.placeholder is not None:
        kw["placeholder"] = f.placeholder.get(lang)
    if f.max_length is not None and f.type in ("text", "textarea", "email"):
        kw["maxlength"] = f.max_length
    if f.type in ("integer", "decimal"):
        for key in ("min", "max"):
            if getattr(f, key) is not None:
                kw[key] = getattr(f, key)
        if f.type == "decimal":
            kw["step"] = f"{10 ** -f.places:.{f.places}f}" if f.places else "any"
        kw["inputmode"] = "numeric" if f.type == "integer" else "decimal"
    if f.type in ("date", "datetime"):
        suffix = ("", "") if f.type == "date" else ("T00:00", "T23:59")
        for key, end in zip(("min", "max"), suffix, strict=True):
            if getattr(f, key) is not None:
                kw[key] = f"{str(getattr(f, key))[:10]}{end}"
    if f.type == "email":
        kw["autocomplete"] = "email"
    if f.type == "phone":
        kw["autocomplete"] = "tel"
    if f.type in SCALES:
        kw["data-scale"] = f"{SCALES[f.type][0]}-{SCALES[f.type][1]}"
        if f.type == "rating":
            kw["data-widget"] = "stars"
    if f.type == "file":
        if f.accept:
            kw["accept"] = ",".join(f.accept)
        if f.max_size is not None:
            kw["data-max-size"] = f.max_size
        if f.max_files is not None:
            kw["data-max-files"] = f.max_files
    if f.type == "user":
        kw["data-picker"] = f.of
        if f.roles:
            kw["data-roles"] = " ".join(f.roles)
    if f.type == "reference":
        kw["data-reference"] = f.to or ""
        if f.workflow:
            kw["data-workflow"] = f.workflow
        kw["autocomplete"] = "off"
    if f.type == "group":
        kw["data-min-rows"] = f.min_rows or 0
        if f.max_rows is not None:
            kw["data-max-rows"] = f.max_rows
    reads: set[str] = set()
    for key, expr in (("data-visible-if", f.visible_if), ("data-required-if", f.required_if),
                      ("data-readonly-if", f.readonly_if), ("data-value", f.value)):
        if expr is not None:
            kw[key] = expr.source
            reads |= expr.names
    if reads:
        kw["data-reads"] = " ".join(sorted(reads))
    if f.computed:
        kw["disabled"] = True
    return kw


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_")) or "Caseloop"
