"""The expression language: CEL, compiled and type-checked once, evaluated many times.

Every condition, guard and computed value in a definition is one of these.
``compile`` parses the text with cel-python, checks names and types against
the fields in scope, compiles the tree into Python closures (compiler.py) and
returns an :class:`Expression` (or the first :class:`Issue`). There is no
Python ``eval`` anywhere: CEL has no loops, no I/O and no side effects, and its
only iteration (``all``, ``map``…) runs over the bounded lists of a case.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import celpy
from celpy import celtypes as ct
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, bool_eq
from lark import Tree
from lark.exceptions import LarkError

from . import compiler
from .checker import _MACROS, Checker, Issue, bare_ident
from .operators import ExprError
from .types import BOOL, T

__all__ = ["Expression", "ExprError", "Issue", "compile", "parse", "FUNCTIONS", "MAX_LENGTH"]

#: Longest expression accepted; longer logic belongs in computed fields.
MAX_LENGTH = 1000
#: Deepest parse tree accepted (about 30 levels of parentheses).
MAX_DEPTH = 400


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | dict | bytes):
        return len(value) > 0
    return True


#: Functions available to every expression, with their result type. All pure; they
#: take and return plain Python values (as stored in cases).
FUNCTIONS: dict[str, tuple[T, Callable[..., Any]]] = {
    "filled": (BOOL, _filled),
}

_ENV = celpy.Environment()


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> Tree[Any]:
    """cel-python's parse tree of ``source``, for tools that read an expression's shape
    rather than run it (the designer's builder turns ``status == 'open'`` into pickers).

    Parsing is the costly step, so trees are cached and shared: never mutate one. Raises
    what cel-python raises for text that does not parse (``CELParseError``, lark's errors,
    ``RecursionError``, ``ValueError``); :func:`compile` reports those as an :class:`Issue`."""
    tree: Tree[Any] = _ENV.compile(source)
    return tree


@dataclass(frozen=True)
class Expression:
    """A compiled, checked expression. Immutable; safe to share across threads."""

    source: str
    type: T
    #: The names the expression reads (fields it depends on).
    names: frozenset[str]
    _run: Callable[[Mapping[str, Any]], Any] = field(repr=False, compare=False)
    # The parse tree and functions, for _reference_evaluate (the differential tests).
    _tree: Tree[Any] = field(repr=False, compare=False)
    _functions: Mapping[str, Callable[..., Any]] = field(repr=False, compare=False)

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The value on ``names`` (plain Python values); raises :class:`ExprError`.

        Only the names the expression reaches are read, when it reaches them."""
        try:
            return self._run(names)
        except ExprError:
            raise
        except Exception as exc:  # a bug in the compiler, not the expression: still an error
            raise ExprError(_describe(exc)) from None

    def test(self, names: Mapping[str, Any]) -> bool:
        """A condition's truth. An error (e.g. comparing an empty field) counts as false,
        as SQL treats NULL: an empty severity is neither high nor low."""
        try:
            return self.evaluate(names) is True
        except ExprError:
            return False


def compile(source: str, names: Mapping[str, T], *, want: str | None = "bool",
            functions: Mapping[str, tuple[T, Callable[..., Any]]] | None = None,
            signatures: Mapping[str, tuple[T, ...]] | None = None) -> Expression | Issue:
    """Parse and check ``source`` against ``names``. ``want="bool"`` for conditions.

    ``functions`` are more functions (name -> result type and callable); ``signatures``
    the argument types of some of them (a plugin's declaration), checked like
    built-ins' (others: only their number, from the callable's signature)."""
    funcs = dict(FUNCTIONS, **(functions or {}))
    signatures = signatures or {}
    if len(source) > MAX_LENGTH:
        return Issue("CL033", f"expression is {len(source)} characters long "
                     f"(at most {MAX_LENGTH})", 1, 1)
    try:
        tree = parse(source)
    except CELParseError as exc:
        line, col = getattr(exc, "line", None) or 1, getattr(exc, "column", None) or 1
        return Issue("CL030", f"cannot parse expression {_near(source, line, col)}", line, col)
    except (LarkError, RecursionError, ValueError) as exc:
        return Issue("CL033" if isinstance(exc, RecursionError) else "CL030",
                     f"cannot parse expression: {type(exc).__name__}", 1, 1)
    if _depth(tree) > MAX_DEPTH:
        return Issue("CL033", "expression is nested too deeply", 1, 1)
    arities = {k: len(signatures[k]) if k in signatures else
               len(inspect.signature(v[1]).parameters) for k, v in funcs.items()}
    typ = Checker(names, {k: v[0] for k, v in funcs.items()}, arities,
                  signatures).check(tree)
    if isinstance(typ, Issue):
        return typ
    if want is not None and typ.kind not in (want, "dyn"):
        if want == "bool":
            return Issue("CL034", f"must give true or false, but gives {typ}", 1, 1)
        return Issue("CL032", f"must give a {want}, but gives {typ}", 1, 1)
    plain = {k: v[1] for k, v in funcs.items()}
    return Expression(source, typ, _idents(tree), compiler.program(tree, plain), tree, plain)


_OPERATORS = ("&&", "||", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "!",
              "?", ":", ",", "(", "[", "{", ".", "in")


def _near(source: str, line: int, col: int) -> str:
    # cel-python's message only repeats the source with a caret; say where instead.
    lines = source.splitlines() or [""]
    rest = lines[min(line, len(lines)) - 1][col - 1:].strip()
    at_end = line >= len(lines) and not rest[len(rest.split()[0]) if rest else 0:].strip()
    if _unclosed(source):
        return "(it ends too early: a closing bracket or quote is missing)"
    if not rest or line > len(lines) or (at_end and rest in _OPERATORS):
        return "(it ends too early: an operand is missing at the end)"
    hint = " (compare with '==', not '=')" if rest.startswith("=") and not rest.startswith("==") \
        else ""
    return f"near '{rest[:24]}'{hint}"


def _unclosed(source: str) -> bool:
    depth, quote = 0, ""
    for ch in source:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    return depth > 0 or bool(quote)


def _depth(tree: Tree[Any]) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in node.children if isinstance(c, Tree))
    return deepest


def _idents(tree: Tree[Any]) -> frozenset[str]:
    """Names read from the scope: identifiers, less the variables macros bind."""
    bound = set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg" and str(node.children[1]) in _MACROS:
            args = node.children[2]
            if isinstance(args, Tree) and args.children:
                name = bare_ident(args.children[0])
                if name:
                    bound.add(name)
    return frozenset(
        str(node.children[0]) for node in tree.iter_subtrees() if node.data == "ident"
    ) - bound


def _describe(exc: Any) -> str:
    args = getattr(exc, "args", ())
    return str(args[0]) if args else type(exc).__name__


# -- the reference: cel-python's interpreter ------------------------------------------------------
#
# What Expression.evaluate did before compiler.py: cel-python walks the tree over CEL
# values. Never used at run time (75-300 µs an evaluation); the differential tests
# compare the compiled closures with it.

def _eq(a: Any, b: Any) -> ct.BoolType:
    # An empty field equals nothing (but null): the same for text and numbers.
    # cel-python alone raises for int == null yet answers for string == null.
    if a is None or b is None:
        return ct.BoolType(a is None and b is None)
    return ct.BoolType(bool_eq(a, b))


def _ne(a: Any, b: Any) -> ct.BoolType:
    return ct.BoolType(not _eq(a, b))


_EQUALITY = {"_==_": _eq, "_!=_": _ne}


def _cel_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """A function over plain values as cel-python calls it: with and for CEL values."""
    def call(*args: Any) -> Any:
        return to_cel(function(*(from_cel(a) for a in args)))
    return call


def _reference_evaluate(expression: Expression, names: Mapping[str, Any], *,
                        overrides: Mapping[str, Callable[..., Any]] | None = None,
                        runner: type[celpy.Runner] = celpy.InterpretedRunner) -> Any:
    """``expression`` on ``names`` by cel-python, with the project's ``==`` on null.

    ``overrides`` replace cel-python functions and operators (``_==_``, ``int``…) and
    ``runner`` its interpreter: the tests use them to state where the compiler differs
    from cel-python on purpose."""
    functions: dict[str, Any] = {
        **_EQUALITY, **{k: _cel_function(f) for k, f in expression._functions.items()},
        **(overrides or {})}
    program = runner(_ENV, expression._tree, functions)
    try:
        activation = {k: to_cel(v) for k, v in names.items()}
        result = program.evaluate(activation)
    except Exception as exc:  # cel-python raises its own and Python errors alike
        raise ExprError(_describe(exc)) from None
    if isinstance(result, CELEvalError):
        raise ExprError(_describe(result))
    return from_cel(result)


def to_cel(value: Any) -> Any:
    """Plain Python (as stored in a case) to CEL values."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ct.BoolType(value)
    if isinstance(value, int):
        return ct.IntType(value)
    if isinstance(value, float | Decimal):
        return ct.DoubleType(float(value))
    if isinstance(value, str):
        return ct.StringType(value)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return ct.TimestampType(aware)
    if isinstance(value, dt.date):
        return ct.TimestampType(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC))
    if isinstance(value, dt.timedelta):
        return ct.DurationType(value)
    if isinstance(value, list | tuple):
        return ct.ListType([to_cel(v) for v in value])
    if isinstance(value, Mapping):
        return ct.MapType({ct.StringType(str(k)): to_cel(v) for k, v in value.items()})
    raise ExprError(f"cannot use a {type(value).__name__} in an expression")


def from_cel(value: Any) -> Any:
    """CEL values back to plain Python."""
    if value is None or isinstance(value, ct.BoolType | bool):
        return None if value is None else bool(value)
    if isinstance(value, ct.TimestampType):
        return dt.datetime.fromtimestamp(value.timestamp(), dt.UTC)
    if isinstance(value, ct.DurationType):
        return dt.timedelta(seconds=value.total_seconds())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, ct.MapType | dict):
        return {str(k): from_cel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_cel(v) for v in value]
    return value

