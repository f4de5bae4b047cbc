"""Build the SLA declaration of a workflow (executed later by the jobs engine)."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .build import Builder, duration
from .model import SLA, Escalation, Policy, Target
from .problems import suggest
from .source import PathT

if TYPE_CHECKING:
    from .workflows import _WorkflowBuilder

ALWAYS = "24x7"


def build_sla(b: Builder, d: dict[str, Any], wb: _WorkflowBuilder) -> SLA:
    policies = []
    for i, p in enumerate(d["policies"]):
        path: PathT = ("sla", "policies", i)
        if i < len(d["policies"]) - 1 and "when" not in p:
            b.report("CL015", f"policy '{p['name']}' has no 'when', so the policies after it "
                     "never apply; move it last", (*path, "name"))
        when = b.expression(p["when"], wb.names, (*path, "when")) if "when" in p else None
        calendar = p.get("calendar", ALWAYS)
        if calendar != ALWAYS and calendar not in wb.calendars:
            b.report("CL027", f"unknown calendar '{calendar}'"
                     f"{suggest(calendar, {*wb.calendars, ALWAYS})}", (*path, "calendar"))
        targets = tuple(_target(b, t, wb, (*path, "targets", j))
                        for j, t in enumerate(p["targets"]))
        names = [t.name for t in targets]
        for j, name in enumerate(names):
            if name in names[:j]:
                b.report("CL020", f"target '{name}' is listed twice",
                         (*path, "targets", j, "name"))
        policies.append(Policy(p["name"], targets, when, calendar))
    seen = [p.name for p in policies]
    for i, name in enumerate(seen):
        if name in seen[:i]:
            b.report("CL020", f"policy '{name}' is listed twice", ("sla", "policies", i, "name"))
    return SLA(tuple(policies), tuple(d.get("pause", ("paused",))))


def _target(b: Builder, t: dict[str, Any], wb: _WorkflowBuilder, path: PathT) -> Target:
    until = [t["until"]] if isinstance(t["until"], str) else t["until"]
    for i, state in enumerate(until):
        wb.state_ref(state, (*path, "until") if isinstance(t["until"], str)
                     else (*path, "until", i))
    within = t["within"]
    if isinstance(within, str):
        table = {"*": duration(within)}
    else:
        table = {k: duration(v) for k, v in within.items()}
        _priorities(b, wb, table, (*path, "within"))
    for i, level in enumerate(t.get("escalate", ())):
        here = (*path, "escalate", i)
        wb.recipients(level.get("notify", ()), (*here, "notify"))
        if "fire" in level:
            wb.trigger_ref(wb.name, level["fire"], (*here, "fire"))
    escalations = tuple(
        Escalation(duration(e.get("after", "0m")), tuple(e.get("notify", ())),
                   wb.assign(e.get("assign"), (*path, "escalate", i, "assign")),
                   bool(e.get("raise_priority", False)), e.get("fire"))
        for i, e in enumerate(t.get("escalate", ()))
    )
    return Target(t["name"], b.text(t.get("label", t["name"]), (*path, "label")),
                  tuple(until), MappingProxyType(table),
                  duration(t["warn_before"]) if "warn_before" in t else None, escalations)


def _priorities(b: Builder, wb: _WorkflowBuilder, table: dict[str, Any], path: PathT) -> None:
    field_name = wb.d.get("priority_field")
    field = wb.form.field(field_name) if field_name else None
    if field is None:
        b.report("CL015", "targets per priority need the workflow's 'priority_field'", path)
        return
    choices = field.choice_values()
    for key in table:
        if key not in choices:
            b.report("CL049", f"'{key}' is not a value of field '{field_name}'"
                     f"{suggest(key, choices)}", (*path, key), key=True)
    missing = [c for c in choices if c not in table]
    if missing:
        b.report("CL049", f"no target for priority {', '.join(repr(m) for m in missing)}", path)
