"""The standalone application: ``create_app(test_config=None)``."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, redirect, request, url_for
from werkzeug.wrappers import Response

from . import __version__
from .extension import DEFAULTS, Caseloop

__all__ = ["DEFAULTS", "create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the Caseloop application.

    Configuration comes from :data:`~caseloop.extension.DEFAULTS`, then
    ``config.py`` in the instance folder, then ``CASELOOP_*`` environment
    variables, then ``test_config``.
    """
    # No static route of the app's own: the pages serve engine/static at /assets.
    app = Flask("caseloop", instance_relative_config=True, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    # The session cookie of the pages: not readable by scripts (Flask's default), not
    # sent on cross-site subrequests, and signed sessions end 12 hours after login.
    app.config.update(SESSION_COOKIE_NAME="caseloop_session", SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12))
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(_from_environment(os.environ))
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.config["SECRET_KEY"] = app.config.get("CASELOOP_SECRET_KEY") or _instance_secret(app)
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["CASELOOP_SECURE_COOKIES"])
    Caseloop(app, cli_group=None)  # standalone: 'caseloop db upgrade', not 'caseloop caseloop …'

    @app.get("/")
    def index() -> Response | dict[str, str]:
        # Browsers go to the pages; programs get where things are instead of a bare 404.
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
            return redirect(url_for("caseloop_views.home"))
        return {"name": "caseloop", "version": __version__, "api": "/api",
                "openapi": "/api/openapi.json", "pages": url_for("caseloop_views.home")}

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
