"""The expression language: compile (parse + name and type check) and evaluate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import caseloop.expr
from caseloop.expr import MAX_LENGTH, ExprError, Expression, Issue, compile
from caseloop.expr.types import BOOL, DOUBLE, INT, STRING, TIMESTAMP, list_of, record

ROW = record({"status": STRING, "hours": INT})
NAMES = {
    "severity": INT,
    "score": INT,
    "amount": DOUBLE,
    "subject": STRING,
    "vip": BOOL,
    "due": TIMESTAMP,
    "opened": TIMESTAMP,
    "tags": list_of(STRING),
    "rows": list_of(ROW),
    "now": TIMESTAMP,
}


def ok(source: str, *, want: str | None = "bool", names: dict | None = None) -> Expression:
    result = compile(source, NAMES if names is None else names, want=want)
    assert isinstance(result, Expression), result
    return result


def issue(source: str, *, want: str | None = "bool") -> Issue:
    result = compile(source, NAMES, want=want)
    assert isinstance(result, Issue), f"{source!r} compiled to {result}"
    return result


# -- valid expressions and their types ------------------------------------------------


@pytest.mark.parametrize("source, typ", [
    ("severity > 3", "bool"),
    ("severity >= 3 && score <= 5 || vip", "bool"),
    ("!vip", "bool"),
    ("severity + 1", "int"),
    ("-severity * 2 % 3", "int"),
    ("amount * 2.0", "double"),
    ("double(severity) / 2.0", "double"),
    ("int(amount) + severity", "int"),
    ("subject + '!'", "string"),
    ("string(severity)", "string"),
    ("vip ? 'high' : 'low'", "string"),
    ("tags", "list(string)"),
    ("tags + ['x']", "list(string)"),
    ("size(tags)", "int"),
    ("subject.size()", "int"),
    ("'urgent' in tags", "bool"),
    ("subject.startsWith('Re:') || subject.contains('refund')", "bool"),
    ("subject.matches('^[A-Z]')", "bool"),
    ("due", "timestamp"),
    ("due - opened", "duration"),
    ("due + duration('24h')", "timestamp"),
    ("now - opened > duration('4h')", "bool"),
    ("due > timestamp('2024-01-01T00:00:00Z')", "bool"),
    ("due.getFullYear() == 2024 && due.getDayOfWeek('Asia/Shanghai') < 5", "bool"),
    ("rows.map(r, r.hours)", "list(int)"),
    ("rows.filter(r, r.status == 'open')", "list(row)"),
    ("rows[0].status", "string"),
    ("{'a': 1}['a']", "int"),
    ("filled(subject)", "bool"),
])
def test_types_of_valid_expressions(source: str, typ: str) -> None:
    assert str(ok(source, want=None).type) == typ


def test_a_condition_must_compile_with_want_bool() -> None:
    expr = ok("severity > 3 && vip")
    assert expr.type == BOOL
    assert expr.source == "severity > 3 && vip"


def test_want_string_for_a_value() -> None:
    assert ok("subject + '!'", want="string").type == STRING
    problem = issue("severity + 1", want="string")
    assert problem.code == "CL032"


def test_custom_functions() -> None:
    result = compile("twice(severity) > 4", NAMES,
                     functions={"twice": (INT, lambda x: x * 2)})
    assert isinstance(result, Expression)
    assert result.evaluate({"severity": 3}) is True


# -- CL031 unknown names ------------------------------------------------------------------


@pytest.mark.parametrize("source, col, fragment", [
    ("severty > 3", 1, "unknown name 'severty' (did you mean 'severity'?)"),
    ("score > 1 && sevrity > 2", 14, "did you mean 'severity'?"),
    ("subject.startswith('Re')", 9, "unknown method 'startswith' (did you mean 'startsWith'?)"),
    ("lenght(subject) > 3", 1, "unknown function 'lenght'"),
    ("rows.all(r, true) && r.hours > 1", 22, "unknown name 'r'"),
    ("zzz > 1", 1, "(known: amount, due, now, opened, rows, score, severity, subject, tags, vip)"),
])
def test_unknown_names_are_cl031(source: str, col: int, fragment: str) -> None:
    problem = issue(source)
    assert (problem.code, problem.line, problem.col) == ("CL031", 1, col)
    assert fragment in problem.message


def test_unknown_name_on_a_later_line() -> None:
    problem = issue("severity > 3 &&\n  sevrity < 5")
    assert (problem.code, problem.line, problem.col) == ("CL031", 2, 3)


# -- CL032 type errors ------------------------------------------------------------------


@pytest.mark.parametrize("source, col, fragment", [
    ("severity > '3'", 1, "cannot compare int with string using '>'"),
    ("score < 2.5", 1, "int and double do not mix"),
    ("severity == 3.0", 1, "cannot compare int with double using '=='"),
    ("subject + 1 == 'x'", 1, "cannot apply '+' to string and int (convert with string(x))"),
    ("amount + severity > 1.0", 1, "both sides must be int or both double"),
    ("subject == null", 1, "use filled(x)"),
    ("null != severity", 1, "use filled(x)"),
    ("!severity", 2, "the value after '!' must be bool, not int"),
    ("vip && severity", 8, "each side of '&&' must be bool, not int"),
    ("severity ? 1 : 2", 1, "the condition before '?' must be bool"),
    ("vip ? 1 : 2.0", 7, "both sides of '? :' must have one type"),
    ("'x' in subject", 8, "'in' needs a list or a map"),
    ("severity in tags", 1, "cannot look for int in list(string)"),
    ("subject.hours > 1", 9, "string has no member 'hours'"),
    ("due.contains('x')", 5, "contains() works on text, not timestamp"),
    ("[1, 'a'] == []", 5, "a list mixes int and string"),
])
def test_type_errors_are_cl032(source: str, col: int, fragment: str) -> None:
    problem = issue(source)
    assert (problem.code, problem.line, problem.col) == ("CL032", 1, col)
    assert fragment in problem.message


# -- CL030 syntax errors ----------------------------------------------------------------


@pytest.mark.parametrize("source, line, col", [
    ("severity = 3", 1, 10),
    ("severity > 3 &&", 1, 14),
    ("severity +* 2", 1, 11),
    ("subject == 'open", 1, 12),
    ("severity > 3 &&\n  = 2", 2, 3),
    ("a..b", 1, 3),
    ("/* no block comments */ vip", 1, 1),
])
def test_syntax_errors_are_cl030_with_position(source: str, line: int, col: int) -> None:
    problem = issue(source)
    assert (problem.code, problem.line, problem.col) == ("CL030", line, col)
    assert problem.message.startswith("cannot parse expression")


def test_single_equals_gets_a_hint() -> None:
    assert "compare with '==', not '='" in issue("severity = 3").message


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expression_is_cl030(source: str) -> None:
    problem = issue(source)
    assert problem.code == "CL030"
    assert "ends too early" in problem.message


@pytest.mark.parametrize("source", ["severity >", "(severity > 3", "filled(subject"])
def test_an_expression_cut_short_says_so(source: str) -> None:
    assert "ends too early" in issue(source).message


# -- CL033 too long or too deep ------------------------------------------------------------


def test_too_long_is_cl033() -> None:
    source = " || ".join(["vip"] * 300)
    assert len(source) > MAX_LENGTH
    problem = issue(source)
    assert (problem.code, problem.line, problem.col) == ("CL033", 1, 1)
    assert f"at most {MAX_LENGTH}" in problem.message


def test_exactly_max_length_is_accepted() -> None:
    source = "vip" + " " * (MAX_LENGTH - 3)
    assert len(source) == MAX_LENGTH
    ok(source)


@pytest.mark.parametrize("depth", [40, 100, 300])
def test_deep_parentheses_are_cl033(depth: int) -> None:
    problem = issue("(" * depth + "vip" + ")" * depth)
    assert problem.code == "CL033"
    assert "nested too deeply" in problem.message


def test_a_few_parentheses_are_fine() -> None:
    ok("(" * 20 + "vip" + ")" * 20)


@pytest.mark.parametrize("source", [
    "(" * 500 + "vip" + ")" * 500,
    "!" * 500 + "vip",
    "-" * 500 + "severity > 1",
    "[" * 500 + "]" * 500 + " == []",
    " + ".join(["severity"] * 500) + " > 1",
    "rows" + ".x" * 500 + " > 1",
])
def test_pathological_nesting_never_raises(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Past the length limit (lifted here) the depth guard must hold: no RecursionError."""
    assert isinstance(compile(source, NAMES), Issue)  # too long, at least
    monkeypatch.setattr(caseloop.expr, "MAX_LENGTH", 10**6)
    problem = compile(source, NAMES)
    assert isinstance(problem, Issue)
    assert problem.code in ("CL033", "CL031", "CL032")


# -- CL034 conditions that are not true/false ------------------------------------------------


@pytest.mark.parametrize("source, typ", [
    ("severity + 1", "int"),
    ("subject", "string"),
    ("tags", "list(string)"),
    ("due", "timestamp"),
    ("rows.map(r, r.hours)", "list(int)"),
])
def test_non_bool_conditions_are_cl034(source: str, typ: str) -> None:
    problem = issue(source)
    assert (problem.code, problem.line, problem.col) == ("CL034", 1, 1)
    assert f"gives {typ}" in problem.message
    ok(source, want=None)  # fine as a value


# -- macros over group rows -------------------------------------------------------------------

ROWS = [{"status": "done", "hours": 2}, {"status": "open", "hours": 5}]


@pytest.mark.parametrize("source, expected", [
    ("rows.all(r, r.status == 'done')", False),
    ("rows.exists(r, r.status == 'done')", True),
    ("rows.exists_one(r, r.hours > 3)", True),
    ("rows.all(r, r.hours > 1)", True),
    ("rows.filter(r, r.status == 'open').size() == 1", True),
    ("rows.map(r, r.hours).all(h, h < 10)", True),
    ("size(rows) == 2 && rows[1].hours == 5", True),
])
def test_macros_over_rows(source: str, expected: bool) -> None:
    expr = ok(source)
    assert expr.evaluate({"rows": ROWS}) is expected
    assert expr.test({"rows": ROWS}) is expected


def test_all_over_no_rows_is_true() -> None:
    assert ok("rows.all(r, r.status == 'done')").evaluate({"rows": []}) is True


def test_unknown_member_of_a_row_is_cl031_with_suggestion() -> None:
    problem = issue("rows.all(r, r.stauts == 'done')")
    assert (problem.code, problem.line, problem.col) == ("CL031", 1, 15)
    assert "unknown member 'stauts' (did you mean 'status'?)" in problem.message


@pytest.mark.parametrize("source, fragment", [
    ("rows.all(r, r.hours)", "all() needs a condition, not int"),
    ("vip.all(x, true)", "all() works on lists, not bool"),
    ("rows.all(r.status, true)", "the first argument of all() must be a name"),
    ("rows.exists(r)", "exists() takes a name and an expression"),
])
def test_misused_macros_are_cl032(source: str, fragment: str) -> None:
    problem = issue(source)
    assert problem.code == "CL032"
    assert fragment in problem.message


# -- filled() ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (None, False), ("", False), ([], False), ({}, False),
    ("x", True), (["a"], True), (0, True), (False, True), (dt.date(2024, 1, 1), True),
])
def test_filled(value: object, expected: bool) -> None:
    expr = ok("filled(subject)", names={"subject": STRING})
    assert expr.evaluate({"subject": value}) is expected


def test_filled_guards_a_comparison() -> None:
    expr = ok("filled(severity) && severity > 3")
    assert expr.evaluate({"severity": None}) is False
    assert expr.evaluate({"severity": 4}) is True
    assert ok("!filled(severity) || severity > 3").evaluate({"severity": None}) is True


# -- evaluation on plain Python values ----------------------------------------------------------


def test_evaluates_numbers_and_text_to_plain_python() -> None:
    values = {"severity": 3, "amount": 2.5, "subject": "Late", "vip": True}
    for source, expected in [("severity + 1", 4), ("amount * 2.0", 5.0),
                             ("subject + '!'", "Late!"), ("vip", True),
                             ("vip ? 'high' : 'low'", "high")]:
        result = ok(source, want=None).evaluate(values)
        assert result == expected and type(result) is type(expected), source


def test_evaluates_dates_and_datetimes() -> None:
    values = {
        "due": dt.date(2024, 5, 31),  # a date is midnight UTC
        "opened": dt.datetime(2024, 5, 30, 12, 0),  # naive is UTC
        "now": dt.datetime(2024, 5, 31, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    }
    assert ok("due < timestamp('2024-06-01T00:00:00Z')").evaluate(values) is True
    assert ok("due == timestamp('2024-05-31T00:00:00Z')").evaluate(values) is True
    assert ok("due - opened", want=None).evaluate(values) == dt.timedelta(hours=12)
    assert ok("now - due", want=None).evaluate(values) == dt.timedelta(0)
    assert ok("opened.getHours() == 12 && due.getDate() == 31").evaluate(values) is True
    result = ok("due + duration('36h')", want=None).evaluate(values)
    assert result == dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert type(result) is dt.datetime


def test_evaluates_lists_and_dicts() -> None:
    names = {"tags": list_of(STRING), "rows": list_of(ROW)}
    assert ok("'vip' in tags", names=names).evaluate({"tags": ["vip", "new"]}) is True
    assert ok("tags + ['x']", want=None, names=names).evaluate({"tags": ["a"]}) == ["a", "x"]
    mapped = ok("rows.map(r, r.hours)", want=None, names=names).evaluate({"rows": ROWS})
    assert mapped == [2, 5] and all(type(h) is int for h in mapped)
    picked = ok("rows.filter(r, r.hours > 3)", want=None, names=names).evaluate({"rows": ROWS})
    assert picked == [{"status": "open", "hours": 5}]
    assert type(picked[0]) is dict


@pytest.mark.parametrize("source, values", [
    ("severity / 0 > 1", {"severity": 1}),
    ("tags[5] == 'x'", {"tags": ["a"]}),
    ("severity + 9223372036854775807 > 1", {"severity": 1}),
    ("filled(subject) && subject.matches('(')", {"subject": "x"}),
])
def test_evaluation_errors_are_expr_error(source: str, values: dict) -> None:
    expr = ok(source)
    with pytest.raises(ExprError):
        expr.evaluate(values)
    assert expr.test(values) is False


def test_python_objects_cannot_be_passed_in() -> None:
    called = []
    expr = ok("vip")
    for value in (object(), lambda: called.append(1), {1, 2}):
        with pytest.raises(ExprError):
            expr.evaluate({"vip": value})
    assert called == []


# -- test(): an ordering comparison with an empty field is false ---------------------------


EMPTY = dict.fromkeys(NAMES)


@pytest.mark.parametrize("source", [
    "severity > 3",
    "severity < 3",
    "severity == 3",
    "!(severity > 3)",
    "amount >= 1.0",
    "subject == 'x'",
    "due > now",
    "'x' in tags",
    "vip",
    "!vip",
    "rows.all(r, r.hours > 1)",
])
def test_test_is_false_when_a_compared_field_is_empty(source: str) -> None:
    assert ok(source).test(EMPTY) is False


@pytest.mark.parametrize("source, expected", [
    ("subject != 'x'", True),
    ("severity != 3", True),
    ("subject == 'x'", False),
    ("severity == 3", False),
])
def test_an_empty_field_equals_nothing(source: str, expected: bool) -> None:
    """'==' and '!=' treat an empty field alike for text and numbers (README, Expressions)."""
    assert ok(source).test(EMPTY) is expected


def test_test_is_true_only_for_true() -> None:
    assert ok("severity > 3").test({"severity": 4}) is True
    assert ok("severity > 3").test({"severity": 3}) is False
    assert ok("vip || severity > 3").test({"vip": True, "severity": None}) is True


# -- Expression.names ---------------------------------------------------------------------------


@pytest.mark.parametrize("source, names", [
    ("severity > 3", {"severity"}),
    ("filled(subject) && severity > 3 || vip", {"subject", "severity", "vip"}),
    ("now - opened > duration('1h')", {"now", "opened"}),
    ("true", set()),
])
def test_names_are_the_fields_read(source: str, names: set[str]) -> None:
    assert ok(source).names == frozenset(names)


def test_names_include_the_list_a_macro_reads() -> None:
    assert "rows" in ok("rows.all(r, r.status == 'done')").names


def test_names_exclude_macro_variables() -> None:
    assert ok("rows.all(r, r.status == 'done')").names == frozenset({"rows"})


# -- no Python anywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "__import__('os').system('touch {marker}')",
    "eval('1 + 1') == 2",
    "exec('import os')",
    "open('{marker}', 'w')",
    "getattr(subject, '__class__')",
])
def test_python_builtins_are_unknown_functions(source: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    problem = issue(source.format(marker=marker))
    assert problem.code == "CL031"
    assert "unknown function" in problem.message
    assert not marker.exists()


@pytest.mark.parametrize("source", [
    "subject.__class__ == 'str'",
    "subject.__len__() > 1",
    "tags.__class__.__mro__ == []",
])
def test_dunder_members_are_refused(source: str) -> None:
    problem = issue(source)
    assert problem.code in ("CL031", "CL032")


def test_a_string_holding_python_is_just_a_string(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = f"__import__('os').system('touch {marker}')"
    expr = ok("subject == code", names={"subject": STRING, "code": STRING})
    assert expr.evaluate({"subject": code, "code": code}) is True
    assert not marker.exists()


# -- wrong number of arguments to a known function ---------------------------------------


@pytest.mark.parametrize("source", ["size() > 1", "size(subject, tags) > 1", "int() > 1",
                                    "filled()", "filled(subject, tags)"])
def test_wrong_arity_is_cl032(source: str) -> None:
    problem = compile(source, NAMES)
    assert isinstance(problem, Issue)
    assert problem.code == "CL032"
    assert "did you mean" not in problem.message
