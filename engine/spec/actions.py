"""Build the on-enter actions of a workflow's states, and its recontact cooldown.

A mixin of the workflow builder: it shares the builder's references (fields,
states, roles, triggers) and reports problems at the action's position.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..expr.types import T, assignable
from .build import Builder, duration
from .forms import field_type
from .model import Action, Assign, Cooldown, Escalation, Field, Form, Measure, Remind, Survey
from .problems import suggest
from .source import PathT

ACTIONS = ("start", "timer", "notify", "crm", "fire", "set", "assign", "cancel", "measure",
           "remind", "survey")
#: The field type that holds the customer's address on each survey channel.
ADDRESS = {"email": "email", "sms": "phone"}
#: Field types ``measure`` can average, and store a figure in.
NUMERIC = ("integer", "decimal", "rating", "nps", "ces")
#: Field types that can receive the figures in words.
TEXTUAL = ("text", "textarea")


class ActionBuilder:
    # Provided by the workflow builder this mixes into.
    b: Builder
    d: dict[str, Any]
    raw: Mapping[str, Any]
    forms: Mapping[str, Form]
    declared: set[tuple[str, str]]
    calendars: set[str]
    name: str
    roles: frozenset[str]
    form: Form
    names: dict[str, T]

    def field_ref(self, name: str, path: PathT) -> bool:
        raise NotImplementedError  # the workflow builder's

    def state_ref(self, name: str, path: PathT) -> bool:
        raise NotImplementedError  # the workflow builder's

    def trigger_ref(self, workflow: str, trigger: str, path: PathT) -> None:
        raise NotImplementedError  # the workflow builder's

    def action(self, a: dict[str, Any], state: str, path: PathT) -> Action | None:
        b = self.b
        kinds = [k for k in ACTIONS if k in a]
        if len(kinds) != 1:
            what = "no action" if not kinds else f"{len(kinds)} actions ({', '.join(kinds)})"
            b.report("CL015", f"each list item holds one action ({', '.join(ACTIONS)}), "
                     f"this one has {what}", path)
            return None
        kind = kinds[0]
        body, here = a[kind], (*path, kind)
        when = b.expression(a["when"], self.names, (*path, "when")) if "when" in a else None
        if kind == "start":
            wf = body["workflow"]
            target = self.target_form(wf, (*here, "workflow"))
            mapping = self.mapping(body.get("map", {}), target, (*here, "map"))
            return Action(kind, when, workflow=wf, map=mapping,
                          after=duration(body["after"]) if "after" in body else None,
                          assign=self.assign(body.get("assign"), (*here, "assign")))
        if kind == "timer":
            self.own_trigger(body["fire"], state, (*here, "fire"))
            if ("after" in body) == ("at" in body):
                b.report("CL015", "a timer needs either 'after' (a duration) or 'at' (a time), "
                         "not both or neither", here)
            at = (b.expression(body["at"], self.names, (*here, "at"), want="timestamp")
                  if "at" in body else None)
            return Action(kind, when, trigger=body["fire"], at=at,
                          after=duration(body["after"]) if "after" in body else None)
        if kind == "notify":
            self.recipients(body["to"], (*here, "to"))
            return Action(kind, when, to=tuple(body["to"]), channel=body.get("channel", "inbox"),
                          message=b.text(body["message"], (*here, "message")))
        if kind == "crm":
            return Action(kind, when, push=body["push"],
                          message=b.maybe_text(body, "note", here))
        if kind == "fire":
            self.linked_trigger(body["case"], body["trigger"], (*here, "trigger"))
            return Action(kind, when, case=body["case"], trigger=body["trigger"])
        if kind == "set":
            return Action(kind, when, map=self.mapping(body, self.form, here))
        if kind == "cancel":
            return self.cancel(body, when, here)
        if kind == "measure":
            measure = self.measure(body, here)
            return Action(kind, when, measure=measure) if measure is not None else None
        if kind == "remind":
            remind = self.remind(body, here)
            return Action(kind, when, remind=remind) if remind is not None else None
        if kind == "survey":
            return Action(kind, when, survey=self.survey(body, state, here))
        return Action(kind, when, assign=self.assign(body, here))

    def target_form(self, workflow: str, path: PathT) -> Form | None:
        if workflow not in self.raw:
            if ("workflow", workflow) in self.declared:
                return None
            self.b.report("CL025", f"unknown workflow '{workflow}'{suggest(workflow, self.raw)}",
                          path)
            return None
        return self.forms.get(self.raw[workflow]["form"])

    def mapping(self, body: dict[str, str], target: Form | None, path: PathT
                ) -> Mapping[str, Any]:
        out = {}
        for key, source in body.items():
            expr = self.b.expression(source, self.names, (*path, key), want=None)
            if target is None:
                continue
            f = target.field(key)
            if f is None:
                self.b.report("CL022", f"form '{target.name}' has no field '{key}'"
                              f"{suggest(key, target.names)}", (*path, key), key=True)
            elif expr is not None and not assignable(expr.type, field_type(f)):
                self.b.report("CL048", f"'{key}' holds {field_type(f)} but the expression "
                              f"gives {expr.type}", (*path, key))
            elif f.computed:
                self.b.report("CL015", f"'{key}' is computed; it cannot be set", (*path, key),
                              key=True)
            if expr is not None:
                out[key] = expr
        return MappingProxyType(out)

    def assign(self, body: dict[str, Any] | None, path: PathT) -> Assign | None:
        if body is None:
            return None
        if "role" in body and body["role"] not in self.roles:
            self.b.report("CL024", f"unknown role '{body['role']}'"
                          f"{suggest(body['role'], self.roles)}", (*path, "role"))
        user = None
        if "user" in body:
            user = self.b.expression(body["user"], self.names, (*path, "user"), want="string")
        if not body:
            self.b.report("CL012", "assign needs 'team', 'role' or 'user'", path)
        return Assign(body.get("team"), body.get("role"), user)

    def recipients(self, to: list[str], path: PathT) -> None:
        for i, who in enumerate(to):
            if who.startswith("role:") and who[5:] not in self.roles:
                self.b.report("CL024", f"unknown role '{who[5:]}'{suggest(who[5:], self.roles)}",
                              (*path, i))

    def own_trigger(self, trigger: str, state: str, path: PathT) -> None:
        """A timer set on entering ``state`` fires ``trigger`` from that state."""
        mine = [t for t in self.d["transitions"] if t["trigger"] == trigger]
        if mine and not any(t["from"] == "*" or state in ([t["from"]] if isinstance(
                t["from"], str) else t["from"]) for t in mine):
            self.b.report("CL026", f"'{trigger}' has no transition from '{state}', where the "
                          "timer is set", path)
            return
        self.trigger_ref(self.name, trigger, path)

    def linked_trigger(self, case: str, trigger: str, path: PathT) -> None:
        if case == "self":
            self.trigger_ref(self.name, trigger, path)
            return
        if case == "parent":
            linked = sorted(n for n, d in self.raw.items() if self.name in started_by(d))
            what = f"no workflow starts '{self.name}' as a linked case, so it has no parent"
        else:
            linked = sorted(w for w in started_by(self.d) if w in self.raw)
            what = f"'{self.name}' starts no linked cases"
        broken = {n for k, n in self.declared if k == "workflow"} - set(self.raw)
        if not linked and not broken:  # a broken one may be the missing link
            self.b.report("CL025", what, path)
        for workflow in linked:
            self.trigger_ref(workflow, trigger, path)

    # -- the closed loop: withdraw, measure, remind ------------------------------------
    def cancel(self, body: dict[str, Any], when: Any, here: PathT) -> Action:
        workflow = body["workflow"]
        target = self.target_form(workflow, (*here, "workflow"))
        if workflow in self.raw and workflow not in started_by(self.d):
            self.b.report("CL025", f"'{self.name}' starts no '{workflow}' cases, so it has "
                          "none to cancel", (*here, "workflow"))
        if "trigger" in body:
            self.trigger_ref(workflow, body["trigger"], (*here, "trigger"))
        elif body.get("map"):
            self.b.report("CL016", "'map' is data for 'trigger'; add the trigger the open "
                          "cases take", (*here, "map"), key=True)
        mapping = self.mapping(body.get("map", {}), target, (*here, "map"))
        return Action("cancel", when, workflow=workflow, trigger=body.get("trigger"),
                      map=mapping)

    def measure(self, body: dict[str, Any], here: PathT) -> Measure | None:
        b, workflow = self.b, body["workflow"]
        target = self.target_form(workflow, (*here, "workflow"))
        where = self.mapping(body.get("where", {}), target, (*here, "where"))
        field_name = body.get("field")
        if body["aggregate"] == "mean":
            if field_name is None:
                b.report("CL012", "'mean' needs 'field': the numeric field to average", here)
            elif target is not None:
                self._typed(target, field_name, NUMERIC, "average", (*here, "field"))
        elif field_name is not None:
            b.report("CL016", "'field' is for 'mean'; 'count' counts cases",
                     (*here, "field"), key=True)
        into = self._typed(self.form, body["into"], NUMERIC, "hold the figure",
                           (*here, "into"))
        if into is not None and into.computed:
            b.report("CL015", f"'{into.name}' is computed; it cannot receive the figure",
                     (*here, "into"))
        if "report" in body:
            self._typed(self.form, body["report"], TEXTUAL, "hold the figures in words",
                        (*here, "report"))
        return Measure(workflow, body["aggregate"], duration(body["window"]), body["into"],
                       field_name, where, body.get("report"))

    def remind(self, body: dict[str, Any], here: PathT) -> Remind | None:
        b = self.b
        group = self._typed(self.form, body["rows"], ("group",), "hold rows", (*here, "rows"))
        if group is None:
            return None
        row = Form(group.name, group.label, None, group.fields, "", "")
        self._typed(row, body["due"], ("date",), "be a due date", (*here, "due"))
        self._typed(row, body["owner"], ("user",), "name the owner", (*here, "owner"))
        if "title" in body:
            self._typed(row, body["title"], TEXTUAL, "name the row", (*here, "title"))
        (done, values), = body["done"].items()
        status = self._typed(row, done, ("choice",), "end the reminders", (*here, "done"))
        if status is not None:
            for i, value in enumerate(values):
                if value not in status.choice_values():
                    b.report("CL014", f"'{value}' is not a value of '{done}'"
                             f"{suggest(value, status.choice_values())}", (*here, "done", done, i))
        calendar = body.get("calendar")
        if calendar is not None and calendar not in self.calendars:
            b.report("CL027", f"unknown calendar '{calendar}'{suggest(calendar, self.calendars)}",
                     (*here, "calendar"))
        at = dt.time(9, 0)
        if "at" in body:
            try:
                at = dt.time.fromisoformat(body["at"])
            except ValueError:
                b.report("CL014", f"'{body['at']}' is not a time of day (HH:MM)", (*here, "at"))
        levels = []
        for i, level in enumerate(body.get("escalate", ())):
            self.recipients(level["notify"], (*here, "escalate", i, "notify"))
            levels.append(Escalation(duration(level["after"]), tuple(level["notify"])))
        return Remind(body["rows"], body["due"], body["owner"], done, tuple(values),
                      body.get("title"), duration(body["before"]) if "before" in body else None,
                      tuple(sorted(levels, key=lambda e: e.after)), calendar, at)

    def survey(self, body: dict[str, Any], state: str, here: PathT) -> Survey:
        self.own_trigger(body["fire"], state, (*here, "fire"))
        if "expired" in body:
            self.own_trigger(body["expired"], state, (*here, "expired"))
        mine = [t for t in self.d["transitions"] if t["trigger"] == body["fire"]]
        required = {r for t in mine for r in t.get("requires", ())}
        perms = self.d["states"][state].get("fields", {})
        for i, name in enumerate(body["fields"]):
            if not self.field_ref(name, (*here, "fields", i)):
                continue
            level = next((lv for lv in ("editable", "readonly", "hidden")
                          if name in perms.get(lv, ())), perms.get("default", "editable"))
            if level != "editable" and name not in required:
                self.b.report("CL015", f"'{name}' is {level} in state '{state}': the "
                              "customer could not answer it", (*here, "fields", i))
        channels = tuple(body.get("channel", ("email", "sms")))
        for i, channel in enumerate(channels):
            if not any(f.type == ADDRESS[channel] for f in self.form.fields):
                self.b.report("CL016", f"form '{self.form.name}' has no {ADDRESS[channel]} "
                              f"field to send a {channel} to", (*here, "channel", i)
                              if "channel" in body else here)
        return Survey(body["fire"], duration(body["expires"]),
                      self.b.text(body["message"], (*here, "message")),
                      tuple(body["fields"]), channels, body.get("expired"))

    def cooldown(self, body: dict[str, Any]) -> Cooldown:
        if not self.d.get("customer_field"):
            self.b.report("CL016", "a cooldown needs the workflow's 'customer_field' to know "
                          "who the customer is", ("cooldown",), key=True)
        for i, state in enumerate(body.get("ignore", ())):
            self.state_ref(state, ("cooldown", "ignore", i))
        return Cooldown(duration(body["within"]), tuple(body.get("ignore", ())))

    def _typed(self, form: Form, name: str, types: tuple[str, ...], job: str, path: PathT
               ) -> Field | None:
        """The field ``name`` of ``form`` if its type is one of ``types``; else a problem."""
        f = form.field(name)
        if f is None:
            self.b.report("CL022", f"'{form.name}' has no field '{name}'"
                          f"{suggest(name, form.names)}", path)
            return None
        if f.type not in types:
            self.b.report("CL013", f"'{name}' is a {f.type} field; it cannot {job} "
                          f"(use a {' or '.join(types)} field)", path)
            return None
        return f


def started_by(d: dict[str, Any]) -> set[str]:
    """Workflows a workflow's data starts as linked cases."""
    out = set()
    for state in d.get("states", {}).values():
        for action in state.get("on_enter", ()):
            if isinstance(action.get("start"), dict):
                out.add(action["start"]["workflow"])
    return out
