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
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.tokens import CommentToken

from .expr import ExprError, Expression
from .expr import _parse as parse_expression
from .expr import compile as compile_expression
from .expr.checker import bare_ident
from .spec.forms import ONLY_FOR, RESERVED
from .spec.problems import Problem
from .spec.schema import FIELD_TYPES, LANGS, NAME, NAME_HINT
from .spec.source import MAX_BYTES, _yaml, read

__all__ = ["OPERATORS", "LayoutError", "apply", "condition", "condition_text", "model"]

Condition = dict[str, Any]

#: The operators of a simple condition; "filled" and "empty" take no value.
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "filled", "empty")
_RELATIONS = {"relation_eq": "==", "relation_ne": "!=", "relation_lt": "<",
              "relation_le": "<=", "relation_gt": ">", "relation_ge": ">=", "relation_in": "in"}
_LITERALS = ("STRING_LIT", "INT_LIT", "FLOAT_LIT", "BOOL_LIT")
_LEAVES = ("list_lit", "literal", "ident", "ident_arg")
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: The keys of a field the model covers (besides its name and type).
COVERED = ("label", "help", "required", "required_if", "visible_if", "choices", "min", "max",
           "min_length", "max_length", "pattern", "default")
#: Where the builder puts a key in a field: the house style of forms/complaint.yaml.
ORDER = ("name", "type", "to", "workflow", "of", "roles", "region", "places", "metric",
         "report", "accept", "max_size", "max_files", "required", "default", "min", "max",
         "min_length", "max_length", "min_selected", "max_selected", "pattern", "value",
         "visible_if", "required_if", "readonly_if", "min_rows", "max_rows", "row_label",
         "label", "help", "placeholder", "messages", "choices", "fields")
_NAME = re.compile(NAME)
_SCALAR = (str, int, float, bool)
CONDITIONS = ("required_if", "visible_if")
_NUMBERS: dict[str, Any] = {"integer": int, "rating": int, "nps": int, "ces": int,
                            "decimal": float}


class LayoutError(ValueError):
    """Text or a model the builder cannot handle; the message says what to do."""


# -- text -> model ---------------------------------------------------------------------------


def model(text: str) -> dict[str, Any]:
    """The builder's model of a form's YAML text: ``{"form", "title", "description",
    "fields"}``. Each field row has a ``key`` that ``apply`` uses to find it again."""
    data = _load(text)
    items = data.get("fields") or []
    return {"form": _plain(data.get("form")),
            **{key: _text(data.get(key), f"the form's {key}") for key in ("title", "description")},
            "fields": [_entry(item, key) for item, key in zip(items, _keys(items), strict=True)]}


def _load(text: str) -> CommentedMap:
    if not isinstance(text, str):
        raise LayoutError("the form's text must be a string")
    try:
        data = _yaml().load(text) if len(text) <= MAX_BYTES else None
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


def _keys(items: list[Any]) -> list[str]:
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


def _entry(item: Any, key: str) -> dict[str, Any]:
    why = _locked(item)
    if why is None:
        try:
            out = {"key": key, "locked": False, **_read_field(item)}
            _values(out)  # what the builder shows must write back as it stands
            return out
        except LayoutError:
            why = "written in a shape the builder cannot edit"
    d = item if isinstance(item, Mapping) else {}
    try:
        label = _text(d.get("label"))
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
        "label": _text(d.get("label")), "help": _text(d.get("help")),
        "required": _plain(d.get("required", False)),
        "required_if": condition(d["required_if"]) if "required_if" in d else None,
        "visible_if": condition(d["visible_if"]) if "visible_if" in d else None,
        "choices": [_choice(c) for c in choices],
        **{k: _plain(d.get(k)) for k in ("min", "max", "min_length", "max_length", "pattern",
                                          "default")},
        "extra": sorted(str(k) for k in d if k not in COVERED and k not in ("name", "type")),
    }


def _choice(c: Any) -> dict[str, Any]:
    if isinstance(c, str):  # a bare value is its own label, as the engine shows it
        return {"value": c, "label": {lang: c for lang in LANGS}}
    if not isinstance(c, Mapping) or not isinstance(c.get("value"), str):
        raise LayoutError("a choice has no value")
    return {"value": str(c["value"]), "label": _text(c.get("label", c["value"]))}


def _text(value: Any, where: str = "a text") -> dict[str, str]:
    """``{"en", "zh"}`` of a text: a plain string serves both languages."""
    if value is None or isinstance(value, str):
        return {lang: str(value or "") for lang in LANGS}
    if not isinstance(value, Mapping) or not all(
            isinstance(value.get(lang) or "", str) for lang in LANGS):
        raise LayoutError(f"{where} must be {{\"en\": text, \"zh\": text}}")
    return {lang: str(value.get(lang) or "") for lang in LANGS}


def _plain(value: Any) -> Any:
    """ruamel's scalars and collections as the plain JSON values they stand for."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str) else None


# -- conditions ------------------------------------------------------------------------------


def condition(text: str) -> Condition:
    """``{"field", "op", "value"}`` when ``text`` is one simple comparison of a field,
    else ``{"expr": text}`` (shown and edited as text)."""
    try:
        tree = parse_expression(text)
    except Exception:  # whatever cel-python raises: the checker reports it at its position
        return {"expr": text}
    node = _bare(tree)
    # A comparison is relation(relation_OP(left), right).
    kind = node.children[0] if isinstance(node, Tree) and node.data == "relation" and len(
        node.children) == 2 else None
    if isinstance(kind, Tree) and kind.data in _RELATIONS and len(kind.children) == 1:
        name, op = bare_ident(kind.children[0]), _RELATIONS[kind.data]
        value = _list_value(node.children[1]) if op == "in" else _literal(node.children[1])
        if name is not None and _NAME.match(name) and value is not None:
            return {"field": name, "op": op, "value": value}
    negated = isinstance(node, Tree) and node.data == "unary" and len(node.children) == 2 \
        and isinstance(node.children[0], Tree) and node.children[0].data == "unary_not"
    call = _bare(node.children[1]) if negated and isinstance(node, Tree) else node
    if isinstance(call, Tree) and call.data == "ident_arg" and str(call.children[0]) == "filled":
        args = call.children[1] if len(call.children) > 1 else None
        name = bare_ident(args) if isinstance(args, Tree) else None
        if name is not None and _NAME.match(name):
            return {"field": name, "op": "empty" if negated else "filled", "value": None}
    return {"expr": text}


def _bare(node: Any) -> Any:
    """The node under the chain of one-child wrappers the grammar puts around it."""
    while isinstance(node, Tree) and node.data not in _LEAVES and len(
            node.children) == 1 and isinstance(node.children[0], Tree):
        node = node.children[0]
    return node


def _literal(node: Any) -> Any:
    node = _bare(node)
    if not (isinstance(node, Tree) and node.data == "literal" and node.children):
        return None
    tok = node.children[0]
    if not isinstance(tok, Token) or tok.type not in _LITERALS:
        return None
    found = compile_expression(str(tok), {}, want=None)  # CEL's own reading of the literal
    try:
        return found.evaluate({}) if isinstance(found, Expression) else None
    except ExprError:  # e.g. an integer beyond 64 bits
        return None


def _list_value(node: Any) -> list[Any] | None:
    node = _bare(node)
    if not (isinstance(node, Tree) and node.data == "list_lit"):
        return None
    items = node.children[0].children if node.children else []
    values = [_literal(item) for item in items]
    return None if not values or any(v is None for v in values) else values


def condition_text(cond: Condition | None) -> str:
    """The expression text of a condition (``""`` for none)."""
    if cond is None:
        return ""
    if not isinstance(cond, Mapping):
        raise LayoutError("a condition must be {field, op, value} or {expr}")
    if "expr" in cond:
        if not isinstance(cond["expr"], str):
            raise LayoutError("a condition's 'expr' must be text")
        return cond["expr"].strip()
    name, op, value = cond.get("field"), cond.get("op"), cond.get("value")
    if not isinstance(name, str) or not _NAME.match(name):
        raise LayoutError(f"a condition needs the name of a field, not {name!r}")
    if op not in OPERATORS:
        raise LayoutError(f"unknown operator {op!r} in a condition on '{name}' (use one of "
                          f"{', '.join(OPERATORS)})")
    if op == "filled":
        return f"filled({name})"
    if op == "empty":
        return f"!filled({name})"
    if op == "in":
        if not isinstance(value, list) or not value:
            raise LayoutError(f"'{name} in …' needs a list of one or more values")
        return f"{name} in [{', '.join(_quote(v, name) for v in value)}]"
    if isinstance(value, bool) and op not in ("==", "!="):
        raise LayoutError(f"'{name} {op} …' compares with a number or a text, not true/false")
    return f"{name} {op} {_quote(value, name)}"


def _quote(value: Any, name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):  # CEL's escapes; other control characters as \uXXXX
        return "'" + "".join(_ESCAPES.get(ch) or (
            f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
            for ch in value) + "'"
    raise LayoutError(f"a condition on '{name}' compares with {value!r}: use a text, a number "
                      "or true/false")


# -- the model's values, checked ---------------------------------------------------------------


def _values(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A field row's values in one comparable form (conditions as text, no empties);
    raises :class:`LayoutError` for values of the wrong kind."""
    where = f"field '{entry.get('name')}'"
    out: dict[str, Any] = {"name": entry.get("name"), "type": entry.get("type")}
    for key in ("label", "help"):
        out[key] = _text(entry.get(key), f"{where}: '{key}'")
    out["required"] = entry.get("required", False)
    if not isinstance(out["required"], bool):
        raise LayoutError(f"{where}: 'required' must be true or false")
    for key in CONDITIONS:
        try:
            out[key] = condition_text(entry.get(key)) or None
        except LayoutError as exc:
            raise LayoutError(f"{where}: '{key}': {exc}") from None
    out["choices"] = _choices_in(entry.get("choices"), where)
    for key in ("min", "max"):
        out[key] = _scalar_in(entry.get(key), f"{where}: '{key}'", (int, float, str))
    for key in ("min_length", "max_length"):
        out[key] = _scalar_in(entry.get(key), f"{where}: '{key}'", (int,))
        if out[key] is not None and out[key] < 0:
            raise LayoutError(f"{where}: '{key}' cannot be negative")
    out["pattern"] = _scalar_in(entry.get("pattern"), f"{where}: 'pattern'", (str,))
    default = entry.get("default")
    if isinstance(default, list):
        picked = [_scalar_in(v, f"{where}: 'default'", _SCALAR) for v in default]
        out["default"] = [v for v in picked if v is not None] or None
    else:
        out["default"] = _scalar_in(default, f"{where}: 'default'", _SCALAR)
    return out


def _typed(cond: Any, kinds: Mapping[str, str]) -> Any:
    """A picked value as the field it compares holds it: a browser's inputs give text."""
    kind = kinds.get(str(cond.get("field"))) if isinstance(cond, Mapping) else None
    if kind != "boolean" and kind not in _NUMBERS:
        return cond

    def one(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if kind == "boolean":
            return {"true": True, "false": False}.get(value, value)
        try:
            number = _NUMBERS[kind](value.strip())
        except ValueError:
            return value
        return number if math.isfinite(number) else value

    value = cond.get("value")
    return {**cond, "value": [one(v) for v in value] if isinstance(value, list) else one(value)}


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
        out.append({"value": v, "label": _text(c.get("label"), f"{where}: choice '{v}'")})
    return out


def _scalar_in(value: Any, where: str, kinds: tuple[type, ...]) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise LayoutError(f"{where} cannot be {value!r}")
    return value


def _same(a: Any, b: Any) -> bool:
    # == alone says True == 1 == 1.0: a default of true is not a default of 1.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- model -> text ---------------------------------------------------------------------------


def apply(text: str, model: Mapping[str, Any], *, field_types: Iterable[str] = ()) -> str:
    """``text`` with its title, description and fields as ``model`` has them.

    Rows with a ``key`` are the text's entries (moved, kept or edited); rows without one
    are new fields. ``field_types``: the plugins' field types, allowed besides the
    built-in ones. Raises :class:`LayoutError` for text or a model it cannot handle."""
    if not isinstance(model, Mapping) or not isinstance(model.get("fields"), list):
        raise LayoutError("the model needs a 'fields' list (as model() returns it)")
    doc = _Doc(text)
    types = {*FIELD_TYPES, *field_types} - {"group"}
    top: dict[str, Any] = {}
    if "form" in model and model["form"] != doc.data.get("form"):
        if not isinstance(model["form"], str) or not _NAME.match(model["form"]):
            raise LayoutError(f"the form's name {model['form']!r} is not valid: {NAME_HINT}")
        top["form"] = model["form"]
    for key in ("title", "description"):
        if key in model:
            new = _text(model[key], f"the form's {key}")
            if not _same(new, _text(doc.data.get(key), f"the form's {key}")):
                top[key] = new
    out = doc.render(doc.fields(model["fields"], types), top)
    if read("form.yaml", "form.yaml", out).data is None:  # a bug here, not the user's doing
        raise LayoutError("the builder wrote text it cannot read back; please report this, "
                          "and edit the YAML directly meanwhile")
    return out


@dataclass
class _Item:
    node: Any
    key: str
    lead: list[str]  # the blank and comment lines above it
    body: list[str]


class _Doc:
    """A form's text cut into top-level keys and, within 'fields', into entries."""

    def __init__(self, text: str) -> None:
        self.crlf = "\r\n" in text
        text = text.replace("\r\n", "\n")
        self.newline = text.endswith("\n")
        data = _load(text)
        if not self._spliceable(data):
            text = self._normalized(data)
            data = _load(text)
        self.data = data
        self.lines = (text if text.endswith("\n") else text + "\n").splitlines(keepends=True)
        self.order = list(data)
        self.top, self.trailer = _split(self.lines, 0, [data.lc.key(k)[0] for k in data],
                                        len(self.lines), 0)
        self.items: list[_Item] = []
        self.head: list[str] = ["fields:\n"]
        self.tail: list[str] = []
        self.dash, self.indent = 2, 4
        seq = data.get("fields")
        if isinstance(seq, CommentedSeq) and seq:
            start = data.lc.key("fields")[0]
            at = [_dash(self.lines, *seq.lc.item(i)) for i in range(len(seq))]
            self.dash, self.indent = at[0][1], seq.lc.item(0)[1]
            body = self.top[self.order.index("fields")][1]
            parts, self.tail = _split(self.lines, start + 1, [line for line, _ in at],
                                      start + len(body), self.dash)
            self.head = [self.lines[start]]
            self.items = [_Item(node, key, lead, b) for node, key, (lead, b)
                          in zip(seq, _keys(list(seq)), parts, strict=True)]
        self.blank = len(self.items) < 2 or any(
            it.lead and not it.lead[0].strip() for it in self.items[1:])
        self.yaml = _dumper(_mapping_indent(data), self.dash + max(self.indent - self.dash, 2),
                            self.dash)

    @staticmethod
    def _spliceable(data: CommentedMap) -> bool:
        seq = data.get("fields")
        return not data.fa.flow_style() and all(data.lc.key(k)[1] == 0 for k in data) and not (
            isinstance(seq, CommentedSeq) and seq and seq.fa.flow_style())

    @staticmethod
    def _normalized(data: CommentedMap) -> str:
        """The text in block style (one line per key, one '- ' per field)."""
        data.fa.set_block_style()
        seq = data.get("fields")
        if isinstance(seq, CommentedSeq):
            seq.fa.set_block_style()
            for item in seq:
                if isinstance(item, CommentedMap):
                    item.fa.set_block_style()
        out = io.StringIO()
        _dumper(2, 4, 2).dump(data, out)
        return out.getvalue()

    def fields(self, rows: list[Any], types: set[str]) -> list[str]:
        """The lines of the 'fields' key with the entries as ``rows`` has them."""
        found = {it.key: it for it in self.items}
        kinds = {str(it.node["name"]): str(it.node.get("type")) for it in self.items
                 if isinstance(it.node, Mapping) and isinstance(it.node.get("name"), str)}
        kinds.update({r["name"]: r["type"] for r in rows if isinstance(r, Mapping)
                      and isinstance(r.get("name"), str) and isinstance(r.get("type"), str)})
        placed: list[tuple[_Item | None, list[str]]] = []
        names: list[tuple[str, bool]] = []  # each name, and whether this edit brings it
        used: set[str] = set()
        for n, row in enumerate(rows, 1):
            if not isinstance(row, Mapping):
                raise LayoutError(f"row {n} of the model is not a field")
            key = row.get("key")
            if key is not None and not isinstance(key, str):
                raise LayoutError(f"row {n} of the model has a key that is not text: {key!r}")
            row = {**row, **{k: _typed(row[k], kinds) for k in CONDITIONS if k in row}}
            if not key:
                new = _values(row)
                _check(new, types)
                placed.append((None, self._dump_item(_new_node(new))))
                names.append((new["name"], True))
                continue
            item = found.get(key)
            if item is None:
                raise LayoutError(f"the form has no entry '{key}' any more (was the YAML "
                                  "changed meanwhile?): reload the builder")
            if key in used:
                raise LayoutError(f"entry '{key}' is in the model twice")
            used.add(key)
            old = _entry(item.node, key)
            if old["locked"]:
                placed.append((item, item.body))
                if old["name"]:
                    names.append((old["name"], False))
                continue
            before, after = _values(old), _values({**old, **row})  # left out: unchanged
            body = item.body
            if not _same(before, after):
                if (after["name"], after["type"]) != (before["name"], before["type"]):
                    _check(after, types)
                body = self._rewrite(item, before, after)
            names.append((after["name"], after["name"] != before["name"]))
            placed.append((item, body))
        counts = Counter(name for name, _ in names)
        for name, brought in names:
            if brought and counts[name] > 1:
                raise LayoutError(f"two fields are named '{name}': field names must be unique "
                                  "in a form")
        return self._assemble(placed)

    def _assemble(self, placed: list[tuple[_Item | None, list[str]]]) -> list[str]:
        kept = {id(item) for item, _ in placed if item is not None}
        carry: dict[int, list[str]] = {}  # comments above removed entries, by the next kept
        pending: list[str] = []
        for it in self.items:
            if id(it) not in kept:
                pending += it.lead if _commented(it.lead) else []
            elif pending:
                carry[id(it)], pending = pending, []
        out = list(self.head)
        for pos, (item, body) in enumerate(placed):
            if item is None:
                lead = ["\n"] if self.blank and pos else []
            else:
                first = item is self.items[0]
                lead = item.lead
                if id(item) in carry:
                    lead = carry[id(item)] + (lead if _commented(lead) else [])
                if pos == 0 and (not first or id(item) in carry):
                    while lead and not lead[0].strip():
                        lead = lead[1:]
                elif pos and first and self.blank and (not lead or lead[0].strip()):
                    lead = ["\n", *lead]
            out += lead + body
        return out + pending + self.tail

    def render(self, fields: list[str], top: dict[str, Any]) -> str:
        """The whole text: ``fields`` as the 'fields' key, ``top`` the top-level keys
        to change (a missing title or description goes after the form's name)."""
        segments = list(zip(self.order, self.top, strict=True))
        if "fields" not in self.order:
            segments.append(("fields", ([], [])))
        after = {"form": ("title", "description"), "title": ("description",)}
        out: list[str] = []
        for key, (lead, body) in segments:
            if key == "fields":
                body = fields
            elif key in top:
                body = self._rewrite_top(body, key, top[key])
            out += lead + body
            for more in after.get(key, ()):
                if more in top and more not in self.order:
                    out += self._rewrite_top([], more, top.pop(more))
        text = "".join(out + self.trailer)
        if not self.newline and text.endswith("\n"):
            text = text[:-1]
        return text.replace("\n", "\r\n") if self.crlf else text

    def _rewrite_top(self, body: list[str], key: str, value: Any) -> list[str]:
        root = self.yaml.load("".join(body)) if body else None
        root = root if isinstance(root, CommentedMap) else CommentedMap()
        if key == "form":
            root[key] = value
        else:
            _set_text(root, key, value)
        return self._dump(root) if root else []

    def _rewrite(self, item: _Item, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        """The entry's lines after the edit: its own text, parsed alone (so the comments
        above the next entry stay out), changed where the model changed, dumped."""
        root = self.yaml.load("fields:\n" + "".join(item.body))  # comments keep their column
        seq = root.get("fields") if isinstance(root, CommentedMap) else None
        if not (isinstance(seq, CommentedSeq) and len(seq) == 1):
            raise LayoutError(f"cannot cut entry '{item.key}' out of the text; edit it in "
                              "the YAML editor")
        node: CommentedMap = seq[0]
        node.fa.set_block_style()
        ftype = after["type"]
        retyped = ftype != before["type"]
        for key in ("name", "type", *COVERED):
            new = after[key]
            if not _applies(key, ftype) and (retyped or key not in node):
                new = [] if key == "choices" else False if key == "required" else None
            if not _same(new, before[key]):
                _write(node, key, new)
        if retyped:
            for key in [k for k in node if not _applies(str(k), ftype)]:
                _set(node, key, None)
        return self._dump_item(node)

    def _dump_item(self, node: CommentedMap) -> list[str]:
        root = CommentedMap()
        root["fields"] = CommentedSeq([node])
        return self._dump(root)[1:]  # without the 'fields:' line

    def _dump(self, root: CommentedMap) -> list[str]:
        out = io.StringIO()
        self.yaml.dump(root, out)
        return out.getvalue().splitlines(keepends=True)


def _dumper(mapping: int, sequence: int, offset: int) -> YAML:
    """The reader's YAML settings, writing with the file's indentation and quotes."""
    yaml = _yaml()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long help text
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _split(lines: list[str], begin: int, starts: list[int], stop: int, base: int
           ) -> tuple[list[tuple[list[str], list[str]]], list[str]]:
    """Cut ``lines[begin:stop]`` into (lead, body) per entry starting at ``starts``, and
    what follows the last one. The blank lines and comments no deeper than ``base``
    after an entry lead the next one."""
    out, lead_from = [], begin
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else stop
        while end > start + 1 and _loose(lines[end - 1], base):
            end -= 1
        out.append((lines[lead_from:start], lines[start:end]))
        lead_from = end
    return out, lines[lead_from:stop]


def _loose(line: str, base: int) -> bool:
    text = line.strip()
    return not text or (text.startswith("#") and len(line) - len(line.lstrip()) <= base)


def _commented(lines: list[str]) -> bool:
    return any(line.strip().startswith("#") for line in lines)


def _dash(lines: list[str], line: int, col: int) -> tuple[int, int]:
    """Line and column of the '-' that opens the sequence entry whose value is at
    (line, col)."""
    text = lines[line][:col]
    while not text.strip() and line > 0:  # the '-' alone on a line above
        line -= 1
        text = lines[line].rstrip("\n")
    text = text.rstrip()
    return line, max(len(text) - 1, 0)


def _mapping_indent(data: CommentedMap) -> int:
    """How far the file indents a mapping under its key (2 when nothing says)."""
    title = data.get("title")
    if isinstance(title, CommentedMap) and title and not title.fa.flow_style():
        return int(title.lc.col) - int(data.lc.key("title")[1])
    for item in data.get("fields") or []:
        for key, value in item.items() if isinstance(item, CommentedMap) else ():
            if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
                return int(value.lc.col) - int(item.lc.key(key)[1])
    return 2


def _applies(key: str, ftype: str) -> bool:
    return key not in ONLY_FOR or ftype in ONLY_FOR[key]


def _check(values: dict[str, Any], types: set[str]) -> None:
    name, ftype = values["name"], values["type"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise LayoutError(f"{name!r} is not a valid field name: {NAME_HINT}")
    if name in RESERVED:
        raise LayoutError(f"'{name}' is reserved in expressions; choose another field name")
    if ftype == "group":
        raise LayoutError(f"field '{name}': a group of rows is written in the YAML editor")
    if ftype not in types:
        raise LayoutError(f"field '{name}': unknown type {ftype!r} (use one of "
                          f"{', '.join(sorted(types))})")


def _write(node: CommentedMap, key: str, value: Any) -> None:
    """Set one covered key of a field (``None``/empty: remove it)."""
    if key in ("label", "help"):
        _set_text(node, key, value)
    elif key == "choices":
        _set_choices(node, value)
    elif key in (*CONDITIONS, "pattern") and value is not None:
        _set(node, key, DoubleQuotedScalarString(value))
    elif key == "default" and isinstance(value, list):
        _set(node, key, _flow(value))
    elif key in ("name", "type"):
        _set(node, key, _like(node.get(key), value))
    else:
        _set(node, key, None if _empty(key, value) else value)


def _empty(key: str, value: Any) -> bool:
    """Left out of the text: nothing, an empty list or text, ``required: false``."""
    return value is None or value == [] or (key == "required" and value is False) or (
        isinstance(value, dict) and not any(value.values()))


def _set(node: CommentedMap, key: str, value: Any, order: tuple[str, ...] = ORDER) -> None:
    """Set, add (in ``order``) or remove (``None``) one key. ruamel hangs the comment
    lines above a key on the value before it; they are handed over so that they stay
    above the same key."""
    keys = list(node)
    if value is None:
        if key in node:
            rest = _take_rest(node, key)
            del node[key]
            if keys.index(key):
                _give_rest(node, keys[keys.index(key) - 1], rest)
        return
    if key in node:
        rest = _take_rest(node, key)
        node[key] = value
    else:  # after the last key that comes before it in the order
        rank = order.index(key) if key in order else len(order)
        pos = max([i + 1 for i, k in enumerate(keys) if k in order and order.index(k) < rank],
                  default=0)
        rest = _take_rest(node, keys[pos - 1]) if pos else ""
        node.insert(pos, key, value)
    _give_rest(node, key, rest)


def _slot(container: Any, key: Any) -> tuple[Any, Any, int]:
    """Where ruamel keeps the comment after ``container[key]``: with the last scalar."""
    value = container[key]
    if isinstance(value, CommentedMap | CommentedSeq) and value and not value.fa.flow_style():
        return _slot(value, list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1)
    return container, key, 2 if isinstance(container, CommentedMap) else 0


def _take_rest(container: Any, key: Any) -> str:
    """Cut the comment lines after the line of ``container[key]`` out of the tree."""
    holder, at, i = _slot(container, key)
    slot = holder.ca.items.get(at)
    token = slot[i] if slot else None
    if token is None or "\n" not in token.value:
        return ""
    eol, rest = token.value.split("\n", 1)
    if not rest.strip():
        return ""
    if eol.strip():
        token.value = eol + "\n"
    else:
        slot[i] = None
    return str(rest)


def _give_rest(container: Any, key: Any, rest: str) -> None:
    if rest:
        holder, at, i = _slot(container, key)
        slot = holder.ca.items.setdefault(at, [None, None, None, None])
        if slot[i] is None:
            slot[i] = CommentToken("\n" + rest, CommentMark(0), None)
        else:
            slot[i].value += rest


def _like(old: Any, new: Any) -> Any:
    """``new`` quoted as ``old`` was, where the author chose a quote style."""
    for style in (DoubleQuotedScalarString, SingleQuotedScalarString, LiteralScalarString):
        if isinstance(old, style) and isinstance(new, str):
            return style(new)
    return new


def _set_text(node: CommentedMap, key: str, text: dict[str, str]) -> None:
    langs = {lang: text[lang] for lang in LANGS if text.get(lang)}
    current = node.get(key)
    if not langs:
        _set(node, key, None)
    elif isinstance(current, str) and len(langs) == len(LANGS) and len(set(langs.values())) == 1:
        _set(node, key, _like(current, langs[LANGS[0]]))
    elif isinstance(current, CommentedMap):
        for lang in LANGS:
            _set(current, lang, _like(current.get(lang), langs[lang]) if lang in langs else None,
                 LANGS)
    else:
        _set(node, key, CommentedMap(langs))


def _set_choices(node: CommentedMap, choices: list[dict[str, Any]]) -> None:
    old = node.get("choices")
    if not choices:
        _set(node, "choices", None)
        return
    by_value: dict[str, Any] = {}
    for c in old if isinstance(old, list) else ():
        by_value.setdefault(c if isinstance(c, str) else str(c.get("value")), c)
    seq = CommentedSeq()
    for choice in choices:
        prev = by_value.get(choice["value"])
        if prev is not None and _same(_choice(prev), choice):
            seq.append(prev)
        elif isinstance(prev, CommentedMap):
            _set_text(prev, "label", choice["label"])
            seq.append(prev)
        else:
            item = CommentedMap(value=choice["value"])
            _set_text(item, "label", choice["label"])
            seq.append(item)
    if isinstance(old, CommentedSeq) and old.fa.flow_style():
        seq.fa.set_flow_style()
    _set(node, "choices", seq)


def _flow(values: list[Any]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _new_node(values: dict[str, Any]) -> CommentedMap:
    """A new field in the house style: name, type, rules, conditions, texts, choices."""
    node = CommentedMap()
    for key in ORDER:
        if key in values and _applies(key, values["type"]) and not _empty(key, values[key]):
            _write(node, key, values[key])
    return node
