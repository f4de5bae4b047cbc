"""Moving open cases of a workflow onto another definition version.

A case stays on the version it was opened with (see the registry) until an
operator moves it here, with ``caseloop cases migrate``. The move is a relabel,
not a transition: no guard is checked and no on-enter action runs; the case gets
the target version, the state its old state maps to, a bumped ``version`` and a
``migrated`` event. Free of Flask: it takes a session and the registry, only
flushes, and the caller commits, so every case moves or none does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import load_only
from sqlalchemy.orm.exc import StaleDataError

from .hints import suggest
from .models import Case, DbSession, DefinitionVersion, Event, utcnow
from .registry import Registry, UnknownVersion
from .spec import DefinitionError, Workflow

#: ``--to current``: the version in effect now (files, or the designer's publication).
CURRENT = "current"
#: Shortest version prefix accepted (hashes are 16 hex digits; people paste less).
MIN_PREFIX = 4
#: Case references listed per unmapped state; the count says how many more.
EXAMPLES = 5


class MigrationError(ValueError):
    """The run cannot go ahead as asked; nothing was changed. The message says why
    and what to do instead."""


@dataclass(frozen=True)
class Move:
    """The open cases of one (version, state) and where they go."""

    from_version: str
    from_state: str
    #: ``None``: the target has no such state and no ``--map`` names one.
    to_state: str | None
    count: int
    #: References of some of the cases (all of them up to :data:`EXAMPLES`).
    examples: tuple[str, ...] = ()
    #: The state was named by ``--map`` (rather than kept because it exists in the target).
    mapped: bool = False
    #: The target state is final: the cases close.
    closes: bool = False


@dataclass(frozen=True)
class Report:
    workflow: str
    to_version: str
    moves: tuple[Move, ...]
    #: States of the target version, for the message when some are missing.
    target_states: tuple[str, ...]
    dry_run: bool
    #: ``--map`` sources no open case is in (harmless, but often a typo).
    unused: tuple[str, ...] = ()

    @property
    def unmapped(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.to_state is None)

    @property
    def refused(self) -> bool:
        return bool(self.unmapped)

    @property
    def count(self) -> int:
        return sum(m.count for m in self.moves)

    @property
    def applied(self) -> bool:
        return not self.dry_run and not self.refused and self.count > 0

    def lines(self) -> list[str]:
        """The report as text, one line per group of cases."""
        name, to = self.workflow, self.to_version
        if not self.moves:
            return [f"no open '{name}' cases on a version other than {to}: nothing to move",
                    *self._notes()]
        if self.refused:
            missing = sum(m.count for m in self.unmapped)
            out = [f"refused: {_cases(missing)} of '{name}' {'is' if missing == 1 else 'are'} "
                   f"in a state that version {to} does not have; map each with "
                   f"--map OLD=NEW (states of {to}: {', '.join(self.target_states)})"]
            for m in self.unmapped:
                refs = ", ".join(m.examples) + (", …" if m.count > len(m.examples) else "")
                out.append(f"  state '{m.from_state}' (version {m.from_version}): "
                           f"{_cases(m.count)}: {refs}")
            return [*out, *self._notes(), "nothing was changed"]
        verb = "would move" if self.dry_run else "moved"
        out = [f"{verb} {_cases(self.count)} of '{name}' to version {to}"
               + (" (dry run: nothing changed)" if self.dry_run else "")]
        width = max(len(m.from_state) for m in self.moves)
        for m in self.moves:
            how = " (--map)" if m.mapped else ""
            how += " (closes them)" if m.closes else ""
            out.append(f"  {m.count:>5} from {m.from_version}  {m.from_state:<{width}} -> "
                       f"{m.to_state}{how}")
        return [*out, *self._notes()]

    def _notes(self) -> list[str]:
        return [f"note: --map {old}=… matches no open case" for old in self.unused]


def migrate(session: DbSession, registry: Registry, workflow: str, to_version: str,
            mapping: Mapping[str, str], *, dry_run: bool = False, actor_name: str = "system",
            clock: Callable[[], dt.datetime] = utcnow) -> Report:
    """Move the open cases of ``workflow`` pinned to other versions onto ``to_version``
    (a recorded version, a unique prefix of one, or ``"current"``).

    A state the target also has keeps its name unless ``mapping`` says otherwise;
    a state it lacks must be mapped. If any case's state has no mapping, nothing
    changes and the report says which (``report.refused``). ``dry_run`` reports
    only. Otherwise the cases are updated through the ORM (so the optimistic lock
    holds) with one ``migrated`` event each, and flushed; the caller commits.

    Raises :class:`MigrationError` for an unknown workflow or version, a mapping
    to a state the target lacks, or a case changed by someone else meanwhile.
    """
    target = _target(session, registry, workflow, to_version)
    # Cases pinned to the target must be able to rebuild it later, whatever the files say.
    return move(session, target, mapping, dry_run=dry_run, actor_name=actor_name, clock=clock,
                record=lambda: registry.record(session))


def move(session: DbSession, target: Workflow, mapping: Mapping[str, str], *,
         dry_run: bool = False, actor_name: str = "system",
         clock: Callable[[], dt.datetime] = utcnow,
         record: Callable[[], object] | None = None) -> Report:
    """:func:`migrate` onto a workflow version already chosen: the designer's publish
    moves cases onto the version it makes. ``record`` runs before any case moves."""
    workflow = target.name
    for old, new in mapping.items():
        if new not in target.states:
            raise MigrationError(f"--map {old}={new}: version {target.version} of '{workflow}' "
                                 f"has no state '{new}'{suggest(new, target.states)}")
    cases = session.execute(
        select(Case).options(load_only(
            Case.id, Case.definition_version, Case.state, Case.closed, Case.reference_prefix,
            Case.created_at, Case.version))
        .where(Case.workflow == workflow, Case.closed.is_(False),
               Case.definition_version != target.version)
        .order_by(Case.id)).scalars().all()

    groups: dict[tuple[str, str], list[Case]] = defaultdict(list)
    for case in cases:
        groups[(case.definition_version, case.state)].append(case)
    moves = []
    for (version, state), members in sorted(groups.items()):
        to = mapping.get(state) or (state if state in target.states else None)
        moves.append(Move(
            from_version=version, from_state=state, to_state=to, count=len(members),
            examples=tuple(c.reference for c in members[:EXAMPLES]) if to is None else (),
            mapped=state in mapping, closes=to is not None and target.states[to].final))
    in_use = {state for _, state in groups}
    report = Report(workflow=workflow, to_version=target.version, moves=tuple(moves),
                    target_states=tuple(target.states), dry_run=dry_run,
                    unused=tuple(old for old in mapping if old not in in_use))
    if dry_run or report.refused or not cases:
        return report

    if record is not None:
        record()
    plan = {(m.from_version, m.from_state): m.to_state for m in moves}
    now = clock()
    for case in cases:
        source, before = case.state, case.definition_version
        dest = plan[(before, source)]
        assert dest is not None  # refused above otherwise
        case.definition_version = target.version
        case.state = dest
        case.closed = target.states[dest].final
        # updated_at is left alone: it orders inboxes by work done on the case, and a
        # migration is bookkeeping. The event below dates the move.
        session.add(Event(case_id=case.id, kind="migrated", actor_name=actor_name,
                          from_state=source, to_state=dest, at=now, payload={
                              "from_version": before, "to_version": target.version,
                              "from_state": source, "to_state": dest}))
    try:
        session.flush()
    except StaleDataError:
        raise MigrationError(f"some '{workflow}' cases changed while they were being migrated; "
                             "nothing was changed - run the command again") from None
    return report


def _target(session: DbSession, registry: Registry, workflow: str, wanted: str) -> Workflow:
    """The workflow version to move cases to, from memory or the database."""
    current = registry.workflow(workflow)
    recorded = [v.version for v in registry.versions(workflow, session)]
    if current is None and not recorded:
        known = set(registry.current.workflows) | set(session.execute(
            select(DefinitionVersion.name).where(DefinitionVersion.kind == "workflow")
        ).scalars())
        raise MigrationError(f"no workflow '{workflow}'{suggest(workflow, known)}")
    versions = list(dict.fromkeys([*recorded, *([current.version] if current else [])]))
    if wanted == CURRENT:
        if current is None:
            raise MigrationError(f"workflow '{workflow}' is not in the loaded definitions, so it "
                                 f"has no current version; name a recorded one: "
                                 f"{', '.join(recorded)}")
        return current
    found = [v for v in versions if v == wanted] or (
        [v for v in versions if v.startswith(wanted)] if len(wanted) >= MIN_PREFIX else [])
    if len(found) != 1:
        why = "is ambiguous" if found else "is not a version"
        raise MigrationError(f"'{wanted}' {why} of workflow '{workflow}'; use 'current' or one "
                             f"of: {', '.join(versions)}")
    if current is not None and found[0] == current.version:
        return current
    try:
        return registry.pinned(workflow, found[0], session)
    except (UnknownVersion, DefinitionError) as exc:
        raise MigrationError(f"version {found[0]} of '{workflow}' cannot be rebuilt from the "
                             f"files stored with it: {exc}") from None


def _cases(n: int) -> str:
    return f"{n} open case{'s' if n != 1 else ''}"
