"""The standalone application: ``create_app(test_config=None)``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

#: Every setting Caseloop reads, with its default. Each may also be set by an
#: environment variable of the same name.
DEFAULTS: dict[str, Any] = {
    # Files or folders holding form, workflow and calendar definitions.
    "CASELOOP_DEFINITIONS": ["forms", "workflows"],
    # Region assumed for phone numbers written without +country.
    "CASELOOP_PHONE_REGION": "CN",
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the Caseloop application.

    Configuration comes from :data:`DEFAULTS`, then ``config.py`` in the
    instance folder, then ``CASELOOP_*`` environment variables, then
    ``test_config``.
    """
    app = Flask("caseloop", instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(_from_environment(os.environ))
    if test_config is not None:
        app.config.from_mapping(test_config)

    from . import cli

    cli.init_app(app)
    return app


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CASELOOP_*`` variables; JSON values (lists, numbers) are decoded,
    anything else is kept as text. ``CASELOOP_DEFINITIONS`` may also be a
    ``os.pathsep``-separated list of paths."""
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith("CASELOOP_"):
            continue
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if key == "CASELOOP_DEFINITIONS" and isinstance(value, str):
            value = [p for p in value.split(os.pathsep) if p]
        out[key] = value
    return out
