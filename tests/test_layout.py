"""caseloop.layout: the guided builder's model of a form, and the way back to YAML.

Pure: text in, text out. The shipped forms read into rows (locked where the builder
cannot edit), write back byte for byte, and take the edits a designer makes (add,
reorder, remove, relabel, retype, conditions) without losing a comment or a key the
builder does not know; the result still passes ``caseloop check``.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest

from caseloop import spec
from caseloop.expr import Expression, compile
from caseloop.expr.types import BOOL, DOUBLE, INT, STRING
from caseloop.layout import LayoutError, apply, condition, condition_text, model

from .conftest import ROOT

FORMS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "forms").glob("*.yaml"))
COMPLAINT = "forms/complaint.yaml"


@functools.cache
def shipped() -> dict[str, str]:
    """Every shipped definition by its path: forms, workflows and calendars."""
    paths = [*(ROOT / "forms").glob("*.yaml"), *(ROOT / "workflows").glob("*.yaml"),
             *(ROOT / "workflows" / "calendars").glob("*.yaml")]
    return {p.relative_to(ROOT).as_posix(): p.read_text("utf-8") for p in paths}


def errors(changed: dict[str, str], *, forms_only: bool = False) -> list[str]:
    texts = {**shipped(), **changed}
    if forms_only:
        texts = {k: v for k, v in texts.items() if k.startswith("forms/")}
    return [p.format() for p in spec.check_texts(texts)[1] if p.is_error]


def row(m: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in m["fields"] if r["name"] == name)


def names(text: str) -> list[str | None]:
    return [r["name"] or r["include"] for r in model(text)["fields"]]


def comments(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.strip().startswith("#"))


def block(text: str, name: str) -> str:
    """The lines of field ``name`` in ``text`` (up to the next entry or blank line)."""
    lines = text.splitlines(keepends=True)
    start = lines.index(f"  - name: {name}\n")
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return "".join(lines[start:end])


def edited(text: str, change: Callable[[dict[str, Any]], Any]) -> str:
    m = json.loads(json.dumps(model(text)))  # as the browser sends it back
    change(m)
    return apply(text, m)


# -- text -> model -------------------------------------------------------------------------


def test_model_of_the_complaint_form() -> None:
    m = model(shipped()[COMPLAINT])
    assert m["form"] == "complaint"
    assert m["title"] == {"en": "Customer complaint", "zh": "客户投诉"}
    assert m["description"]["en"].startswith("Tell us what went wrong")
    assert json.loads(json.dumps(m)) == m  # plain JSON, nothing of ruamel's
    keys = [r["key"] for r in m["fields"]]
    assert len(keys) == len(set(keys)) == 31

    include, vip = m["fields"][:2]
    assert include["locked"] and include["key"] == "include:customer_contact"
    assert include["include"] == "customer_contact" and "customer_contact" in include["why"]
    assert vip["locked"] and vip["name"] == "is_vip" and vip["why"] == "a computed value"
    assert vip["label"] == {"en": "VIP customer", "zh": "VIP 客户"}

    channel = row(m, "channel")
    assert channel["key"] == "field:channel" and not channel["locked"]
    assert (channel["type"], channel["required"], channel["default"]) == ("choice", True, "web")
    assert channel["choices"][0] == {"value": "phone", "label": {"en": "Phone", "zh": "电话"}}
    assert [c["value"] for c in channel["choices"]][-1] == "crm"

    order = row(m, "order_number")
    assert order["pattern"] == "[A-Za-z0-9][A-Za-z0-9-]{3,31}" and order["max_length"] == 32
    assert order["help"]["zh"].startswith("如与订单相关")
    assert order["required"] is False and order["required_if"] is None
    assert order["extra"] == ["messages"]  # kept, not editable here
    severity = row(m, "severity")
    assert (severity["min"], severity["max"], severity["default"]) == (1, 5, None)
    assert row(m, "immediate_action")["visible_if"] == {
        "expr": "filled(immediate_action_needed) && immediate_action_needed"}
    assert row(m, "immediate_action_needed")["default"] is False


def test_model_reads_simple_conditions_as_pickers() -> None:
    revisit = model(shipped()["forms/revisit.yaml"])
    assert row(revisit, "complaint_reference")["visible_if"] == {
        "field": "reason", "op": "==", "value": "after_resolution"}
    contact = model(shipped()["forms/customer_contact.yaml"])
    assert row(contact, "phone")["required_if"] == {"field": "email", "op": "empty",
                                                    "value": None}
    plan = model(shipped()["forms/improvement_plan.yaml"])
    assert row(plan, "escape_point")["visible_if"] == {
        "field": "method", "op": "==", "value": "8d"}
    group = row(plan, "actions")
    assert group["locked"] and group["why"] == "a group of rows"


@pytest.mark.parametrize("path", FORMS)
def test_unchanged_model_writes_the_same_text(path: str) -> None:
    text = shipped()[path]
    assert apply(text, json.loads(json.dumps(model(text)))) == text


# -- model -> text -------------------------------------------------------------------------


NEW_FIELD = {
    "name": "store_visited", "type": "choice", "required": True,
    "label": {"en": "Store visited", "zh": "到访门店"},
    "help": {"en": "Where the customer bought it.", "zh": "客户购买的门店。"},
    "visible_if": {"field": "channel", "op": "==", "value": "store"},
    "choices": [{"value": "north", "label": {"en": "North", "zh": "北区店"}},
                {"value": "south", "label": {"en": "South", "zh": "南区店"}}],
    "default": "north", "min": None, "max": None, "pattern": "", "min_length": None,
}


def test_a_new_field_is_written_in_the_house_style() -> None:
    text = shipped()[COMPLAINT]
    out = edited(text, lambda m: m["fields"].append(dict(NEW_FIELD)))
    assert out.startswith(text)
    assert out[len(text):] == """
  - name: store_visited
    type: choice
    required: true
    default: north
    visible_if: "channel == 'store'"
    label:
      en: Store visited
      zh: 到访门店
    help:
      en: Where the customer bought it.
      zh: 客户购买的门店。
    choices:
      - value: north
        label:
          en: North
          zh: 北区店
      - value: south
        label:
          en: South
          zh: 南区店
"""
    back = row(model(out), "store_visited")
    assert back["visible_if"] == NEW_FIELD["visible_if"] and back["choices"] == NEW_FIELD["choices"]
    assert errors({COMPLAINT: out}) == []


def test_reordering_moves_each_field_with_the_comments_above_it() -> None:
    text = shipped()[COMPLAINT]

    def change(m: dict[str, Any]) -> None:
        rows = m["fields"]
        severity = next(r for r in rows if r["name"] == "severity")
        rows.remove(severity)
        rows.insert(2, severity)
        rows.append(rows.pop(0))  # the include, with the "Receipt" comment above it

    out = edited(text, change)
    assert names(out)[:4] == ["is_vip", "severity", "channel", "category"]
    assert names(out)[-1] == "customer_contact"
    assert comments(out) == comments(text)
    assert "  # --- Initial assessment (ISO 10002 step 4) ----" in out.split(
        "  - name: severity\n")[0].splitlines()[-1]
    assert out.split("  - include: customer_contact")[0].endswith(
        "\n\n  # --- Receipt (ISO 10002 step 1) -----------------------------------"
        "----------\n")
    assert out.startswith(text[:text.index("fields:\n") + len("fields:\n")] + "  - name: is_vip")
    for name in ("channel", "priority", "severity", "alternative"):  # untouched, byte for byte
        assert block(out, name) == block(text, name)
    assert errors({COMPLAINT: out}) == []


def test_removing_fields_keeps_the_section_comments_above_them() -> None:
    text = shipped()[COMPLAINT]
    gone = {"severity", "needs_escalation", "customer_contact", "remedy_sought"}
    out = edited(text, lambda m: m.update(fields=[
        r for r in m["fields"] if (r["name"] or r["include"]) not in gone]))
    assert [n for n in names(text) if n not in gone] == names(out)
    assert comments(out) == comments(text)
    assert "fields:\n  # --- Receipt (ISO 10002 step 1)" in out
    assert "  # --- Initial assessment (ISO 10002 step 4) " \
           "---------------------------------\n  - name: impact\n" in out
    assert "remedy_sought" not in out and "Severity (1-5)" not in out
    assert block(out, "impact") == block(text, "impact")
    assert errors({COMPLAINT: out.replace("fields:\n", "fields:\n  - include: customer_contact\n",
                                          1)}, forms_only=True) == []


def test_labels_and_help_change_only_their_own_lines() -> None:
    text = shipped()[COMPLAINT]

    def change(m: dict[str, Any]) -> None:
        subject = row(m, "subject")
        subject["label"]["zh"] = "主题"
        subject["help"] = {"en": "A few words.", "zh": "简短几个字。"}
        row(m, "occurred_on")["label"] = {"en": "Date of the problem", "zh": "发生日期"}

    out = edited(text, change)
    diff = [line for line in difflib.ndiff(text.splitlines(), out.splitlines())
            if line[:1] in "+-"]
    assert [(line[0], line[2:].strip()) for line in diff] == [
        ("-", "zh: 标题"), ("+", "zh: 主题"), ("+", "help:"), ("+", "en: A few words."),
        ("+", "zh: 简短几个字。"), ("-", "en: When did it happen?"),
        ("+", "en: Date of the problem"),
    ]
    assert row(model(out), "subject")["label"] == {"en": "Subject", "zh": "主题"}
    assert errors({COMPLAINT: out}) == []


def test_comments_inside_an_edited_field_survive() -> None:
    text = ("form: f\nfields:\n  - name: a  # the key\n    type: text\n    # why a label\n"
            "    label:\n      en: A  # English\n      zh: 甲\n    placeholder: p  # kept\n")
    out = edited(text, lambda m: row(m, "a").update(required=True, max_length=10,
                                                    label={"en": "B", "zh": "甲"}))
    assert out == ("form: f\nfields:\n  - name: a  # the key\n    type: text\n"
                   "    required: true\n    max_length: 10\n    # why a label\n"
                   "    label:\n      en: B  # English\n      zh: 甲\n    placeholder: p  # kept\n")


def test_comments_between_keys_stay_above_their_key() -> None:
    text = """form: f
fields:
  - name: a
    type: choice
    required: true
    # about the label
    label:
      en: A
      zh: 甲
    # the options
    choices:
      - value: x  # ex
        label: X
      - value: y
        label: Y
    # messages next
    messages:
      required: Pick one
  # next field
  - name: b
    type: text
    label: B
"""

    def change(m: dict[str, Any]) -> None:
        a = m["fields"][0]
        a.update(required=False, help={"en": "H", "zh": "h"}, label={"en": "A", "zh": ""})
        a["choices"].reverse()

    out = edited(text, change)
    assert out == text.replace("    required: true\n", "").replace(
        "      zh: 甲\n", "    help:\n      en: H\n      zh: h\n").replace(
        "      - value: x  # ex\n        label: X\n      - value: y\n        label: Y\n",
        "      - value: y\n        label: Y\n      - value: x  # ex\n        label: X\n")
    out = edited(out, lambda m: m["fields"][0].update(type="text"))  # choices go, not comments
    assert comments(out) == comments(text)
    assert "    # the options\n    # messages next\n    messages:\n" in out


def test_a_row_with_some_keys_changes_only_those() -> None:
    text = shipped()[COMPLAINT]
    m = model(text)
    m["fields"] = [{"key": r["key"]} for r in m["fields"]]  # nothing but the order
    assert apply(text, m) == text
    m["fields"][2] = {"key": "field:channel", "label": {"en": "Channel", "zh": "渠道"}}
    out = apply(text, m)
    assert block(out, "channel") == block(text, "channel").replace(
        "      en: Received via\n      zh: 受理渠道\n", "      en: Channel\n      zh: 渠道\n")


def test_empty_values_are_removed_not_written_as_null() -> None:
    text = shipped()[COMPLAINT]

    def change(m: dict[str, Any]) -> None:
        row(m, "remedy_sought").update(help={"en": "", "zh": ""}, max_length=None)
        row(m, "subject").update(required=False, min_length="", label={"en": "Subject"})

    out = edited(text, change)
    assert block(out, "remedy_sought") == ("  - name: remedy_sought\n    type: textarea\n"
                                           "    label:\n      en: What would you like us to do?\n"
                                           "      zh: 您希望的处理方式\n")
    subject = block(out, "subject")
    assert "required: true" not in subject and "min_length" not in subject
    assert "      en: Subject\n    placeholder:" in subject  # no empty zh
    assert "null" not in out and "''" not in out
    assert errors({COMPLAINT: out}) == []


def test_a_new_type_drops_the_keys_it_does_not_take() -> None:
    text = shipped()[COMPLAINT]
    out = edited(text, lambda m: row(m, "order_number").update(type="integer", min=1))
    order = block(out, "order_number")
    assert "type: integer\n    min: 1\n" in order
    assert "pattern" not in order.split("messages")[0] and "max_length" not in order
    assert "messages:\n      pattern:" in order  # messages apply to every type
    assert errors({COMPLAINT: out}) == []
    out = edited(text, lambda m: row(m, "channel").update(type="text"))
    assert "choices" not in block(out, "channel") and "- value: phone" not in out


def test_renaming_keeps_the_field_and_its_keys() -> None:
    text = shipped()[COMPLAINT]
    out = edited(text, lambda m: row(m, "occurred_on").update(name="happened_on"))
    assert block(out, "happened_on") == block(text, "occurred_on").replace(
        "occurred_on", "happened_on")
    assert names(out).index("happened_on") == names(text).index("occurred_on")


def test_locked_rows_move_and_go_but_never_change() -> None:
    text = shipped()[COMPLAINT]

    def change(m: dict[str, Any]) -> None:
        vip = row(m, "is_vip")
        vip["label"] = {"en": "Changed", "zh": "改"}
        m["fields"] = [r for r in m["fields"] if r["name"] != "needs_escalation"]
        m["fields"].remove(vip)
        m["fields"].append(vip)

    out = edited(text, change)
    assert names(out)[-1] == "is_vip" and "needs_escalation" not in out
    assert block(out, "is_vip") == block(text, "is_vip")


def test_title_and_description() -> None:
    text = shipped()[COMPLAINT]
    out = edited(text, lambda m: m["title"].update(en="Complaint"))
    assert out == text.replace("  en: Customer complaint\n", "  en: Complaint\n", 1)
    bare = "form: f\nfields:\n  - name: a\n    type: text\n    label: A\n"
    out = edited(bare, lambda m: m.update(title={"en": "F", "zh": "表"},
                                          description={"en": "About", "zh": ""}))
    assert out == ("form: f\ntitle:\n  en: F\n  zh: 表\ndescription:\n  en: About\n"
                   + bare[len("form: f\n"):])
    assert edited(out, lambda m: m.update(description={"en": "", "zh": ""})) == (
        "form: f\ntitle:\n  en: F\n  zh: 表\n" + bare[len("form: f\n"):])


@pytest.mark.parametrize("path", FORMS)
def test_typical_edits_of_each_shipped_form_still_check(path: str) -> None:
    text = shipped()[path]

    editable = [r["name"] for r in model(text)["fields"] if not r["locked"]]
    first, last = editable[0], editable[-1]

    def change(m: dict[str, Any]) -> None:
        rows = m["fields"]
        row(m, first)["label"]["en"] += " (edited)"
        row(m, first)["help"] = {"en": "Help", "zh": "帮助"}
        rows.insert(0, rows.pop(rows.index(row(m, last))))
        rows.append({"name": "builder_note", "type": "textarea", "max_length": 500,
                     "label": {"en": "Note", "zh": "备注"},
                     "required_if": {"field": first, "op": "filled", "value": None},
                     "visible_if": {"expr": f"filled({last})"}})

    out = edited(text, change)
    assert comments(out) == comments(text)
    assert names(out)[0] == last and names(out)[-1] == "builder_note"
    note = row(model(out), "builder_note")
    assert note["visible_if"] == {"field": last, "op": "filled", "value": None}
    assert note["required_if"] == {"field": first, "op": "filled", "value": None}
    assert row(model(out), first)["help"] == {"en": "Help", "zh": "帮助"}
    assert errors({path: out}) == []
    assert apply(out, model(out)) == out


# -- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize("cond", [
    {"field": "channel", "op": "==", "value": "phone"},
    {"field": "channel", "op": "!=", "value": "it's a \\ test\n新"},
    {"field": "severity", "op": ">=", "value": 3},
    {"field": "amount", "op": "<", "value": 2.5},
    {"field": "amount", "op": ">", "value": -1},
    {"field": "flag", "op": "==", "value": False},
    {"field": "channel", "op": "in", "value": ["phone", "o'clock"]},
    {"field": "email", "op": "filled", "value": None},
    {"field": "email", "op": "empty", "value": None},
    {"expr": "filled(a) && a == 'b'"},
])
def test_conditions_round_trip(cond: dict[str, Any]) -> None:
    text = condition_text(cond)
    assert condition(text) == cond
    form = "form: f\nfields:\n  - name: a\n    type: text\n    label: A\n    visible_if: x\n"
    out = edited(form, lambda m: m["fields"][0].update(visible_if=cond, required_if=cond))
    assert model(out)["fields"][0]["visible_if"] == cond
    assert model(out)["fields"][0]["required_if"] == cond


def test_condition_values_are_quoted_as_the_expression_language_reads_them() -> None:
    tricky = "it's \\ \"quoted\"\n\t新\x01"
    text = condition_text({"field": "x", "op": "==", "value": tricky})
    assert text == "x == 'it\\'s \\\\ \"quoted\"\\n\\t新\\u0001'"
    assert holds(text, x=tricky) and not holds(text, x="it's")
    listed = condition_text({"field": "x", "op": "in", "value": ["a'b", "c"]})
    assert listed == "x in ['a\\'b', 'c']" and holds(listed, x="a'b")
    assert condition_text({"field": "n", "op": "<=", "value": 2}) == "n <= 2"
    assert holds("n <= 2", n=2) and not holds("n <= 2", n=3)
    assert condition_text({"field": "d", "op": ">", "value": 1.5}) == "d > 1.5"
    assert holds("d > 1.5", d=2.0)
    assert condition_text({"field": "b", "op": "!=", "value": True}) == "b != true"
    assert holds(condition_text({"field": "n", "op": "in", "value": [1, 2]}), n=2)


def holds(text: str, **values: Any) -> bool:
    types = {"x": STRING, "n": INT, "d": DOUBLE, "b": BOOL}
    expr = compile(text, {k: types[k] for k in values})
    assert isinstance(expr, Expression), expr
    return expr.evaluate(values) is True


def test_values_typed_in_a_browser_become_the_field_type() -> None:
    text = shipped()[COMPLAINT]
    picked = {
        "severity": ({"op": ">=", "value": "3"}, "severity >= 3"),
        "compensation_amount": ({"op": "<", "value": " 2.5"}, "compensation_amount < 2.5"),
        "immediate_action_needed": ({"op": "==", "value": "true"},
                                    "immediate_action_needed == true"),
        "subject": ({"op": "==", "value": "3"}, "subject == '3'"),  # a text stays text
    }

    def change(m: dict[str, Any]) -> None:
        for n, (name, (cond, _)) in enumerate(picked.items()):
            m["fields"].append({"name": f"extra_{n}", "type": "text", "label": "X",
                                "visible_if": {"field": name, **cond}})
        m["fields"].append({"name": "extra_in", "type": "text", "label": "X",
                            "required_if": {"field": "severity", "op": "in",
                                            "value": ["4", "5"]}})

    out = edited(text, change)
    for name, (_, expected) in picked.items():
        assert f'    visible_if: "{expected}"\n' in out, name
    assert '    required_if: "severity in [4, 5]"\n' in out
    assert errors({COMPLAINT: out}) == []


@pytest.mark.parametrize("text", [
    "a == b", "a.b == 'x'", "A == 1", "a in []", "size(a) > 1", "!a", "a == null",
    "a == 99999999999999999999", "a ==", "'x' == a",
])
def test_anything_else_is_an_expression_kept_as_text(text: str) -> None:
    assert condition(text) == {"expr": text}
    assert condition_text(condition(text)) == text


@pytest.mark.parametrize(("cond", "message"), [
    ({"field": "a", "op": "~=", "value": 1}, "unknown operator '~='"),
    ({"field": "Bad name", "op": "==", "value": 1}, "needs the name of a field"),
    ({"field": "a", "op": "in", "value": "x"}, "needs a list"),
    ({"field": "a", "op": "<", "value": True}, "not true/false"),
    ({"field": "a", "op": "==", "value": {"x": 1}}, "use a text, a number or true/false"),
    ({"field": "a", "op": "==", "value": float("nan")}, "use a text"),
    ({"expr": 3}, "must be text"),
    ("a == 1", "{field, op, value} or {expr}"),
])
def test_bad_conditions(cond: Any, message: str) -> None:
    with pytest.raises(LayoutError) as info:
        condition_text(cond)
    assert message in str(info.value)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("form: f\nfields: [\n", "the YAML cannot be read (line"),
    ("form: f\nform: g\nfields: []\n", "duplicate key 'form'"),
    ("- a\n- b\n", "this is not a form"),
    ("workflow: w\nform: f\n", "this is a workflow, not a form"),
    ("title: T\nfields: []\n", "no 'form:' key"),
    ("form: f\nfields: 3\n", "'fields' must be a list"),
    ("", "the YAML cannot be read"),
])
def test_text_the_builder_cannot_read(text: str, message: str) -> None:
    with pytest.raises(LayoutError) as info:
        model(text)
    assert message in str(info.value)
    with pytest.raises(LayoutError):
        apply(text, {"fields": []})


def _with(new: Any) -> Callable[[dict[str, Any]], Any]:
    """A change that appends ``new`` to the model's rows."""
    return lambda m: m["fields"].append(new)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: row(m, "subject").update(name="description"),
     "two fields are named 'description'"),
    (_with({"name": "channel", "type": "text", "label": "X"}), "two fields are named 'channel'"),
    (_with({"name": "Bad name", "type": "text"}), "'Bad name' is not a valid field name"),
    (_with({"type": "text"}), "None is not a valid field name"),
    (_with({"name": "size", "type": "text"}), "'size' is reserved"),
    (_with({"name": "x", "type": "colour"}), "unknown type 'colour' (use one of boolean"),
    (_with({"name": "x", "type": "group"}), "a group of rows is written in the YAML editor"),
    (_with({"name": "x", "type": "text", "required": "yes"}), "'required' must be true or false"),
    (_with({"name": "x", "type": "text", "label": ["a"]}), "'label' must be {\"en\""),
    (_with({"name": "x", "type": "text", "min_length": -1}), "'min_length' cannot be negative"),
    (_with({"name": "x", "type": "integer", "min": True}), "'min' cannot be True"),
    (_with({"name": "x", "type": "choice", "choices": [{"value": "a"}, {"value": "a"}]}),
     "choice 'a' is listed twice"),
    (_with({"name": "x", "type": "text", "visible_if": {"field": "a", "op": "?"}}),
     "field 'x': 'visible_if': unknown operator '?'"),
    (_with("not a row"), "row 32 of the model is not a field"),
    (_with({"key": "field:gone", "name": "gone", "type": "text"}),
     "the form has no entry 'field:gone' any more"),
    (lambda m: m["fields"].append(copy.deepcopy(m["fields"][3])),
     "entry 'field:category' is in the model twice"),
    (lambda m: m.update(form="Not valid"), "the form's name 'Not valid' is not valid"),
    (lambda m: m.update(title=3), "the form's title must be"),
    (lambda m: m.pop("fields"), "the model needs a 'fields' list"),
])
def test_models_the_builder_refuses(change: Any, message: str) -> None:
    text = shipped()[COMPLAINT]
    with pytest.raises(LayoutError) as info:
        edited(text, change)
    assert message in str(info.value)


def test_existing_mistakes_are_kept_not_refused() -> None:
    # A draft with errors the checker reports still opens and writes back unchanged.
    text = ("form: f\nfields:\n  - name: a\n    type: colour\n    label: A\n"
            "  - name: a\n    type: text\n    label: B\n")
    m = model(text)
    assert [r["key"] for r in m["fields"]] == ["field:a", "field:a#2"]
    assert apply(text, m) == text
    m["fields"][1]["label"] = {"en": "C", "zh": "C"}
    assert apply(text, m).endswith("  - name: a\n    type: text\n    label: C\n")


def test_field_types_from_plugins() -> None:
    text = "form: f\nfields:\n  - name: a\n    type: text\n    label: A\n"
    signature = {"name": "sig", "type": "signature", "label": {"en": "Sign", "zh": "签名"}}
    with pytest.raises(LayoutError, match="unknown type 'signature'"):
        edited(text, _with(dict(signature)))
    m = model(text)
    m["fields"].append(signature)
    assert "  - name: sig\n    type: signature\n" in apply(text, m, field_types=["signature"])


# -- other ways of writing a form ----------------------------------------------------------


@pytest.mark.parametrize("text", [
    "form: f\r\nfields:\r\n  - name: a\r\n    type: text\r\n    label: A\r\n",
    "form: f\nfields:\n- name: a\n  type: text\n  label: {en: A, zh: 甲}",
    "form: f\n\nfields:\n    -   name: a\n        type: text\n        label: A\n\n# end\n",
])
def test_other_layouts_round_trip_and_take_a_new_field(text: str) -> None:
    assert apply(text, model(text)) == text
    out = edited(text, _with({"name": "b", "type": "integer", "min": 0, "default": 0,
                              "label": {"en": "B", "zh": "乙"}}))
    added = [line for line in difflib.ndiff(text.splitlines(), out.splitlines())
             if line[:1] in "+-"]
    assert {line[0] for line in added} == {"+"}  # nothing of the text changed
    assert ("\r\n" in out) == ("\r\n" in text)
    assert names(out) == ["a", "b"] and row(model(out), "b")["min"] == 0
    assert errors({"forms/f.yaml": out}, forms_only=True) == []


@pytest.mark.parametrize("text", [
    "{form: f, fields: [{name: a, type: text, label: A}]}\n",
    "form: f\nfields: [{name: a, type: text, label: A}]\n",
    "form: f\nfields: []\n",
    "form: f\nfields:\n",
    "form: f\ntitle: F\n",
])
def test_flow_style_and_empty_forms_become_block_style(text: str) -> None:
    out = edited(text, _with({"name": "b", "type": "text", "label": {"en": "B", "zh": "乙"}}))
    assert out.endswith("  - name: b\n    type: text\n    label:\n      en: B\n      zh: 乙\n")
    assert names(out)[-1] == "b"
    assert errors({"forms/f.yaml": out}, forms_only=True) == []
