"""Check a parsed file against its JSON Schema and word the errors for people.

jsonschema's own messages ("Additional properties are not allowed ('frm'
was unexpected)") are written for programmers. This turns each error into
a problem at the right key or value, in the checker's wording, with a
"did you mean" where a typo is likely.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from .extensions import NONE, Extensions
from .problems import Problem, suggest
from .schema import PATTERN_HINTS, SCHEMAS, schemas
from .source import PathT, Source

#: Validators by the plugins' names (field types, channels) and kind: usually one set.
_VALIDATORS: dict[tuple[Any, ...], dict[str, Draft7Validator]] = {}
_JSON_TYPES = {"object": "a mapping", "array": "a list", "string": "text",
               "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "null": "nothing"}


def kind_of(src: Source) -> str | None:
    """``form``, ``workflow`` or ``calendar`` by the file's first key; or a problem."""
    data = src.data
    if not isinstance(data, dict):
        src.problems.append(src.problem(
            "CL010", f"a definition is a mapping, not {_describe(data)}"))
        return None
    # A workflow names its form with 'form:', so look for 'workflow' first.
    for kind in ("workflow", "calendar", "form"):
        if kind in data:
            return kind
    first = next(iter(data), "")
    src.problems.append(src.problem(
        "CL010", f"unknown kind of definition: it starts with '{first}'"
        f"{suggest(str(first), SCHEMAS)}", (first,), key=True))
    return None


#: Shape problems by (path, content digest, kind, plugins); problems are immutable.
_CACHE: dict[tuple[Any, ...], list[Problem]] = {}


def validate(src: Source, kind: str, extensions: Extensions = NONE) -> list[Problem]:
    """All shape problems of ``src`` against the schema of ``kind`` (with the
    plugins' field types and channels)."""
    key = (src.path, src.digest, kind, extensions.key)
    if src.digest and key in _CACHE:
        return list(_CACHE[key])
    problems = _validate(src, _validator(kind, extensions))
    if src.digest:
        if len(_CACHE) > 2048:
            _CACHE.clear()
        _CACHE[key] = problems
    return list(problems)


def _validator(kind: str, extensions: Extensions) -> Draft7Validator:
    found = _VALIDATORS.get(extensions.key)
    if found is None:
        if len(_VALIDATORS) > 64:
            _VALIDATORS.clear()
        found = _VALIDATORS[extensions.key] = {
            k: Draft7Validator(schema) for k, schema in schemas(
                extensions.field_types, extensions.channels).items()}
    return found[kind]


def _validate(src: Source, validator: Draft7Validator) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, tuple[int, int]]] = set()
    for error in _leaves(validator.iter_errors(src.data)):
        for problem in _word(src, error):
            where = (problem.code, (problem.line, problem.col))
            if where not in seen:  # anyOf branches often repeat one finding
                seen.add(where)
                problems.append(problem)
    return problems


def _leaves(errors: Any) -> Iterator[ValidationError]:
    """Descend anyOf to the branch that fits best (a field vs an include)."""
    for error in errors:
        if error.validator == "anyOf" and error.context:
            branch = _best_branch(error)
            yield from _leaves(iter(branch))
        else:
            yield error


def _best_branch(error: ValidationError) -> list[ValidationError]:
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branch = sub.schema_path[0] if sub.schema_path else 0
        by_branch.setdefault(int(branch), []).append(sub)
    instance = error.instance
    # '- include: x' picks the include branch; anything else is a field.
    want = 0 if isinstance(instance, dict) and "include" in instance else 1
    return by_branch.get(want) or min(by_branch.values(), key=len)


def _word(src: Source, error: ValidationError) -> Iterator[Problem]:
    e: Any = error  # jsonschema types its attributes loosely
    path: PathT = tuple(e.absolute_path)
    v = e.validator
    schema = e.schema if isinstance(e.schema, dict) else {}
    if v == "additionalProperties" and isinstance(e.instance, dict):
        allowed = list(schema.get("properties", {}))
        for key in e.instance:
            if key not in allowed:
                yield src.problem("CL011", f"unknown key '{key}'{suggest(key, allowed)}",
                                  (*path, key), key=True)
    elif v == "required":
        missing = [k for k in e.validator_value if k not in e.instance]
        where = path if path else ()
        for key in missing:
            yield src.problem("CL012", f"missing required key '{key}'{_under(path)}", where,
                              key=bool(path))
    elif v == "type":
        want: list[str] = (e.validator_value if isinstance(e.validator_value, list)
                           else [e.validator_value])
        words = " or ".join(_JSON_TYPES.get(w, w) for w in want)
        hint = ""
        if "boolean" in want and isinstance(e.instance, str):
            hint = "YAML 1.2 knows only true and false; 'yes', 'no', 'on' and 'off' are text"
        yield src.problem("CL013", f"{_name(path)} must be {words}, not {_describe(e.instance)}",
                          path, hint=hint)
    elif v == "enum":
        options = [str(o) for o in e.validator_value]
        yield src.problem("CL014", f"{_name(path)}: unknown value '{e.instance}'"
                          f"{suggest(str(e.instance), options)}", path)
    elif v == "pattern":
        hint = PATTERN_HINTS.get(e.validator_value, f"must match {e.validator_value}")
        yield src.problem("CL014", f"{_name(path)}: '{e.instance}' is not valid: {hint}", path)
    elif v == "propertyNames":
        bad = e.instance if isinstance(e.instance, str) else ""
        yield src.problem("CL014", f"'{bad}' is not a valid name: "
                          f"{PATTERN_HINTS[e.validator_value['pattern']]}", (*path, bad), key=True)
    else:
        yield src.problem("CL014", f"{_name(path)}: {_rule(e)}", path)


def _rule(e: Any) -> str:
    v, n = e.validator, e.validator_value
    rules: dict[str, str] = {
        "minItems": f"needs at least {n} item{'s' if n != 1 else ''}",
        "maxItems": f"allows at most {n} items",
        "minProperties": "must not be empty",
        "maxProperties": f"allows at most {n} entries",
        "minLength": "must not be empty",
        "maxLength": f"allows at most {n} characters",
        "minimum": f"must be at least {n}",
        "maximum": f"must be at most {n}",
        "uniqueItems": "lists the same item twice",
    }
    return rules.get(str(v), str(e.message))


def _under(path: PathT) -> str:
    return f" in {_name(path)}" if path else ""


def _name(path: PathT) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the definition"


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"text '{value[:40]}'"
    return f"{type(value).__name__} {value!r}"
