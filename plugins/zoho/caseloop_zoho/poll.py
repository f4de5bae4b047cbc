"""The polling cursor: per module, the last Modified_Time seen and the ids seen at it.

``If-Modified-Since`` has second resolution and Zoho does not document whether it is
inclusive. So each poll asks from one second before the cursor and drops what was
already reported: records older than the cursor, and those at the cursor's second
whose ids it lists. Nothing modified within that second is lost either way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from caseloop.crm import CRMBadResponse


@dataclass
class Mark:
    """Where one module's poll got to."""

    time: dt.datetime
    ids: set[str] = field(default_factory=set)

    def since(self) -> str:
        """The If-Modified-Since value: one second of overlap."""
        return (self.time - dt.timedelta(seconds=1)).isoformat()

    def is_new(self, record_id: str, modified: dt.datetime) -> bool:
        return modified > self.time or (modified == self.time and record_id not in self.ids)

    def advance(self, record_id: str, modified: dt.datetime) -> None:
        if modified > self.time:
            self.time, self.ids = modified, {record_id}
        elif modified == self.time:
            self.ids.add(record_id)


def load(cursor: str | None, modules: Iterable[str], now: dt.datetime) -> dict[str, Mark]:
    """The marks in a cursor; a module missing from it starts at ``now``."""
    start = now.astimezone(dt.UTC).replace(microsecond=0)
    raw: Any = {}
    if cursor:
        try:
            raw = json.loads(cursor)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            raise CRMBadResponse(f"zoho: the poll cursor {cursor[:80]!r} is not one this "
                                 "connector wrote; reset it to start polling from now")
    marks = {}
    for module in modules:
        entry = raw.get(module)
        if isinstance(entry, Mapping) and isinstance(entry.get("t"), str):
            marks[module] = Mark(parse_time(entry["t"]), set(map(str, entry.get("ids", []))))
        else:
            marks[module] = Mark(start)
    return marks


def dump(marks: Mapping[str, Mark]) -> str:
    return json.dumps({m: {"t": mark.time.isoformat(), "ids": sorted(mark.ids)}
                       for m, mark in marks.items()}, separators=(",", ":"), sort_keys=True)


def parse_time(value: str) -> dt.datetime:
    """A Zoho ISO-8601 time with offset (``2026-11-23T15:00:00+05:30``)."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CRMBadResponse(f"zoho: {value!r} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
