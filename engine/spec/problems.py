"""Problems found in definition files, and their stable codes.

Every problem the loader or the checker reports has a code (``CL012``) that
never changes meaning, so tools, docs and tests can rely on it. The table
below is the single source: the README's code list is checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..hints import suggest as suggest


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    severity: Severity
    title: str
    hint: str = ""


_E, _W = Severity.ERROR, Severity.WARNING

#: Every problem code, in order. Add new codes at the end of their block;
#: never renumber or reuse one.
CODES: dict[str, Code] = {
    c.code: c
    for c in [
        # The file and its YAML.
        Code("CL001", _E, "file is not readable text", "Save the file as UTF-8 text."),
        Code("CL002", _E, "file too large", "Split the definition or move data out of it."),
        Code("CL003", _E, "file is empty", "Start the file with 'form: NAME' or 'workflow: NAME'."),
        Code("CL004", _E, "YAML syntax error", "Check indentation and quoting near the position."),
        Code("CL005", _E, "duplicate key", "Each key may appear once per mapping; remove one."),
        Code(
            "CL006",
            _E,
            "YAML feature not allowed",
            "Anchors, aliases, tags and multiple documents are not supported; "
            "use 'include:' to reuse fields.",
        ),
        Code("CL007", _E, "nested too deeply", "Definitions need only a few levels of nesting."),
        # The shape of the document (the JSON Schema).
        Code(
            "CL010",
            _E,
            "unknown kind of definition",
            "A definition starts with 'form:', 'workflow:' or 'calendar:'.",
        ),
        Code("CL011", _E, "unknown key"),
        Code("CL012", _E, "missing required key"),
        Code("CL013", _E, "wrong type"),
        Code("CL014", _E, "invalid value"),
        Code("CL015", _E, "contradictory settings"),
        Code("CL016", _E, "key does not apply here"),
        # Names and references.
        Code("CL020", _E, "duplicate name"),
        Code("CL021", _E, "unknown form"),
        Code("CL022", _E, "unknown field"),
        Code("CL023", _E, "unknown state"),
        Code("CL024", _E, "unknown role", "Declare every role in the workflow's 'roles:' list."),
        Code("CL025", _E, "unknown workflow"),
        Code("CL026", _E, "unknown trigger"),
        Code("CL027", _E, "unknown calendar"),
        Code("CL028", _E, "include cycle", "Forms may include each other only without a cycle."),
        Code(
            "CL029",
            _W,
            "name does not match file name",
            "Name the file after the definition so 'caseloop export' writes it back in place.",
        ),
        # Expressions.
        Code("CL030", _E, "expression syntax error"),
        Code("CL031", _E, "unknown name in expression"),
        Code("CL032", _E, "type error in expression"),
        Code("CL033", _E, "expression too long or too deep", "Split it into computed fields."),
        Code("CL034", _E, "condition is not true/false"),
        # The workflow as a graph.
        Code("CL040", _E, "unreachable state", "Add a transition into it, or remove it."),
        Code("CL041", _E, "dead end", "Add a transition out of it, or mark it 'final: true'."),
        Code(
            "CL042",
            _E,
            "required field is hidden",
            "Make the field editable in the source state, or drop it from 'requires'.",
        ),
        Code("CL043", _E, "duplicate trigger from one state"),
        Code("CL044", _E, "final state has a way out", "Remove 'final: true' or the transition."),
        Code("CL045", _E, "no final state", "Mark at least one state 'final: true'."),
        Code(
            "CL046",
            _W,
            "nobody may fire this transition",
            "Transitions are default-deny: list the roles in 'allow:'.",
        ),
        Code(
            "CL047",
            _E,
            "the system may not fire this transition",
            "Timers and linked cases fire as role 'system': add 'system' to 'allow:'.",
        ),
        Code("CL048", _E, "mapped value does not fit the target field"),
        Code("CL049", _E, "priority not among the priority field's choices"),
        # Labels.
        Code("CL050", _W, "missing translation", "Give every label both 'en' and 'zh'."),
    ]
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem at one place in one file. ``line`` and ``col`` are 1-based."""

    code: str
    message: str
    path: str
    line: int = 1
    col: int = 1
    hint: str = ""

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        text = f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"
        if self.severity is Severity.WARNING:
            text = f"{self.path}:{self.line}:{self.col}: {self.code} warning: {self.message}"
        hint = self.hint or CODES[self.code].hint
        return f"{text}\n    hint: {hint}" if hint else text

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "hint": self.hint or CODES[self.code].hint,
        }


class DefinitionError(Exception):
    """Raised when definitions cannot be used; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=sort_key)
        errors = [p for p in self.problems if p.is_error]
        first = errors[0].format() if errors else "no errors"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}")


def sort_key(p: Problem) -> tuple[str, int, int, str]:
    return (p.path, p.line, p.col, p.code)
