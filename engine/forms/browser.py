"""Stored values <-> what a browser shows and sends.

Only the representation changes here (``"12"`` -> ``12``, a local
``datetime-local`` -> an ISO instant with its offset); whether a value is
acceptable is :func:`caseloop.values.clean`'s decision. Anything that does
not convert is passed on as typed, for clean() to reject with its message.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from wtforms import Field as WTField
from wtforms import Form as WTForm

from ..spec.model import Field, Form

_INTEGER = re.compile(r"\s*-?\d{1,18}\s*")
_INTEGERS = ("integer", "rating", "nps", "ces")


def to_browser(form: Form, data: Mapping[str, Any], tz: dt.tzinfo) -> dict[str, Any]:
    """Stored field values -> the data a WTForms form of ``form`` renders."""
    return {f.name: shown(f, data.get(f.name), tz) for f in form.fields}


def shown(f: Field, value: Any, tz: dt.tzinfo) -> Any:
    """One stored value as its widget shows it."""
    if f.type == "boolean":
        if checkbox(f):
            return bool(value)
        return None if value is None else ("true" if value else "false")
    if value is None or f.type == "file":
        return None
    if f.type == "group":
        rows = value if isinstance(value, list) else []
        return [{sub.name: shown(sub, row.get(sub.name), tz) for sub in f.fields}
                for row in rows if isinstance(row, Mapping)]
    if f.type == "multichoice":
        return [str(v) for v in value] if isinstance(value, list) else []
    if f.type == "decimal" and f.places is not None and isinstance(value, int | float):
        return f"{value:.{f.places}f}"
    if f.type == "datetime" and isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(tz)
        return moment.strftime("%Y-%m-%dT%H:%M")
    return str(value)


def read(f: Field, field: WTField, tz: dt.tzinfo) -> Any:
    """What the browser sent for one field, as :func:`values.clean` takes it."""
    if f.type == "group":
        rows = []
        for entry in getattr(field, "entries", []):
            sub: WTForm = entry.form
            rows.append({s.name: read(s, sub[s.name], tz) for s in f.fields if takes(s)})
        return rows
    raw = field.data
    if f.type == "boolean":
        if checkbox(f):
            return bool(raw)
        return {"true": True, "false": False}.get(raw) if raw not in (None, "") else None
    if f.type == "multichoice":
        return [str(v) for v in raw] if isinstance(raw, list | tuple) else []
    if raw is None:
        return None
    if not isinstance(raw, str):
        return raw
    if f.type == "textarea":
        raw = raw.replace("\r\n", "\n")  # browsers send CRLF; lengths count a newline once
    if raw.strip() == "":
        return None
    if f.type in _INTEGERS and _INTEGER.fullmatch(raw):
        return int(raw)
    if f.type == "decimal":
        try:
            number = float(raw)
        except ValueError:
            return raw
        return number if math.isfinite(number) else raw
    if f.type == "datetime":
        try:
            moment = dt.datetime.fromisoformat(raw.strip())
        except ValueError:
            return raw
        if moment.tzinfo is None:  # datetime-local: the reader's wall-clock time
            moment = moment.replace(tzinfo=tz)
        return moment.isoformat()
    return raw


def checkbox(f: Field) -> bool:
    """A boolean with a default is a checkbox; without one, yes / no radios (unanswered
    must stay empty: an unticked box would say "no")."""
    return f.type == "boolean" and f.default is not None


def takes(f: Field) -> bool:
    """Whether the browser's input is ever read for ``f`` (not computed, not a file:
    uploads are stored by the pages and reach clean() as their descriptions)."""
    return not f.computed and f.type != "file"
