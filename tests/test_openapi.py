"""/api/openapi.json: a valid OpenAPI 3 document covering every API route, under the prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from openapi_spec_validator import validate

from caseloop.extension import Caseloop

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = [str(ROOT / "forms"), str(ROOT / "workflows")]
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def routes(app: Flask, prefix: str) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every rule of the API blueprint."""
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("caseloop_api."):
            continue
        assert rule.rule.startswith(f"{prefix}/api/")
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out.update((path, m.lower()) for m in (rule.methods or set()) & METHODS)
    return out


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in document["paths"].items() for method in ops
            if method.upper() in METHODS}


def test_the_document_is_valid_openapi_3_and_covers_every_route(app: Flask) -> None:
    resp = app.test_client().get("/api/openapi.json")  # no token needed
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    document = resp.get_json()
    validate(document)
    assert document["openapi"].startswith("3.")
    assert routes(app, "") == documented(document)
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http",
                                                                   "scheme": "bearer"}
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/api/openapi.json"]["get"]["security"] == []


def test_every_operation_documents_its_errors_and_path_parameters(app: Flask) -> None:
    document = app.test_client().get("/api/openapi.json").get_json()
    for path, ops in document["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, method)
            if op.get("security") == []:  # public: the document, survey links, CRM hooks
                # No token to be missing; a CRM webhook's 401 is its signature refused.
                assert "401" not in op["responses"] or "signature" in \
                    op["responses"]["401"]["description"], (path, method)
            else:
                assert "401" in op["responses"], (path, method)
    transition = document["paths"]["/api/cases/{case_id}/transitions/{trigger}"]["post"]
    assert {"400", "403", "404", "409", "413", "422"} <= set(transition["responses"])
    headers = {p["name"] for p in transition["parameters"] if p["in"] == "header"}
    assert headers == {"If-Match"}
    create = document["paths"]["/api/cases"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    listing = document["paths"]["/api/cases"]["get"]
    assert {"workflow", "state", "assignee", "customer", "open", "limit", "cursor"} <= {
        p["name"] for p in listing["parameters"] if p["in"] == "query"}
    survey = document["paths"]["/api/surveys/{token}"]
    assert {"404", "410"} <= set(survey["get"]["responses"])
    assert {"404", "410", "422"} <= set(survey["post"]["responses"])
    assert survey["get"]["security"] == survey["post"]["security"] == []
    schemas = document["components"]["schemas"]
    assert {"Case", "CaseCreate", "Error", "ActionList", "EventPage", "Workflow"} <= set(schemas)


@pytest.mark.parametrize("prefix", ["/care", "/tools/support"])
def test_the_document_honours_the_url_prefix(tmp_path: Path, prefix: str) -> None:
    host = Flask("host")
    host.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'h.db'}",
                       CASELOOP_DEFINITIONS=DEFINITIONS)
    db = SQLAlchemy()
    db.init_app(host)
    Caseloop(db=db, url_prefix=prefix + "/").init_app(host)  # a trailing slash is forgiven
    client = host.test_client()
    assert client.get("/api/openapi.json").status_code == 404
    resp = client.get(f"{prefix}/api/openapi.json")
    assert resp.status_code == 200
    document = resp.get_json()
    validate(document)
    assert all(path.startswith(f"{prefix}/api/") for path in document["paths"])
    assert routes(host, prefix) == documented(document)
    with host.app_context():
        db.engine.dispose()


def test_the_document_honours_the_script_root(app: Flask) -> None:
    """Behind a proxy that mounts the app at /support (SCRIPT_NAME)."""
    resp = app.test_client().get("/api/openapi.json",
                                 environ_overrides={"SCRIPT_NAME": "/support"})
    document = resp.get_json()
    assert "/support/api/cases" in document["paths"]
    validate(document)
