"""values.clean(): the server's authority on what a case may hold.

Every field type's conversion and errors, conditions (visible_if, required_if,
readonly_if), computed values, state permissions (may_edit), a step's
required fields, unknown fields and localised messages.
"""

from __future__ import annotations

import functools
import textwrap
from typing import Any

import pytest

from caseloop import spec, values
from caseloop.spec import Form


@functools.cache
def form(fields: str) -> Form:
    """A form named ``f`` with the given YAML field list (built and checked once)."""
    text = "form: f\nfields:\n" + textwrap.indent(textwrap.dedent(fields).strip("\n"), "  ")
    definitions, problems = spec.check_texts({"f.yaml": text + "\n"})
    assert [p.format() for p in problems if p.is_error] == []
    return definitions.forms["f"]


def one(field: str, raw: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """Clean ``{"x": raw}`` on a form whose only field is ``x`` (type and rules in ``field``)."""
    f = form(f"- name: x\n  label: X\n{textwrap.indent(textwrap.dedent(field).strip(), '  ')}")
    out = values.clean(f, {"x": raw}, **kwargs)
    assert set(out.errors) <= {"x"}
    return out.data.get("x"), out.errors.get("x", [])


def ok(field: str, raw: Any, **kwargs: Any) -> Any:
    value, errors = one(field, raw, **kwargs)
    assert errors == [], (raw, errors)
    return value


def bad(field: str, raw: Any, **kwargs: Any) -> str:
    value, errors = one(field, raw, **kwargs)
    assert value is None and len(errors) == 1, (raw, value, errors)
    return errors[0]


# -- text ------------------------------------------------------------------------------
def test_text_is_stripped_and_textarea_is_kept_as_typed() -> None:
    assert ok("type: text", "  hello  ") == "hello"
    assert ok("type: textarea", "  line one\nline two  ") == "  line one\nline two  "


@pytest.mark.parametrize("raw", [None, "", "   ", "\n\t"])
def test_empty_and_blank_text_is_empty_not_too_short(raw: Any) -> None:
    assert one("type: text\nmin_length: 4", raw) == (None, [])
    assert one("type: textarea\nmin_length: 4", raw) == (None, [])


def test_blank_required_text_says_required() -> None:
    assert bad("type: text\nrequired: true\nmin_length: 4", "   ") == "This field is required."


@pytest.mark.parametrize(("raw", "good"), [("abc", False), ("abcd", True), ("a" * 10, True),
                                           ("a" * 11, False), ("  abc  ", False)])
def test_text_length(raw: str, good: bool) -> None:
    field = "type: text\nmin_length: 4\nmax_length: 10"
    if good:
        assert ok(field, raw) == raw.strip()
    else:
        assert bad(field, raw) == "Must be 4 to 10 characters long."


def test_text_max_length_alone_says_unbounded_low_end() -> None:
    assert bad("type: text\nmax_length: 2", "abc") == "Must be 0 to 2 characters long."


@pytest.mark.parametrize(("raw", "good"), [("AB-1234", True), ("ab-1234", False),
                                           ("AB-1234x", False), ("xAB-1234", False)])
def test_text_pattern_must_match_the_whole_value(raw: str, good: bool) -> None:
    field = "type: text\npattern: '[A-Z]{2}-[0-9]{4}'"
    if good:
        assert ok(field, raw) == raw
    else:
        assert bad(field, raw) == "Not in the expected format."


@pytest.mark.parametrize("raw", [123, 1.5, True, ["a"], {"a": 1}])
def test_text_must_be_a_string(raw: Any) -> None:
    assert bad("type: text", raw) == "Enter a valid value."


# -- email ------------------------------------------------------------------------------
def test_email_domain_is_lowercased_local_part_kept() -> None:
    assert ok("type: email", " Alice.Smith@Example.COM ") == "Alice.Smith@example.com"


@pytest.mark.parametrize("raw", ["nope", "a@b", "a b@c.de", "@c.de", "a@@c.de", 42])
def test_email_rejects_what_is_not_an_address(raw: Any) -> None:
    assert bad("type: email", raw) == "Enter a valid email address."


def test_email_length_and_pattern() -> None:
    assert bad("type: email\nmax_length: 10", "abcdef@example.com").startswith("Must be 0 to 10")
    field = "type: email\npattern: '.*@example[.]com'"
    assert ok(field, "a@Example.com") == "a@example.com"
    assert bad(field, "a@other.com") == "Not in the expected format."


# -- phone ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "e164"), [
    ("138 0013 8000", "+8613800138000"),
    ("138-0013-8000", "+8613800138000"),
    ("010 6552 9988", "+861065529988"),
    ("+86 138 0013 8000", "+8613800138000"),
    ("+1 650-253-0000", "+16502530000"),
    ("+49 30 901820", "+4930901820"),
])
def test_phone_is_stored_as_e164_reading_local_numbers_in_the_fields_region(
        raw: str, e164: str) -> None:
    assert ok("type: phone\nregion: CN", raw, region="US") == e164


def test_phone_without_a_region_uses_the_configured_one() -> None:
    assert ok("type: phone", "650-253-0000", region="US") == "+16502530000"
    assert bad("type: phone", "650-253-0000", region="CN") == "Enter a valid phone number."


@pytest.mark.parametrize("raw", ["12345", "not a number", "+999 1234", 13800138000, ["1"]])
def test_phone_rejects_invalid_numbers(raw: Any) -> None:
    assert bad("type: phone\nregion: CN", raw) == "Enter a valid phone number."


def test_phone_pattern_applies_to_the_e164_form() -> None:
    field = "type: phone\nregion: CN\npattern: '[+]86.*'"
    assert ok(field, "13800138000") == "+8613800138000"
    assert bad(field, "+1 650-253-0000") == "Not in the expected format."


# -- numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "number"), [(42, 42), ("42", 42), (" -7 ", -7), (3.0, 3),
                                              (0, 0), ("0", 0)])
def test_integer_conversion(raw: Any, number: int) -> None:
    value = ok("type: integer", raw)
    assert value == number and type(value) is int


@pytest.mark.parametrize("raw", [3.5, "3.5", "1e3", "abc", True, False, [1], "1" * 19])
def test_integer_rejects_non_whole_numbers(raw: Any) -> None:
    assert bad("type: integer", raw) == "Enter a whole number."


@pytest.mark.parametrize(("raw", "message"), [(0, "Must be at least 1."),
                                               (11, "Must be at most 10.")])
def test_integer_bounds(raw: int, message: str) -> None:
    field = "type: integer\nmin: 1\nmax: 10"
    assert bad(field, raw) == message
    assert ok(field, 1) == 1 and ok(field, 10) == 10


@pytest.mark.parametrize(("raw", "number"), [("12.5", 12.5), (3, 3.0), ("1.239", 1.24),
                                              (" 7 ", 7.0), ("-0.5", -0.5)])
def test_decimal_is_rounded_to_its_places(raw: Any, number: float) -> None:
    assert ok("type: decimal\nplaces: 2", raw) == number


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-Infinity", True, [1.0], {}])
def test_decimal_rejects_what_is_not_a_finite_number(raw: Any) -> None:
    assert bad("type: decimal", raw) == "Enter a number."


def test_decimal_bounds() -> None:
    field = "type: decimal\nmin: 0\nmax: 99.5"
    assert bad(field, "-0.01") == "Must be at least 0."
    assert bad(field, 100) == "Must be at most 99.5."
    assert ok(field, "99.5") == 99.5


# -- boolean ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "truth"), [(True, True), (False, False), ("true", True),
                                             ("FALSE", False), ("on", True), ("Off", False),
                                             ("1", True), ("0", False)])
def test_boolean_strings(raw: Any, truth: bool) -> None:
    assert ok("type: boolean", raw) is truth


@pytest.mark.parametrize("raw", ["yes", "no", "maybe", 1, 0, 2.0, ["true"]])
def test_boolean_rejects_anything_else(raw: Any) -> None:
    assert bad("type: boolean", raw) == "Choose yes or no."


def test_false_fills_a_required_boolean() -> None:
    assert ok("type: boolean\nrequired: true", False) is False


# -- dates ---------------------------------------------------------------------------------
def test_date_is_stored_as_iso() -> None:
    assert ok("type: date", "2024-02-29") == "2024-02-29"
    assert ok("type: date", " 2024-02-29 ") == "2024-02-29"
    # A timestamp (what a linked case's map gives) keeps its day.
    assert ok("type: date", "2024-02-29T00:00:00Z") == "2024-02-29"


@pytest.mark.parametrize("raw", ["2023-02-29", "2024-13-01", "29/02/2024", "2024-1-5",
                                 "2024-01-01abc", "2024-01-01T99:00", "tomorrow", 20240101])
def test_date_rejects_impossible_or_malformed_days(raw: Any) -> None:
    assert bad("type: date", raw) == "Enter a date (YYYY-MM-DD)."


def test_date_bounds() -> None:
    field = "type: date\nmin: '2024-01-01'\nmax: '2024-12-31'"
    assert bad(field, "2023-12-31") == "Must be at least 2024-01-01."
    assert bad(field, "2025-01-01") == "Must be at most 2024-12-31."
    assert ok(field, "2024-01-01") == "2024-01-01" and ok(field, "2024-12-31") == "2024-12-31"


@pytest.mark.parametrize(("raw", "utc"), [
    ("2024-05-01T10:00:00+08:00", "2024-05-01T02:00:00Z"),
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ("2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00Z"),
    ("2024-05-01T01:30:00-05:00", "2024-05-01T06:30:00Z"),
])
def test_datetime_is_stored_in_utc(raw: str, utc: str) -> None:
    assert ok("type: datetime", raw) == utc


@pytest.mark.parametrize("raw", ["2024-05-01T10:00:00", "2024-05-01", "2024-05-01 10:00",
                                 "soon", "2024-05-01T25:00:00Z", 1714557600])
def test_datetime_needs_a_valid_time_with_a_time_zone(raw: Any) -> None:
    assert bad("type: datetime", raw) == "Enter a date and time."


def test_datetime_bounds_compare_the_utc_day() -> None:
    field = "type: datetime\nmin: '2024-01-01'\nmax: '2024-12-31'"
    assert bad(field, "2023-12-31T23:59:00Z") == "Must be at least 2024-01-01."
    # 07:00 in Shanghai on New Year's Day is still 2023 in UTC.
    assert bad(field, "2024-01-01T07:00:00+08:00") == "Must be at least 2024-01-01."
    assert ok(field, "2024-12-31T23:59:59Z") == "2024-12-31T23:59:59Z"
    assert bad(field, "2025-01-01T00:00:00Z") == "Must be at most 2024-12-31."


# -- choices ---------------------------------------------------------------------------------
CHOICE = """\
type: choice
choices:
  - value: a
    label: {en: A, zh: 甲}
  - b
  - c
"""


def test_choice() -> None:
    assert ok(CHOICE, "b") == "b"
    for raw in ("z", "A", 1, ["a"]):
        assert bad(CHOICE, raw) == "Choose one of the options."


def test_multichoice_keeps_order_and_drops_repeats() -> None:
    assert ok("type: multichoice\nchoices: [a, b, c]", ["c", "a", "c"]) == ["c", "a"]


@pytest.mark.parametrize("raw", [["z"], ["a", "z"], "a", [1], [["a"]]])
def test_multichoice_rejects_unknown_options(raw: Any) -> None:
    assert bad("type: multichoice\nchoices: [a, b, c]", raw) == "Choose one of the options."


@pytest.mark.parametrize(("raw", "good"), [(["a"], False), (["a", "b"], True),
                                           (["a", "b", "c"], True), (["a", "a"], False),
                                           (["a", "b", "c", "d"], False)])
def test_multichoice_min_and_max_selected(raw: list[str], good: bool) -> None:
    field = "type: multichoice\nchoices: [a, b, c, d]\nmin_selected: 2\nmax_selected: 3"
    if good:
        assert ok(field, raw) == raw
    else:
        assert bad(field, raw) == "Choose 2 to 3 options."


def test_multichoice_empty_is_empty_unless_required() -> None:
    field = "type: multichoice\nchoices: [a, b]\nmin_selected: 1"
    assert one(field, []) == (None, [])
    assert bad(field + "\nrequired: true", []) == "This field is required."


# -- scales ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "low", "high"), [("rating", 1, 5), ("nps", 0, 10),
                                                    ("ces", 1, 7)])
def test_scales_have_fixed_bounds(kind: str, low: int, high: int) -> None:
    field = f"type: {kind}"
    assert ok(field, low) == low and ok(field, high) == high and ok(field, str(high)) == high
    assert bad(field, low - 1) == f"Must be at least {low}."
    assert bad(field, high + 1) == f"Must be at most {high}."
    assert bad(field, 2.5) == "Enter a whole number."


# -- files ------------------------------------------------------------------------------------
FILES = """\
type: file
accept: ['.pdf', 'image/*']
max_size: 1KB
max_files: 2
messages:
  invalid: {en: Only PDF and images., zh: 仅限 PDF 和图片。}
"""


def test_files_keep_their_description_only() -> None:
    raw = [{"name": "a.PDF", "size": 1000, "type": "application/pdf", "id": "f1",
            "path": "/etc/passwd"},
           {"name": "photo", "size": 10, "type": "image/png"}]
    assert ok(FILES, raw) == [{"name": "a.PDF", "size": 1000, "type": "application/pdf",
                               "id": "f1"},
                              {"name": "photo", "size": 10, "type": "image/png"}]


@pytest.mark.parametrize("item", [
    {"name": "a.pdf", "size": 1025, "type": "application/pdf"},      # too large
    {"name": "a.exe", "size": 10, "type": "application/octet-stream"},  # type not accepted
    {"name": "a.pdf.exe", "size": 10},
])
def test_files_size_and_type_are_checked_with_the_custom_message(item: dict[str, Any]) -> None:
    assert bad(FILES, [item]) == "Only PDF and images."
    assert bad(FILES, [item], lang="zh") == "仅限 PDF 和图片。"


def test_files_without_a_custom_message() -> None:
    assert bad("type: file\nmax_size: 1KB", [{"name": "a", "size": 2048}]) == \
        "A file is too large or of a type not allowed."


def test_files_count() -> None:
    item = {"name": "a.pdf", "size": 1, "type": "application/pdf"}
    assert bad(FILES, [item] * 3) == "Too many files."
    assert len(ok(FILES, [item] * 2)) == 2


@pytest.mark.parametrize("raw", ["a.pdf", {"name": "a.pdf", "size": 1}, [{"name": "a.pdf"}],
                                 [{"name": "a.pdf", "size": "1"}], ["a.pdf"],
                                 [{"name": 3, "size": 1}]])
def test_files_must_be_described_properly(raw: Any) -> None:
    assert bad(FILES, raw) == "Only PDF and images."
    assert bad("type: file", raw) == "Enter a valid value."


# -- groups ----------------------------------------------------------------------------------
GROUP = """\
- name: kind
  type: choice
  label: Kind
  choices: [plan, none]
- name: actions
  type: group
  label: Actions
  min_rows: 1
  max_rows: 3
  visible_if: "kind == 'plan'"
  messages:
    rows: {en: "Plan {low} to {high} actions.", zh: "请制定 {low} 至 {high} 项措施。"}
  fields:
    - name: title
      type: text
      label: Title
      required: true
      max_length: 20
    - name: due
      type: date
      label: Due
    - name: status
      type: choice
      label: Status
      required: true
      default: planned
      choices: [planned, done]
    - name: note
      type: text
      label: Note
      required_if: "status == 'done'"
"""


def test_group_rows_are_converted_and_get_their_defaults() -> None:
    out = values.clean(form(GROUP), {"kind": "plan", "actions": [
        {"title": " Fix it ", "due": "2024-03-01"},
        {"title": "Check", "status": "done", "note": "ok"}]})
    assert out.errors == {}
    assert out.data["actions"] == [
        {"title": "Fix it", "due": "2024-03-01", "status": "planned"},
        {"title": "Check", "status": "done", "note": "ok"}]


def test_group_errors_name_the_row_and_the_field() -> None:
    out = values.clean(form(GROUP), {"kind": "plan", "actions": [
        {"title": "fine"},
        {"title": "", "due": "someday", "status": "done", "bogus": 1},
        {"title": "x" * 21}]})
    assert out.errors == {
        "actions[1].bogus": ["This form has no such field."],
        "actions[1].due": ["Enter a date (YYYY-MM-DD)."],
        "actions[1].title": ["This field is required."],
        "actions[1].note": ["This field is required."],
        "actions[2].title": ["Must be 0 to 20 characters long."],
    }


def test_group_row_count_with_a_custom_localised_message() -> None:
    f = form(GROUP)
    rows = [{"title": "t"}] * 4
    assert values.clean(f, {"kind": "plan", "actions": rows}).errors == {
        "actions": ["Plan 1 to 3 actions."]}
    assert values.clean(f, {"kind": "plan", "actions": rows}, lang="zh").errors == {
        "actions": ["请制定 1 至 3 项措施。"]}


def test_an_empty_group_is_empty_not_too_short() -> None:
    out = values.clean(form(GROUP), {"kind": "plan", "actions": []})
    assert out.ok and out.data == {"kind": "plan"}


@pytest.mark.parametrize("raw", ["rows", [1, 2], {"title": "t"}, [["t"]]])
def test_group_needs_a_list_of_rows(raw: Any) -> None:
    assert values.clean(form(GROUP), {"kind": "plan", "actions": raw}).errors == {
        "actions": ["Enter a valid value."]}


def test_group_rows_may_read_the_other_fields() -> None:
    f = form("""\
        - name: limit
          type: integer
          label: Limit
        - name: items
          type: group
          label: Items
          fields:
            - name: qty
              type: integer
              label: Qty
            - name: reason
              type: text
              label: Reason
              required_if: "filled(qty) && filled(limit) && qty > limit"
        """)
    out = values.clean(f, {"limit": 5, "items": [{"qty": 3}, {"qty": 9}]})
    assert out.errors == {"items[1].reason": ["This field is required."]}


# -- conditions -----------------------------------------------------------------------------
CONDITIONS = """\
- name: kind
  type: choice
  label: Kind
  choices: [refund, other]
- name: amount
  type: decimal
  label: Amount
  min: 0
  visible_if: "kind == 'refund'"
  required_if: "kind == 'refund'"
- name: comment
  type: text
  label: Comment
  required_if: "filled(amount) && amount > 100.0"
"""


def test_hidden_values_are_dropped_and_not_validated() -> None:
    f = form(CONDITIONS)
    out = values.clean(f, {"kind": "other", "amount": "not a number"})
    assert out.ok and out.data == {"kind": "other"}
    out = values.clean(f, {"kind": "other", "amount": 5})
    assert out.ok and out.data == {"kind": "other"}
    # Hiding a stored value drops it too.
    out = values.clean(f, {"kind": "other"}, base={"kind": "refund", "amount": 5.0})
    assert out.ok and out.data == {"kind": "other"}


def test_hidden_groups_drop_their_row_errors() -> None:
    out = values.clean(form(GROUP), {"kind": "none", "actions": [{"title": ""}, {"due": "x"}]})
    assert out.ok and out.data == {"kind": "none"}


def test_visible_values_are_validated_and_required_if_applies() -> None:
    f = form(CONDITIONS)
    assert values.clean(f, {"kind": "refund", "amount": "x"}).errors == {
        "amount": ["Enter a number."]}
    assert values.clean(f, {"kind": "refund"}).errors == {"amount": ["This field is required."]}
    assert values.clean(f, {"kind": "refund", "amount": 500}).errors == {
        "comment": ["This field is required."]}
    out = values.clean(f, {"kind": "refund", "amount": 50})
    assert out.ok and out.data == {"kind": "refund", "amount": 50.0}


def test_a_condition_on_an_empty_field_is_false() -> None:
    f = form(CONDITIONS)
    out = values.clean(f, {})
    assert out.ok and out.data == {}


# -- computed values --------------------------------------------------------------------------
COMPUTED = """\
- name: total
  type: decimal
  label: Total
  value: "filled(net) ? net + tax : 0.0"
- name: a
  type: integer
  label: A
- name: tax
  type: decimal
  label: Tax
  value: "filled(net) ? net * 0.5 : 0.0"
- name: net
  type: decimal
  label: Net
  value: "filled(a) ? double(a) * 2.0 : 0.0"
- name: big
  type: boolean
  label: Big
  value: "total > 10.0"
- name: note
  type: text
  label: Note
  visible_if: "big"
"""


def test_computed_values_follow_their_dependencies_not_the_form_order() -> None:
    order = [f.name for f in values.computed_order(form(COMPUTED))]
    assert order.index("net") < order.index("tax") < order.index("total") < order.index("big")
    out = values.clean(form(COMPUTED), {"a": 3})
    assert out.ok
    assert out.data == {"a": 3, "net": 6.0, "tax": 3.0, "total": 9.0, "big": False}


def test_conditions_see_computed_values() -> None:
    out = values.clean(form(COMPUTED), {"a": 4, "note": "shown"})
    assert out.data["total"] == 12.0 and out.data["big"] is True and out.data["note"] == "shown"
    assert "note" not in values.clean(form(COMPUTED), {"a": 1, "note": "hidden"}).data


def test_a_submitted_computed_value_is_rejected() -> None:
    out = values.clean(form(COMPUTED), {"a": 3, "total": 100})
    assert out.errors == {"total": ["This value is computed and cannot be set."]}
    assert out.data["total"] == 9.0
    zh = values.clean(form(COMPUTED), {"a": 3, "total": 100}, lang="zh")
    assert zh.errors == {"total": ["此值为自动计算，不能填写。"]}


def test_sending_back_the_stored_computed_value_is_fine() -> None:
    base = {"a": 3, "net": 6.0, "tax": 3.0, "total": 9.0, "big": False}
    out = values.clean(form(COMPUTED), {**base, "a": 5}, base=base)
    assert out.ok and out.data["total"] == 15.0


def test_a_computed_value_that_cannot_be_evaluated_is_empty() -> None:
    f = form("""\
        - name: n
          type: integer
          label: N
        - name: half
          type: integer
          label: Half
          value: "n / 2"
        """)
    assert values.clean(f, {}).data == {}
    assert values.clean(f, {"n": 7}).data == {"n": 7, "half": 3}


# -- permissions ----------------------------------------------------------------------------------
PERMS = """\
- name: title
  type: text
  label: Title
- name: status
  type: text
  label: Status
- name: target
  type: integer
  label: Target
  readonly_if: "filled(result)"
- name: result
  type: integer
  label: Result
"""


def test_read_only_fields_cannot_change() -> None:
    f = form(PERMS)
    base = {"title": "Old", "status": "open"}
    out = values.clean(f, {"title": "New", "status": "closed"}, base=base,
                       may_edit=lambda name: name != "title")
    assert out.errors == {"title": ["This field cannot be changed now."]}
    assert out.data == {"title": "Old", "status": "closed"}
    # The unchanged value may be sent back; a missing one keeps what was stored.
    assert values.clean(f, {"title": "Old"}, base=base, may_edit=lambda n: n != "title").ok
    out = values.clean(f, {"status": "x"}, base=base, may_edit=lambda n: n != "title")
    assert out.ok and out.data == {"title": "Old", "status": "x"}


def test_read_only_message_in_chinese() -> None:
    out = values.clean(form(PERMS), {"title": "New"}, base={"title": "Old"},
                       may_edit=lambda n: False, lang="zh-CN")
    assert out.errors == {"title": ["当前状态下不能修改此字段。"]}


def test_readonly_if_freezes_a_field_once_its_condition_holds_on_the_stored_data() -> None:
    f = form(PERMS)
    # Before a result is recorded, target may change, even together with the result.
    out = values.clean(f, {"target": 10, "result": 12}, base={"target": 8})
    assert out.ok and out.data == {"target": 10, "result": 12}
    # Afterwards the goal cannot move.
    out = values.clean(f, {"target": 12}, base={"target": 10, "result": 12})
    assert out.errors == {"target": ["This field cannot be changed now."]}
    assert out.data == {"target": 10, "result": 12}
    assert values.clean(f, {"target": 10, "result": 13}, base={"target": 10, "result": 12}).ok


def test_require_makes_a_step_field_mandatory() -> None:
    f = form(PERMS)
    out = values.clean(f, {"title": "t"}, require=("status", "result"))
    assert out.errors == {"status": ["This field is required."],
                          "result": ["This field is required."]}
    assert values.clean(f, {"title": "t", "status": "s", "result": 1},
                        require=("status", "result")).ok


def test_require_does_not_demand_a_hidden_field() -> None:
    out = values.clean(form(CONDITIONS), {"kind": "other"}, require=("amount",))
    assert out.ok


def test_unknown_fields_are_rejected() -> None:
    out = values.clean(form(PERMS), {"title": "t", "titel": "typo", "__class__": 1})
    assert out.errors == {"titel": ["This form has no such field."],
                          "__class__": ["This form has no such field."]}
    zh = values.clean(form(PERMS), {"x": 1}, lang="zh")
    assert zh.errors == {"x": ["表单中没有此字段。"]}


def test_defaults_are_the_declared_initial_values() -> None:
    assert values.defaults(form(GROUP)) == {}  # a row's defaults are the row's
    f = form(GROUP + "- name: mood\n  type: choice\n  label: Mood\n  default: fine\n"
             "  choices: [fine, grumpy]\n")
    assert values.defaults(f) == {"mood": "fine"}


# -- localised messages ---------------------------------------------------------------------------
MESSAGES = """\
- name: name
  type: text
  label: Name
  required: true
  max_length: 5
  messages:
    required: {en: Tell us your name., zh: 请填写姓名。}
    length: {en: "At most {high} characters.", zh: "最多 {high} 个字符。"}
- name: age
  type: integer
  label: Age
  min: 18
  messages:
    min: {en: Adults only.}
    invalid: {en: Age in years., zh: 请填写周岁。}
- name: mail
  type: email
  label: Mail
  messages:
    invalid: {en: Check the address., zh: 邮箱格式不正确。}
- name: pick
  type: multichoice
  label: Pick
  choices: [a, b, c]
  max_selected: 1
  messages:
    choices: {en: One at most., zh: 最多选一项。}
- name: plain
  type: integer
  label: Plain
  max: 3
"""


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", {"name": ["Tell us your name."], "age": ["Adults only."],
            "mail": ["Check the address."], "pick": ["One at most."],
            "plain": ["Must be at most 3."]}),
    ("zh", {"name": ["请填写姓名。"], "age": ["Adults only."],  # no zh text: falls back to en
            "mail": ["邮箱格式不正确。"], "pick": ["最多选一项。"], "plain": ["不能大于 3。"]}),
])
def test_custom_messages_in_both_languages(lang: str, expected: dict[str, list[str]]) -> None:
    out = values.clean(form(MESSAGES), {"age": 12, "mail": "x", "pick": ["a", "b"], "plain": 4},
                       lang=lang)
    assert out.errors == expected


def test_custom_messages_take_the_rule_parameters() -> None:
    f = form(MESSAGES)
    assert values.clean(f, {"name": "toolong"}).errors == {"name": ["At most 5 characters."]}
    assert values.clean(f, {"name": "toolong"}, lang="zh").errors == {
        "name": ["最多 5 个字符。"]}
    assert values.clean(f, {"name": "ok", "age": "x"}, lang="zh").errors == {
        "age": ["请填写周岁。"]}


@pytest.mark.parametrize(("raw", "en", "zh"), [
    (None, "This field is required.", "此项为必填项。"),
    ("x", "Enter a whole number.", "请输入整数。"),
    (0, "Must be at least 1.", "不能小于 1。"),
])
def test_built_in_messages_in_both_languages(raw: Any, en: str, zh: str) -> None:
    field = "type: integer\nrequired: true\nmin: 1"
    assert one(field, raw)[1] == [en]
    assert one(field, raw, lang="zh")[1] == [zh]


# -- the shipped forms --------------------------------------------------------------------------
def test_shipped_complaint_form_rules() -> None:
    from .conftest import SHIPPED

    complaint = spec.load(SHIPPED).forms["complaint"]
    out = values.clean(complaint, {
        "customer_name": "Li Lei", "phone": "138 0013 8000", "category": "delivery",
        "subject": "Late parcel", "description": "It came two weeks late.",
        "segment": "high_value", "channel": "phone", "priority": "high",
        "remedy_offered": ["explanation"], "compensation_amount": "12.5"}, lang="zh")
    assert out.errors == {}
    assert out.data["phone"] == "+8613800138000"
    assert out.data["is_vip"] is True
    assert "compensation_amount" not in out.data  # hidden: no refund or voucher offered
    out = values.clean(complaint, {"customer_name": "Li Lei", "subject": "ab"}, lang="zh")
    assert out.errors["phone"] == ["请至少填写电话或邮箱中的一项，以便我们回复。"]
    assert out.errors["category"] == ["请选择问题类型；都不符合时请选“其他”。"]
    assert out.errors["subject"] == ["标题长度应为 4 到 120 个字符。"]
