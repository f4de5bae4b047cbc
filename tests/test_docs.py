"""Keep the README honest: codes, settings, types, actions and commands it documents."""

from __future__ import annotations

import re

import pytest

from caseloop.app import DEFAULTS
from caseloop.spec.actions import ACTIONS
from caseloop.spec.forms import ONLY_FOR
from caseloop.spec.problems import CODES
from caseloop.spec.schema import FIELD_TYPES, FORM

from .conftest import ROOT

README = (ROOT / "README.md").read_text("utf-8")


def test_every_problem_code_is_documented_with_its_severity() -> None:
    rows = dict(re.findall(r"^\| (CL\d{3}) \| (error|warning) \|", README, re.M))
    assert rows == {code: c.severity.value for code, c in CODES.items()}


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_setting_is_documented(key: str) -> None:
    assert re.search(rf"^\| `{key}` \|", README, re.M), f"{key} missing from README"


def test_every_field_type_is_documented() -> None:
    table = README.split("Field types and the type an expression sees", 1)[1]
    for ftype in FIELD_TYPES:
        assert f"`{ftype}`" in table, ftype


def test_every_field_key_is_documented() -> None:
    table = README.split("Field keys:", 1)[1].split("Field types and", 1)[0]
    keys = set(FORM["definitions"]["field"]["properties"]) | set(ONLY_FOR)
    missing = [k for k in sorted(keys) if f"`{k}`" not in table]
    assert missing == []


def test_every_action_is_documented() -> None:
    for action in ACTIONS:
        assert re.search(rf"^\| `{action}` \|", README, re.M), action


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", README, re.S)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert test_command in ci.splitlines()
