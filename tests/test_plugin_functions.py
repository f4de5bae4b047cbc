"""A plugin's expression functions (register_functions): checked at load time against
their declared types like built-ins, evaluated by the compiled expressions, failing at
run time like a built-in, and refused when they take a built-in's name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from caseloop import spec
from caseloop.expr import ExprError
from caseloop.plugins import Function, PluginError
from caseloop.spec.extensions import Extensions

from .test_api import error_of, make_user
from .test_cases import write_definitions
from .test_plugin_field_types import (
    DELIVERY,
    EXTENSIONS,
    FILES,
    PARCEL,
    check,
    errors,
    plugin_app,
    serving,
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from serving(tmp_path)


# -- load time ----------------------------------------------------------------------------
def test_check_refuses_a_function_no_plugin_provides_with_its_position(tmp_path: Path) -> None:
    flow = PARCEL.replace("in_service_area(postcode)", "serves(postcode)")
    plugged = plugin_app(tmp_path / "app", FILES)
    (tmp_path / "defs").mkdir()
    code, problems = check(plugged, write_definitions(tmp_path / "defs", {
        "delivery.yaml": DELIVERY, "parcel.yaml": flow}))
    assert code == 1
    assert errors(problems) == [("CL031", 23, 12, "unknown function 'serves' (known: bool, "
                                 "clamp, double, duration, filled, in_service_area, int, size, "
                                 "string, timestamp, uint)")]


@pytest.mark.parametrize(("guard", "col", "message"), [
    ("in_service_area(postcode, 1)", 12, "in_service_area() takes 1 argument, not 2"),
    ("in_service_area(share)", 28, "argument 1 of in_service_area() must be string, not int"),
    ("in_service_area(postcode) == 'yes'", 12, "cannot compare bool with string using '=='"),
    ("clamp(share, 1.0, 90) > 3", 25, "argument 2 of clamp() must be int, not double"),
])
def test_wrong_arguments_are_positioned_definition_errors(guard: str, col: int,
                                                          message: str) -> None:
    flow = PARCEL.replace('"in_service_area(postcode)"', f'"{guard}"')
    _, problems = spec.check_texts({"delivery.yaml": DELIVERY, "parcel.yaml": flow},
                                   extensions=EXTENSIONS)
    (problem,) = [p for p in problems if p.is_error]
    assert (problem.path, problem.code, problem.line, problem.col, problem.message) == (
        "parcel.yaml", "CL032", 23, col, message)


def test_without_the_plugin_the_function_is_unknown() -> None:
    plain = DELIVERY.replace("type: postcode", "type: text").replace("type: percent",
                                                                     "type: integer")
    flow = PARCEL.replace("channel: pager", "channel: sms")
    _, problems = spec.check_texts({"delivery.yaml": plain, "parcel.yaml": flow})
    assert [(p.code, p.line, p.col, p.message) for p in problems if p.is_error] == [
        ("CL031", 23, 12, "unknown function 'in_service_area' (known: bool, double, duration, "
         "filled, int, size, string, timestamp, uint)")]


# -- run time -----------------------------------------------------------------------------
def test_a_guard_calling_the_function_holds_or_fails(app: Flask) -> None:
    client, agent = app.test_client(), make_user(app, "ann", roles=["agent"])

    def case(**data: object) -> int:
        made = client.post("/api/cases", headers=agent, json={
            "workflow": "parcel", "data": {"title": "Sofa", **data}})
        assert made.status_code == 201, made.get_json()
        return int(made.get_json()["id"])

    served = client.post(f"/api/cases/{case(postcode='100081')}/transitions/serve",
                         headers=agent, json={"data": {}})
    assert served.status_code == 200, served.get_json()
    assert served.get_json()["state"] == "served"
    outside = client.post(f"/api/cases/{case(postcode='510000')}/transitions/serve",
                          headers=agent, json={"data": {}})
    assert error_of(outside, 422, "guard_failed")["message"] == (
        "We do not deliver to this postcode.")
    # No postcode: the function raises, which (as a built-in failing on an empty field)
    # makes the guard false, not the request a 500.
    empty = client.post(f"/api/cases/{case()}/transitions/serve", headers=agent,
                        json={"data": {}})
    assert error_of(empty, 422, "guard_failed")["message"] == (
        "We do not deliver to this postcode.")


def test_a_computed_value_calls_the_function() -> None:
    form = DELIVERY.replace('value: "filled(share) && share > 50"',
                            'value: "filled(share) && clamp(share, 10, 90) == 90"')
    definitions, problems = spec.check_texts({"delivery.yaml": form}, extensions=EXTENSIONS)
    assert not [p for p in problems if p.is_error]
    from caseloop.values import clean

    out = clean(definitions.forms["delivery"], {"title": "x", "share": "95"})
    assert out.ok and out.data["big_share"] is True
    out = clean(definitions.forms["delivery"], {"title": "x", "share": "50"})
    assert out.ok and out.data["big_share"] is False


def test_a_function_raising_or_returning_another_type_is_an_expression_error() -> None:
    def broken(text: str) -> int:
        raise KeyError(text)

    ext = Extensions(functions={
        "broken": Function("broken", broken, ("string",), "int"),
        "liar": Function("liar", lambda text: "seven", ("string",), "int"),
        "half": Function("half", lambda n: n // 2, ("int",), "double"),
    })
    form = ("form: f\nfields:\n  - {name: a, type: text, label: A}\n"
            "  - {name: b, type: integer, label: B, value: 'broken(a)'}\n"
            "  - {name: c, type: integer, label: C, value: 'liar(a)'}\n"
            "  - {name: d, type: decimal, label: D, value: 'half(4)'}\n")
    definitions, problems = spec.check_texts({"f.yaml": form}, extensions=ext)
    assert not [p for p in problems if p.is_error]
    fields = {f.name: f for f in definitions.forms["f"].fields}
    for name, message in (("b", "broken() failed: 'x'"),
                          ("c", "liar() returned a str, not the int it declares")):
        value = fields[name].value
        assert value is not None
        with pytest.raises(ExprError, match=message.replace("(", r"\(").replace(")", r"\)")):
            value.evaluate({"a": "x", "now": None})
    half = fields["d"].value
    assert half is not None and half.evaluate({}) == 2.0
    assert isinstance(half.evaluate({}), float)  # declared double: never an int


@pytest.mark.parametrize("name", ["filled", "size", "int", "matches", "exists", "has"])
def test_a_function_named_like_a_builtin_one_is_refused(name: str) -> None:
    with pytest.raises(PluginError, match=f"expression function '{name}', which is built in; "
                       "rename it in the plugin"):
        Extensions(functions={name: Function(name, len, ("string",), "int")})


def test_undeclarable_types_are_refused() -> None:
    with pytest.raises(PluginError, match="declares the type 'str'; use string, int"):
        Extensions(functions={"f": Function("f", len, ("str",), "int")})
