"""The JSON Schema: valid draft-07, in sync with the shipped copies, agreeing with the checker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from caseloop.spec import check_texts, discover
from caseloop.spec.schema import SCHEMAS
from caseloop.spec.shape import kind_of
from caseloop.spec.source import read

from .conftest import ROOT

#: The definitions Caseloop loads (not the simulation scenarios beside them).
SHIPPED_FILES = discover([ROOT / "forms", ROOT / "workflows"])[0]


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_schema_is_valid_draft07(kind: str) -> None:
    Draft7Validator.check_schema(SCHEMAS[kind])
    assert SCHEMAS[kind]["$schema"] == "http://json-schema.org/draft-07/schema#"


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_packaged_schema_files_are_current(kind: str) -> None:
    path = ROOT / "engine" / "schemas" / f"{kind}.json"
    assert json.loads(path.read_text("utf-8")) == SCHEMAS[kind], (
        "engine/schemas is stale: run 'caseloop schema --out engine/schemas'")


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.name)
def test_shipped_files_validate_against_the_editor_schema(path: Path) -> None:
    src = read(path)
    kind = kind_of(src)
    assert kind is not None
    errors = list(Draft7Validator(SCHEMAS[kind]).iter_errors(src.data))
    assert errors == []
    modeline = path.read_text("utf-8").splitlines()[0]
    target = modeline.split("$schema=", 1)[1]
    assert (path.parent / target).resolve() == (ROOT / "engine/schemas" / f"{kind}.json")


def test_editor_schema_and_checker_agree_on_an_unknown_key() -> None:
    text = "form: f\nfields:\n  - {name: a, type: text, label: A, lable: B}\n"
    _, problems = check_texts({"f.yaml": text})
    assert [(p.code, p.line, p.col) for p in problems] == [("CL011", 3, 37)]
    assert "did you mean 'label'?" in problems[0].message
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(text)
    assert not Draft7Validator(SCHEMAS["form"]).is_valid(data)
