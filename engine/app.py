"""The standalone application: ``create_app(test_config=None)``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import __version__
from .extension import DEFAULTS, Caseloop

__all__ = ["DEFAULTS", "create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the Caseloop application.

    Configuration comes from :data:`~caseloop.extension.DEFAULTS`, then
    ``config.py`` in the instance folder, then ``CASELOOP_*`` environment
    variables, then ``test_config``.
    """
    app = Flask("caseloop", instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(_from_environment(os.environ))
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.config["SECRET_KEY"] = app.config.get("CASELOOP_SECRET_KEY") or _instance_secret(app)
    Caseloop(app, cli_group=None)

    @app.get("/")
    def index() -> dict[str, str]:
        # Until the pages land, the root says where things are instead of a bare 404.
        return {"name": "caseloop", "version": __version__, "api": "/api",
                "openapi": "/api/openapi.json"}
  # standalone: 'caseloop db upgrade', not 'caseloop caseloop …'
    return app


def _instance_secret(app: Flask) -> str:
    """A random key made once and kept (mode 0600) in the instance folder."""
    path = os.path.join(app.instance_path, "secret_key")
    if not os.path.exists(path):
        os.makedirs(app.instance_path, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(os.urandom(32).hex())
        try:
            os.link(tmp, path)  # atomic: the first process wins, the others read its key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


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
