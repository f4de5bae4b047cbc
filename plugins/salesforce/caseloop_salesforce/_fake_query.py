"""The fake's SOQL and SOSL: a small, strict subset.

SOQL: ``SELECT f, … FROM Obj [WHERE cond] [ORDER BY f, …] [LIMIT n]`` where a
condition is comparisons (= != < <= > >=) of a field with a quoted string (SOQL
escapes honoured), a dateTime literal or a number, joined by AND / OR and
parentheses. Anything else is refused as Salesforce refuses it: 400
MALFORMED_QUERY. SOSL search strings: terms with the reserved characters
escaped; an unescaped reserved character is refused (stricter than Salesforce,
which may read it as an operator, so an escaping bug shows up in tests).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b",
            "B": "\b", "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\"}
SOSL_RESERVED = frozenset('?&|!{}[]()^~*:\\"\'+-')


class QueryError(Exception):
    """Refused: ``code`` is the Salesforce errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: Callable[[Mapping[str, Any]], bool]
    order: tuple[str, ...]
    limit: int | None
    used: frozenset[str]


def parse_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def _tokens(soql: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(soql):
        match = _TOKEN.match(soql, pos)
        if not match:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{soql[pos:pos + 20]}'")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append((kind, match.group()))
    return out


def _string(literal: str) -> str:
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise QueryError("MALFORMED_QUERY", f"Invalid string literal {literal}. "
                                 f"Illegal character sequence '\\{nxt}' in string literal.")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, soql: str) -> None:
        self.toks = _tokens(soql)
        self.pos = 0
        self.used: set[str] = set()

    def peek(self, word: str | None = None) -> bool:
        if self.pos >= len(self.toks):
            return False
        return word is None or self.toks[self.pos][1].upper() == word

    def take(self, kind: str | None = None, word: str | None = None) -> str:
        if self.pos >= len(self.toks):
            raise QueryError("MALFORMED_QUERY", f"unexpected end of query, expected "
                             f"{word or kind}")
        tkind, text = self.toks[self.pos]
        if (kind and tkind != kind) or (word and text.upper() != word):
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{text}'")
        self.pos += 1
        return text

    def names(self) -> tuple[str, ...]:
        out = [self.take("word")]
        while self.peek(","):
            self.take("punct")
            out.append(self.take("word"))
        return tuple(out)

    def expr(self) -> Callable[[Mapping[str, Any]], bool]:
        terms = [self.term()]
        while self.peek("OR"):
            self.take(word="OR")
            terms.append(self.term())
        return lambda rec: any(t(rec) for t in terms)

    def term(self) -> Callable[[Mapping[str, Any]], bool]:
        factors = [self.factor()]
        while self.peek("AND"):
            self.take(word="AND")
            factors.append(self.factor())
        return lambda rec: all(f(rec) for f in factors)

    def factor(self) -> Callable[[Mapping[str, Any]], bool]:
        if self.peek("("):
            self.take("punct")
            inner = self.expr()
            self.take("punct", ")")
            return inner
        name = self.take("word")
        self.used.add(name)
        op = self.take("op")
        kind, text = self.toks[self.pos] if self.pos < len(self.toks) else ("", "")
        self.pos += 1
        if kind == "string":
            value: Any = _string(text)
        elif kind == "datetime":
            value = parse_datetime(text)
        elif kind == "number":
            value = float(text)
        else:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{text}'")
        return lambda rec: _compare(rec.get(name), op, value, name)


def _compare(have: Any, op: str, want: Any, name: str) -> bool:
    if isinstance(want, dt.datetime):
        have = parse_datetime(have) if have else None
    elif isinstance(want, str) and isinstance(have, str) and not name.endswith("Id"):
        have, want = have.casefold(), want.casefold()  # SOQL text compares ignore case
    if have is None:
        return op == "!="
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    try:
        return ops[op](have, want)
    except TypeError:
        raise QueryError("INVALID_QUERY_FILTER_OPERATOR", f"cannot compare {name}") from None


def parse_soql(soql: str) -> Query:
    p = _Parser(soql)
    p.take("word", "SELECT")
    fields = p.names()
    p.take("word", "FROM")
    sobject = p.take("word")
    where: Callable[[Mapping[str, Any]], bool] = lambda rec: True  # noqa: E731
    if p.peek("WHERE"):
        p.take("word", "WHERE")
        where = p.expr()
    order: tuple[str, ...] = ()
    if p.peek("ORDER"):
        p.take("word", "ORDER")
        p.take("word", "BY")
        order = p.names()
    limit = None
    if p.peek("LIMIT"):
        p.take("word", "LIMIT")
        limit = int(p.take("number"))
    if p.pos != len(p.toks):
        raise QueryError("MALFORMED_QUERY", f"unexpected token: '{p.toks[p.pos][1]}'")
    return Query(fields, sobject, where, order, limit,
                 frozenset(fields) | frozenset(order) | frozenset(p.used))


def run(query: Query, records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = [r for r in records if query.where(r)]
    for name in reversed(query.order):
        rows.sort(key=lambda r, n=name: (r.get(n) is None, str(r.get(n) or "")))  # type: ignore[misc]
    return rows[:query.limit] if query.limit is not None else rows


def sosl_term(q: str) -> str:
    """The search term of a parameterizedSearch ``q``, unescaped; QueryError if a
    reserved character is not escaped."""
    out, i = [], 0
    while i < len(q):
        ch = q[i]
        if ch == "\\" and i + 1 < len(q):
            out.append(q[i + 1])
            i += 2
            continue
        if ch in SOSL_RESERVED:
            raise QueryError("MALFORMED_SEARCH", f"unescaped reserved character '{ch}' at "
                             f"position {i} of the search string")
        out.append(ch)
        i += 1
    term = "".join(out).strip()
    if len(term) < 2:
        raise QueryError("INVALID_SEARCH", "search term must be longer than one character")
    return term
