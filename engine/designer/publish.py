"""Publishing a draft: a new immutable version that new cases use, with a state map
for the open ones.

:func:`plan` is the dry run the publisher sees first: the check, the versions that
change (a form's change makes a new version of every workflow using it) and, per
workflow, where its open cases would move. :func:`publish` writes the publication,
records the versions and, when asked, migrates the open cases by the map, all in
the caller's transaction. A version that would strand open cases (they sit in a
state it no longer has, and the map names none) is refused, with or without
migration: the map is what lets those cases ever move to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..migrate import MigrationError, Report, move
from ..models import Case, DbSession, DefinitionVersion, Draft, Publication, utcnow
from ..registry import Registry
from ..spec import Definitions, Problem, Workflow
from . import drafts
from .overlay import text_hash

StateMap = Mapping[str, Mapping[str, str]]


class PublishError(ValueError):
    """Nothing was published; the message says why and what to do."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Change:
    """One workflow whose version the publish changes, and its open cases."""

    workflow: str
    old_version: str | None
    new_version: str
    #: States the new version lacks that the old one had or open cases are in.
    removed: tuple[str, ...]
    #: Where the open cases on other versions would move (a dry run).
    report: Report | None
    #: Open cases in a removed state the map does not name.
    stranded: int


@dataclass(frozen=True)
class Plan:
    kind: str
    name: str
    problems: list[Problem]
    definitions: Definitions | None
    changes: tuple[Change, ...] = ()
    #: Versions the publish makes current: {"workflow:complaint": "…"}.
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.definitions is not None and not any(p.is_error for p in self.problems)

    @property
    def stranded(self) -> int:
        return sum(c.stranded for c in self.changes)


def plan(session: DbSession, registry: Registry, draft: Draft,
         state_map: StateMap | None = None) -> Plan:
    """What publishing ``draft`` would do; nothing is written."""
    checked = drafts.check(registry, draft)
    if not checked.ok:
        return Plan(draft.kind, draft.name, checked.problems, None)
    new = checked.definitions
    table = new.forms if draft.kind == "form" else new.workflows
    if draft.name not in table:
        return Plan(draft.kind, draft.name, [Problem(
            "CL029", f"this draft no longer defines {draft.kind} '{draft.name}': a definition "
            f"keeps its name (start a new {draft.kind} to use another)", draft.path, 1, 1)],
            None)
    old = registry.current
    versions = {f"form:{f.name}": f.version for f in new.forms.values()
                if f.name not in old.forms or old.forms[f.name].version != f.version}
    changes = []
    for wf in new.workflows.values():
        before = old.workflows.get(wf.name)
        if before is not None and before.version == wf.version:
            continue
        versions[f"workflow:{wf.name}"] = wf.version
        changes.append(_change(session, before, wf, (state_map or {}).get(wf.name, {})))
    return Plan(draft.kind, draft.name, checked.problems, new, tuple(changes), versions)


def _change(session: DbSession, before: Workflow | None, wf: Workflow,
            mapping: Mapping[str, str]) -> Change:
    if before is None:
        return Change(wf.name, None, wf.version, (), None, 0)
    try:
        report = move(session, wf, mapping, dry_run=True)
    except MigrationError:
        report = None  # a map to a state the new version lacks: shown as such by the page
    # The states to map: those this version drops, and those open cases on any older
    # version are in that it lacks (each such case could never reach it otherwise).
    removed = [s for s in before.states if s not in wf.states]
    if report is not None:
        removed += [m.from_state for m in report.moves
                    if (m.to_state is None or m.mapped) and m.from_state not in removed]
    stranded = 0
    unmapped = [s for s in removed if s not in mapping]
    if unmapped:
        stranded = session.execute(select(func.count()).select_from(Case).where(
            Case.workflow == wf.name, Case.closed.is_(False),
            Case.definition_version != wf.version, Case.state.in_(unmapped))).scalar_one()
    return Change(wf.name, before.version, wf.version, tuple(removed), report, stranded)


def publish(session: DbSession, registry: Registry, draft: Draft, user: str, *,
            state_map: StateMap | None = None, migrate: bool = False, note: str = "",
            clock: Callable[[], dt.datetime] = utcnow) -> Publication:
    """Publish ``draft`` (it is deleted): flushed, the caller commits and then calls
    ``registry.refresh(session, force=True)``. Raises :class:`PublishError`."""
    registry.refresh(session, force=True)
    disk = registry.disk_text(draft.kind, draft.name)
    for conflict in registry.effect.conflicts:
        # Publishing the file's own text is how the file's side wins (take_file).
        if ((conflict.kind, conflict.name) == (draft.kind, draft.name)
                and text_hash(draft.text) != text_hash(disk or "")):
            raise PublishError(conflict.message())
    if drafts.stale(registry, draft):
        raise PublishError(f"{draft.kind} '{draft.name}' changed since this draft was started "
                           "(a file was reloaded or someone published); review the difference "
                           "and accept it before publishing")
    mapping = {wf: dict(m) for wf, m in (state_map or {}).items() if m}
    found = plan(session, registry, draft, mapping)
    if not found.ok or found.definitions is None:
        raise PublishError("the draft has errors; nothing was published", found.problems)
    if not found.versions:
        raise PublishError("the draft is the same as the published text; nothing to publish")
    for workflow, moves in mapping.items():
        target = found.definitions.workflows.get(workflow)
        known = tuple(target.states) if target is not None else ()
        for old, new in moves.items():
            if new not in known:
                raise PublishError(f"the state map sends '{old}' to '{new}', a state the new "
                                   f"version of '{workflow}' does not have (its states: "
                                   f"{', '.join(known) or 'none'})")
    # Stranded counts every open case the migration would refuse (on any version), so
    # once none is stranded, moving them all cannot be refused.
    for change in found.changes:
        if change.stranded:
            raise PublishError(
                f"{change.stranded} open '{change.workflow}' case(s) are in a state this "
                f"version removes ({', '.join(change.removed)}); map each removed state to "
                "one of the new version's states")
    now = clock()
    registry.record(session, found.definitions)
    migrated: dict[str, object] = {}
    if migrate:
        for change in found.changes:
            if change.old_version is None:
                continue
            try:
                report = move(session, found.definitions.workflows[change.workflow],
                              mapping.get(change.workflow, {}), actor_name=user,
                              clock=lambda: now)
            except MigrationError as exc:  # a case changed meanwhile: the caller rolls back
                raise PublishError(f"nothing was published: {exc}") from None
            migrated[change.workflow] = {"count": report.count, "lines": report.lines()}
    current = registry.text(draft.kind, draft.name)
    sequence = session.execute(select(func.max(Publication.sequence)).where(
        Publication.kind == draft.kind, Publication.name == draft.name)).scalar() or 0
    publication = Publication(
        kind=draft.kind, name=draft.name, sequence=sequence + 1, path=draft.path,
        text=draft.text, file_hash=text_hash(disk) if disk is not None else "",
        base=text_hash(current[1]) if current else "", versions=found.versions,
        state_map=mapping, migrated=migrated, note=note.strip(), published_by=user,
        published_at=now)
    session.add(publication)
    session.delete(draft)
    try:
        session.flush()
    except IntegrityError:
        raise PublishError(f"someone else published {draft.kind} '{draft.name}' at the same "
                           "moment; reload and look at their change") from None
    return publication


def take_file(session: DbSession, registry: Registry, kind: str, name: str, user: str
              ) -> Draft:
    """Resolve a conflict in the file's favour: a draft holding the file's text, based
    on the text in effect, for the designer to review and publish like any other."""
    disk = registry.disk_text(kind, name)
    current = registry.text(kind, name)
    if disk is None or current is None:
        raise PublishError(f"{kind} '{name}' has no file to take")
    draft = drafts.find(session, kind, name) or drafts.start(session, registry, kind, name, user)
    draft.text = disk
    draft.base = text_hash(current[1])
    drafts.touch(draft, user)
    session.flush()
    return draft


def history(session: DbSession, registry: Registry, kind: str, name: str
            ) -> tuple[list[DefinitionVersion], list[Publication]]:
    """Every recorded version of a definition (oldest first) and its publications."""
    versions = registry.versions(name, session, kind)
    publications = list(session.execute(select(Publication).where(
        Publication.kind == kind, Publication.name == name
    ).order_by(Publication.sequence.desc())).scalars())
    return versions, publications
