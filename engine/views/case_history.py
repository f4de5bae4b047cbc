"""What the case page shows: field values in the reader's language, the history
timeline from the case's events, and what changed since a version the reader saw
(the conflict notice of a step form). Values are returned as plain text or rows of
text; the templates escape everything."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import g
from sqlalchemy import select

from ..extension import state
from ..models import Event
from ..spec.model import Field, State, Workflow
from ..uploads import human
from . import i18n, t


def lang() -> str:
    found: str = g.caseloop_lang
    return found


def shown_value(f: Field, value: Any) -> Any:
    """A stored value as the reader reads it: text, or for a group
    ``{"columns": [...], "rows": [[...], ...]}``."""
    if f.type == "group":
        rows = value if isinstance(value, list) else []
        return {"columns": [sub.label.get(lang()) for sub in f.fields],
                "rows": [[text_of(sub, row.get(sub.name)) for sub in f.fields]
                         for row in rows if isinstance(row, Mapping)]}
    return text_of(f, value)


def text_of(f: Field, value: Any) -> str:
    """One value as text (a group's: its number of rows)."""
    if value is None or value == "" or value == []:
        return "—"
    if f.type == "boolean":
        return t("yes") if value else t("no")
    if f.type in ("choice", "multichoice"):
        labels = {str(c.value): c.label.get(lang()) for c in f.choices}
        items = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(str(v), str(v)) for v in items)
    if f.type == "datetime" and isinstance(value, str):
        try:
            return i18n.when(dt.datetime.fromisoformat(value.replace("Z", "+00:00")), lang())
        except ValueError:
            return value
    if f.type == "group":
        return t("case_rows", n=len(value) if isinstance(value, list) else 0)
    if f.type == "file":
        items = value if isinstance(value, list) else [value]
        return ", ".join(str(v.get("name", "?")) if isinstance(v, Mapping) else str(v)
                         for v in items)
    if isinstance(value, list | dict):
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return str(value)


def fields(wf: Workflow, st: State, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The filled fields the state lets the reader see, in the form's order."""
    out = []
    for f in wf.form.fields:
        if st.fields.of(f.name) == "hidden":
            continue
        value = data.get(f.name)
        if value is None or value == "" or value == []:
            continue
        out.append({"name": f.name, "label": f.label.get(lang()), "type": f.type,
                    "value": shown_value(f, value),
                    "files": [{**x, "size_text": human(x["size"])} for x in value
                              if isinstance(x, Mapping) and isinstance(x.get("id"), str)
                              and isinstance(x.get("size"), int)]
                    if f.type == "file" and isinstance(value, list) else []})
    return out


def state_label(wf: Workflow, name: str | None) -> str:
    if not name:
        return ""
    found = wf.states.get(name)
    return found.label.get(lang()) if found is not None else name


def changes(wf: Workflow, st: State, diff: Any) -> list[dict[str, str]]:
    """``{field: [before, after]}`` -> labelled rows, leaving out the fields the
    reader may not see in the case's current state."""
    if not isinstance(diff, Mapping):
        return []
    rows = []
    for name, pair in diff.items():
        f = wf.form.field(name)
        if f is None or st.fields.of(name) == "hidden":
            continue
        before, after = (pair if isinstance(pair, list) and len(pair) == 2 else (None, pair))
        rows.append({"label": f.label.get(lang()), "before": text_of(f, before),
                     "after": text_of(f, after)})
    return rows


def entry(wf: Workflow, st: State, e: Event) -> dict[str, Any]:
    """One event of the timeline: what happened, by whom, when, field changes."""
    p = e.payload or {}
    title, text = t("case_ev_other", kind=e.kind), ""
    diff: Any = p.get("changes")
    if e.kind == "created":
        title, diff = t("case_ev_created", state=state_label(wf, e.to_state)), None
    elif e.kind == "transition":
        label = next((tr.label.get(lang()) for tr in wf.transitions
                      if tr.trigger == e.trigger), e.trigger or "")
        title = t("case_ev_transition", action=label, source=state_label(wf, e.from_state),
                  dest=state_label(wf, e.to_state))
    elif e.kind == "updated":
        title = t("case_ev_updated")
    elif e.kind == "comment":
        title, text = t("case_ev_comment"), str(p.get("text", ""))
    elif e.kind == "assigned":
        who = p.get("user") or (f"role:{p['role']}" if p.get("role") else "—")
        title = t("case_ev_claimed" if p.get("action") == "claim" else "case_ev_assigned",
                  who=who)
    elif e.kind == "sla":
        key = "case_ev_sla_breached" if "breached" in p else "case_ev_sla_warned" \
            if "warned" in p else "case_ev_sla"
        title = t(key, target=p.get("sla", ""))
    elif e.kind == "crm":
        title = t("case_ev_crm", push=p.get("push") or "", status=p.get("status") or "")
        text = str(p.get("reason") or p.get("result") or "")
    elif e.kind == "action":
        title = t("case_ev_action")
        text = str(p.get("note") or p.get("action") or "")
    return {"id": e.id, "kind": e.kind, "at": e.at, "actor": e.actor_name, "title": title,
            "text": text, "changes": changes(wf, st, diff)}


def history(wf: Workflow, st: State, case_id: int, after: int = 0) -> list[dict[str, Any]]:
    """The case's events after event ``after`` (all by default), newest first."""
    events = state().db.session.execute(
        select(Event).where(Event.case_id == case_id, Event.id > after)
        .order_by(Event.id.desc())).scalars().all()
    return [entry(wf, st, e) for e in events]


def last_event(case_id: int) -> int:
    found = state().db.session.execute(
        select(Event.id).where(Event.case_id == case_id).order_by(Event.id.desc()).limit(1)
    ).scalar_one_or_none()
    return int(found or 0)
