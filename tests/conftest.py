from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from caseloop.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "forms", ROOT / "workflows"]


@pytest.fixture
def app() -> Flask:
    return create_app({"TESTING": True, "CASELOOP_DEFINITIONS": [str(p) for p in SHIPPED]})


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()
