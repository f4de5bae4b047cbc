"""Adding and removing rows of a repeating group without JavaScript.

The page renders an "add" button named ``add_row:actions`` and, on each row, a
"remove" button named ``remove_row:actions:2`` (both with ``formnovalidate``).
Pressing one submits the form; :func:`apply_row_action` rewrites the submitted
data (a new row with the row's defaults, or the row gone and the later ones
renumbered) and the page is shown again with nothing saved.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from ..spec.model import Field, Form
from .browser import shown

ADD, REMOVE = "add_row", "remove_row"
_KEY = re.compile(r"^(add_row|remove_row):([a-z][a-z0-9_]*)(?::(\d{1,4}))?$")


@dataclass(frozen=True)
class RowAction:
    """A pressed add or remove button: ``kind`` is ``add_row`` or ``remove_row``."""

    kind: str
    group: str
    index: int | None = None


def add_row_name(group: str) -> str:
    """The name of a group's "add a row" button."""
    return f"{ADD}:{group}"


def remove_row_name(group: str, index: int) -> str:
    """The name of the "remove this row" button of row ``index`` (from 0)."""
    return f"{REMOVE}:{group}:{index}"


def row_action(formdata: Any) -> RowAction | None:
    """The add or remove button pressed in ``formdata``, if any (the first found)."""
    for key in formdata or ():
        m = _KEY.match(key)
        if m and (m[1] == ADD) == (m[3] is None):
            return RowAction(m[1], m[2], int(m[3]) if m[3] is not None else None)
    return None


def apply_row_action(form: Form, formdata: Any, action: RowAction) -> MultiDict[str, Any]:
    """``formdata`` with the row added or removed; unchanged (but for the button) when
    the group does not exist or the row count would leave ``min_rows``..``max_rows``."""
    out: MultiDict[str, Any] = MultiDict()
    for key, value in _items(formdata):
        if not _KEY.match(key):
            out.add(key, value)
    group = form.field(action.group)
    if group is None or group.type != "group":
        return out
    indices = sorted(_indices(group.name, out))
    if action.kind == ADD:
        if group.max_rows is not None and len(indices) >= group.max_rows:
            return out
        new = max(indices, default=-1) + 1
        _add(group, out, new)
        return _renumber(group.name, out, [*indices, new])
    if action.index is None or action.index >= len(indices):
        return out
    if len(indices) <= (group.min_rows or 0):
        return out
    gone = indices[action.index]
    prefix = f"{group.name}-{gone}-"
    kept: MultiDict[str, Any] = MultiDict(
        [(k, v) for k, v in _items(out) if not k.startswith(prefix)])
    return _renumber(group.name, kept, [i for i in indices if i != gone])


def _add(group: Field, out: MultiDict[str, Any], index: int) -> None:
    """A row at ``index`` holding the row's defaults (as its widgets show them)."""
    new = f"{group.name}-{index}-"
    wrote = False
    for sub in group.fields:
        value = shown(sub, sub.default, dt.UTC) if sub.default is not None else None
        if value is None or value is False or value == []:
            continue
        for v in value if isinstance(value, list) else [value]:
            out.add(new + sub.name, "y" if v is True else v)
        wrote = True
    if not wrote:
        out.add(new + group.fields[0].name if group.fields else new + "_", "")


def _renumber(name: str, data: MultiDict[str, Any], order: list[int]) -> MultiDict[str, Any]:
    """Rows numbered 0, 1, 2… in ``order`` (so error paths and positions agree)."""
    to = {old: new for new, old in enumerate(sorted(order))}
    pattern = re.compile(rf"^{re.escape(name)}-(\d+)-(.*)$", re.S)
    out: MultiDict[str, Any] = MultiDict()
    for key, value in _items(data):
        m = pattern.match(key)
        if m and int(m[1]) in to:
            key = f"{name}-{to[int(m[1])]}-{m[2]}"
        out.add(key, value)
    return out


def _indices(name: str, data: MultiDict[str, Any]) -> set[int]:
    pattern = re.compile(rf"^{re.escape(name)}-(\d+)-")
    return {int(m[1]) for key in data for m in [pattern.match(key)] if m}


def _items(data: Any) -> list[tuple[str, Any]]:
    if hasattr(data, "items") and hasattr(data, "getlist"):
        return list(data.items(multi=True))
    return list(data.items()) if hasattr(data, "items") else []

