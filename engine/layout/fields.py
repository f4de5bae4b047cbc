"""A form's entries as the builder's rows, and rows checked into comparable values.

:func:`load` reads the text with the definition reader's rules; :func:`entry` turns one
entry of 'fields' into a row (or a ``locked`` one it cannot edit); :func:`row_values`
checks a row from the browser and gives its values in one form, so that an edit is
recognised by comparing them (:func:`same`) and an untouched entry keeps its lines.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ..spec.forms import ONLY_FOR, RESERVED
from ..spec.problems import Problem
from ..spec.schema import LANGS, NAME, NAME_HINT
from ..spec.source import MAX_BYTES, read, strict_yaml
from .conditions import condition, condition_text
from .errors import LayoutError

__all__ = ["CONDITIONS", "COVERED", "applies", "bilingual", "check_field", "choice", "entry",
           "entry_keys", "is_name", "load", "plain", "row_values", "same"]

#: The keys of a field the model covers (besides its name and type).
COVERED = ("label", "help", "required", "required_if", "visible_if", "choices", "min", "max",
           "min_length", "max_length", "pattern", "default")
CONDITIONS = ("required_if", "visible_if")
_NAME = re.compile(NAME)
_SCALAR = (str, int, float, bool)


# -- text -> rows ----------------------------------------------------------------------------


def load(text: str) -> CommentedMap:
    """The form's text as ruamel's tree; :class:`LayoutError` when it is not a form the
    builder can read (the YAML editor is where to fix it)."""
    if not isinstance(text, str):
        raise LayoutError("the form's text must be a string")
    try:
        data = strict_yaml().load(text) if len(text) <= MAX_BYTES else None
    except Exception:  # whatever ruamel raises: read() below says it for people
        data = None
    if data is None:
        problems = read("form.yaml", "form.yaml", text).problems or [
            Problem("CL003", "the file has no content", "form.yaml")]
        p = problems[0]
        raise LayoutError(f"the YAML cannot be read (line {p.line}, column {p.col}: "
                          f"{p.message}); fix it in the YAML editor first")
    if not isinstance(data, CommentedMap):
        raise LayoutError("this is not a form: a form is a mapping that starts with 'form:'")
    for kind in ("workflow", "calendar"):
        if kind in data:
            raise LayoutError(f"this is a {kind}, not a form: the guided builder edits forms "
                              "only; use the YAML editor")
    if "form" not in data:
        raise LayoutError("this is not a form: it has no 'form:' key naming it")
    if data.get("fields") is not None and not isinstance(data["fields"], list):
        raise LayoutError("'fields' must be a list ('- name: …' entries); fix it in the "
                          "YAML editor first")
    return data


def entry_keys(items: list[Any]) -> list[str]:
    """The key of each entry: how a row finds its entry again (``field:NAME``,
    ``include:FORM`` or ``item:N``, with ``#2``… for repeats)."""
    out, seen = [], Counter[str]()
    for i, item in enumerate(items):
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            base = f"field:{item['name']}"
        elif isinstance(item, Mapping) and isinstance(item.get("include"), str):
            base = f"include:{item['include']}"
        else:
            base = f"item:{i}"
        seen[base] += 1
        out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return out


def entry(item: Any, key: str) -> dict[str, Any]:
    """The row of one entry of 'fields'; ``locked`` (with ``why``) when the builder
    cannot edit it."""
    why = _locked(item)
    if why is None:
        try:
            out = {"key": key, "locked": False, **_read_field(item)}
            row_values(out)  # what the builder shows must write back as it stands
            return out
        except LayoutError:
            why = "written in a shape the builder cannot edit"
    d = item if isinstance(item, Mapping) else {}
    try:
        label = bilingual(d.get("label"))
    except LayoutError:
        label = {lang: "" for lang in LANGS}
    return {"key": key, "locked": True, "why": why, "include": _str(d.get("include")),
            "name": _str(d.get("name")), "type": _str(d.get("type")), "label": label}


def _locked(item: Any) -> str | None:
    """Why the builder cannot edit this entry, or None."""
    if not isinstance(item, Mapping):
        return "not a field"
    if "include" in item:
        return f"inserts the fields of form '{item['include']}'"
    if "value" in item:
        return "a computed value"
    if "fields" in item or item.get("type") == "group":
        return "a group of rows"
    if not isinstance(item.get("name"), str) or not isinstance(item.get("type"), str):
        return "has no name or type the builder can read"
    return None


def _read_field(d: Mapping[str, Any]) -> dict[str, Any]:
    choices = d.get("choices") or []
    if not isinstance(choices, list):
        raise LayoutError("'choices' is not a list")
    return {
        "name": str(d["name"]), "type": str(d["type"]),
        "label": bilingual(d.get("label")), "help": bilingual(d.get("help")),
        "required": plain(d.get("required", False)),
        "required_if": condition(d["required_if"]) if "required_if" in d else None,
        "visible_if": condition(d["visible_if"]) if "visible_if" in d else None,
        "choices": [choice(c) for c in choices],
        **{k: plain(d.get(k)) for k in ("min", "max", "min_length", "max_length", "pattern",
                                         "default")},
        "extra": sorted(str(k) for k in d if k not in COVERED and k not in ("name", "type")),
    }


def choice(c: Any) -> dict[str, Any]:
    """``{"value", "label"}`` of a choice as the text has it."""
    if isinstance(c, str):  # a bare value is its own label, as the engine shows it
        return {"value": c, "label": {lang: c for lang in LANGS}}
    if not isinstance(c, Mapping) or not isinstance(c.get("value"), str):
        raise LayoutError("a choice has no value")
    return {"value": str(c["value"]), "label": bilingual(c.get("label", c["value"]))}


def bilingual(value: Any, where: str = "a text") -> dict[str, str]:
    """``{"en", "zh"}`` of a text: a plain string serves both languages."""
    if value is None or isinstance(value, str):
        return {lang: str(value or "") for lang in LANGS}
    if not isinstance(value, Mapping) or not all(
            isinstance(value.get(lang) or "", str) for lang in LANGS):
        raise LayoutError(f"{where} must be {{\"en\": text, \"zh\": text}}")
    return {lang: str(value.get(lang) or "") for lang in LANGS}


def plain(value: Any) -> Any:
    """ruamel's scalars and collections as the plain JSON values they stand for."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str) else None


# -- rows, checked -----------------------------------------------------------------------------


def row_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A field row's values in one comparable form (conditions as text, no empties);
    raises :class:`LayoutError` for values of the wrong kind."""
    where = f"field '{row.get('name')}'"
    out: dict[str, Any] = {"name": row.get("name"), "type": row.get("type")}
    for key in ("label", "help"):
        out[key] = bilingual(row.get(key), f"{where}: '{key}'")
    out["required"] = row.get("required", False)
    if not isinstance(out["required"], bool):
        raise LayoutError(f"{where}: 'required' must be true or false")
    for key in CONDITIONS:
        try:
            out[key] = condition_text(row.get(key)) or None
        except LayoutError as exc:
            raise LayoutError(f"{where}: '{key}': {exc}") from None
    out["choices"] = _choices_in(row.get("choices"), where)
    for key in ("min", "max"):
        out[key] = _scalar_in(row.get(key), f"{where}: '{key}'", (int, float, str))
    for key in ("min_length", "max_length"):
        out[key] = _scalar_in(row.get(key), f"{where}: '{key}'", (int,))
        if out[key] is not None and out[key] < 0:
            raise LayoutError(f"{where}: '{key}' cannot be negative")
    out["pattern"] = _scalar_in(row.get("pattern"), f"{where}: 'pattern'", (str,))
    default = row.get("default")
    if isinstance(default, list):
        picked = [_scalar_in(v, f"{where}: 'default'", _SCALAR) for v in default]
        out["default"] = [v for v in picked if v is not None] or None
    else:
        out["default"] = _scalar_in(default, f"{where}: 'default'", _SCALAR)
    return out


def _choices_in(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise LayoutError(f"{where}: 'choices' must be a list of {{value, label}}")
    out, seen = [], set()
    for c in value:
        v = c.get("value") if isinstance(c, Mapping) else None
        if not isinstance(v, str) or not v:
            raise LayoutError(f"{where}: every choice needs a value (text)")
        if v in seen:
            raise LayoutError(f"{where}: choice '{v}' is listed twice")
        seen.add(v)
        out.append({"value": v, "label": bilingual(c.get("label"), f"{where}: choice '{v}'")})
    return out


def _scalar_in(value: Any, where: str, kinds: tuple[type, ...]) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise LayoutError(f"{where} cannot be {value!r}")
    return value


def same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``==`` alone says True == 1 == 1.0, and a default of true is not
    a default of 1."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def is_name(value: Any) -> bool:
    """Whether ``value`` is a valid name for a field or a form."""
    return isinstance(value, str) and bool(_NAME.match(value))


def applies(key: str, ftype: str) -> bool:
    """Whether a field of type ``ftype`` takes the key ``key``."""
    return key not in ONLY_FOR or ftype in ONLY_FOR[key]


def check_field(values: dict[str, Any], types: set[str]) -> None:
    """The name and type of a new (or renamed, retyped) field; ``types``: those allowed."""
    name, ftype = values["name"], values["type"]
    if not is_name(name):
        raise LayoutError(f"{name!r} is not a valid field name: {NAME_HINT}")
    if name in RESERVED:
        raise LayoutError(f"'{name}' is reserved in expressions; choose another field name")
    if ftype == "group":
        raise LayoutError(f"field '{name}': a group of rows is written in the YAML editor")
    if ftype not in types:
        raise LayoutError(f"field '{name}': unknown type {ftype!r} (use one of "
                          f"{', '.join(sorted(types))})")
