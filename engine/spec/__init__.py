"""Definitions: YAML files -> checked, immutable forms, workflows and calendars.

``check(paths)`` reports every problem in every file at once; ``load(paths)``
returns the :class:`Definitions` or raises :class:`DefinitionError` with all
of them. Nothing here touches Flask: the CLI, the app and the designer call in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .calendars import build_calendars
from .extensions import NONE, Extensions
from .forms import build_forms
from .model import Calendar, Definitions, Field, Form, State, Text, Transition, Workflow
from .problems import CODES, DefinitionError, Problem, Severity
from .shape import kind_of, validate
from .source import Source, read
from .workflows import build_workflows

__all__ = [
    "CODES", "Calendar", "DefinitionError", "Definitions", "Extensions", "Field", "Form",
    "Problem",
    "Severity", "Source", "State", "Text", "Transition", "Workflow", "assemble", "check",
    "check_texts", "discover", "load", "read_files",
]

#: Where definitions live when no path is given.
DEFAULT_PATHS = ("forms", "workflows")
#: Sub-folders that hold something else (simulation scenarios).
SKIP_DIRS = frozenset({"scenarios"})
SUFFIXES = (".yaml", ".yml")


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """The definition files under ``paths`` (files or folders), sorted."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*"))
                if p.suffix in SUFFIXES and p.is_file()
                and not SKIP_DIRS.intersection(p.relative_to(path).parts[:-1])
            )
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem("CL001", "no such file or folder", str(path)))
    return files, problems


def read_files(paths: Iterable[str | Path] = DEFAULT_PATHS) -> tuple[list[Source], list[Problem]]:
    """The definition files under ``paths``, read and parsed (not yet checked)."""
    files, problems = discover(paths)
    return [read(f, _display(f)) for f in files], problems


def check(paths: Iterable[str | Path] = DEFAULT_PATHS, *, extensions: Extensions = NONE
          ) -> tuple[Definitions, list[Problem]]:
    """Load everything under ``paths``; return what could be built and every problem.
    ``extensions``: what the installed plugins add (field types, functions, channels)."""
    sources, problems = read_files(paths)
    definitions, more = assemble(sources, extensions)
    return definitions, problems + more


def check_texts(texts: Mapping[str, str], *, extensions: Extensions = NONE
                ) -> tuple[Definitions, list[Problem]]:
    """Like :func:`check` for in-memory files (display name -> YAML text)."""
    return assemble([read(name, name, text) for name, text in texts.items()], extensions)


def load(paths: Iterable[str | Path] = DEFAULT_PATHS, *, extensions: Extensions = NONE
         ) -> Definitions:
    """The definitions under ``paths``; raises :class:`DefinitionError` on any error."""
    definitions, problems = check(paths, extensions=extensions)
    if any(p.is_error for p in problems):
        raise DefinitionError(problems)
    return definitions


def assemble(sources: list[Source], extensions: Extensions = NONE
          ) -> tuple[Definitions, list[Problem]]:
    """The definitions of already read ``sources`` (see :func:`read_files`)."""
    problems: list[Problem] = []
    sound: dict[str, dict[str, Source]] = {"form": {}, "workflow": {}, "calendar": {}}
    declared: set[tuple[str, str]] = set()
    for src in sources:
        kind = kind_of(src) if src.data is not None else None
        problems.extend(src.problems)
        if kind is None:
            continue
        name = src.data.get(kind)
        shape = validate(src, kind, extensions)
        problems.extend(shape)
        if isinstance(name, str):
            if (kind, name) in declared:
                problems.append(src.problem("CL020", f"{kind} '{name}' is defined twice "
                                            f"(also in {_where(sound[kind], name)})", (kind,)))
                continue
            declared.add((kind, name))
        if not any(p.is_error for p in shape) and isinstance(name, str):
            sound[kind][name] = src
    forms = build_forms(sound["form"], problems,
                        frozenset(name for kind, name in declared if kind == "form"), extensions)
    calendars = build_calendars(sound["calendar"], problems)
    calendar_names = {name for kind, name in declared if kind == "calendar"}
    workflows = build_workflows(sound["workflow"], forms, declared, calendar_names, problems,
                                extensions)
    problems.sort(key=lambda p: (p.path, p.line, p.col, p.code))
    return Definitions(forms, workflows, calendars), problems


def _where(sources: dict[str, Source], name: str) -> str:
    src = sources.get(name)
    return src.path if src is not None else "another file"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
