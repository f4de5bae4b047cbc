"""Build :class:`Workflow` objects: references, permissions, actions and the graph."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..expr.types import WORKFLOW_NAMES, T
from .actions import ActionBuilder
from .build import Builder, content_hash
from .extensions import NONE, Extensions
from .forms import names_of
from .model import Form, Guard, Intake, Permissions, State, Transition, Workflow
from .problems import Problem, suggest
from .sla import build_sla
from .source import PathT, Source

SYSTEM = "system"


def build_workflows(sources: Mapping[str, Source], forms: Mapping[str, Form],
                    declared: set[tuple[str, str]], calendars: set[str],
                    problems: list[Problem], extensions: Extensions = NONE
                    ) -> dict[str, Workflow]:
    """``declared`` holds the names of all forms and workflows found, sound or
    not: a broken one is reported in its own file, not again as unknown here."""
    raw = {name: src.data for name, src in sources.items()}
    out = {}
    for name, src in sources.items():
        wf = _WorkflowBuilder(Builder(src, problems, extensions), raw, forms, declared,
                              calendars).build()
        if wf is not None:
            out[name] = wf
    return out


class _WorkflowBuilder(ActionBuilder):
    def __init__(self, b: Builder, raw: Mapping[str, Any], forms: Mapping[str, Form],
                 declared: set[tuple[str, str]], calendars: set[str]) -> None:
        self.b, self.raw, self.forms, self.calendars = b, raw, forms, calendars
        self.declared = declared
        self.d: dict[str, Any] = b.src.data
        self.name: str = self.d["workflow"]
        self.roles = frozenset(self.d["roles"]) | {SYSTEM}
        self.state_names = list(self.d["states"])
        self.unknown_states = False

    def build(self) -> Workflow | None:
        b, d = self.b, self.d
        b.name_matches_file(self.name, ("workflow",))
        form = self.forms.get(d["form"])
        if form is None:
            if ("form", d["form"]) not in self.declared:
                b.report("CL021", f"unknown form '{d['form']}'{suggest(d['form'], self.forms)}",
                         ("form",))
            return None
        self.form = form
        self.names: dict[str, T] = {**names_of(form.fields), **WORKFLOW_NAMES}
        for key in ("priority_field", "customer_field"):
            if key in d:
                self.field_ref(d[key], (key,))
        if d.get("priority_field") and (f := form.field(d["priority_field"])) and \
                f.type != "choice":
            b.report("CL015", f"the priority field must be a choice field, not {f.type}",
                     ("priority_field",))
        self.role_refs(d.get("start", ()), ("start",))
        initial = d.get("initial", self.state_names[0])
        if initial not in d["states"]:
            self.state_ref(initial, ("initial",))
        transitions = tuple(self.transition(t, ("transitions", i))
                            for i, t in enumerate(d["transitions"]))
        states = {n: self.state(n, s, transitions) for n, s in d["states"].items()}
        self.graph(initial, states, transitions)
        sla = build_sla(b, d["sla"], self) if "sla" in d else None
        cooldown = self.cooldown(d["cooldown"]) if "cooldown" in d else None
        intake = self.intake(d["intake"], states.get(initial)) if "intake" in d else None
        if b.failed:
            return None
        return Workflow(
            name=self.name, title=b.text(d.get("title", self.name), ("title",)),
            description=b.maybe_text(d, "description", ()), form=form,
            roles=self.roles, start_roles=frozenset(d.get("start", ())), initial=initial,
            states=MappingProxyType(states), transitions=transitions, path=b.src.path,
            version=content_hash(b.src.text, form.version),
            reference_prefix=d.get("reference_prefix", self.name[:3].upper()),
            public=bool(d.get("public", False)), priority_field=d.get("priority_field"),
            customer_field=d.get("customer_field"), sla=sla, cooldown=cooldown,
            intake=intake, source=b.src.text,
        )

    # -- references -----------------------------------------------------------
    def field_ref(self, name: str, path: PathT) -> bool:
        if name in self.form.names:
            return True
        self.b.report("CL022", f"unknown field '{name}'{suggest(name, self.form.names)}", path)
        return False

    def state_ref(self, name: str, path: PathT) -> bool:
        if name in self.d["states"]:
            return True
        self.unknown_states = True
        self.b.report("CL023", f"unknown state '{name}'{suggest(name, self.state_names)}", path)
        return False

    def role_refs(self, roles: Any, path: PathT) -> None:
        for i, role in enumerate(roles):
            if role not in self.roles:
                self.b.report("CL024", f"unknown role '{role}'{suggest(role, self.roles)}",
                              (*path, i))

    def trigger_ref(self, workflow: str, trigger: str, path: PathT) -> None:
        """``trigger`` must exist in ``workflow`` and be allowed to role system."""
        wf = self.raw.get(workflow)
        if wf is None:
            return
        triggers = [t for t in wf["transitions"] if t["trigger"] == trigger]
        where = "" if workflow == self.name else f" of workflow '{workflow}'"
        if not triggers:
            known = {t["trigger"] for t in wf["transitions"]}
            self.b.report("CL026", f"unknown trigger '{trigger}'{where}{suggest(trigger, known)}",
                          path)
        elif not any(SYSTEM in t.get("allow", ()) for t in triggers):
            self.b.report("CL047", f"'{trigger}'{where} does not allow role 'system'", path)

    # -- the public intake page ----------------------------------------------------
    def intake(self, d: dict[str, Any], initial: State | None) -> Intake:
        """What the public may fill: fields that exist, editable in the initial state,
        each once, not computed and not uploads; the page's own ``set`` values on
        fields the customer does not fill. Only for a workflow with ``public: true``."""
        b, path = self.b, ("intake",)
        if not self.d.get("public", False):
            b.report("CL016", "'intake' is the public page of a public workflow; add "
                     "'public: true' or remove 'intake'", path, key=True)
        seen: set[str] = set()
        for i, name in enumerate(d["fields"]):
            here = (*path, "fields", i)
            if not self.field_ref(name, here):
                continue
            f = self.form.field(name)
            if name in seen:
                b.report("CL020", f"'{name}' is listed twice", here)
            seen.add(name)
            if f is not None and f.computed:
                b.report("CL015", f"'{name}' is computed; the public cannot fill it", here)
            elif f is not None and f.type == "file":
                b.report("CL015", f"'{name}' is a file field; the intake page takes no "
                         "uploads yet", here)
            elif f is not None and f.type in ("user", "reference"):
                b.report("CL015", f"'{name}' is a {f.type} field; the public cannot pick "
                         f"the staff's {f.type}s", here)
            elif initial is not None and initial.fields.of(name) != "editable":
                b.report("CL015", f"'{name}' is {initial.fields.of(name)} in the initial "
                         f"state '{initial.name}'; the public could not fill it", here)
        sets = self.mapping(d.get("set", {}), self.form, (*path, "set"))
        for key in sets:
            if key in seen:
                b.report("CL015", f"'{key}' is both filled by the public and set by the page",
                         (*path, "set", key), key=True)
            elif initial is not None and initial.fields.of(key) == "hidden":
                b.report("CL015", f"'{key}' is hidden in the initial state '{initial.name}'; "
                         "the page cannot set it", (*path, "set", key), key=True)
        return Intake(tuple(d["fields"]), sets, d.get("team"),
                      b.maybe_text(d, "thanks", path))

    # -- transitions ------------------------------------------------------------
    def transition(self, t: dict[str, Any], path: PathT) -> Transition:
        b = self.b
        src = t["from"]
        if src == "*":
            sources = tuple(n for n, s in self.d["states"].items() if not s.get("final"))
        else:
            listed = [src] if isinstance(src, str) else src
            key = (*path, "from")
            sources = tuple(s for i, s in enumerate(listed)
                            if self.state_ref(s, key if isinstance(src, str) else (*key, i)))
        self.state_ref(t["to"], (*path, "to"))
        self.role_refs(t.get("allow", ()), (*path, "allow"))
        if not t.get("allow"):
            b.report("CL046", f"no roles in 'allow': nobody may fire '{t['trigger']}'",
                     (*path, "trigger"))
        for i, name in enumerate(t.get("requires", ())):
            if self.field_ref(name, (*path, "requires", i)):
                f = self.form.field(name)
                if f is not None and f.computed:
                    b.report("CL015", f"'{name}' is computed; a transition cannot require it",
                             (*path, "requires", i))
        guard = None
        if "guard" in t:
            expr = b.expression(t["guard"]["if"], self.names, (*path, "guard", "if"))
            message = b.text(t["guard"]["message"], (*path, "guard", "message"))
            guard = Guard(expr, message) if expr is not None else None
        return Transition(t["trigger"], sources, t["to"],
                          b.text(t.get("label", t["trigger"]), (*path, "label")),
                          frozenset(t.get("allow", ())), guard, tuple(t.get("requires", ())),
                          b.maybe_text(t, "description", path))

    # -- states -------------------------------------------------------------------
    def state(self, name: str, s: dict[str, Any], transitions: tuple[Transition, ...]
              ) -> State:
        b, path = self.b, ("states", name)
        final = bool(s.get("final", False))
        category = s.get("category", "done" if final else "open")
        if final and category != "done":
            b.report("CL015", f"final state '{name}' must be in category 'done'",
                     (*path, "category"))
        perms = self.permissions(s.get("fields", {}), (*path, "fields"))
        for i, t in enumerate(transitions):
            if name in t.sources:
                for j, req in enumerate(t.requires):
                    if perms.of(req) == "hidden":
                        b.report("CL042", f"'{t.trigger}' requires '{req}', which is hidden in "
                                 f"state '{name}'", ("transitions", i, "requires", j))
        built = (self.action(a, name, (*path, "on_enter", i))
                 for i, a in enumerate(s.get("on_enter", ())))
        actions = tuple(a for a in built if a is not None)
        return State(name, b.text(s.get("label", name), (*path, "label")), category, final,
                     b.maybe_text(s, "description", path), perms, actions)

    def permissions(self, d: dict[str, Any], path: PathT) -> Permissions:
        overrides: dict[str, str] = {}
        for level in ("editable", "readonly", "hidden"):
            for i, name in enumerate(d.get(level, ())):
                if not self.field_ref(name, (*path, level, i)):
                    continue
                if name in overrides:
                    self.b.report("CL015", f"'{name}' is both {overrides[name]} and {level}",
                                  (*path, level, i))
                overrides[name] = level
        return Permissions(d.get("default", "editable"), MappingProxyType(overrides))

    def graph(self, initial: str, states: dict[str, State],
              transitions: tuple[Transition, ...]) -> None:
        b = self.b
        edges: dict[str, set[str]] = {n: set() for n in states}
        seen_triggers: dict[tuple[str, str], int] = {}
        for i, t in enumerate(transitions):
            for s in t.sources:
                edges.setdefault(s, set()).add(t.dest)
                if (s, t.trigger) in seen_triggers:
                    b.report("CL043", f"trigger '{t.trigger}' leaves state '{s}' twice "
                             f"(transitions {seen_triggers[(s, t.trigger)] + 1} and {i + 1})",
                             ("transitions", i, "trigger"))
                seen_triggers.setdefault((s, t.trigger), i)
                if s in states and states[s].final:
                    b.report("CL044", f"final state '{s}' has a way out ('{t.trigger}')",
                             ("transitions", i, "from"))
        if not any(s.final for s in states.values()):
            b.report("CL045", f"workflow '{self.name}' has no final state", ("states",))
        reached, todo = {initial}, [initial]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        for name, state in states.items():
            # After an unknown state (a typo) reachability would only echo it.
            if name not in reached and initial in states and not self.unknown_states:
                b.report("CL040", f"state '{name}' cannot be reached from '{initial}'",
                         ("states", name), key=True)
            if not state.final and not edges.get(name):
                b.report("CL041", f"state '{name}' is not final and has no way out",
                         ("states", name), key=True)
