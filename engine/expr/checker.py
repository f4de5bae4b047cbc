"""Static name and type checking of a parsed CEL expression.

cel-python parses and evaluates CEL but checks names and types only while
evaluating. Ops staff must hear about ``severty > 3`` or ``rating > '3'``
when the definition loads, so this walks the parse tree once and infers a
type for every node. Unknown types become ``dyn`` and are let through:
the checker refuses what is certainly wrong, not what it cannot prove.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from ..hints import suggest
from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    NUMBERS,
    STRING,
    TIMESTAMP,
    UINT,
    T,
    compatible,
    list_of,
    unify,
)


@dataclass(frozen=True, slots=True)
class Issue:
    code: str  # CL031 unknown name, CL032 type error
    message: str
    line: int  # 1-based, within the expression text
    col: int


class _Fail(Exception):
    def __init__(self, issue: Issue) -> None:
        self.issue = issue


_LITERALS = {
    "INT_LIT": INT, "UINT_LIT": UINT, "FLOAT_LIT": DOUBLE, "STRING_LIT": STRING,
    "MLSTRING_LIT": STRING, "BYTES_LIT": BYTES, "BOOL_LIT": BOOL, "NULL_LIT": NULL,
}
_STRING_METHODS = {"contains": BOOL, "startsWith": BOOL, "endsWith": BOOL, "matches": BOOL}
_TIME_METHODS = {
    name: INT for name in (
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    )
}
_MACROS = ("all", "exists", "exists_one", "map", "filter")
_CONVERSIONS = {"int": INT, "uint": UINT, "double": DOUBLE, "string": STRING, "bool": BOOL,
                "timestamp": TIMESTAMP, "duration": DURATION}
_OPS = {
    "relation_lt": "<", "relation_le": "<=", "relation_gt": ">", "relation_ge": ">=",
    "relation_eq": "==", "relation_ne": "!=", "relation_in": "in",
    "addition_add": "+", "addition_sub": "-", "multiplication_mul": "*",
    "multiplication_div": "/", "multiplication_mod": "%",
}


def _pos(node: Tree[Any] | Token) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    for tok in node.scan_values(lambda v: isinstance(v, Token)):
        return tok.line or 1, tok.column or 1
    meta = node.meta
    return getattr(meta, "line", 1), getattr(meta, "column", 1)


class Checker:
    """Infers the type of an expression over ``names``; raises on the first error."""

    def __init__(self, names: Mapping[str, T], functions: Mapping[str, T],
                 arities: Mapping[str, int] | None = None,
                 signatures: Mapping[str, tuple[T, ...]] | None = None) -> None:
        self.scopes: list[Mapping[str, T]] = [names]
        self.functions = functions
        self.arities = arities or {}
        self.signatures = signatures or {}

    def check(self, tree: Tree[Any]) -> T | Issue:
        try:
            return self.visit(tree)
        except _Fail as fail:
            return fail.issue

    # -- helpers ------------------------------------------------------------
    def fail(self, node: Tree[Any] | Token, message: str, code: str = "CL032") -> _Fail:
        line, col = _pos(node)
        return _Fail(Issue(code, message, line, col))

    def lookup(self, name: str) -> T | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def known_names(self) -> set[str]:
        return {n for scope in self.scopes for n in scope}

    def expect(self, node: Tree[Any], want: str, what: str) -> T:
        got = self.visit(node)
        if got.kind not in (want, "dyn"):
            raise self.fail(node, f"{what} must be {want}, not {got}")
        return got

    def visit(self, node: Tree[Any] | Token) -> T:
        if isinstance(node, Token):
            raise self.fail(node, f"unexpected '{node}'")
        method: Callable[[Tree[Any]], T] | None = getattr(self, f"_{node.data}", None)
        if method is None:
            raise self.fail(node, f"'{node.data}' is not supported in Caseloop expressions")
        return method(node)

    def _single(self, node: Tree[Any]) -> T:
        return self.visit(node.children[0])

    _member = _primary = _single

    # -- operators ------------------------------------------------------------
    def _expr(self, node: Tree[Any]) -> T:
        if len(node.children) == 1 or node.children[1] is None:
            return self.visit(node.children[0])
        cond, then, other = node.children
        self.expect(cond, "bool", "the condition before '?'")
        a, b = self.visit(then), self.visit(other)
        both = unify(a, b)
        if both is None:
            raise self.fail(then, f"both sides of '? :' must have one type, not {a} and {b}")
        return both

    def _logic(self, node: Tree[Any], op: str) -> T:
        if len(node.children) == 1 or node.children[0] is None:
            return self.visit(node.children[-1])
        for child in node.children:
            self.expect(child, "bool", f"each side of '{op}'")
        return BOOL

    def _conditionalor(self, node: Tree[Any]) -> T:
        return self._logic(node, "||")

    def _conditionaland(self, node: Tree[Any]) -> T:
        return self._logic(node, "&&")

    def _binary(self, node: Tree[Any]) -> T:
        if len(node.children) == 1 or node.children[0] is None:
            return self.visit(node.children[-1])
        op_tree, right = node.children
        op = _OPS[op_tree.data]
        a, b = self.visit(op_tree.children[0]), self.visit(right)
        if op in ("==", "!="):
            if not compatible(a, b):
                raise self.fail(op_tree, f"cannot compare {a} with {b} using '{op}'")
            if NULL in (a, b):
                raise self.fail(op_tree, "compare with null is unreliable: use filled(x) to "
                                "test whether a field has a value")
            return BOOL
        if op == "in":
            if b.kind == "list" and b.elem and not compatible(a, b.elem):
                raise self.fail(op_tree, f"cannot look for {a} in {b}")
            if b.kind not in ("list", "map", "dyn"):
                raise self.fail(right, f"'in' needs a list or a map on its right, not {b}")
            return BOOL
        return self._arith(op_tree, op, a, b)

    _relation = _addition = _multiplication = _binary

    def _arith(self, node: Tree[Any], op: str, a: T, b: T) -> T:
        if DYN in (a, b):
            return BOOL if op in ("<", "<=", ">", ">=") else DYN
        if op in ("<", "<=", ">", ">="):
            if a.kind != b.kind or a.kind not in (*NUMBERS, "string", "timestamp", "duration"):
                hint = ""
                if {a.kind, b.kind} <= set(NUMBERS):
                    hint = " (int and double do not mix: convert with double(x), or write 3.0)"
                raise self.fail(node, f"cannot compare {a} with {b} using '{op}'{hint}")
            return BOOL
        if a.kind == b.kind and a.kind in NUMBERS:
            if op == "%" and a.kind == "double":
                raise self.fail(node, "'%' needs whole numbers")
            return a
        table = {
            ("+", "string", "string"): STRING, ("+", "list", "list"): a,
            ("+", "timestamp", "duration"): TIMESTAMP, ("+", "duration", "timestamp"): TIMESTAMP,
            ("+", "duration", "duration"): DURATION, ("-", "timestamp", "timestamp"): DURATION,
            ("-", "timestamp", "duration"): TIMESTAMP, ("-", "duration", "duration"): DURATION,
        }
        result = table.get((op, a.kind, b.kind))
        if result is None:
            hint = " (convert with string(x))" if STRING in (a, b) and op == "+" else ""
            if {a.kind, b.kind} <= set(NUMBERS):
                hint = " (both sides must be int or both double: convert with double(x))"
            raise self.fail(node, f"cannot apply '{op}' to {a} and {b}{hint}")
        return result

    def _unary(self, node: Tree[Any]) -> T:
        if len(node.children) == 1:
            return self.visit(node.children[0])
        op, operand = node.children
        if op.data == "unary_not":
            self.expect(operand, "bool", "the value after '!'")
            return BOOL
        got = self.visit(operand)
        if got.kind not in (*NUMBERS, "dyn", "duration"):
            raise self.fail(operand, f"'-' needs a number, not {got}")
        return got

    # -- members and calls ------------------------------------------------------
    def _member_dot(self, node: Tree[Any]) -> T:
        target, name = node.children
        typ = self.visit(target)
        if typ.kind == "record":
            got = typ.member(str(name))
            if got is None:
                known = [k for k, _ in typ.fields]
                raise self.fail(name, f"unknown member '{name}'{suggest(str(name), known)}",
                                "CL031")
            return got
        if typ.kind == "map":
            return typ.elem or DYN
        if typ.kind == "dyn":
            return DYN
        raise self.fail(name, f"{typ} has no member '{name}'")

    def _member_index(self, node: Tree[Any]) -> T:
        target, index = node.children
        typ, idx = self.visit(target), self.visit(index)
        if typ.kind == "list":
            if idx.kind not in ("int", "uint", "dyn"):
                raise self.fail(index, f"a list index must be int, not {idx}")
            return typ.elem or DYN
        if typ.kind in ("map", "record", "dyn"):
            return typ.elem or DYN if typ.kind == "map" else DYN
        raise self.fail(node, f"cannot index {typ}")

    def _args(self, node: Tree[Any] | None) -> list[Tree[Any]]:
        return list(node.children) if node is not None else []

    def _member_dot_arg(self, node: Tree[Any]) -> T:
        target, name, *rest = node.children
        method = str(name)
        args = self._args(rest[0] if rest else None)
        typ = self.visit(target)
        if method in _MACROS:
            return self._macro(node, method, typ, args)
        if method == "size" and not args:
            if typ.kind not in ("string", "list", "map", "bytes", "dyn", "record"):
                raise self.fail(name, f"size() needs text or a list, not {typ}")
            return INT
        if method in _STRING_METHODS:
            if typ.kind not in ("string", "dyn"):
                raise self.fail(name, f"{method}() works on text, not {typ}")
            if len(args) != 1:
                raise self.fail(name, f"{method}() takes one argument")
            self.expect(args[0], "string", f"the argument of {method}()")
            return BOOL
        if method in _TIME_METHODS:
            if typ.kind not in ("timestamp", "dyn"):
                raise self.fail(name, f"{method}() works on dates and times, not {typ}")
            for arg in args:
                self.expect(arg, "string", f"the time zone given to {method}()")
            return INT
        known = ["size", *_STRING_METHODS, *_TIME_METHODS, *_MACROS]
        raise self.fail(name, f"unknown method '{method}'{suggest(method, known)}", "CL031")

    def _macro(self, node: Tree[Any], method: str, typ: T, args: list[Tree[Any]]) -> T:
        if typ.kind not in ("list", "map", "dyn"):
            raise self.fail(node, f"{method}() works on lists, not {typ}")
        if len(args) != 2:
            raise self.fail(node, f"{method}() takes a name and an expression, e.g. "
                            f"rows.{method}(r, r.done)")
        var = bare_ident(args[0])
        if var is None:
            raise self.fail(args[0], f"the first argument of {method}() must be a name")
        elem = typ.elem or DYN if typ.kind == "list" else STRING if typ.kind == "map" else DYN
        self.scopes.append({var: elem})
        try:
            body = self.visit(args[1])
        finally:
            self.scopes.pop()
        if method == "map":
            return list_of(body)
        if method == "filter":
            if body.kind not in ("bool", "dyn"):
                raise self.fail(args[1], f"filter() needs a condition, not {body}")
            return typ
        if body.kind not in ("bool", "dyn"):
            raise self.fail(args[1], f"{method}() needs a condition, not {body}")
        return BOOL

    def _ident(self, node: Tree[Any]) -> T:
        tok = node.children[0]
        typ = self.lookup(str(tok))
        if typ is None:
            raise self.fail(tok, f"unknown name '{tok}'{suggest(str(tok), self.known_names())}",
                            "CL031")
        return typ

    _dot_ident = _ident

    def _ident_arg(self, node: Tree[Any]) -> T:
        tok, *rest = node.children
        name = str(tok)
        args = self._args(rest[0] if rest else None)
        arity = 1 if name == "size" or name in _CONVERSIONS else self.arities.get(name)
        if arity is not None and len(args) != arity:
            raise self.fail(tok, f"{name}() takes {arity} argument{'s' if arity != 1 else ''}, "
                            f"not {len(args)}")
        if name == "size":
            got = self.visit(args[0])
            if got.kind not in ("string", "list", "map", "bytes", "dyn", "record"):
                raise self.fail(args[0], f"size() needs text or a list, not {got}")
            return INT
        if name in _CONVERSIONS:
            self.visit(args[0])
            return _CONVERSIONS[name]
        if name in self.functions:
            wanted = self.signatures.get(name)
            for i, arg in enumerate(args):
                got = self.visit(arg)
                if wanted is not None and not _fits(got, wanted[i]):
                    hint = (" (convert with double(x))" if (got.kind, wanted[i].kind) ==
                            ("int", "double") else "")
                    raise self.fail(arg, f"argument {i + 1} of {name}() must be {wanted[i]}, "
                                    f"not {got}{hint}")
            return self.functions[name]
        known = ["size", *_CONVERSIONS, *self.functions]
        raise self.fail(tok, f"unknown function '{name}'{suggest(name, known)}", "CL031")

    _dot_ident_arg = _ident_arg

    def _paren_expr(self, node: Tree[Any]) -> T:
        return self.visit(node.children[0])

    def _list_lit(self, node: Tree[Any]) -> T:
        elem: T = DYN
        for i, child in enumerate(self._args(node.children[0] if node.children else None)):
            got = self.visit(child)
            both = got if i == 0 else unify(elem, got)
            if both is None:
                raise self.fail(child, f"a list mixes {elem} and {got}")
            elem = both
        return list_of(elem)

    def _map_lit(self, node: Tree[Any]) -> T:
        values = self._args(node.children[0] if node.children else None)[1::2]
        for child in self._args(node.children[0] if node.children else None):
            self.visit(child)
        elem = self.visit(values[0]) if values else DYN
        return T("map", elem)

    def _literal(self, node: Tree[Any]) -> T:
        tok = node.children[0]
        return _LITERALS.get(getattr(tok, "type", ""), DYN)


def _fits(got: T, want: T) -> bool:
    """Whether a value of type ``got`` may be passed where ``want`` is declared: the same
    kind (a group row or ``user`` is a map), or ``dyn`` on either side."""
    if "dyn" in (got.kind, want.kind) or got.kind == "null":
        return True
    if want.kind == "map":
        return got.kind in ("map", "record")
    return got.kind == want.kind


def bare_ident(node: Tree[Any]) -> str | None:
    """The name if ``node`` is nothing but an identifier (the macro variable)."""
    while isinstance(node, Tree):
        if node.data == "ident":
            return str(node.children[0])
        kids = [c for c in node.children if c is not None]
        if len(kids) != 1:
            return None
        node = kids[0]
    return None
