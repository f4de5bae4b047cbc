"""Build :class:`Form` objects from validated form files: includes, field rules, expressions."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import phonenumbers

from ..expr.types import (
    COMMON_NAMES,
    DYN,
    FIELD_TYPES,
    WORKFLOW_NAMES,
    T,
    assignable,
    list_of,
    record,
)
from .build import Builder, content_hash, size
from .extensions import NONE, Extensions, clean_value, expression_type
from .model import Choice, Field, Form
from .problems import Problem, suggest
from .source import PathT, Source

#: Keys that only make sense for some field types.
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "choices": ("choice", "multichoice"),
    "min_selected": ("multichoice",),
    "max_selected": ("multichoice",),
    "region": ("phone",),
    "places": ("decimal",),
    "metric": ("rating",),
    "report": ("rating",),
    "accept": ("file",),
    "max_size": ("file",),
    "max_files": ("file",),
    "of": ("user",),
    "roles": ("user",),
    "to": ("reference",),
    "workflow": ("reference",),
    "fields": ("group",),
    "min_rows": ("group",),
    "max_rows": ("group",),
    "row_label": ("group",),
    "min": ("integer", "decimal", "date", "datetime"),
    "max": ("integer", "decimal", "date", "datetime"),
    "min_length": ("text", "textarea", "email"),
    "max_length": ("text", "textarea", "email"),
    "pattern": ("text", "textarea", "phone", "email"),
}
#: Keys a type cannot do without.
NEEDS: dict[str, tuple[str, ...]] = {
    "choice": ("choices",), "multichoice": ("choices",), "group": ("fields",),
    "reference": ("to",),
}
#: Names that expressions use for something else.
RESERVED = frozenset({*COMMON_NAMES, *WORKFLOW_NAMES, "true", "false", "null", "in", "has",
                      "size", "int", "double", "string", "bool", "filled", "timestamp",
                      "duration", "uint", "bytes", "list", "map", "type"})
#: The fixed scales of the rating field types (a rating may set its own min/max).
SCALES = {"rating": (1, 5), "nps": (0, 10), "ces": (1, 7)}


def field_type(f: Field) -> T:
    if f.type == "group":
        return list_of(record({sub.name: field_type(sub) for sub in f.fields}))
    if f.plugin is not None:
        return expression_type(f.plugin)
    return FIELD_TYPES[f.type]


def names_of(fields: tuple[Field, ...]) -> dict[str, T]:
    """The names an expression over these fields may use."""
    return {**COMMON_NAMES, **{f.name: field_type(f) for f in fields}}


def build_forms(sources: Mapping[str, Source], problems: list[Problem],
                declared: frozenset[str] = frozenset(), extensions: Extensions = NONE
                ) -> dict[str, Form]:
    """Build every form; ``sources`` maps form name -> its validated source;
    ``declared`` names every form found, including ones with shape errors;
    ``extensions`` holds the plugins' field types the schema let through."""
    built: dict[str, Form | None] = {}

    def build(name: str, chain: tuple[str, ...]) -> Form | None:
        if name in built:
            return built[name]
        builder = Builder(sources[name], problems, extensions)
        built[name] = None  # marks "in progress" for cycle detection
        form = _FormBuilder(builder, sources, chain + (name,), build, declared).form()
        built[name] = form
        return form

    for name in sources:
        build(name, ())
    return {name: form for name, form in built.items() if form is not None}


class _FormBuilder:
    def __init__(self, b: Builder, sources: Mapping[str, Source], chain: tuple[str, ...],
                 build: Any, declared: frozenset[str]) -> None:
        self.b, self.sources, self.chain, self.build = b, sources, chain, build
        self.declared = declared
        self.data: dict[str, Any] = b.src.data
        self.name: str = self.data["form"]
        self.versions: list[str] = []
        self.open_names = False

    def form(self) -> Form | None:
        b = self.b
        b.name_matches_file(self.name, ("form",))
        fields = self.collect()
        seen: dict[str, str] = {}
        for i, f in fields:
            if f.name in seen:
                where = "" if seen[f.name] == self.name else f" (from form '{seen[f.name]}')"
                b.report("CL020", f"field '{f.name}' is defined twice{where}", ("fields", i))
            seen.setdefault(f.name, f.origin)
        plain = tuple(f for _, f in fields)
        own = [(i, f) for i, f in fields if f.origin == self.name]
        final = tuple(self.compile(i, f, plain) if f.origin == self.name else f
                      for i, f in fields)
        self.cycles(own, final)
        if b.failed:
            return None
        return Form(self.name, b.text(self.data.get("title", self.name), ("title",)),
                    b.maybe_text(self.data, "description", ()), final, b.src.path,
                    content_hash(b.src.text, *self.versions), b.src.text)

    def collect(self) -> list[tuple[int, Field]]:
        out: list[tuple[int, Field]] = []
        for i, item in enumerate(self.data["fields"]):
            if "include" not in item:
                out.append((i, self.field(item, ("fields", i), nested=False)))
                continue
            other = item["include"]
            path: PathT = ("fields", i, "include")
            if other in self.chain:
                cycle = " -> ".join((*self.chain[self.chain.index(other):], other))
                self.b.report("CL028", f"forms include each other in a cycle: {cycle}", path)
            elif other not in self.sources and other in self.declared:
                self.open_names = True  # its own file reports what is wrong with it
            elif other not in self.sources:
                self.b.report("CL021", f"unknown form '{other}'{suggest(other, self.sources)}",
                              path)
            else:
                included = self.build(other, self.chain)
                if included is None:
                    # Reported in its own file; don't echo it as unknown names here.
                    self.open_names = True
                else:
                    self.versions.append(included.version)
                    out.extend((i, f) for f in included.fields)
        return out

    def field(self, d: dict[str, Any], path: PathT, nested: bool) -> Field:
        b = self.b
        ftype = d["type"]
        plugin = b.extensions.field_types.get(ftype)
        for key in d:
            allowed = ONLY_FOR.get(key)
            if allowed and ftype not in allowed:
                b.report("CL016", f"'{key}' does not apply to a {ftype} field (only to "
                         f"{', '.join(allowed)})", (*path, key), key=True)
        for key in NEEDS.get(ftype, ()):
            if key not in d:
                b.report("CL012", f"a {ftype} field needs '{key}'", path)
        if d["name"] in RESERVED:
            b.report("CL014", f"'{d['name']}' is reserved in expressions; choose another "
                     "field name", (*path, "name"))
        choices = tuple(self.choice(c, (*path, "choices", j))
                        for j, c in enumerate(d.get("choices", ())))
        values = [c.value for c in choices]
        for j, value in enumerate(values):
            if value in values[:j]:
                b.report("CL020", f"choice '{value}' is listed twice", (*path, "choices", j))
        self.limits(d, path, ftype)
        subfields = tuple(self.field(sub, (*path, "fields", j), nested=True)
                          for j, sub in enumerate(d.get("fields", ())))
        label = b.text(d["label"], (*path, "label"))
        return Field(
            name=d["name"], type=ftype, label=label,
            help=b.maybe_text(d, "help", path), placeholder=b.maybe_text(d, "placeholder", path),
            required=bool(d.get("required", False)), default=d.get("default"),
            min=d.get("min", SCALES.get(ftype, (None,))[0]),
            max=d.get("max", SCALES.get(ftype, (None, None))[1]),
            min_length=d.get("min_length"), max_length=d.get("max_length"),
            pattern=d.get("pattern"),
            messages=MappingProxyType({k: b.text(v, (*path, "messages", k))
                                       for k, v in d.get("messages", {}).items()}),
            choices=choices, min_selected=d.get("min_selected"),
            max_selected=d.get("max_selected"), region=d.get("region"),
            places=d.get("places"), metric=d.get("metric", _default_metric(ftype)),
            report=d.get("report"), accept=tuple(d.get("accept", ())),
            max_size=size(d["max_size"]) if "max_size" in d else None,
            max_files=d.get("max_files"), of=d.get("of", "user"),
            roles=tuple(d.get("roles", ())), to=d.get("to"), workflow=d.get("workflow"),
            fields=subfields, min_rows=d.get("min_rows"), max_rows=d.get("max_rows"),
            row_label=b.maybe_text(d, "row_label", path), origin=self.name, plugin=plugin,
        )

    def choice(self, c: Any, path: PathT) -> Choice:
        if isinstance(c, str):
            return Choice(c, self.b.text(c, path))
        return Choice(c["value"], self.b.text(c.get("label", c["value"]), (*path, "label")))

    def limits(self, d: dict[str, Any], path: PathT, ftype: str) -> None:
        b = self.b
        for key in ("min", "max"):
            if key in d and ftype in ("date", "datetime"):
                try:
                    dt.date.fromisoformat(str(d[key])[:10])
                except ValueError:
                    b.report("CL014", f"'{key}' of a {ftype} field must be a date "
                             "(YYYY-MM-DD)", (*path, key))
            elif key in d and (isinstance(d[key], str) or isinstance(d[key], bool)):
                b.report("CL013", f"'{key}' of a {ftype} field must be a number", (*path, key))
        for low, high in (("min", "max"), ("min_length", "max_length"),
                          ("min_selected", "max_selected"), ("min_rows", "max_rows")):
            if low in d and high in d and _comparable(d[low], d[high]) and d[low] > d[high]:
                b.report("CL015", f"'{low}' ({d[low]}) is greater than '{high}' ({d[high]})",
                         (*path, low))
        if "pattern" in d:
            try:
                re.compile(d["pattern"])
            except (re.error, OverflowError, RecursionError) as exc:
                b.report("CL014", f"'pattern' is not a valid regular expression: {exc}",
                         (*path, "pattern"))
        if "region" in d and d["region"] not in phonenumbers.SUPPORTED_REGIONS:
            b.report("CL014", f"unknown phone region '{d['region']}' (use a two-letter "
                     "country code such as CN or US)", (*path, "region"))
        if d.get("report") and d.get("metric", "csat") != "csat":
            b.report("CL015", "'report' applies to CSAT ratings only", (*path, "report"))
        if d.get("required") and "value" in d:
            b.report("CL015", "a computed field ('value') is filled by Caseloop; it cannot be "
                     "'required'", (*path, "required"))
        plugin = self.b.extensions.field_types.get(ftype)
        if "default" in d and plugin is not None:
            try:
                clean_value(plugin, d["default"])
            except ValueError as exc:
                b.report("CL014", f"default {d['default']!r} does not fit a {ftype} field: "
                         f"{exc}", (*path, "default"))
        elif "default" in d and not _default_fits(d["default"], ftype, d):
            b.report("CL014", f"default {d['default']!r} does not fit a {ftype} field",
                     (*path, "default"))

    def compile(self, i: int, f: Field, fields: tuple[Field, ...]) -> Field:
        names: dict[str, T] = names_of(fields)
        if self.open_names:
            names = OpenNames(names)
        changes: dict[str, Any] = {}
        base: PathT = ("fields", i)
        data = self.data["fields"][i]
        for key in ("required_if", "visible_if", "readonly_if"):
            if key in data:
                changes[key] = self.b.expression(data[key], names, (*base, key))
        if "value" in data:
            changes["value"] = self.computed(data["value"], f, names, (*base, "value"))
        subs = []
        for j, sub in enumerate(f.fields):
            row: dict[str, T] = {**names, **names_of(f.fields)}
            if self.open_names:
                row = OpenNames(row)
            sdata = data["fields"][j]
            subchanges: dict[str, Any] = {}
            for key in ("required_if", "visible_if", "readonly_if"):
                if key in sdata:
                    subchanges[key] = self.b.expression(sdata[key], row,
                                                        (*base, "fields", j, key))
            if "value" in sdata:
                subchanges["value"] = self.computed(sdata["value"], sub, row,
                                                    (*base, "fields", j, "value"))
            subs.append(_replace(sub, subchanges))
        if subs:
            changes["fields"] = tuple(subs)
        return _replace(f, changes)

    def computed(self, source: str, f: Field, names: dict[str, T], path: PathT) -> Any:
        expr = self.b.expression(source, names, path, want=None)
        if expr is not None and not assignable(expr.type, field_type(f)):
            self.b.report("CL032", f"the computed value is {expr.type} but field '{f.name}' "
                          f"holds {field_type(f)}", path)
        return expr

    def cycles(self, own: list[tuple[int, Field]], fields: tuple[Field, ...]) -> None:
        """Computed values may not depend on each other in a circle."""
        deps = {f.name: (f.value.names if f.value else frozenset()) for f in fields}
        index = {f.name: i for i, f in own}
        for start in index:
            stack, seen = [start], set()
            while stack:
                node = stack.pop()
                for nxt in deps.get(node, ()):
                    if nxt == start:
                        self.b.report("CL032", f"computed value of '{start}' depends on itself",
                                      ("fields", index[start], "value"))
                        stack.clear()
                        break
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)


class OpenNames(dict[str, T]):
    """Names in scope when some could not be built: any other name is ``dyn``."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> T:
        return DYN


def _replace(f: Field, changes: dict[str, Any]) -> Field:
    if not changes:
        return f
    from dataclasses import replace
    return replace(f, **changes)


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (
        isinstance(a, str) and isinstance(b, str))


def _default_metric(ftype: str) -> str | None:
    return ftype if ftype in ("nps", "ces") else None


def _default_fits(value: Any, ftype: str, d: dict[str, Any]) -> bool:
    if ftype in ("integer", "rating", "nps", "ces"):
        return isinstance(value, int) and not isinstance(value, bool)
    if ftype == "decimal":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if ftype == "boolean":
        return isinstance(value, bool)
    if ftype == "choice":
        values = [c if isinstance(c, str) else c["value"] for c in d.get("choices", ())]
        return value in values
    if ftype == "multichoice":
        values = [c if isinstance(c, str) else c["value"] for c in d.get("choices", ())]
        return isinstance(value, list) and all(v in values for v in value)
    if ftype in ("date", "datetime"):
        try:
            if ftype == "date":
                dt.date.fromisoformat(str(value))
            else:
                dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return True
        except ValueError:
            return False
    if ftype in ("group", "file"):
        return False
    return isinstance(value, str)
