"""The splice: a form's text cut into entries, and put back together after an edit.

:class:`Doc` cuts the text into its top-level keys and the entries of 'fields', each
with the blank and comment lines above it (its lead). Putting it back, an entry the
model left alone keeps its exact lines; a changed one is parsed on its own, edited in
place (:mod:`.nodes`) and dumped with the file's indentation. Comments above a field
move with it; comments above a removed field stay where they were. Text the cut cannot
follow (flow style, indented top-level keys) is first rewritten in block style.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..spec.source import strict_yaml
from .conditions import typed
from .errors import LayoutError
from .fields import (
    CONDITIONS,
    COVERED,
    applies,
    check_field,
    entry,
    entry_keys,
    load,
    row_values,
    same,
)
from .nodes import new_node, set_key, set_text, write

__all__ = ["Doc"]


@dataclass
class _Item:
    node: Any
    key: str
    lead: list[str]  # the blank and comment lines above it
    body: list[str]


class Doc:
    """A form's text cut into top-level keys and, within 'fields', into entries."""

    def __init__(self, text: str) -> None:
        self.crlf = "\r\n" in text
        text = text.replace("\r\n", "\n")
        self.newline = text.endswith("\n")
        data = load(text)
        if not self._spliceable(data):
            text = self._normalized(data)
            data = load(text)
        self.data = data
        self.lines = (text if text.endswith("\n") else text + "\n").splitlines(keepends=True)
        self.order = list(data)
        self.top, self.trailer = _split(self.lines, 0, [data.lc.key(k)[0] for k in data],
                                        len(self.lines), 0)
        self.items: list[_Item] = []
        self.head: list[str] = ["fields:\n"]
        self.tail: list[str] = []
        self.dash, self.indent = 2, 4
        seq = data.get("fields")
        if isinstance(seq, CommentedSeq) and seq:
            start = data.lc.key("fields")[0]
            at = [_dash(self.lines, *seq.lc.item(i)) for i in range(len(seq))]
            self.dash, self.indent = at[0][1], seq.lc.item(0)[1]
            body = self.top[self.order.index("fields")][1]
            parts, self.tail = _split(self.lines, start + 1, [line for line, _ in at],
                                      start + len(body), self.dash)
            self.head = [self.lines[start]]
            self.items = [_Item(node, key, lead, b) for node, key, (lead, b)
                          in zip(seq, entry_keys(list(seq)), parts, strict=True)]
        self.blank = len(self.items) < 2 or any(
            it.lead and not it.lead[0].strip() for it in self.items[1:])
        self.yaml = _dumper(_mapping_indent(data), self.dash + max(self.indent - self.dash, 2),
                            self.dash)

    @staticmethod
    def _spliceable(data: CommentedMap) -> bool:
        seq = data.get("fields")
        return not data.fa.flow_style() and all(data.lc.key(k)[1] == 0 for k in data) and not (
            isinstance(seq, CommentedSeq) and seq and seq.fa.flow_style())

    @staticmethod
    def _normalized(data: CommentedMap) -> str:
        """The text in block style (one line per key, one '- ' per field)."""
        data.fa.set_block_style()
        seq = data.get("fields")
        if isinstance(seq, CommentedSeq):
            seq.fa.set_block_style()
            for item in seq:
                if isinstance(item, CommentedMap):
                    item.fa.set_block_style()
        out = io.StringIO()
        _dumper(2, 4, 2).dump(data, out)
        return out.getvalue()

    def fields(self, rows: list[Any], types: set[str]) -> list[str]:
        """The lines of the 'fields' key with the entries as ``rows`` has them."""
        found = {it.key: it for it in self.items}
        kinds = {str(it.node["name"]): str(it.node.get("type")) for it in self.items
                 if isinstance(it.node, Mapping) and isinstance(it.node.get("name"), str)}
        kinds.update({r["name"]: r["type"] for r in rows if isinstance(r, Mapping)
                      and isinstance(r.get("name"), str) and isinstance(r.get("type"), str)})
        placed: list[tuple[_Item | None, list[str]]] = []
        names: list[tuple[str, bool]] = []  # each name, and whether this edit brings it
        used: set[str] = set()
        for n, row in enumerate(rows, 1):
            if not isinstance(row, Mapping):
                raise LayoutError(f"row {n} of the model is not a field")
            key = row.get("key")
            if key is not None and not isinstance(key, str):
                raise LayoutError(f"row {n} of the model has a key that is not text: {key!r}")
            row = {**row, **{k: typed(row[k], kinds) for k in CONDITIONS if k in row}}
            if not key:
                new = row_values(row)
                check_field(new, types)
                placed.append((None, self._dump_item(new_node(new))))
                names.append((new["name"], True))
                continue
            item = found.get(key)
            if item is None:
                raise LayoutError(f"the form has no entry '{key}' any more (was the YAML "
                                  "changed meanwhile?): reload the builder")
            if key in used:
                raise LayoutError(f"entry '{key}' is in the model twice")
            used.add(key)
            old = entry(item.node, key)
            if old["locked"]:
                placed.append((item, item.body))
                if old["name"]:
                    names.append((old["name"], False))
                continue
            before, after = row_values(old), row_values({**old, **row})  # left out: unchanged
            body = item.body
            if not same(before, after):
                if (after["name"], after["type"]) != (before["name"], before["type"]):
                    check_field(after, types)
                body = self._rewrite(item, before, after)
            names.append((after["name"], after["name"] != before["name"]))
            placed.append((item, body))
        counts = Counter(name for name, _ in names)
        for name, brought in names:
            if brought and counts[name] > 1:
                raise LayoutError(f"two fields are named '{name}': field names must be unique "
                                  "in a form")
        return self._assemble(placed)

    def _assemble(self, placed: list[tuple[_Item | None, list[str]]]) -> list[str]:
        kept = {id(item) for item, _ in placed if item is not None}
        carry: dict[int, list[str]] = {}  # comments above removed entries, by the next kept
        pending: list[str] = []
        for it in self.items:
            if id(it) not in kept:
                pending += it.lead if _commented(it.lead) else []
            elif pending:
                carry[id(it)], pending = pending, []
        out = list(self.head)
        for pos, (item, body) in enumerate(placed):
            if item is None:
                lead = ["\n"] if self.blank and pos else []
            else:
                first = item is self.items[0]
                lead = item.lead
                if id(item) in carry:
                    lead = carry[id(item)] + (lead if _commented(lead) else [])
                if pos == 0 and (not first or id(item) in carry):
                    while lead and not lead[0].strip():
                        lead = lead[1:]
                elif pos and first and self.blank and (not lead or lead[0].strip()):
                    lead = ["\n", *lead]
            out += lead + body
        return out + pending + self.tail

    def render(self, fields: list[str], top: dict[str, Any]) -> str:
        """The whole text: ``fields`` as the 'fields' key, ``top`` the top-level keys
        to change (a missing title or description goes after the form's name)."""
        segments = list(zip(self.order, self.top, strict=True))
        if "fields" not in self.order:
            segments.append(("fields", ([], [])))
        after = {"form": ("title", "description"), "title": ("description",)}
        out: list[str] = []
        for key, (lead, body) in segments:
            if key == "fields":
                body = fields
            elif key in top:
                body = self._rewrite_top(body, key, top[key])
            out += lead + body
            for more in after.get(key, ()):
                if more in top and more not in self.order:
                    out += self._rewrite_top([], more, top.pop(more))
        text = "".join(out + self.trailer)
        if not self.newline and text.endswith("\n"):
            text = text[:-1]
        return text.replace("\n", "\r\n") if self.crlf else text

    def _rewrite_top(self, body: list[str], key: str, value: Any) -> list[str]:
        root = self.yaml.load("".join(body)) if body else None
        root = root if isinstance(root, CommentedMap) else CommentedMap()
        if key == "form":
            root[key] = value
        else:
            set_text(root, key, value)
        return self._dump(root) if root else []

    def _rewrite(self, item: _Item, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        """The entry's lines after the edit: its own text, parsed alone (so the comments
        above the next entry stay out), changed where the model changed, dumped."""
        root = self.yaml.load("fields:\n" + "".join(item.body))  # comments keep their column
        seq = root.get("fields") if isinstance(root, CommentedMap) else None
        if not (isinstance(seq, CommentedSeq) and len(seq) == 1):
            raise LayoutError(f"cannot cut entry '{item.key}' out of the text; edit it in "
                              "the YAML editor")
        node: CommentedMap = seq[0]
        node.fa.set_block_style()
        ftype = after["type"]
        retyped = ftype != before["type"]
        for key in ("name", "type", *COVERED):
            new = after[key]
            if not applies(key, ftype) and (retyped or key not in node):
                new = [] if key == "choices" else False if key == "required" else None
            if not same(new, before[key]):
                write(node, key, new)
        if retyped:
            for key in [k for k in node if not applies(str(k), ftype)]:
                set_key(node, key, None)
        return self._dump_item(node)

    def _dump_item(self, node: CommentedMap) -> list[str]:
        root = CommentedMap()
        root["fields"] = CommentedSeq([node])
        return self._dump(root)[1:]  # without the 'fields:' line

    def _dump(self, root: CommentedMap) -> list[str]:
        out = io.StringIO()
        self.yaml.dump(root, out)
        return out.getvalue().splitlines(keepends=True)


def _dumper(mapping: int, sequence: int, offset: int) -> YAML:
    """The reader's YAML settings, writing with the file's indentation and quotes."""
    yaml = strict_yaml()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long help text
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _split(lines: list[str], begin: int, starts: list[int], stop: int, base: int
           ) -> tuple[list[tuple[list[str], list[str]]], list[str]]:
    """Cut ``lines[begin:stop]`` into (lead, body) per entry starting at ``starts``, and
    what follows the last one. The blank lines and comments no deeper than ``base``
    after an entry lead the next one."""
    out, lead_from = [], begin
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else stop
        while end > start + 1 and _loose(lines[end - 1], base):
            end -= 1
        out.append((lines[lead_from:start], lines[start:end]))
        lead_from = end
    return out, lines[lead_from:stop]


def _loose(line: str, base: int) -> bool:
    text = line.strip()
    return not text or (text.startswith("#") and len(line) - len(line.lstrip()) <= base)


def _commented(lines: list[str]) -> bool:
    return any(line.strip().startswith("#") for line in lines)


def _dash(lines: list[str], line: int, col: int) -> tuple[int, int]:
    """Line and column of the '-' that opens the sequence entry whose value is at
    (line, col)."""
    text = lines[line][:col]
    while not text.strip() and line > 0:  # the '-' alone on a line above
        line -= 1
        text = lines[line].rstrip("\n")
    text = text.rstrip()
    return line, max(len(text) - 1, 0)


def _mapping_indent(data: CommentedMap) -> int:
    """How far the file indents a mapping under its key (2 when nothing says)."""
    title = data.get("title")
    if isinstance(title, CommentedMap) and title and not title.fa.flow_style():
        return int(title.lc.col) - int(data.lc.key("title")[1])
    for item in data.get("fields") or []:
        for key, value in item.items() if isinstance(item, CommentedMap) else ():
            if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
                return int(value.lc.col) - int(item.lc.key(key)[1])
    return 2
