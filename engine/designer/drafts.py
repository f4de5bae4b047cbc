"""Drafts: a designer's unpublished edit of one form or workflow, and its check.

There is one draft per definition, shared by its designers. Saving names the
revision it was loaded at, so two designers cannot overwrite each other unseen; a
draft remembers the hash of the text it started from, so a definition changed
meanwhile (a file reloaded, another publish) makes it *stale*, shown with the diff,
never published over the newer text. The check is :func:`caseloop.spec.check_texts`
over every file in effect with the draft in place: the very checker of
``caseloop check``, so a form change that breaks a workflow is reported too.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from sqlalchemy import select

from ..models import DbSession, Draft, utcnow
from ..registry import Registry
from ..spec import Definitions, Problem, check_texts
from .overlay import KINDS, new_path, text_hash

#: Names a new definition may take (as the schema's ``name`` pattern for fields).
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

#: The text a new definition starts from: the least that passes the check.
TEMPLATES = {
    "form": """\
form: {name}
title:
  en: {name}
  zh: {name}
fields:
  - name: summary
    type: text
    required: true
    label:
      en: Summary
      zh: 摘要
""",
    "workflow": """\
workflow: {name}
title:
  en: {name}
  zh: {name}
form: {form}
roles: [agent]
start: [agent]
initial: open
states:
  open:
    category: open
    label:
      en: Open
      zh: 处理中
  closed:
    category: done
    final: true
    label:
      en: Closed
      zh: 已关闭
transitions:
  - trigger: close
    from: open
    to: closed
    allow: [agent]
    label:
      en: Close
      zh: 关闭
""",
}


class DraftError(ValueError):
    """The draft cannot be saved or started as asked; the message says why."""


class StaleRevision(DraftError):
    """Someone else saved the draft since it was loaded."""


@dataclass(frozen=True)
class Checked:
    """A draft's text checked with every other file in effect."""

    definitions: Definitions
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not any(p.is_error for p in self.problems)


def find(session: DbSession, kind: str, name: str) -> Draft | None:
    return session.execute(select(Draft).where(
        Draft.kind == kind, Draft.name == name)).scalar_one_or_none()


def all_drafts(session: DbSession) -> list[Draft]:
    return list(session.execute(select(Draft).order_by(Draft.kind, Draft.name)).scalars())


def start(session: DbSession, registry: Registry, kind: str, name: str, user: str) -> Draft:
    """The definition's draft: the existing one, or a new one from the text in effect."""
    _kind(kind)
    found = find(session, kind, name)
    if found is not None:
        return found
    current = registry.text(kind, name)
    if current is None:
        raise DraftError(f"there is no {kind} '{name}'; create it as a new {kind}")
    path, text = current
    draft = Draft(kind=kind, name=name, path=path, text=text, base=text_hash(text),
                  revision=1, updated_by=user, updated_at=utcnow())
    session.add(draft)
    session.flush()
    return draft


def create(session: DbSession, registry: Registry, kind: str, name: str, user: str) -> Draft:
    """A draft of a definition that does not exist yet, from a template."""
    _kind(kind)
    if not NAME.match(name):
        raise DraftError(f"'{name}' cannot name a {kind}: use lower-case letters, digits and "
                         "'_', starting with a letter (e.g. 'warranty_claim')")
    if registry.text(kind, name) is not None or find(session, kind, name) is not None:
        raise DraftError(f"a {kind} named '{name}' exists already; open it instead")
    forms = sorted(registry.current.forms)
    text = TEMPLATES[kind].format(name=name, form=name if name in forms else
                                  (forms[0] if forms else name))
    draft = Draft(kind=kind, name=name, path=new_path(kind, name, [str(p) for p in registry.paths]),
                  text=text, base="", revision=1, updated_by=user, updated_at=utcnow())
    session.add(draft)
    session.flush()
    return draft


def save(session: DbSession, draft: Draft, text: str, revision: int, user: str) -> Draft:
    """Replace the draft's text; ``revision`` is the one the editor loaded."""
    if revision != draft.revision:
        raise StaleRevision(f"{draft.updated_by} saved this draft at "
                            f"{draft.updated_at:%Y-%m-%d %H:%M} UTC after you opened it; "
                            "reload to see their change (your text is kept in the editor)")
    if text != draft.text:
        draft.text = text
        touch(draft, user)
        session.flush()
    return draft


def touch(draft: Draft, user: str) -> None:
    """A new revision of the draft, by ``user``, now."""
    draft.revision += 1
    draft.updated_by = user
    draft.updated_at = utcnow()


def save_as_loaded(session: DbSession, registry: Registry, kind: str, name: str, text: str,
                   revision: int, user: str) -> Draft:
    """Save what an editor loaded at ``revision`` (0: there was no draft then). A draft
    made, published or discarded since is not overwritten: :class:`StaleRevision`."""
    draft = find(session, kind, name)
    if draft is None:
        if revision != 0:
            raise StaleRevision("the draft was published or discarded since you opened it; "
                                "reload (copy your text first)")
        draft = start(session, registry, kind, name, user)
        revision = draft.revision
    elif revision == 0:
        raise StaleRevision(f"a draft of this {kind} was started after you opened it (last "
                            f"saved by {draft.updated_by}); reload to see it (copy your text "
                            "first)")
    return save(session, draft, text, revision, user)


def stale(registry: Registry, draft: Draft) -> bool:
    """Whether the definition changed since the draft started from it."""
    current = registry.text(draft.kind, draft.name)
    return (text_hash(current[1]) if current else "") != draft.base


def rebase(registry: Registry, draft: Draft, user: str) -> None:
    """Accept the definition's newer text as the draft's starting point, keeping the
    draft's own text (the designer has looked at the difference)."""
    current = registry.text(draft.kind, draft.name)
    draft.base = text_hash(current[1]) if current else ""
    touch(draft, user)


def bundle(registry: Registry, draft: Draft, text: str | None = None) -> dict[str, str]:
    """Every file in effect, by path, with the draft (or ``text``) in its definition's place."""
    files = registry.snapshot()
    current = registry.text(draft.kind, draft.name)
    if current is not None:
        files.pop(current[0], None)
    files[draft.path] = draft.text if text is None else text
    return files


def check(registry: Registry, draft: Draft, text: str | None = None) -> Checked:
    """The draft (or ``text`` in its place) checked with every file in effect."""
    definitions, problems = check_texts(bundle(registry, draft, text),
                                        extensions=registry.extensions)
    return Checked(definitions, problems)


def listed(problems: list[Problem], path: str) -> tuple[list[Problem], int]:
    """What the editor lists for the draft at ``path``: while its own file has errors,
    only its problems (the others are mostly their echo: a workflow that no longer
    finds a broken form), and how many were left out."""
    if not any(p.is_error and p.path == path for p in problems):
        return problems, 0
    own = [p for p in problems if p.path == path]
    return own, len(problems) - len(own)


def diff(old: str, new: str, old_name: str, new_name: str) -> list[str]:
    """A unified diff of two texts, line by line (no trailing newlines)."""
    return [line.rstrip("\n") for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name)]


def _kind(kind: str) -> None:
    if kind not in KINDS:
        raise DraftError(f"the designer edits {' and '.join(KINDS)}s, not '{kind}'")
