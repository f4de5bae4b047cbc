"""A plugin's field types (register_field_types) end to end: `caseloop check`, the
JSON API's validation and stored values, expressions over them, the pages' input,
the schema of the install, and old versions rebuilt with the same plugins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from caseloop import plugins, spec
from caseloop.extension import state
from caseloop.forms import form_class
from caseloop.plugins import FieldType, PluginError
from caseloop.registry import Registry
from caseloop.spec.extensions import Extensions
from caseloop.spec.schema import SCHEMAS

from .conftest import make_app
from .plugins_fixture import example_plugin
from .test_api import error_of, make_user
from .test_cases import dispose, write_definitions

PLUGIN = example_plugin.NAME

DELIVERY = """\
form: delivery
fields:
  - name: title
    type: text
    label: {en: Title, zh: 标题}
  - name: postcode
    type: postcode
    label: {en: Postcode, zh: 邮编}
  - name: share
    type: percent
    label: {en: Share, zh: 比例}
  - name: big_share
    type: boolean
    label: {en: Big share, zh: 大份额}
    value: "filled(share) && share > 50"
  - name: pager
    type: text
    label: {en: Pager, zh: 寻呼机}
"""

PARCEL = """\
workflow: parcel
form: delivery
roles: [agent]
start: [agent]
states:
  open:
    fields: {default: editable}
  served:
    fields: {default: editable}
    on_enter:
      - notify:
          to: [customer]
          channel: pager
          message: {en: We serve your area, zh: 我们服务您的地区}
  closed:
    final: true
transitions:
  - trigger: serve
    from: open
    to: served
    allow: [agent]
    guard:
      if: "in_service_area(postcode)"
      message: {en: We do not deliver to this postcode., zh: 我们不配送到此邮编。}
  - trigger: close
    from: "*"
    to: closed
    allow: [agent]
"""

FILES = {"delivery.yaml": DELIVERY, "parcel.yaml": PARCEL}
#: What the example plugin adds, as the registry gets it.
EXTENSIONS = plugins.extensions(plugins.manager(load_entry_points=False, extra=[PLUGIN]))


def plugin_app(tmp_path: Path, files: dict[str, str] | None = None, *,
               with_plugin: bool = True) -> Flask:
    """An app on SQLite with ``files`` (the parcel workflow by default) and the plugin."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    folder = write_definitions(tmp_path, files or FILES)
    return make_app(f"sqlite:///{tmp_path / 'caseloop.sqlite3'}", tmp_path,
                    CASELOOP_DEFINITIONS=[str(folder)],
                    CASELOOP_PLUGINS=[PLUGIN] if with_plugin else [])


def serving(tmp_path: Path) -> Iterator[Flask]:
    """The parcel app with the plugin, disposed of afterwards (the modules' ``app``)."""
    app = plugin_app(tmp_path)
    assert app.extensions["caseloop"].load_error is None, app.extensions["caseloop"].load_error
    yield app
    dispose(app)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from serving(tmp_path)


def check(app: Flask, folder: Path) -> tuple[int, list[dict[str, Any]]]:
    """`caseloop check --format json FOLDER` in ``app``: exit code and problems."""
    result = app.test_cli_runner().invoke(args=["check", "--format", "json", str(folder)])
    return result.exit_code, json.loads(result.stdout)["problems"]


def errors(problems: list[dict[str, Any]]) -> list[tuple[str, int, int, str]]:
    return [(p["code"], p["line"], p["col"], p["message"]) for p in problems
            if p["severity"] == "error"]


# -- caseloop check ---------------------------------------------------------------------
def test_check_knows_the_plugins_types_only_when_the_plugin_is_installed(
        tmp_path: Path) -> None:
    folder = write_definitions(tmp_path, FILES)
    bare = plugin_app(tmp_path / "bare", FILES, with_plugin=False)
    code, problems = check(bare, folder)
    assert code == 1
    found = errors(problems)
    assert [f[:3] for f in found] == [("CL014", 7, 11), ("CL014", 10, 11), ("CL014", 13, 20)]
    assert found[0][3].startswith("fields[1].type: unknown value 'postcode' (known: boolean, ")
    assert found[1][3].startswith("fields[2].type: unknown value 'percent' (known: boolean, ")
    assert found[2][3] == ("states.served.on_enter[0].notify.channel: unknown value 'pager' "
                           "(known: email, inbox, sms)")
    dispose(bare)

    app = plugin_app(tmp_path / "plugged", FILES)
    assert check(app, folder) == (0, [])
    (tmp_path / "typo").mkdir()
    typo = write_definitions(tmp_path / "typo", {"delivery.yaml": DELIVERY.replace(
        "type: postcode", "type: postcod")})
    code, problems = check(app, typo)
    assert code == 1
    assert errors(problems) == [("CL014", 7, 11, "fields[1].type: unknown value 'postcod' "
                                 "(did you mean 'postcode'?)")]
    dispose(app)


def test_keys_of_other_types_and_a_default_the_plugin_refuses_are_positioned_errors() -> None:
    text = DELIVERY.replace("    type: postcode\n", "    type: postcode\n    min_length: 3\n"
                            "    default: '12'\n")
    _, problems = spec.check_texts({"delivery.yaml": text}, extensions=EXTENSIONS)
    found = {(p.code, p.line, p.col, p.message) for p in problems if p.is_error}
    assert ("CL016", 8, 5, "'min_length' does not apply to a postcode field (only to text, "
            "textarea, email)") in found
    assert ("CL014", 9, 14, "default '12' does not fit a postcode field: Enter a six-digit "
            "postcode.") in found


def test_expressions_see_the_declared_type() -> None:
    wrong = DELIVERY.replace("share > 50", "share > 'half'")
    _, problems = spec.check_texts({"delivery.yaml": wrong}, extensions=EXTENSIONS)
    (problem,) = [p for p in problems if p.is_error]
    assert (problem.code, problem.line) == ("CL032", 15)
    assert problem.message == "cannot compare int with string using '>'"
    definitions, problems = spec.check_texts({"delivery.yaml": DELIVERY}, extensions=EXTENSIONS)
    assert not [p for p in problems if p.is_error]
    form = definitions.forms["delivery"]
    assert [(f.name, f.plugin.name if f.plugin else None) for f in form.fields][1:3] == [
        ("postcode", "postcode"), ("share", "percent")]


# -- the API ------------------------------------------------------------------------------
def test_the_api_cleans_values_through_the_plugin_and_refuses_with_its_message(
        app: Flask) -> None:
    client, agent = app.test_client(), make_user(app, "ann", roles=["agent"])
    bad = client.post("/api/cases", headers=agent, json={"workflow": "parcel", "data": {
        "title": "Sofa", "postcode": "12 34", "share": "140"}})
    assert error_of(bad, 422, "invalid")["fields"] == {
        "postcode": ["Enter a six-digit postcode."],
        "share": ["A percentage goes from 0 to 100."]}
    listed = client.post("/api/cases", headers=agent, json={"workflow": "parcel", "data": {
        "title": "Sofa", "postcode": ["100081"]}})
    assert error_of(listed, 422, "invalid")["fields"] == {"postcode": ["Enter a valid value."]}

    made = client.post("/api/cases", headers=agent, json={"workflow": "parcel", "data": {
        "title": "Sofa", "postcode": " 100 081 ", "share": "60%"}})
    assert made.status_code == 201, made.get_json()
    # Stored as the plugin cleaned it; the computed field read it as an int.
    assert made.get_json()["data"] == {"title": "Sofa", "postcode": "100081", "share": 60,
                                       "big_share": True}
    described = client.get("/api/workflows/parcel", headers=agent).get_json()
    assert [f["type"] for f in described["form"]["fields"]][1:3] == ["postcode", "percent"]


def test_the_page_renders_the_input_the_plugin_asks_for(app: Flask) -> None:
    with app.app_context():
        wf = state().registry.workflow("parcel")
        assert wf is not None
        form = form_class(wf.form, "en")()
        assert 'type="number"' in str(form["share"])
        assert 'type="text"' in str(form["postcode"])
        assert form["postcode"].description == "Six digits."  # the type's help


# -- schema, versions, clashes -----------------------------------------------------------
def test_the_schema_of_the_install_lists_the_plugins_types(app: Flask) -> None:
    runner = app.test_cli_runner()
    form = json.loads(runner.invoke(args=["schema", "form"]).output)
    enum = form["definitions"]["field"]["properties"]["type"]["enum"]
    assert enum[-2:] == ["percent", "postcode"]
    rows = form["definitions"]["group_fields"]["items"]["properties"]["type"]["enum"]
    assert rows == enum
    workflow = json.loads(runner.invoke(args=["schema", "workflow"]).output)
    notify = (workflow["properties"]["states"]["additionalProperties"]["properties"]
              ["on_enter"]["items"]["properties"]["notify"]["properties"]["channel"])
    assert notify["enum"] == ["inbox", "email", "sms", "pager"]
    builtin = json.loads(runner.invoke(args=["schema", "--builtin", "form"]).output)
    assert builtin == SCHEMAS["form"]  # what engine/schemas/ holds, plugins or not
    assert "postcode" not in SCHEMAS["form"]["definitions"]["field"]["properties"]["type"]["enum"]


def test_an_old_version_is_rebuilt_with_the_same_plugins(app: Flask) -> None:
    with app.app_context():
        st = state()
        wf = st.registry.workflow("parcel")
        assert wf is not None
        fresh = Registry(st.registry.paths, extensions=st.registry.extensions)  # no memory
        rebuilt = fresh.pinned("parcel", wf.version, st.db.session)
        assert rebuilt is not wf and rebuilt.version == wf.version
        postcode = rebuilt.form.field("postcode")
        assert postcode is not None and postcode.plugin is not None
        assert rebuilt.transitions[0].guard is not None


def test_a_type_named_like_a_builtin_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="field type 'email', which is built in"):
        Extensions(field_types={"email": FieldType("email", str)})
    with pytest.raises(PluginError, match="expr_type 'float'; use one of string, int"):
        Extensions(field_types={"ratio": FieldType("ratio", float, expr_type="float")})
    with pytest.raises(PluginError, match="not a valid name"):
        Extensions(field_types={"Post": FieldType("Post", str)})


def test_a_plugin_cleaning_into_another_type_is_a_plugin_error() -> None:
    odd = Extensions(field_types={"code": FieldType("code", lambda v: 42)})
    definitions, _ = spec.check_texts({"f.yaml": "form: f\nfields:\n  - {name: c, type: code, "
                                       "label: C}\n"}, extensions=odd)
    from caseloop.values import clean

    with pytest.raises(PluginError, match="cleaned 'x' into a int, not the string"):
        clean(definitions.forms["f"], {"c": "x"})
