from __future__ import annotations

import pytest

from caseloop.app import DEFAULTS, _from_environment, create_app


def test_defaults_and_test_config() -> None:
    assert create_app().config["CASELOOP_PHONE_REGION"] == DEFAULTS["CASELOOP_PHONE_REGION"]
    app = create_app({"CASELOOP_PHONE_REGION": "US", "TESTING": True})
    assert app.config["CASELOOP_PHONE_REGION"] == "US"
    assert app.testing


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASELOOP_PHONE_REGION", "DE")
    monkeypatch.setenv("CASELOOP_DEFINITIONS", "a/forms:b/workflows")
    app = create_app()
    assert app.config["CASELOOP_PHONE_REGION"] == "DE"
    assert app.config["CASELOOP_DEFINITIONS"] == ["a/forms", "b/workflows"]


def test_environment_values_are_json_when_they_parse() -> None:
    env = {"CASELOOP_DEFINITIONS": '["x", "y"]', "CASELOOP_N": "3", "OTHER": "1"}
    assert _from_environment(env) == {"CASELOOP_DEFINITIONS": ["x", "y"], "CASELOOP_N": 3}


def test_the_root_says_where_the_api_is(client: object) -> None:
    from flask.testing import FlaskClient

    assert isinstance(client, FlaskClient)
    response = client.get("/")
    assert response.status_code == 200
    assert response.json is not None and response.json["openapi"] == "/api/openapi.json"
