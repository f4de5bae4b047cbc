"""The loaded definitions, every version cases are pinned to, and their machines.

The registry loads the definition files once, lays the designer's publications
over them (:mod:`caseloop.designer.overlay`; :meth:`Registry.refresh` notices a new
one, published by this process or another, within :attr:`Registry.poll` seconds),
records every new version in the database, and hands out the workflow version a
case is pinned to, rebuilding an old version from the files stored with it.
Machines are built once per version and cached here: nothing on the request path
reads YAML or builds a machine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select, tuple_
from sqlalchemy.exc import DBAPIError
from transitions import Machine

from . import machine as machines
from . import spec
from .designer import overlay
from .models import DbSession, DefinitionVersion
from .spec import DefinitionError, Definitions, Extensions, Problem, Source, Workflow
from .spec.extensions import NONE

log = logging.getLogger("caseloop.registry")


class UnknownVersion(LookupError):
    """A case is pinned to a version this database does not hold."""


class Registry:
    """``extensions``: what the app's plugins add to the definition language; the same
    for every version, current or rebuilt."""

    def __init__(self, paths: Sequence[str | Path], *, extensions: Extensions = NONE) -> None:
        self.paths = list(paths)
        self.extensions = extensions
        self.current = Definitions()
        #: What is in effect: the files with the designer's publications laid over.
        self.effect = overlay.Effect([])
        #: Seconds between looks for a new publication (:meth:`refresh`).
        self.poll = 1.0
        #: Why the newest publications could not be laid over the files (else None).
        self.error: DefinitionError | None = None
        self._disk: list[Source] = []
        self._disk_problems: list[Problem] = []
        self._marker: int | None = None
        self._looked = 0.0
        self._versions: dict[tuple[str, str], Workflow] = {}
        self._machines: dict[str, Machine] = {}
        self._lock = threading.Lock()

    def load(self) -> Definitions:
        """(Re)read the files, with the publications last seen laid over them; raises
        :class:`DefinitionError` listing every problem."""
        self._disk, self._disk_problems = spec.read_files(self.paths)
        self._marker = None  # the next refresh lays the publications over the new files
        return self._build(list(self.effect.published.values()))

    def refresh(self, session: DbSession, *, force: bool = False) -> bool:
        """Take up publications made since the last look (at most every :attr:`poll`
        seconds unless ``force``). True when the definitions in effect changed. A
        database without the designer's tables (not migrated yet) has none."""
        now = time.monotonic()
        if not force and now - self._looked < self.poll:
            return False
        self._looked = now
        try:
            seen = overlay.marker(session)
            if seen == self._marker:
                return False
            publications = overlay.latest(session) if seen else []
        except DBAPIError:
            session.rollback()
            return False
        try:
            self._build(publications)
        except DefinitionError as exc:
            # Files and publications no longer fit together (say a file removed a field
            # a published workflow uses): keep what runs now, and say so.
            self.error = exc
            log.error("the designer's publications cannot be applied: %s", exc)
            return False
        finally:
            self._marker = seen
        return True

    def _build(self, publications: Sequence[overlay.Published]) -> Definitions:
        effect = overlay.apply(self._disk, publications)
        definitions, problems = spec.assemble(effect.sources, self.extensions)
        problems = self._disk_problems + problems
        if any(p.is_error for p in problems):
            raise DefinitionError(problems)
        for conflict in effect.conflicts:
            log.warning("%s", conflict.message())
        with self._lock:
            self.current = definitions
            self.effect = effect
            self.error = None
            for wf in definitions.workflows.values():
                self._versions.setdefault((wf.name, wf.version), wf)
        return definitions

    def text(self, kind: str, name: str) -> tuple[str, str] | None:
        """``(path, text)`` in effect for a form or workflow, or None."""
        d = self.current
        found = d.forms.get(name) if kind == "form" else d.workflows.get(name)
        return (found.path, found.source) if found is not None else None

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

    def snapshot(self, definitions: Definitions | None = None) -> dict[str, str]:
        """Every file in effect, by path: enough to rebuild any of its versions."""
        d = definitions or self.current
        files = {f.path: f.source for f in d.forms.values()}
        files.update({w.path: w.source for w in d.workflows.values()})
        files.update({c.path: c.source for c in d.calendars.values()})
        return dict(sorted(files.items()))

    def record(self, session: DbSession, definitions: Definitions | None = None
               ) -> list[DefinitionVersion]:
        """Store the versions of ``definitions`` (default: those in effect) not yet in the
        database (caller commits)."""
        d = definitions or self.current
        items = [("form", f.name, f.version, f.path) for f in d.forms.values()] + [
            ("workflow", w.name, w.version, w.path) for w in d.workflows.values()]
        if not items:
            return []
        keys = [(kind, name, version) for kind, name, version, _ in items]
        existing = set(session.execute(select(
            DefinitionVersion.kind, DefinitionVersion.name, DefinitionVersion.version).where(
            tuple_(DefinitionVersion.kind, DefinitionVersion.name,
                   DefinitionVersion.version).in_(keys))).all())
        snapshot = self.snapshot(d)
        rows = [DefinitionVersion(kind=kind, name=name, version=version, path=path,
                                  bundle=snapshot)
                for kind, name, version, path in items if (kind, name, version) not in existing]
        session.add_all(rows)
        return rows

    def disk_text(self, kind: str, name: str) -> str | None:
        """The text of the definition's file as read at start-up (None: it has none)."""
        path = self.effect.files.get((kind, name))
        for src in self._disk:
            if src.path == path:
                return src.text
        return None

    def versions(self, name: str, session: DbSession, kind: str = "workflow"
                 ) -> list[DefinitionVersion]:
        """Every recorded version of a definition, oldest first."""
        return list(session.execute(select(DefinitionVersion).where(
            DefinitionVersion.kind == kind, DefinitionVersion.name == name
        ).order_by(DefinitionVersion.id)).scalars())
