"""Helpers shared by the form, workflow and calendar builders.

A ``Builder`` wraps one source file: it turns its plain data into values
(texts, durations, expressions) and records every problem at the right
position in that file instead of raising, so one run reports them all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from ..expr import Expression, compile
from ..expr.types import T
from .extensions import NONE, Extensions
from .model import Text
from .problems import Problem
from .schema import LANGS
from .source import PathT, Source

_DURATION_PART = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB)\s*$")


def content_hash(*parts: str) -> str:
    """The version of a definition: a short hash of its text (and what it uses)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def duration(text: str) -> dt.timedelta:
    """'1d 4h' -> timedelta (the schema has checked the pattern)."""
    total = dt.timedelta()
    for amount, unit in _DURATION_PART.findall(text):
        total += dt.timedelta(**{_UNITS[unit]: int(amount)})
    return total


def size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        return 0
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"B": 1, "KB": 1024, "MB": 1024 * 1024}[unit]


class Builder:
    """Problems and conversions for one source file."""

    def __init__(self, src: Source, problems: list[Problem],
                 extensions: Extensions = NONE) -> None:
        self.src = src
        self.problems = problems
        self.extensions = extensions
        # The plugins' functions, in the form compile() takes (built once per file).
        self._functions = extensions.expression_functions()
        self._signatures = extensions.signatures()
        self.errors_before = sum(p.is_error for p in problems)

    @property
    def failed(self) -> bool:
        """Whether this builder added any error."""
        return sum(p.is_error for p in self.problems) > self.errors_before

    def report(self, code: str, message: str, path: PathT = (), *, key: bool = False,
               hint: str = "") -> None:
        self.problems.append(self.src.problem(code, message, path, key=key, hint=hint))

    def name_matches_file(self, name: str, path: PathT) -> None:
        stem = PurePath(self.src.path).stem
        if stem != name:
            self.report("CL029", f"'{name}' is defined in a file named '{stem}'", path)

    def text(self, value: Any, path: PathT, *, translate: bool = True) -> Text:
        if value is None:
            return Text()
        if isinstance(value, str):
            # A plain string serves both languages (codes, brand names, …).
            return Text(en=value, zh=value)
        missing = [lang for lang in LANGS if not value.get(lang)]
        if missing and translate:
            self.report("CL050", f"no '{missing[0]}' translation", path)
        return Text(en=value.get("en", ""), zh=value.get("zh", ""))

    def maybe_text(self, data: Mapping[str, Any], key: str, path: PathT) -> Text | None:
        return self.text(data[key], (*path, key)) if key in data else None

    def expression(self, source: str, names: Mapping[str, T], path: PathT, *,
                   want: str | None = "bool") -> Expression | None:
        result = compile(source, names, want=want, functions=self._functions,
                         signatures=self._signatures)
        if isinstance(result, Expression):
            return result
        line, col = self.src.expression_position(path, result.line, result.col)
        self.problems.append(Problem(result.code, result.message, self.src.path, line, col))
        return None
