"""The loaded definitions, every version cases are pinned to, and their machines.

The registry loads the definition files once (and again only when their
content changes), records every new version in the database, and hands out
the workflow version a case is pinned to, rebuilding an old version from the
files stored with it. Machines are built once per version and cached here:
nothing on the request path reads YAML or builds a machine.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select, tuple_
from transitions import Machine

from . import machine as machines
from . import spec
from .models import DbSession, DefinitionVersion
from .spec import DefinitionError, Definitions, Extensions, Workflow
from .spec.extensions import NONE


class UnknownVersion(LookupError):
    """A case is pinned to a version this database does not hold."""


class Registry:
    """``extensions``: what the app's plugins add to the definition language; the same
    for every version, current or rebuilt."""

    def __init__(self, paths: Sequence[str | Path], *, extensions: Extensions = NONE) -> None:
        self.paths = list(paths)
        self.extensions = extensions
        self.current = Definitions()
        self._versions: dict[tuple[str, str], Workflow] = {}
        self._machines: dict[str, Machine] = {}
        self._lock = threading.Lock()

    def load(self) -> Definitions:
        """(Re)load the files; raises :class:`DefinitionError` listing every problem."""
        definitions = spec.load(self.paths, extensions=self.extensions)
        with self._lock:
            self.current = definitions
            for wf in definitions.workflows.values():
                self._versions.setdefault((wf.name, wf.version), wf)
        return definitions

    def workflow(self, name: str) -> Workflow | None:
        """The current version of a workflow."""
        return self.current.workflows.get(name)

    def pinned(self, name: str, version: str, session: DbSession) -> Workflow:
        """The version a case is pinned to, from memory or rebuilt from the database."""
        found = self._versions.get((name, version))
        if found is not None:
            return found
        row = session.execute(select(DefinitionVersion).where(
            DefinitionVersion.kind == "workflow", DefinitionVersion.name == name,
            DefinitionVersion.version == version)).scalar_one_or_none()
        if row is None:
            raise UnknownVersion(f"workflow '{name}' version {version} is not recorded")
        definitions, problems = spec.check_texts(row.bundle, extensions=self.extensions)
        wf = definitions.workflows.get(name)
        if wf is None or wf.version != version:
            raise DefinitionError(problems)
        with self._lock:
            self._versions[(name, version)] = wf
        return wf

    def machine(self, wf: Workflow) -> Machine:
        found = self._machines.get(wf.version)
        if found is None:
            with self._lock:
                found = self._machines.get(wf.version)
                if found is None:
                    found = self._machines[wf.version] = machines.build(wf)
        return found

    def snapshot(self) -> dict[str, str]:
        """Every current file, by path: enough to rebuild any current version."""
        d = self.current
        files = {f.path: f.source for f in d.forms.values()}
        files.update({w.path: w.source for w in d.workflows.values()})
        files.update({c.path: c.source for c in d.calendars.values()})
        return dict(sorted(files.items()))

    def record(self, session: DbSession) -> list[DefinitionVersion]:
        """Store the current versions not yet in the database (caller commits)."""
        d = self.current
        items = [("form", f.name, f.version, f.path) for f in d.forms.values()] + [
            ("workflow", w.name, w.version, w.path) for w in d.workflows.values()]
        if not items:
            return []
        keys = [(kind, name, version) for kind, name, version, _ in items]
        existing = set(session.execute(select(
            DefinitionVersion.kind, DefinitionVersion.name, DefinitionVersion.version).where(
            tuple_(DefinitionVersion.kind, DefinitionVersion.name,
                   DefinitionVersion.version).in_(keys))).all())
        snapshot = self.snapshot()
        rows = [DefinitionVersion(kind=kind, name=name, version=version, path=path,
                                  bundle=snapshot)
                for kind, name, version, path in items if (kind, name, version) not in existing]
        session.add_all(rows)
        return rows

    def versions(self, name: str, session: DbSession) -> list[DefinitionVersion]:
        return list(session.execute(select(DefinitionVersion).where(
            DefinitionVersion.kind == "workflow", DefinitionVersion.name == name
        ).order_by(DefinitionVersion.id)).scalars())
