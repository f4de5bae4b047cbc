"""caseloop.forms: definitions as WTForms, bound to a state, and back to clean().

Pure: no app, no database. The widgets of every field type, the class cache,
escaping, rows added and removed without JavaScript, per-state permissions and
tampering, conversion round trips through values.clean() with its errors put
back next to their fields, and conditions() deciding as clean() does.
"""

from __future__ import annotations

import functools
import textwrap
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import wtforms
from flask import Flask
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from markupsafe import escape
from werkzeug.datastructures import MultiDict

from caseloop import forms, spec, values
from caseloop.spec.model import Form, Workflow
from caseloop.spec.schema import FIELD_TYPES

from .conftest import SHIPPED

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCOPE = {"now": None, "state": "", "reference": "", "created_at": None, "user": {}}


@functools.cache
def shipped() -> spec.Definitions:
    return spec.load(SHIPPED)


def workflow(name: str) -> Workflow:
    return shipped().workflows[name]


def form(fields: str, name: str = "f") -> Form:
    """A form with the given YAML field list (built and checked)."""
    text = f"form: {name}\nfields:\n" + textwrap.indent(textwrap.dedent(fields).strip("\n"), "  ")
    definitions, problems = spec.check_texts({f"{name}.yaml": text + "\n"})
    assert [p.format() for p in problems if p.is_error] == []
    return definitions.forms[name]


def render(definition: Form, lang: str = "en", **bind: Any) -> wtforms.Form:
    data = bind.pop("data", values.defaults(definition))
    return forms.bind(forms.form_class(definition, lang), bind.pop("state", None), data, **bind)


def post(pairs: dict[str, Any]) -> MultiDict[str, Any]:
    out: MultiDict[str, Any] = MultiDict()
    for key, value in pairs.items():
        for v in value if isinstance(value, list) else [value]:
            out.add(key, v)
    return out


# -- one widget per field type ----------------------------------------------------------
WIDGETS: dict[str, tuple[str, list[str]]] = {
    "text": ("max_length: 50", ['type="text"', 'maxlength="50"']),
    "textarea": ("max_length: 900", ["<textarea", 'maxlength="900"']),
    "integer": ("min: 1\nmax: 5", ['type="number"', 'step="1"', 'min="1"', 'max="5"']),
    "decimal": ("places: 2\nmin: 0", ['type="number"', 'step="0.01"', 'inputmode="decimal"']),
    "boolean": ("default: false", ['type="checkbox"']),
    "date": ("min: '2024-01-01'", ['type="date"', 'min="2024-01-01"']),
    "datetime": ("", ['type="datetime-local"']),
    "choice": ("choices: [a, b]", ['type="radio"', 'value="a"', 'value="b"']),
    "multichoice": ("choices: [a, b, c]", ['type="checkbox"', 'value="c"']),
    "email": ("", ['type="email"', 'autocomplete="email"']),
    "phone": ("", ['type="tel"', 'autocomplete="tel"']),
    "rating": ("", ['type="radio"', 'value="5"', 'data-widget="stars"']),
    "nps": ("", ['type="radio"', 'value="0"', 'value="10"', 'data-scale="0-10"']),
    "ces": ("", ['type="radio"', 'value="1"', 'value="7"', 'data-scale="1-7"']),
    "file": ("accept: ['.pdf', 'image/*']\nmax_files: 3",
             ['type="file"', 'accept=".pdf,image/*"', "multiple"]),
    "user": ("of: team\nroles: [agent, supervisor]",
             ["<select", 'data-picker="team"', 'data-roles="agent supervisor"']),
    "reference": ("to: case\nworkflow: complaint",
                  ['type="search"', 'data-reference="case"', 'data-workflow="complaint"']),
    "group": ("min_rows: 1\nfields:\n  - {name: due, type: date, label: Due}",
              ['name="x-0-due"', 'type="date"', 'data-min-rows="1"']),
}


def test_every_field_type_of_the_language_has_a_widget() -> None:
    assert set(WIDGETS) == set(FIELD_TYPES)


@pytest.mark.parametrize("kind", FIELD_TYPES)
def test_field_type_renders_its_widget(kind: str) -> None:
    rules, expected = WIDGETS[kind]
    definition = form(f"- name: x\n  type: {kind}\n  label: X\n"
                      + textwrap.indent(rules, "  "))
    html = str(render(definition)["x"]())
    for piece in expected:
        assert piece in html, (kind, piece, html)


@pytest.mark.parametrize(("kind", "count"), [("rating", 5), ("nps", 11), ("ces", 7)])
def test_scales_have_one_radio_per_point(kind: str, count: int) -> None:
    html = str(render(form(f"- {{name: x, type: {kind}, label: X}}"))["x"]())
    assert html.count('type="radio"') == count


def test_boolean_without_default_is_yes_no_and_many_choices_a_select() -> None:
    definition = form("""
        - {name: b, type: boolean, label: B}
        - {name: c, type: choice, label: C, choices: [a, b, c, d, e]}
    """)
    bound = render(definition, "zh")
    assert 'value="true"' in str(bound["b"]()) and "是" in str(bound["b"]())
    assert str(bound["c"]()).startswith("<select") and "— 请选择 —" in str(bound["c"]())


def test_conditions_travel_as_data_attributes() -> None:
    html = str(render(workflow("complaint").form)["compensation_amount"]())
    assert 'data-visible-if="filled(remedy_offered) &amp;&amp; (&#39;refund&#39; in' in html
    assert 'data-required-if=' in html and 'data-reads="remedy_offered"' in html
    computed = str(render(workflow("complaint").form)["needs_escalation"]())
    assert "data-value=" in computed and "disabled" in computed


# -- the class cache ---------------------------------------------------------------------
def test_class_is_built_once_per_version_and_language() -> None:
    first = form("- {name: x, type: text, label: First}", "cached")
    cls = forms.form_class(first, "en")
    assert forms.form_class(first, "en") is cls
    assert forms.form_class(first, "en-GB") is cls
    assert forms.form_class(first, "zh") is not cls
    assert forms.form_class(first, "en", FlaskForm) is not cls
    second = form("- {name: x, type: text, label: Second}", "cached")
    assert second.version != first.version
    assert forms.form_class(second, "en") is not cls
    assert forms.definition_of(forms.form_class(second, "en")) is second


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_shipped_forms_build_and_render(lang: str) -> None:
    for definition in shipped().forms.values():
        bound = render(definition, lang)
        for field in bound:
            assert str(field()) and str(field.label)
    subject = render(workflow("complaint").form, lang)["subject"]
    assert ("标题" if lang == "zh" else "Subject") in str(subject.label)
    assert ("例如" if lang == "zh" else "e.g.") in str(subject())


def test_labels_help_choices_and_values_are_escaped() -> None:
    definition = form("""
        - name: x
          type: choice
          label: {en: "<script>alert(1)</script>"}
          help: {en: "<b>bold</b>"}
          placeholder: {en: '"><img src=x>'}
          choices: [{value: a, label: {en: "<i>A</i>"}}]
        - {name: t, type: text, label: T, placeholder: {en: '"><img src=x onerror=alert(1)>'}}
    """)
    bound = render(definition, data={"t": '"><script>alert(2)</script>'})
    label, html, text = str(bound["x"].label), str(bound["x"]()), str(bound["t"]())
    assert "<script>" not in label and "&lt;script&gt;" in label
    assert "<i>" not in html and "&lt;i&gt;A&lt;/i&gt;" in html
    assert "<img" not in text and "<script>" not in text and "&lt;script&gt;" in text
    assert str(escape(bound["x"].description)) == "&lt;b&gt;bold&lt;/b&gt;"


# -- rows without JavaScript ------------------------------------------------------------
def plan_rows(*titles: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for i, title in enumerate(titles):
        data.update({f"actions-{i}-title": title, f"actions-{i}-status": "in_progress",
                     f"actions-{i}-due": "2025-01-0" + str(i + 1), f"actions-{i}-owner": ""})
    return data


def test_add_row_appends_one_with_the_row_defaults() -> None:
    definition = workflow("improvement_plan").form
    bound = render(definition, formdata=post({**plan_rows("one"), "add_row:actions": "+"}))
    b = forms.binding(bound)
    assert b.row_action == forms.RowAction("add_row", "actions")
    rows = forms.submitted_data(bound)["actions"]
    assert [r["title"] for r in rows] == ["one", None]
    assert rows[1]["status"] == "planned"  # the row's default
    assert forms.add_row_name("actions") == "add_row:actions"


def test_remove_row_drops_it_and_renumbers_the_rest() -> None:
    definition = workflow("improvement_plan").form
    pressed = {**plan_rows("one", "two", "three"), forms.remove_row_name("actions", 1): "x"}
    bound = render(definition, formdata=post(pressed))
    rows = forms.submitted_data(bound)["actions"]
    assert [(r["title"], r["due"]) for r in rows] == [("one", "2025-01-01"),
                                                      ("three", "2025-01-03")]
    assert 'name="actions-1-title"' in str(bound["actions"]())
    assert forms.binding(bound).row_action is not None


def test_rows_stay_within_min_and_max() -> None:
    definition = form("""
        - name: g
          type: group
          label: G
          min_rows: 1
          max_rows: 2
          fields: [{name: a, type: text, label: A}]
    """)
    full = render(definition, formdata=post({"g-0-a": "x", "g-1-a": "y", "add_row:g": "+"}))
    assert [r["a"] for r in forms.submitted_data(full)["g"]] == ["x", "y"]
    last = render(definition, formdata=post({"g-0-a": "x", "remove_row:g:0": "-"}))
    assert [r["a"] for r in forms.submitted_data(last)["g"]] == ["x"]


def test_no_row_action_on_a_read_only_group() -> None:
    wf = workflow("improvement_plan")
    state = next(s for s in wf.states.values() if s.fields.of("actions") == "readonly")
    stored = {"actions": [{"title": "kept", "owner": "bob", "due": "2025-01-01",
                           "status": "planned"}]}
    bound = render(wf.form, state=state, data=stored,
                   formdata=post({**plan_rows("forged"), "add_row:actions": "+"}))
    b = forms.binding(bound)
    assert b.row_action is None and "actions" in b.tampered
    assert "actions" not in forms.submitted_data(bound)
    assert [e.form.title.data for e in bound["actions"]] == ["kept"]
    assert "disabled" in str(bound["actions"].entries[0].form.title())


# -- per-state permissions and tampering -------------------------------------------------
def test_state_hides_and_locks_fields() -> None:
    wf = workflow("complaint")
    received = render(wf.form, state=wf.states["received"], new=True)
    assert "severity" not in received and "subject" in received
    assert "disabled" in str(received["is_vip"]())  # computed
    ack = render(wf.form, state=wf.states["acknowledged"], data={"channel": "web"})
    assert "disabled" in str(ack["channel"]()) and "disabled" not in str(ack["severity"]())
    modes = forms.binding(ack).modes
    assert modes["channel"].readonly and not modes["severity"].readonly
    assert modes["investigation_notes"].permission == "hidden"
    assert "investigation_notes" not in ack


def test_required_fields_of_a_transition_become_editable_and_required() -> None:
    wf = workflow("complaint")
    closed = wf.states["closed"]
    assert closed.fields.of("resolution_summary") == "readonly"
    bound = render(wf.form, state=closed, required=("resolution_summary",))
    html = str(bound["resolution_summary"]())
    assert "disabled" not in html and "required" in html


def test_only_shows_a_step_form() -> None:
    bound = render(workflow("complaint").form, only=("severity", "impact"))
    assert [f.name for f in bound] == ["severity", "impact"]
    assert forms.submitted_data(bound) == {"severity": None, "impact": None}


def test_tampered_read_only_hidden_and_computed_fields_are_reported_not_passed_on() -> None:
    wf = workflow("complaint")
    stored = {**values.defaults(wf.form), "channel": "web", "subject": "Leaking machine"}
    sent = post({"channel": "phone", "investigation_notes": "forged", "is_vip": "true",
                 "severity": "3", "category": "delivery"})
    for lang, message, label in (("en", "This field cannot be changed now.", "Investigation notes"),
                                 ("zh", "当前状态下不能修改此字段。", "调查记录")):
        bound = render(wf.form, lang, state=wf.states["acknowledged"], data=stored,
                       formdata=sent)
        b = forms.binding(bound)
        assert sorted(b.tampered) == ["channel", "investigation_notes", "is_vip"]
        assert bound["channel"].errors == [message]
        assert '<option selected value="web">' in str(bound["channel"]())  # not "phone"
        assert bound.form_errors == [f"{label}: {message}"]
        assert bound["is_vip"].errors == [values.MESSAGES["computed"].get(lang)]
        data = forms.submitted_data(bound)
        assert not {"channel", "investigation_notes", "is_vip"} & set(data)
        assert data["severity"] == 3 and data["category"] == "delivery"
        assert bound.validate() is False  # nothing is saved...
        assert bound["channel"].errors == [message]  # ...and the messages survive it


def test_validate_is_true_only_for_an_untampered_submission() -> None:
    definition = workflow("improvement_plan").form
    assert render(definition, formdata=post(plan_rows("one"))).validate() is True
    pressed = post({**plan_rows("one"), "add_row:actions": "+"})
    assert render(definition, formdata=pressed).validate() is False


@pytest.mark.parametrize("name", ["data", "errors", "validate", "validate_x", "meta"])
def test_a_field_named_like_a_wtforms_attribute_is_refused_clearly(name: str) -> None:
    with pytest.raises(ValueError, match=f"field named '{name}' cannot be shown"):
        forms.form_class(form(f"- {{name: {name}, type: text, label: X}}", "clash"), "en")


def test_user_picker_choices_per_instance_keep_the_stored_value() -> None:
    definition = workflow("improvement_plan").form
    assert set(forms.pickers(definition)) >= {"actions.owner"}
    stored = {"actions": [{"title": "t", "owner": "gone", "due": "2025-01-01"}]}
    bound = render(definition, data=stored, choices={"actions.owner": [("bob", "Bob Li")]})
    html = str(bound["actions"].entries[0].form.owner())
    assert "Bob Li" in html and 'value="gone"' in html


# -- browser strings -> clean() and its errors back ------------------------------------
def complaint_post(**extra: Any) -> dict[str, Any]:
    return {"customer_name": "Li Lei", "phone": "138 0013 8000", "email": "",
            "preferred_language": "zh", "segment": "regular", "channel": "phone",
            "category": "delivery", "subject": "Late parcel", "description": "It came a week late.",
            "remedy_sought": "", "order_number": "", "occurred_on": "2024-05-01",
            "priority": "normal", **extra}


def create(definition: Form, data: dict[str, Any], lang: str = "en") -> values.Outcome:
    """As cases.create validates a new complaint."""
    received = workflow("complaint").states["received"]
    return values.clean(definition, data, base=values.defaults(definition), lang=lang,
                        names=SCOPE, may_edit=lambda f: received.fields.of(f) != "hidden")


def test_valid_new_complaint_round_trips_through_clean() -> None:
    wf = workflow("complaint")
    bound = render(wf.form, state=wf.states["received"], new=True,
                   formdata=post(complaint_post(description="line one\r\nline two")))
    data = forms.submitted_data(bound)
    assert data["email"] is None and data["occurred_on"] == "2024-05-01"
    out = create(wf.form, data)
    assert out.errors == {}
    assert out.data["phone"] == "+8613800138000" and out.data["description"] == "line one\nline two"
    assert out.data["channel"] == "phone" and out.data["is_vip"] is False


@pytest.mark.parametrize(("lang", "subject", "phone"), [
    ("en", "Use 4 to 120 characters.", "This is not a valid phone number."),
    ("zh", "标题长度应为 4 到 120 个字符。", "电话号码格式不正确。"),
])
def test_invalid_complaint_errors_land_next_to_their_fields(lang: str, subject: str,
                                                            phone: str) -> None:
    wf = workflow("complaint")
    bound = render(wf.form, lang, state=wf.states["received"], new=True,
                   formdata=post(complaint_post(subject="ab", phone="123")))
    out = create(wf.form, forms.submitted_data(bound), lang)
    forms.apply_errors(bound, out.errors)
    assert bound["subject"].errors == [subject]
    assert bound["phone"].errors == [phone]
    assert not bound["description"].errors


def test_typed_values_of_an_assessment() -> None:
    wf = workflow("complaint")
    bound = render(wf.form, state=wf.states["acknowledged"],
                   data={**values.defaults(wf.form), **create(wf.form, complaint_post()).data},
                   formdata=post(complaint_post(severity="4", impact="widespread",
                                                immediate_action_needed="y",
                                                immediate_action="Stopped sales")))
    data = forms.submitted_data(bound)
    assert data["severity"] == 4 and data["immediate_action_needed"] is True
    assert "channel" not in data and "subject" not in data  # read-only in this state


def test_group_row_errors_and_datetimes() -> None:
    definition = workflow("improvement_plan").form
    rows = {**plan_rows("one", "two"), "actions-1-due": "", "actions-0-owner": "bob"}
    bound = render(definition, "zh", formdata=post(rows))
    data = forms.submitted_data(bound)
    assert data["actions"][1]["due"] is None
    out = values.clean(definition, {"actions": data["actions"]}, lang="zh", names=SCOPE)
    assert "actions[1].due" in out.errors
    forms.apply_errors(bound, {**out.errors, "nowhere": ["?"]})
    assert bound["actions"].entries[1].form.due.errors == ["此项为必填项。"]
    assert not bound["actions"].entries[0].form.due.errors
    assert "nowhere: ?" in bound.form_errors

    revisit = workflow("revisit").form
    sent = post({"call_outcome": "call_back_later", "callback_at": "2024-05-01T10:00"})
    bound = render(revisit, tz=SHANGHAI, only=("call_outcome", "callback_at"), formdata=sent)
    stored = values.clean(revisit, forms.submitted_data(bound), base=values.defaults(revisit),
                          names=SCOPE).data
    assert stored["callback_at"] == "2024-05-01T02:00:00Z"
    again = render(revisit, tz=SHANGHAI, data=stored)
    assert 'value="2024-05-01T10:00"' in str(again["callback_at"]())


def test_bind_works_with_flask_wtf_in_a_request() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", WTF_CSRF_ENABLED=True)
    definition = form("- {name: n, type: integer, label: N}")
    with app.test_request_context(method="POST", data={"n": "7"}):
        from flask import request

        bound = forms.bind(forms.form_class(definition, "en", FlaskForm), None, {},
                           request.form)
        assert "csrf_token" in bound and forms.submitted_data(bound) == {"n": 7}
        assert not bound.validate()  # no token: refused by Flask-WTF, not by us
        assert list(bound.errors) == ["csrf_token"]


# -- conditions(): the browser's answers are clean()'s decisions -------------------------
def agree(definition: Form, data: dict[str, Any], base: dict[str, Any] | None = None
          ) -> dict[str, forms.Condition]:
    """conditions() on ``data`` and clean() on the same input tell the same story."""
    base = {**values.defaults(definition), **(base or {})}
    cond = forms.conditions(definition, data, SCOPE, base=base)
    out = values.clean(definition, data, base=base, names=SCOPE)
    for f in definition.fields:
        c = cond[f.name]
        if not c["visible"]:
            assert f.name not in out.data and f.name not in out.errors, f.name
            continue
        if c["required"] and not values.filled(out.data.get(f.name)):
            assert f.name in out.errors, f.name
        if not c["required"] and f.name in out.errors:
            assert values.MESSAGES["required"].en not in out.errors[f.name], f.name
        if f.computed:
            assert c["value"] == out.data.get(f.name), f.name
        if c["readonly"] and not f.computed and f.name in data and data[f.name] != base.get(
                f.name):
            assert values.MESSAGES["readonly"].en in out.errors[f.name], f.name
    return cond


@pytest.mark.parametrize("data", [
    {"immediate_action_needed": True},
    {"immediate_action_needed": True, "immediate_action": "Stopped sales"},
    {"immediate_action_needed": False, "immediate_action": "ignored"},
    {"remedy_offered": ["refund"]},
    {"remedy_offered": ["apology"], "compensation_amount": 5},
    {"decision": "rejected"}, {"decision": "partially_accepted"},
    {"phone": "", "email": ""}, {"phone": "not a phone", "email": "a@b.cn"},
    {"severity": 4, "segment": "high_value"}, {"severity": "x", "impact": "widespread"},
])
def test_conditions_agree_with_clean_on_the_complaint(data: dict[str, Any]) -> None:
    cond = agree(workflow("complaint").form, data)
    if data.get("immediate_action_needed"):
        assert cond["immediate_action"] == {"visible": True, "required": True,
                                            "readonly": False, "value": None}
    if data.get("severity") == 4:
        assert cond["needs_escalation"]["value"] is True and cond["is_vip"]["value"] is True


@pytest.mark.parametrize("outcome", [None, "reached", "unreachable", "call_back_later",
                                     "survey_link"])
def test_conditions_agree_with_clean_on_the_revisit(outcome: str | None) -> None:
    cond = agree(workflow("revisit").form, {"call_outcome": outcome, "nps": 3})
    assert cond["callback_at"]["visible"] is (outcome == "call_back_later")
    assert cond["csat"]["visible"] is (outcome in ("reached", "survey_link"))


@pytest.mark.parametrize("result", [None, 12.0])
def test_conditions_agree_with_clean_on_the_plan_target(result: float | None) -> None:
    base = {"effectiveness_target": 10.0, "effectiveness_result": result}
    cond = agree(workflow("improvement_plan").form, {"effectiveness_target": 8.0}, base)
    assert cond["effectiveness_target"]["readonly"] is (result is not None)
    assert cond["target_met"]["value"] is False  # 12 is not at most 10; nothing is not met


def test_conditions_of_rows_use_clean_paths() -> None:
    definition = form("""
        - {name: mode, type: choice, label: M, choices: [a, b]}
        - name: g
          type: group
          label: G
          fields:
            - {name: kind, type: choice, label: K, choices: [x, y]}
            - {name: why, type: text, label: W, visible_if: "kind == 'y' || mode == 'b'"}
    """)
    data = {"mode": "a", "g": [{"kind": "x"}, {"kind": "y"}]}
    cond = forms.conditions(definition, data, SCOPE)
    assert (cond["g[0].why"]["visible"], cond["g[1].why"]["visible"]) == (False, True)
    assert forms.conditions(definition, {**data, "mode": "b"}, SCOPE)["g[0].why"]["visible"]


def test_live_answers_from_what_the_browser_sent() -> None:
    wf = workflow("complaint")
    bound = render(wf.form, state=wf.states["acknowledged"], formdata=post(
        {"immediate_action_needed": "y", "severity": "5"}), scope=SCOPE)
    answer = forms.live(bound)
    assert answer["immediate_action"]["required"] and answer["needs_escalation"]["value"]
    assert forms.binding(bound).modes["immediate_action"].visible
    assert "required" in str(bound["immediate_action"]())
