"""Simple conditions: ``status == 'open'`` <-> ``{"field", "op", "value"}`` for the pickers.

The builder shows a condition as three pickers when it is one comparison of a field with
a literal (or ``filled(field)``, ``!filled(field)``); anything else stays text
(``{"expr": text}``). :func:`condition` reads the text with cel-python's own parser and
:func:`condition_text` writes it back with CEL's quoting, so a condition the user did not
touch reads and writes to the same expression.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from lark import Token, Tree

from ..expr import ExprError, Expression
from ..expr import compile as compile_expression
from ..expr import parse as parse_expression
from ..expr.checker import bare_ident
from ..spec.schema import NAME
from .errors import LayoutError

__all__ = ["OPERATORS", "Condition", "condition", "condition_text", "typed"]

Condition = dict[str, Any]

#: The operators of a simple condition; "filled" and "empty" take no value.
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "filled", "empty")
_RELATIONS = {"relation_eq": "==", "relation_ne": "!=", "relation_lt": "<",
              "relation_le": "<=", "relation_gt": ">", "relation_ge": ">=", "relation_in": "in"}
_LITERALS = ("STRING_LIT", "INT_LIT", "FLOAT_LIT", "BOOL_LIT")
_LEAVES = ("list_lit", "literal", "ident", "ident_arg")
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NAME = re.compile(NAME)
_NUMBERS: dict[str, Any] = {"integer": int, "rating": int, "nps": int, "ces": int,
                            "decimal": float}


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


def typed(cond: Any, kinds: Mapping[str, str]) -> Any:
    """A picked value as the field it compares holds it: a browser's inputs give text.
    ``kinds``: field name -> field type."""
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
