"""Which text of each definition is in effect: its file, or a designer's publication.

Files stay the source of truth for teams that use git, and the designer publishes
without touching them. The newest publication of a definition is laid over its file:

- the file holds the published text (``caseloop export`` wrote it): they agree, and the
  publication is marked *settled*;
- the file still holds the text it had at publication: the publication is in effect
  (not exported yet, or this host not yet deployed with the exported file);
- the file holds anything else: after settlement, that is a later edit in git and the
  file leads again; before it, both sides changed the same definition — a
  :class:`Conflict`, reported to the designer and the log, while the publication stays
  in effect. Nothing is overwritten silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sqlalchemy import func, select

from ..models import DbSession, Publication, utcnow
from ..spec import Source
from ..spec.build import content_hash
from ..spec.source import read

#: The kinds of definition the designer edits (calendars are edited as files).
KINDS = ("form", "workflow")
#: Where a definition made in the browser goes when exported, by kind.
FOLDERS = {"form": "forms", "workflow": "workflows"}

Key = tuple[str, str]


def text_hash(text: str) -> str:
    """The identity of a text, to tell whether a file or draft changed."""
    return content_hash(text)


def identify(src: Source) -> Key | None:
    """``(kind, name)`` of a parsed definition file, without checking it."""
    data = src.data
    if not isinstance(data, dict):
        return None
    for kind in ("workflow", "calendar", "form"):  # a workflow names its form too
        if kind in data:
            name = data[kind]
            return (kind, name) if isinstance(name, str) else None
    return None


@dataclass(frozen=True)
class Conflict:
    """A definition whose file changed since it was published from the browser."""

    kind: str
    name: str
    path: str
    publication: int
    published_by: str
    published_at: dt.datetime

    def message(self) -> str:
        return (f"{self.path} changed since {self.kind} '{self.name}' was published from the "
                f"designer (#{self.publication} by {self.published_by}); the published text "
                "stays in effect. Take the file's text in the designer, or run 'caseloop "
                "export --force' to overwrite the file with the published one")


@dataclass(frozen=True)
class Effect:
    """The result of laying publications over the files."""

    sources: list[Source]
    #: Definitions whose text in effect comes from a publication (not its file).
    published: dict[Key, Published] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    #: The file path of each definition read from disk.
    files: dict[Key, str] = field(default_factory=dict)
    #: Publications their file now agrees with, not yet marked settled (:func:`settle`).
    agreed: tuple[Published, ...] = ()


@dataclass(frozen=True)
class Published:
    """A publication as the registry keeps it: plain values, not a row of a session that
    one request ends (the registry is shared by every request and thread)."""

    id: int
    kind: str
    name: str
    sequence: int
    path: str
    text: str
    file_hash: str
    settled_at: dt.datetime | None
    published_by: str
    published_at: dt.datetime

    @classmethod
    def of(cls, row: Publication) -> Published:
        return cls(row.id, row.kind, row.name, row.sequence, row.path, row.text, row.file_hash,
                   row.settled_at, row.published_by, row.published_at)


def latest(session: DbSession) -> list[Published]:
    """The newest publication of every definition."""
    newest = (select(Publication.kind, Publication.name,
                     func.max(Publication.sequence).label("sequence"))
              .group_by(Publication.kind, Publication.name).subquery())
    return [Published.of(row) for row in session.execute(select(Publication).join(newest, (
        Publication.kind == newest.c.kind) & (Publication.name == newest.c.name) & (
        Publication.sequence == newest.c.sequence)).order_by(Publication.id)).scalars()]


def marker(session: DbSession) -> int:
    """Changes whenever anything is published: the newest publication's id."""
    return int(session.execute(select(func.max(Publication.id))).scalar() or 0)


def apply(disk: Sequence[Source], publications: Iterable[Published]) -> Effect:
    """The sources in effect: ``disk`` with each newer publication laid over its file."""
    by_key: dict[Key, int] = {}
    for index, src in enumerate(disk):
        found = identify(src)
        if found is not None and found not in by_key:
            by_key[found] = index
    files = {key: disk[i].path for key, i in by_key.items()}
    sources = list(disk)
    published: dict[Key, Published] = {}
    conflicts: list[Conflict] = []
    agreed: list[Published] = []
    for pub in publications:
        key = (pub.kind, pub.name)
        i = by_key.get(key)
        if i is None:  # made in the browser (or its file was removed): no file to agree with
            sources.append(read(pub.path, pub.path, pub.text))
            published[key] = pub
            continue
        on_disk = text_hash(disk[i].text)
        if on_disk == text_hash(pub.text):
            if pub.settled_at is None:
                agreed.append(pub)
            continue
        if on_disk != pub.file_hash and pub.settled_at is not None:
            continue  # edited in git after the export: the file leads
        if on_disk != pub.file_hash:
            conflicts.append(Conflict(pub.kind, pub.name, disk[i].path, pub.sequence,
                                      pub.published_by, pub.published_at))
        sources[i] = read(disk[i].path, disk[i].path, pub.text)
        published[key] = pub
    return Effect(sources, published, tuple(conflicts), files, tuple(agreed))


def settle(session: DbSession, publications: Iterable[Published]) -> int:
    """Mark publications whose text is now in their file (caller commits)."""
    count = 0
    for pub in publications:
        found = session.get(Publication, pub.id)
        if found is not None and found.settled_at is None:
            found.settled_at = utcnow()
            count += 1
    return count


def new_path(kind: str, name: str, paths: Sequence[str]) -> str:
    """Where a definition made in the browser belongs: the configured folder of its kind
    (``forms``/``workflows``), else the first configured folder."""
    folder = FOLDERS.get(kind, "forms")
    for raw in paths:
        if PurePosixPath(str(raw)).name == folder:
            return str(PurePosixPath(str(raw)) / f"{name}.yaml")
    first = str(paths[0]) if paths else folder
    return str(PurePosixPath(first) / f"{name}.yaml")
