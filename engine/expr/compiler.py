"""Compiles a checked CEL parse tree into nested Python closures over plain values.

cel-python evaluates by walking the lark tree on every call and by first wrapping
every value of the scope in its own CEL types, which costs 75-300 µs an evaluation.
Here the tree is walked once, when the definition loads: each node becomes a
closure ``(scope, frame) -> value`` that works directly on the values stored in
cases (None, bool, int, float, str, list, dict, aware datetime, timedelta), and
names are read from the scope only when (and if) the expression reaches them.
There is no ``eval``, ``exec`` or ``compile`` of Python source anywhere.

Semantics are cel-python's (with the project's ``==`` on null), which the
differential tests in tests/test_expr_compiler.py hold this module to. Where
cel-python lets Python leak through, we follow the CEL specification instead;
each such place says so in a comment starting "Unlike cel-python".

Errors are raised as :class:`ExprError`. ``&&``, ``||``, ``all`` and ``exists``
catch them to give CEL's commutative logic (``false && error`` is false).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from celpy import celtypes as ct
from lark import Token, Tree

from .checker import bare_ident
from .library import _CONVERSIONS, _METHODS, _call, _search, regex, size
from .nodes import (
    _C,
    _MACRO_BUILDERS,
    _both,
    _comparison,
    _constant,
    _either,
    _equality,
    _failing,
    _membership,
)
from .operators import (
    _EMPTY,
    _SCALARS,
    MACROS,
    ExprError,
    Frame,
    Node,
    Scope,
    Uint,
    _int64,
    _kind,
    _no_overload,
    _out,
    _uint64,
    add,
    divide,
    logical_not,
    modulo,
    multiply,
    negate,
    plain,
    subtract,
)

# -- the compiler ---------------------------------------------------------------------------------

class _Compiler:
    """Walks a tree the checker accepted; its methods mirror the checker's."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.functions = {name: _call(name, fn) for name, fn in functions.items()}
        self.bound: list[str] = []  # macro variables, innermost last; index = frame slot
        self.slots = 0

    def visit(self, node: Tree[Any] | Token) -> _C:
        if isinstance(node, Token):  # the checker refuses these; never reached
            raise ValueError(f"unexpected token {node!r}")
        method: Callable[[Tree[Any]], _C] | None = getattr(self, f"_{node.data}", None)
        if method is None:
            raise ValueError(f"'{node.data}' cannot be compiled")
        return method(node)

    def fold(self, fn: Node, *parts: _C) -> _C:
        """Computes a node whose parts are all constants once, now. If that fails,
        the closure stays: the error belongs to evaluation (``false && 1/0`` is false)."""
        if all(p.const for p in parts):
            try:
                return _constant(fn(_EMPTY, None))
            except ExprError:
                pass
        return _C(fn)

    def apply(self, op: Callable[..., Any], *parts: _C) -> _C:
        if len(parts) == 1:
            a = parts[0].fn

            def unary(s: Scope, f: Frame) -> Any:
                return op(a(s, f))
            return self.fold(unary, *parts)
        if len(parts) == 2:
            a, b = parts[0].fn, parts[1].fn

            def binary(s: Scope, f: Frame) -> Any:
                return op(a(s, f), b(s, f))
            return self.fold(binary, *parts)
        fns = [p.fn for p in parts]

        def nary(s: Scope, f: Frame) -> Any:
            return op(*[fn(s, f) for fn in fns])
        return self.fold(nary, *parts)

    def _args(self, node: Tree[Any] | None) -> list[Tree[Any]]:
        return list(node.children) if node is not None else []

    def _single(self, node: Tree[Any]) -> _C:
        return self.visit(node.children[0])

    _member = _primary = _paren_expr = _single

    # -- operators ----------------------------------------------------------------------
    def _expr(self, node: Tree[Any]) -> _C:
        if len(node.children) == 1 or node.children[1] is None:
            return self.visit(node.children[0])
        cond, then, other = (self.visit(c) for c in node.children)
        c, a, b = cond.fn, then.fn, other.fn

        def choose(s: Scope, f: Frame) -> Any:
            test = c(s, f)
            if test is True:
                return a(s, f)
            if test is False:
                return b(s, f)
            raise _no_overload("? :", test)
        return self.fold(choose, cond, then, other)

    def _conditionalor(self, node: Tree[Any]) -> _C:
        if len(node.children) == 1 or node.children[0] is None:
            return self.visit(node.children[-1])
        left, right = (self.visit(c) for c in node.children)
        return self.fold(_either(left.fn, right.fn), left, right)

    def _conditionaland(self, node: Tree[Any]) -> _C:
        if len(node.children) == 1 or node.children[0] is None:
            return self.visit(node.children[-1])
        left, right = (self.visit(c) for c in node.children)
        return self.fold(_both(left.fn, right.fn), left, right)

    def _binary(self, node: Tree[Any]) -> _C:
        if len(node.children) == 1 or node.children[0] is None:
            return self.visit(node.children[-1])
        op_tree, right_tree = node.children
        left, right = self.visit(op_tree.children[0]), self.visit(right_tree)
        op = op_tree.data
        if op in ("relation_eq", "relation_ne"):
            return self.fold(_equality(left, right, inverted=op == "relation_ne"), left, right)
        if op == "relation_in":
            return self.fold(_membership(left, right), left, right)
        if op in _RELATIONS:
            return self.fold(_comparison(_RELATIONS[op], left, right), left, right)
        return self.apply(_ARITHMETIC[op], left, right)

    _relation = _addition = _multiplication = _binary

    def _unary(self, node: Tree[Any]) -> _C:
        if len(node.children) == 1:
            return self.visit(node.children[0])
        op, operand = node.children
        return self.apply(logical_not if op.data == "unary_not" else negate, self.visit(operand))

    # -- members and calls ----------------------------------------------------------------
    def _member_dot(self, node: Tree[Any]) -> _C:
        target, name = node.children
        return self.apply(_field(str(name)), self.visit(target))

    def _member_index(self, node: Tree[Any]) -> _C:
        target, index = node.children
        return self.apply(_index, self.visit(target), self.visit(index))

    def _member_dot_arg(self, node: Tree[Any]) -> _C:
        target, name, *rest = node.children
        method = str(name)
        args = self._args(rest[0] if rest else None)
        if method in MACROS:
            return self._macro(method, self.visit(target), args)
        parts = [self.visit(target), *(self.visit(a) for a in args)]
        if method == "size" and not args:
            return self.apply(size, *parts)
        if method == "matches" and len(parts) == 2 and type(parts[1].value) is str:
            return self._matches_constant(parts[0], parts[1].value)
        return self.apply(_METHODS[method], *parts)

    def _matches_constant(self, text: _C, pattern: str) -> _C:
        # The usual case: compile the pattern now (an invalid one fails when evaluated).
        try:
            search = regex(pattern).search
        except ExprError as exc:
            return _C(_failing(str(exc)))
        get = text.fn

        def match(s: Scope, f: Frame) -> bool:
            value = get(s, f)
            if type(value) is str:
                return _search(search, value)
            raise _no_overload("matches", value, pattern)
        return self.fold(match, text)

    def _macro(self, method: str, target: _C, args: list[Tree[Any]]) -> _C:
        var = bare_ident(args[0])
        if var is None:  # the checker refuses these; never reached
            raise ValueError("a macro variable must be a name")
        slot = len(self.bound)
        self.bound.append(var)
        self.slots = max(self.slots, slot + 1)
        try:
            body = self.visit(args[1]).fn
        finally:
            self.bound.pop()
        # Never folded: the frame the body reads does not exist at compile time.
        return _C(_MACRO_BUILDERS[method](target.fn, body, slot))

    def _ident(self, node: Tree[Any]) -> _C:
        name = str(node.children[0])
        if name in self.bound:
            slot = len(self.bound) - 1 - self.bound[::-1].index(name)  # the innermost
            return _C(_variable(slot))
        return _C(_lookup(name))

    _dot_ident = _ident

    def _ident_arg(self, node: Tree[Any]) -> _C:
        tok, *rest = node.children
        name = str(tok)
        parts = [self.visit(a) for a in self._args(rest[0] if rest else None)]
        if name == "size":
            return self.apply(size, *parts)
        if name in _CONVERSIONS:
            return self.apply(_CONVERSIONS[name], *parts)
        function = self.functions[name]
        fns = [p.fn for p in parts]
        if len(fns) == 1:
            only = fns[0]

            def call1(s: Scope, f: Frame) -> Any:
                return function(only(s, f))
            return _C(call1)  # never folded: a custom function need not be pure

        def call(s: Scope, f: Frame) -> Any:
            return function(*[fn(s, f) for fn in fns])
        return _C(call)

    # Unlike cel-python, which looks '.name(...)' up as a variable: a call, as the checker
    # (and CEL) reads it.
    _dot_ident_arg = _ident_arg

    def _list_lit(self, node: Tree[Any]) -> _C:
        parts = [self.visit(c) for c in self._args(node.children[0] if node.children else None)]
        return self.apply(lambda *items: list(items), *parts) if parts else _constant([])

    def _map_lit(self, node: Tree[Any]) -> _C:
        parts = [self.visit(c) for c in self._args(node.children[0] if node.children else None)]
        return self.apply(_make_map, *parts) if parts else _constant({})

    def _literal(self, node: Tree[Any]) -> _C:
        tok = node.children[0]
        assert isinstance(tok, Token)
        try:
            return _constant(_LITERALS[tok.type](tok))
        except (ValueError, ExprError) as exc:  # '9223372036854775808' fails when evaluated
            return _C(_failing(f"bad literal {tok.value}: {exc}"))


# cel-python's escapes, but its '.' does not take a line break, so it drops the line
# breaks of a multi-line string: unlike cel-python, they are kept here.
_ESCAPE: Final = re.compile(
    r"""\\[abfnrtv"'\\]|\\\d{3}|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|.""",
    re.DOTALL)
_SIMPLE: Final = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                  "v": "\v", '"': '"', "'": "'", "\\": "\\"}


def _quoted(text: str) -> tuple[bool, str]:
    """Whether a string literal is raw, and what is between its quotes."""
    raw = text[:1] in ("r", "R")
    text = text[1:] if raw else text
    inner = text[3:-3] if text[:3] in ('"""', "'''") else text[1:-1]
    return raw, inner


def _escapes(inner: str) -> Iterable[str | int]:
    # Each character, or the code point (or byte) an escape stands for.
    for found in _ESCAPE.finditer(inner):
        piece = found.group()
        if len(piece) == 1:
            yield piece
        elif piece[1] in "xuU":
            yield int(piece[2:], 16)
        elif len(piece) == 4:  # octal; an 8 or a 9 fails (a literal error), as in cel-python
            yield int(piece[1:], 8)
        else:
            yield _SIMPLE[piece[1]]


def _string_literal(token: Token) -> str:
    raw, inner = _quoted(token.value)
    if raw:
        return inner
    return "".join(p if isinstance(p, str) else chr(p) for p in _escapes(inner))


def _bytes_literal(token: Token) -> bytes:
    raw, inner = _quoted(token.value[1:])
    if raw:
        return bytes(ord(c) for c in inner)  # as cel-python: a character a byte
    return bytes(b for p in _escapes(inner)
                 for b in (p.encode() if isinstance(p, str) else (p,)))


_LITERALS: Final[dict[str, Callable[[Token], Any]]] = {
    "INT_LIT": lambda t: _int64(int(ct.IntType(t.value))),
    "UINT_LIT": lambda t: _uint64(int(ct.UintType(t.value[:-1]))),
    "FLOAT_LIT": lambda t: float(t.value),
    "STRING_LIT": _string_literal,
    "MLSTRING_LIT": _string_literal,
    "BYTES_LIT": _bytes_literal,
    "BOOL_LIT": lambda t: t.value == "true",
    "NULL_LIT": lambda t: None,
}
_RELATIONS: Final = {
    "relation_lt": "<", "relation_le": "<=", "relation_gt": ">", "relation_ge": ">=",
}
_ARITHMETIC: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "addition_add": add, "addition_sub": subtract, "multiplication_mul": multiply,
    "multiplication_div": divide, "multiplication_mod": modulo,
}


def _make_map(*flat: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in zip(flat[0::2], flat[1::2], strict=True):
        try:
            if key in out:
                raise ExprError(f"duplicate key {key!r} in a map")
        except TypeError:  # a list or a map as a key
            raise ExprError(f"a {_kind(key)} cannot be a map key") from None
        out[key] = value
    return out


def _field(name: str) -> Callable[[Any], Any]:
    def get(value: Any) -> Any:
        if type(value) is dict:
            try:
                return value[name]
            except KeyError:
                raise ExprError(f"no member '{name}'") from None
        raise ExprError(f"a {_kind(value)} has no member '{name}'")
    return get


def _index(value: Any, key: Any) -> Any:
    t = type(value)
    if t is list:
        if type(key) is int or type(key) is Uint:
            # Unlike cel-python, where Python's tags[-1] is the last one: out of range.
            if 0 <= key < len(value):
                return value[key]
            raise ExprError(f"index {key} out of range (size {len(value)})")
    elif t is dict:
        kt = type(key)
        if kt is str or kt is int or kt is bool or kt is Uint:
            try:
                return value[key]
            except KeyError:
                raise ExprError(f"no key {key!r}") from None
    raise _no_overload("[]", value, key)


def _lookup(name: str) -> Node:
    def lookup(s: Scope, f: Frame) -> Any:
        try:
            value = s[name]
        except KeyError:
            raise ExprError(f"no value for '{name}'") from None
        if type(value) in _SCALARS:
            return value
        return plain(value)
    return lookup


def _variable(slot: int) -> Node:
    def variable(s: Scope, f: Frame) -> Any:
        assert f is not None
        return f[slot]
    return variable


# -- entry point ----------------------------------------------------------------------------------

def program(tree: Tree[Any], functions: Mapping[str, Callable[..., Any]]
            ) -> Callable[[Mapping[str, Any]], Any]:
    """The evaluator of a checked tree: names (plain values) -> a plain value, or
    :class:`ExprError`. ``functions`` take and return plain values."""
    compiler = _Compiler(functions)
    root = compiler.visit(tree).fn
    slots = compiler.slots
    if slots:
        def run_with_frame(names: Mapping[str, Any]) -> Any:
            return _out(root(names, [None] * slots))
        return run_with_frame

    def run(names: Mapping[str, Any]) -> Any:
        return _out(root(names, None))
    return run

