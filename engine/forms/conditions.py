"""The conditions of a form on some input, decided as :func:`values.clean` decides them.

The page script does not evaluate expressions: it posts what the user typed to
an endpoint that answers with :func:`conditions`, so "as the user types" and
"when the case is saved" are the same rules, run by the same compiled
expressions, on values converted the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from .. import values
from ..spec.model import Form


class Condition(TypedDict):
    """A field's state on the current input."""

    visible: bool
    required: bool
    readonly: bool
    #: A computed field's value (as stored); None for the others.
    value: Any


def conditions(form: Form, data: Mapping[str, Any], scope: Mapping[str, Any], *,
               base: Mapping[str, Any] | None = None, region: str = "CN",
               require: tuple[str, ...] = ()) -> dict[str, Condition]:
    """Each field's visibility, requiredness, read-only state and computed value when
    ``data`` (as :func:`submitted_data` gives it) is submitted onto ``base``.

    :param scope: the other names expressions see (``now``, ``state``, ``user``…), as
        the case engine passes them to ``values.clean(names=…)``.
    :param base: the stored data (``readonly_if`` looks at it, as clean() does).
    :param require: fields a transition requires.
    :return: field path -> :class:`Condition`; rows of groups as ``actions[1].due``,
        the paths of clean()'s errors.
    """
    base = dict(base or {})
    before = {**scope, **values.expression_values(form, base)}
    locked = {f.name for f in form.fields
              if f.readonly_if is not None and f.readonly_if.test(before)}
    merged = {f.name: data[f.name] if f.name in data and f.name not in locked and not f.computed
              else base.get(f.name) for f in form.fields}
    # The steps of clean(): plain fields, then groups (whose rows see the plain fields),
    # then the computed fields in their order; a value that does not convert is empty.
    sink = values.Outcome(data={})
    typed: dict[str, Any] = {}
    names: dict[str, Any] = dict(scope)
    plain = [f for f in form.fields if not f.computed and f.type != "group"]
    groups = [f for f in form.fields if not f.computed and f.type == "group"]
    for f in plain + groups:
        if f is (groups[0] if groups else None):
            names.update(values.expression_values(form, typed))
        try:
            typed[f.name] = values.convert(f, merged[f.name], region=region, lang="en",
                                           out=sink, path=f.name, names=names)
        except values.Rejected:
            typed[f.name] = None
    final = {**scope, **values.expression_values(form, typed)}
    values.compute(form, typed, final)  # the one loop clean() and recompute() use
    out: dict[str, Condition] = {}
    for f in form.fields:
        visible = f.visible_if is None or f.visible_if.test(final)
        required = visible and not f.computed and (
            f.required or f.name in require
            or (f.required_if is not None and f.required_if.test(final)))
        out[f.name] = Condition(visible=visible, required=required,
                                readonly=f.computed or f.name in locked,
                                value=typed.get(f.name) if f.computed else None)
        rows = merged[f.name]
        if f.type == "group" and isinstance(rows, list):
            sub = Form(f.name, f.label, None, f.fields, "", "")
            for i, row in enumerate(rows):
                if not isinstance(row, Mapping):
                    continue
                inner = conditions(sub, row, names, base=values.defaults(sub), region=region)
                out.update({f"{f.name}[{i}].{k}": v for k, v in inner.items()})
    return out
