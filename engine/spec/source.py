"""Read one YAML definition file into plain data plus the position of every node.

ruamel.yaml parses YAML 1.2 (so ``no`` stays the string ``"no"``), rejects
duplicate keys and records a line and column for every key and value. Plain
Python data (dicts, lists, str, int, float, bool, None) is what the schema
and the builders work on; ``Source.at(path)`` gives the position back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from .problems import Problem

#: A definition file is hand-written; anything larger is a mistake or an attack.
MAX_BYTES = 1024 * 1024
#: Definitions need a handful of levels; this stops recursion bombs early.
MAX_DEPTH = 32

PathT = tuple[str | int, ...]
Pos = tuple[int, int]


class _StrictComposer(Composer):
    """Refuses aliases outright: no billion-laughs, no shared mutable nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            raise _Refused(
                f"alias '*{event.anchor}' is not supported",
                event.start_mark.line,
                event.start_mark.column,
            )
        event = self.parser.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise _Refused(
                f"anchor '&{event.anchor}' is not supported",
                event.start_mark.line,
                event.start_mark.column,
            )
        tag = getattr(event, "tag", None)
        implicit = getattr(event, "implicit", True)
        # Scalars carry a pair (plain, quoted); collections a single flag.
        if isinstance(implicit, tuple):
            implicit = implicit[0] or implicit[1]
        if tag is not None and (not implicit or tag == "!"):
            raise _Refused(f"tag '{tag}' is not supported", event.start_mark.line,
                           event.start_mark.column)
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.line, self.col = line, col


class _Constructor(RoundTripConstructor):
    """YAML 1.2 has no timestamps: a date stays the text the author wrote, so an
    impossible one is reported where it stands, not as a parse failure."""

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        return self.construct_scalar(node)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp",
                             _Constructor.construct_yaml_timestamp)


def strict_yaml() -> YAML:
    """A new ruamel round-trip YAML with the rules definitions are read by: YAML 1.2,
    no aliases, anchors or tags, no duplicate keys, at most ``MAX_DEPTH`` levels.

    For tools that load a definition's text with its comments and positions and dump
    it back (the designer's builder sets its indentation on it). A new one each call:
    a ruamel YAML object holds its parser's state, so it is not shared between threads.
    :func:`read` is the way to get a definition's plain data and its problems."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Composer = _StrictComposer
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    yaml.max_depth = MAX_DEPTH
    return yaml


@dataclass
class Source:
    """A parsed file: plain ``data`` and where each node stands in the text."""

    path: str
    text: str
    data: Any = None
    values: dict[PathT, Pos] = field(default_factory=dict)
    keys: dict[PathT, Pos] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: sha256 of the text: the cache key for everything derived from it alone.
    digest: str = ""

    def at(self, path: PathT, *, key: bool = False) -> Pos:
        """1-based (line, col) of the value at ``path`` (or of its key),
        falling back to the nearest enclosing node that has a position."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def problem(self, code: str, message: str, path: PathT = (), *, key: bool = False,
                hint: str = "") -> Problem:
        line, col = self.at(path, key=key)
        return Problem(code, message, self.path, line, col, hint)

    def expression_position(self, path: PathT, line: int, col: int) -> Pos:
        """File position of (line, col) within the expression text at ``path``."""
        start_line, start_col, block = self.expression_start(path)
        if block:  # a literal block keeps the expression's own lines
            return start_line + line - 1, start_col + col - 1
        if line > 1:
            return start_line, start_col
        # Plain and quoted scalars fold line breaks into single spaces.
        lines = self.text.splitlines()
        offset, n, first = col - 1, start_line, start_col
        while 1 <= n <= len(lines):
            body = lines[n - 1][first - 1:].rstrip()
            if offset <= len(body) or n == len(lines):
                return n, first + offset
            offset -= len(body) + 1
            n += 1
            nxt = lines[n - 1] if n <= len(lines) else ""
            first = len(nxt) - len(nxt.lstrip()) + 1
        return start_line, start_col

    def expression_start(self, path: PathT) -> tuple[int, int, bool]:
        """Where the first character of a string scalar's content is, and whether
        the content's own lines map 1:1 onto file lines (block scalars)."""
        line, col = self.at(path)
        lines = self.text.splitlines()
        if not 1 <= line <= len(lines):
            return line, col, False
        here = lines[line - 1][col - 1:col]
        if here in ("'", '"'):
            return line, col + 1, False
        if here in ("|", ">"):
            for n in range(line, len(lines)):
                body = lines[n]
                if body.strip():
                    return n + 1, len(body) - len(body.lstrip()) + 1, here == "|"
        return line, col, False


def read(path: Path | str, display: str | None = None, text: str | None = None) -> Source:
    """Read and parse one file. Never raises for bad content: problems are
    collected on the returned ``Source`` (whose ``data`` is then ``None``)."""
    name = display or str(path)
    src = Source(name, "")
    if text is None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            src.problems.append(Problem("CL001", f"cannot read the file: {exc.strerror}", name))
            return src
        if len(raw) > MAX_BYTES:
            src.problems.append(Problem(
                "CL002", f"file is larger than {MAX_BYTES // 1024} KiB", name))
            return src
        if b"\0" in raw:
            src.problems.append(Problem("CL001", "file contains NUL bytes (binary data?)", name))
            return src
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            line_start = raw.rfind(b"\n", 0, exc.start) + 1
            # Columns count characters, as editors do, not bytes.
            col = len(raw[line_start:exc.start].decode("utf-8", "replace")) + 1
            src.problems.append(Problem(
                "CL001", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", name, line, col))
            return src
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            src.problems.append(Problem(
                "CL001", f"the text holds an invalid character ({exc.reason})", name))
            return src
        if size > MAX_BYTES:
            src.problems.append(Problem(
                "CL002", f"file is larger than {MAX_BYTES // 1024} KiB", name))
            return src
    src.text = text
    parse(src)
    return src


#: Parsed files by content hash: a definition is parsed once per content change,
#: however often the folder is checked or reloaded. Entries are never mutated.
_CACHE: OrderedDict[tuple[str, str], Source] = OrderedDict()
_CACHE_SIZE = 1024


def parse(src: Source) -> None:
    """Parse ``src.text`` into ``src`` (from the cache when the text was seen)."""
    src.digest = hashlib.sha256(src.text.encode("utf-8")).hexdigest()
    key = (src.path, src.digest)
    hit = _CACHE.get(key)
    if hit is None:
        hit = Source(src.path, src.text, digest=src.digest)
        _parse(hit)
        _CACHE[key] = hit
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    fresh = replace(hit, problems=list(hit.problems))
    src.data, src.values, src.keys, src.problems = (fresh.data, fresh.values, fresh.keys,
                                                    fresh.problems)


def _parse(src: Source) -> None:
    if not src.text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in src.text.splitlines()
    ):
        src.problems.append(Problem("CL003", "the file has no content", src.path))
        return
    for n, line in enumerate(src.text.splitlines(), 1):
        if line.startswith("%YAML") and line.split()[1:2] != ["1.2"]:
            src.problems.append(Problem(
                "CL006", "only YAML 1.2 is supported; remove the %YAML directive", src.path, n))
            return
    try:
        docs = list(strict_yaml().load_all(src.text))
    except _Refused as exc:
        src.problems.append(Problem("CL006", str(exc), src.path, exc.line + 1, exc.col + 1))
        return
    except MarkedYAMLError as exc:
        src.problems.append(_marked(src.path, exc))
        return
    except (YAMLError, ValueError, RecursionError) as exc:
        src.problems.append(Problem("CL004", f"cannot parse YAML: {exc}", src.path))
        return
    docs = [d for d in docs if d is not None]
    if not docs:
        src.problems.append(Problem("CL003", "the file has no content", src.path))
        return
    if len(docs) > 1:
        src.problems.append(Problem(
            "CL006", "the file holds several YAML documents; put one definition per file",
            src.path))
        return
    src.data = _plain(docs[0], (), src)


def _marked(path: str, exc: MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    name = type(exc).__name__
    if name == "DuplicateKeyError":
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else ""
        return Problem("CL005", f"duplicate key '{key}'", path, line, col)
    if name == "MaxDepthExceededError":
        return Problem("CL007", f"nesting deeper than {MAX_DEPTH} levels", path, line, col)
    return Problem("CL004", what or "invalid YAML", path, line, col)


def _plain(node: Any, path: PathT, src: Source) -> Any:
    """Convert ruamel's round-trip objects to plain Python, recording positions."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for k, v in node.items():
            kl, kc = node.lc.key(k)
            key = k if isinstance(k, str) else str(k)
            child = (*path, key)
            src.keys[child] = (kl + 1, kc + 1)
            vl, vc = node.lc.value(k) if v is not None else (kl, kc)
            src.values[child] = (vl + 1, vc + 1)
            out[key] = _plain(v, child, src)
        if path not in src.values:
            src.values[path] = (node.lc.line + 1, node.lc.col + 1)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, v in enumerate(node):
            il, ic = node.lc.item(i)
            src.values[(*path, i)] = (il + 1, ic + 1)
            items.append(_plain(v, (*path, i), src))
        if path not in src.values:
            src.values[path] = (node.lc.line + 1, node.lc.col + 1)
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        if math.isnan(node) or math.isinf(node):
            line, col = src.at(path)
            src.problems.append(Problem("CL014", f"'{node}' is not a number Caseloop can use",
                                        src.path, line, col))
        return float(node)
    if isinstance(node, dt.datetime | dt.date):
        # YAML 1.2 has no timestamps; keep dates as the ISO text the author wrote.
        return node.isoformat()
    return str(node)
