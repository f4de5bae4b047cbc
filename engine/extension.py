"""``Caseloop``: the Flask extension that mounts the engine into an application.

Standalone, ``create_app`` uses it; embedded, a host application does::

    db = SQLAlchemy()
    caseloop = Caseloop(db=db, url_prefix="/care", user_loader=load_actor)
    caseloop.init_app(app)

State lives in ``app.extensions["caseloop"]``, never on the extension
object, so one ``Caseloop`` may serve several apps (tests make many).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy
from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from . import plugins
from .cases import Actor, Cases
from .crm import connections as crm_connections
from .crm.connections import Connections
from .registry import Registry
from .spec import DefinitionError

#: Settings read by :meth:`Caseloop.init_app`, with their defaults. Each may also
#: come from an environment variable of the same name (see ``create_app``).
DEFAULTS: dict[str, Any] = {
    # Files or folders holding form, workflow and calendar definitions.
    "CASELOOP_DEFINITIONS": ["forms", "workflows"],
    # Region assumed for phone numbers written without +country.
    "CASELOOP_PHONE_REGION": "CN",
    # Database URL; empty means a SQLite file in the instance folder.
    "CASELOOP_DATABASE_URL": "",
    # Signs sessions and CSRF tokens; empty means a random key kept in the
    # instance folder (set it, the same, on every host of a cluster).
    "CASELOOP_SECRET_KEY": "",
    # Roles that see every case (others see their teams' and their own).
    "CASELOOP_SEE_ALL_ROLES": ["admin", "manager"],
    # Roles that may give any case they see to anyone who works its workflow.
    "CASELOOP_ASSIGN_ROLES": ["supervisor", "manager", "admin"],
    # Roles that may see the job queue and retry or discard dead letters.
    "CASELOOP_ADMIN_ROLES": ["admin"],
    # Largest request body accepted by the API, in bytes.
    "CASELOOP_MAX_BODY": 1024 * 1024,
    # Page size of list endpoints (and the largest a client may ask for).
    "CASELOOP_PAGE_SIZE": 50,
    # The inbox's "due soon" tab: open cases whose deadline is within this many hours.
    "CASELOOP_DUE_SOON_HOURS": 24,
    "CASELOOP_MAX_PAGE_SIZE": 200,
    # Jobs: seconds a claim holds (another worker retakes the job after it), longest
    # a handler may run, pause between polls when nothing is due; whether 'serve'
    # runs a worker in the same process.
    "CASELOOP_JOB_LEASE": 300,
    "CASELOOP_JOB_TIME_LIMIT": 60,
    "CASELOOP_WORKER_POLL": 1.0,
    "CASELOOP_SERVE_WORKER": True,
    # Notifications: SMTP server (empty: emails are written to the mail log only),
    # sender, and the language of customers whose case does not say.
    "CASELOOP_SMTP_URL": "",
    "CASELOOP_MAIL_FROM": "caseloop@localhost",
    "CASELOOP_DEFAULT_LANGUAGE": "zh",
    # The address customers reach the service at: survey links start with it.
    "CASELOOP_PUBLIC_URL": "http://127.0.0.1:5000",
    # Pages: the time zone times are shown in (IANA name); failed logins allowed per
    # user name and address within the window (seconds) before logins are refused.
    "CASELOOP_TIMEZONE": "Asia/Shanghai",
    "CASELOOP_LOGIN_ATTEMPTS": 5,
    "CASELOOP_LOGIN_WINDOW": 900,
    # The public intake page: cases one address may send per workflow within the
    # window (seconds) before it is asked to wait.
    "CASELOOP_INTAKE_ATTEMPTS": 5,
    "CASELOOP_INTAKE_WINDOW": 600,
    # Session and language cookies only over HTTPS (set it when served over HTTPS).
    "CASELOOP_SECURE_COOKIES": False,
    # Attachments: the folder they are stored in (empty: <instance>/uploads, never
    # under static), the largest file in bytes (a field's max_size may be smaller),
    # and the largest request a page accepts (larger: a 413 page).
    "CASELOOP_UPLOADS": "",
    "CASELOOP_MAX_UPLOAD": 20 * 1024 * 1024,
    "CASELOOP_MAX_PAGE_BODY": 100 * 1024 * 1024,
    # Plugins: load the installed ones (entry points of the 'caseloop' group); more
    # by import name; CRM connectors by name with their settings ({"$env": NAME} for
    # secrets), or the path of a YAML file holding them.
    "CASELOOP_LOAD_PLUGINS": True,
    "CASELOOP_PLUGINS": [],
    "CASELOOP_CRM": {},
    # Metrics: roles that may see them (API and dashboard), and the sample size below
    # which an estimate is flagged as small.
    "CASELOOP_METRICS_ROLES": ["supervisor", "manager", "admin"],
    "CASELOOP_METRICS_MINIMUM": 30,
    # Roles that may use the designer (edit, preview, simulate and publish definitions).
    "CASELOOP_DESIGNER_ROLES": ["designer"],
}

UserLoader = Callable[[], Actor | None]


@dataclass
class State:
    """What the extension keeps per application."""

    db: SQLAlchemy
    registry: Registry
    user_loader: UserLoader | None
    url_prefix: str
    plugins: pluggy.PluginManager
    load_error: DefinitionError | None = None
    #: The configured CRM connections (None: none configured, or ``crm_error``).
    crm: Connections | None = None
    #: Why CASELOOP_CRM cannot be used; CRM jobs wait (retry) until it is fixed.
    crm_error: str | None = None
    #: Host users already given a row (``adopt``), by what identifies them.
    adopted: dict[tuple[Any, ...], Actor] = field(default_factory=dict)

    def cases(self) -> Cases:
        return Cases(self.db.session, self.registry,
                     region=current_app.config["CASELOOP_PHONE_REGION"],
                     assign_roles=frozenset(current_app.config["CASELOOP_ASSIGN_ROLES"]),
                     zone=current_app.config["CASELOOP_TIMEZONE"])


class Caseloop:
    """The Caseloop engine, JSON API and pages as a Flask extension.

    :param db: the host's Flask-SQLAlchemy instance; Caseloop makes its own when
        none is given (reading ``CASELOOP_DATABASE_URL``).
    :param url_prefix: where the API (``<prefix>/api``) and pages are mounted.
    :param user_loader: returns the :class:`~caseloop.cases.Actor` of the request
        from the host's login; without it the API accepts bearer tokens only.
    :param cli_group: the commands go under ``flask caseloop …`` so that a host's
        own ``db`` command survives; ``None`` puts them at the top level.
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None,
                 url_prefix: str = "", user_loader: UserLoader | None = None,
                 cli_group: str | None = "caseloop") -> None:
        self.db = db
        self.url_prefix = url_prefix.rstrip("/")
        self.user_loader = user_loader
        self.cli_group = cli_group
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if "caseloop" in app.extensions:
            raise RuntimeError("Caseloop is already registered on this app; create the app "
                               "anew, or call init_app once.")
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        db = self.db
        if db is None:
            db = SQLAlchemy()
            app.config.setdefault("SQLALCHEMY_DATABASE_URI", database_url(app))
            db.init_app(app)
        with app.app_context():
            _sqlite_pragmas(db.engine)
        pm = plugins.manager(load_entry_points=_flag(app.config["CASELOOP_LOAD_PLUGINS"]),
                             extra=app.config["CASELOOP_PLUGINS"])
        registry = Registry(app.config["CASELOOP_DEFINITIONS"], extensions=plugins.extensions(pm))
        state = State(db, registry, self.user_loader, self.url_prefix, pm)
        try:
            registry.load()
        except DefinitionError as exc:
            # The CLI ('caseloop check') must still work; requests get a clear 503.
            state.load_error = exc
        _connect_crms(app, state)
        app.extensions["caseloop"] = state

        from . import api, cli, views

        app.register_blueprint(api.blueprint, url_prefix=f"{self.url_prefix}/api")
        api.json_errors_under(app, f"{self.url_prefix}/api")
        views.init_app(app, self.url_prefix)
        cli.init_app(app, self.cli_group)


def _connect_crms(app: Flask, st: State) -> None:
    """CASELOOP_CRM checked once at start-up; a mistake is kept as ``crm_error``
    (shown by 'caseloop plugins', the hooks endpoint and the jobs' errors) rather
    than stopping pages and API that do not need a CRM."""
    try:
        classes = plugins.connectors(st.plugins)
        config = crm_connections.load(app.config["CASELOOP_CRM"], classes)
    except (crm_connections.CRMSetupError, plugins.PluginError) as exc:
        st.crm_error = str(exc)
        return
    if config:
        with app.app_context():
            st.crm = crm_connections.Connections(st.db.engine, classes, config)


def _flag(value: Any) -> bool:
    # From the environment a flag arrives as text ("0", "false", "off").
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def state() -> State:
    """The extension state of the current app."""
    found: State = current_app.extensions["caseloop"]
    return found


def database_url(app: Flask) -> str:
    url: str = app.config.get("CASELOOP_DATABASE_URL") or ""
    if url:
        # 'postgresql://' means psycopg2 to SQLAlchemy; Caseloop uses psycopg 3.
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                url = "postgresql+psycopg://" + url[len(plain):]
        return url
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "caseloop.sqlite3")


def _sqlite_pragmas(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL + NORMAL: readers never block the writer; a power cut may lose the
        # last commits but never corrupts the file. FULL halves write throughput.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()
