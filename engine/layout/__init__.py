"""The guided form builder: a form's YAML text <-> a plain model of its fields.

The designer's builder edits a JSON model (rows of fields with zh/en labels, validation
and conditions built from pickers) while the YAML editor shows the text; ``model`` reads
the text into the model and ``apply`` writes an edited model back. The text stays the
source of truth, so ``apply`` splices instead of regenerating: an entry the model left
alone keeps its exact lines (comments, quotes, key order); a changed one is parsed on its
own, updated in place (its comments and the keys the builder does not know survive) and
dumped with the file's indentation; a new one is written in the house style of
``forms/complaint.yaml``. Comments above a field move with it; comments above a removed
field stay where they were.

Entries the builder cannot edit (an ``include:``, a computed ``value:``, a group of rows,
a field written in a shape the model does not cover) come back ``locked``: they can be
moved or removed, never changed.

The steps, one module each: :mod:`.fields` reads entries into rows and checks rows,
:mod:`.conditions` turns simple conditions into pickers and back, :mod:`.splice` cuts
the text into entries and puts it back together, :mod:`.nodes` edits one entry's keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..spec.schema import FIELD_TYPES, NAME_HINT
from ..spec.source import read
from .conditions import OPERATORS, condition, condition_text
from .errors import LayoutError
from .fields import bilingual, entry, entry_keys, is_name, load, plain, same
from .splice import Doc

__all__ = ["OPERATORS", "LayoutError", "apply", "condition", "condition_text", "model"]


def model(text: str) -> dict[str, Any]:
    """The builder's model of a form's YAML text: ``{"form", "title", "description",
    "fields"}``. Each field row has a ``key`` that ``apply`` uses to find it again."""
    data = load(text)
    items = data.get("fields") or []
    return {"form": plain(data.get("form")),
            **{key: bilingual(data.get(key), f"the form's {key}")
               for key in ("title", "description")},
            "fields": [entry(item, key) for item, key in zip(items, entry_keys(items),
                                                             strict=True)]}


def apply(text: str, model: Mapping[str, Any], *, field_types: Iterable[str] = ()) -> str:
    """``text`` with its title, description and fields as ``model`` has them.

    Rows with a ``key`` are the text's entries (moved, kept or edited); rows without one
    are new fields. ``field_types``: the plugins' field types, allowed besides the
    built-in ones. Raises :class:`LayoutError` for text or a model it cannot handle."""
    if not isinstance(model, Mapping) or not isinstance(model.get("fields"), list):
        raise LayoutError("the model needs a 'fields' list (as model() returns it)")
    doc = Doc(text)
    types = {*FIELD_TYPES, *field_types} - {"group"}
    top: dict[str, Any] = {}
    if "form" in model and model["form"] != doc.data.get("form"):
        if not is_name(model["form"]):
            raise LayoutError(f"the form's name {model['form']!r} is not valid: {NAME_HINT}")
        top["form"] = model["form"]
    for key in ("title", "description"):
        if key in model:
            new = bilingual(model[key], f"the form's {key}")
            if not same(new, bilingual(doc.data.get(key), f"the form's {key}")):
                top[key] = new
    out = doc.render(doc.fields(model["fields"], types), top)
    if read("form.yaml", "form.yaml", out).data is None:  # a bug here, not the user's doing
        raise LayoutError("the builder wrote text it cannot read back; please report this, "
                          "and edit the YAML directly meanwhile")
    return out
