"""Form definitions in the browser: WTForms classes, state binding, conditions.

Pure: nothing here touches ``current_app`` or ``request``; the pages pass what
is needed. :func:`caseloop.values.clean` stays the only judge of the data —
this package renders inputs, converts what the browser sends into what
clean() takes, and puts clean()'s errors back next to their fields.

A page handling a case form::

    cls = forms.form_class(wf.form, lang, FlaskForm)      # cached per definition version
    form = forms.bind(cls, wf.states[case.state], case.data,
                      request.form if request.method == "POST" else None,
                      required=t.requires, scope=engine.scope(...), tz=tz, region=region,
                      choices={"actions.owner": owners})  # see forms.pickers(wf.form)
    if form.validate_on_submit():   # CSRF; false too if tampered or a row button pressed
        try:
            engine.fire(case.id, t.trigger, forms.submitted_data(form), actor)
        except Invalid as exc:
            forms.apply_errors(form, exc.fields)           # next to their fields
    # render: fields absent from the form are hidden in this state; a field whose
    # forms.binding(form).modes[name].visible is false gets the ``hidden`` attribute;
    # add / remove row buttons are named forms.add_row_name("actions") and
    # forms.remove_row_name("actions", i), with ``formnovalidate``.

The endpoint the page script posts the form to as the user types binds the
same way and answers ``forms.live(form)`` as JSON: field path -> visible,
required, readonly and computed value, decided by clean()'s own rules.
"""

from __future__ import annotations

from .bind import (
    Binding,
    Mode,
    apply_errors,
    bind,
    binding,
    live,
    pickers,
    submitted_data,
)
from .build import RADIO_MAX, definition_of, form_class
from .conditions import Condition, conditions
from .rows import RowAction, add_row_name, apply_row_action, remove_row_name, row_action

__all__ = [
    "Binding", "Condition", "Mode", "RADIO_MAX", "RowAction", "add_row_name",
    "apply_errors", "apply_row_action", "bind", "binding", "conditions", "definition_of",
    "form_class", "live", "pickers", "remove_row_name", "row_action", "submitted_data",
]
