"""The static types of the expression language, and how form fields map onto them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class T:
    """A CEL type. ``elem`` is the element of a list or the value of a map;
    ``fields`` are the known members of a record (a group row, ``user``)."""

    kind: str
    elem: T | None = None
    fields: tuple[tuple[str, T], ...] = ()

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list({self.elem})"
        if self.kind == "map":
            return f"map(string, {self.elem})"
        if self.kind == "record":
            return "row" if self.fields else "map"
        return self.kind

    def member(self, name: str) -> T | None:
        for key, typ in self.fields:
            if key == name:
                return typ
        return None


INT = T("int")
UINT = T("uint")
DOUBLE = T("double")
STRING = T("string")
BOOL = T("bool")
BYTES = T("bytes")
TIMESTAMP = T("timestamp")
DURATION = T("duration")
NULL = T("null")
DYN = T("dyn")


def list_of(elem: T) -> T:
    return T("list", elem)


def record(fields: dict[str, T]) -> T:
    return T("record", None, tuple(fields.items()))


#: Types by the names plugins declare them with (``Function.args``, ``FieldType.expr_type``).
NAMED: dict[str, T] = {
    "string": T("string"), "int": T("int"), "double": T("double"), "bool": T("bool"),
    "timestamp": T("timestamp"), "duration": T("duration"), "list": T("list", T("dyn")),
    "map": T("map", T("dyn")), "dyn": T("dyn"),
}

NUMBERS = ("int", "uint", "double")

#: The type an expression sees for each field type of the form language.
FIELD_TYPES: dict[str, T] = {
    "text": STRING,
    "textarea": STRING,
    "email": STRING,
    "phone": STRING,
    "choice": STRING,
    "user": STRING,
    "reference": STRING,
    "integer": INT,
    "rating": INT,
    "nps": INT,
    "ces": INT,
    "decimal": DOUBLE,
    "boolean": BOOL,
    "date": TIMESTAMP,
    "datetime": TIMESTAMP,
    "multichoice": list_of(STRING),
    "file": list_of(record({"name": STRING, "size": INT, "type": STRING})),
}

#: Names every workflow expression may use besides the form's fields.
USER = record({"name": STRING, "roles": list_of(STRING), "teams": list_of(STRING)})
WORKFLOW_NAMES: dict[str, T] = {
    "state": STRING,
    "reference": STRING,
    "created_at": TIMESTAMP,
    "user": USER,
}
#: Names every expression may use.
COMMON_NAMES: dict[str, T] = {"now": TIMESTAMP}


def compatible(a: T, b: T) -> bool:
    """Whether values of ``a`` and ``b`` may be compared for equality."""
    if "dyn" in (a.kind, b.kind) or "null" in (a.kind, b.kind):
        return True
    if a.kind != b.kind:
        return False
    if a.kind == "list" and a.elem and b.elem:
        return compatible(a.elem, b.elem)
    return True


def assignable(value: T, target: T) -> bool:
    """Whether a value of type ``value`` may be stored in a field of type ``target``."""
    if value.kind in ("dyn", "null") or target.kind == "dyn":
        return True
    if value.kind == "int" and target.kind == "double":
        return True
    if value.kind == "list" and target.kind == "list":
        return assignable(value.elem or DYN, target.elem or DYN)
    if value.kind == "record" and target.kind == "record":
        return True
    return value.kind == target.kind


def unify(a: T, b: T) -> T | None:
    if a == b or b.kind == "null":
        return a
    if a.kind == "null" or a.kind == "dyn":
        return b
    if b.kind == "dyn":
        return a
    if a.kind == b.kind == "list":
        elem = unify(a.elem or DYN, b.elem or DYN)
        return list_of(elem) if elem else None
    if a.kind == b.kind == "record":
        return a if len(a.fields) >= len(b.fields) else b
    return None
