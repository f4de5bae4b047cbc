"""The CRM connections an application has: ``CASELOOP_CRM`` read, secrets
resolved, checked against each connector's schema, connectors built once.

``CASELOOP_CRM`` maps a connector name to its settings (or is the path of a
YAML file holding that mapping). Caseloop keeps a few keys for itself (see
:data:`OWN_KEYS`); the rest go to the connector. ``{"$env": "NAME"}`` anywhere
reads the environment, so secrets never sit in configuration files.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from ruamel.yaml import YAML
from sqlalchemy.engine import Engine

from ..models import utcnow
from .contract import Connector, http_client
from .store import DatabaseTokens

#: Settings Caseloop reads itself; they are not passed to the connector.
OWN_KEYS = {
    "push": "push cases and activities to this CRM (default true)",
    "profile": "map the CRM's segment/value_tier/lifecycle_stage values to yours",
    "status": "CRM status per workflow state (else the connector's default per category)",
    "subject_fields": "form fields whose first filled value is the CRM case's subject",
    "description_fields": "form fields joined into the CRM case's description",
    "inbound": "open cases from CRM tickets: {workflow, fields: {crm_key: form_field}}",
    "poll_every": "seconds between polls for changes (0: no polling)",
    "subscribe_every": "seconds between webhook subscription renewals (0: never)",
    "lookup_timeout": "seconds the intake prefill waits for the CRM (default 2)",
}


class CRMSetupError(Exception):
    """``CASELOOP_CRM`` cannot be used as it is; the message says where and why."""


@dataclass
class Connection:
    """One configured CRM: its connector and Caseloop's settings for it."""

    name: str
    connector: Connector
    settings: Mapping[str, Any]
    http: httpx.Client
    lookup: httpx.Client
    tokens: DatabaseTokens
    #: What the connector was given (its own settings, not Caseloop's).
    connector_settings: Mapping[str, Any]

    def setting(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    @property
    def capabilities(self) -> frozenset[str]:
        return self.connector.capabilities


@dataclass
class Connections:
    """The connections of one app, built lazily (a worker that never pushes never
    builds one) and once per process."""

    engine: Engine
    classes: Mapping[str, Any]
    config: Mapping[str, Mapping[str, Any]]
    clock: Callable[[], dt.datetime] = utcnow
    _built: dict[str, Connection] = field(default_factory=dict)
    _lookups: dict[str, Connector] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def names(self) -> list[str]:
        return sorted(self.config)

    def get(self, name: str) -> Connection:
        with self._lock:
            if name not in self._built:
                self._built[name] = self._build(name)
            return self._built[name]

    def _build(self, name: str) -> Connection:
        if name not in self.config:
            raise CRMSetupError(f"no CRM '{name}' is configured (CASELOOP_CRM has: "
                                f"{', '.join(self.names()) or 'none'})")
        settings = dict(self.config[name])
        cls = self.classes[settings.pop("connector", name)]
        own = {k: settings.pop(k) for k in list(settings) if k in OWN_KEYS}
        timeout = float(own.get("lookup_timeout", 2))
        http, lookup = http_client(), http_client(connect=timeout, read=timeout)
        tokens = DatabaseTokens(self.engine, name, clock=self.clock)
        connector = cls(settings, http, tokens)
        tokens.connector = connector
        return Connection(name, connector, own, http, lookup, tokens, settings)

    def lookup_connector(self, name: str) -> Connector:
        """The connector again, on the short-timeout client: for calls made while a
        person waits (intake prefill), never for pushes."""
        conn = self.get(name)
        with self._lock:
            if name not in self._lookups:
                cls: Any = type(conn.connector)
                self._lookups[name] = cls(conn.connector_settings, conn.lookup, conn.tokens)
            return self._lookups[name]

    def close(self) -> None:
        for conn in self._built.values():
            conn.http.close()
            conn.lookup.close()


def load(value: Any, classes: Mapping[str, Any], *, environ: Mapping[str, str] = os.environ
         ) -> dict[str, dict[str, Any]]:
    """``CASELOOP_CRM`` as a checked mapping: file read, secrets resolved, each
    connector's settings valid against its schema. Raises CRMSetupError."""
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not str(value).strip():
            return {}
        try:
            value = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CRMSetupError(f"CASELOOP_CRM: cannot read {path}: {exc.strerror}") from None
        except Exception as exc:  # noqa: BLE001 - ruamel's errors carry the position
            raise CRMSetupError(f"CASELOOP_CRM: {path} is not valid YAML: {exc}") from None
    if value in (None, {}):
        return {}
    if not isinstance(value, Mapping):
        raise CRMSetupError("CASELOOP_CRM must map connector names to their settings, e.g. "
                            '{"hubspot": {"access_token": {"$env": "HUBSPOT_TOKEN"}}}')
    out: dict[str, dict[str, Any]] = {}
    for name, settings in value.items():
        where = f"CASELOOP_CRM.{name}"
        if not isinstance(settings, Mapping):
            raise CRMSetupError(f"{where}: expected a mapping of settings")
        resolved = _resolve(settings, where, environ)
        kind = resolved.get("connector", name)
        if kind not in classes:
            raise CRMSetupError(f"{where}: no connector '{kind}' is installed (installed: "
                                f"{', '.join(sorted(classes)) or 'none'}); pip install the "
                                "plugin, e.g. pip install caseloop-" + str(kind))
        own = {k for k in resolved if k in OWN_KEYS or k == "connector"}
        theirs = {k: v for k, v in resolved.items() if k not in own}
        schema = getattr(classes[kind], "config_schema", None) or {}
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(theirs),
                        key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            at = ".".join(str(p) for p in first.absolute_path)
            raise CRMSetupError(f"{where}{'.' + at if at else ''}: {first.message}")
        out[str(name)] = resolved
    return out


def _resolve(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"$env"}:
            name = str(value["$env"])
            if name not in environ:
                raise CRMSetupError(f"{where}: the environment variable {name} is not set")
            return environ[name]
        return {str(k): _resolve(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    return value
