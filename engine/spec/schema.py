"""The JSON Schema (draft-07) of the form, workflow and calendar formats.

This is the one description of each format's shape: the checker validates
files against it, ``caseloop schema`` writes it for editors
(yaml-language-server), and the app will serve it. Rules that need more
than shape (references, expressions, the graph) live in ``check``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

NAME = r"^[a-z][a-z0-9_]{0,62}$"
NAME_HINT = "use lower-case letters, digits and '_', starting with a letter (e.g. 'first_response')"
DURATION = r"^\s*(\d{1,6}\s*[wdhm]\s*){1,4}$"
DURATION_HINT = "write a duration such as '30m', '4h', '2d' or '1d 4h' (w, d, h, m)"
HOURS = r"^\s*(closed|\d{2}:\d{2}-\d{2}:\d{2}(\s*,\s*\d{2}:\d{2}-\d{2}:\d{2})*)\s*$"
HOURS_HINT = "write opening hours as '09:00-18:00', '09:00-12:00, 13:00-18:00' or 'closed'"
DATE = r"^\d{4}-\d{2}-\d{2}$"
DATE_HINT = "write a date as YYYY-MM-DD"
RECIPIENT = r"^(assignee|creator|customer|team|role:[a-z][a-z0-9_]*)$"
RECIPIENT_HINT = "recipients are 'assignee', 'creator', 'customer', 'team' or 'role:NAME'"
SIZE = r"^\s*\d+\s*(B|KB|MB)\s*$"
SIZE_HINT = "write a size such as '512KB' or '10MB'"

#: Messages for values that fail a pattern, keyed by the pattern.
PATTERN_HINTS = {
    NAME: NAME_HINT,
    DURATION: DURATION_HINT,
    HOURS: HOURS_HINT,
    DATE: DATE_HINT,
    RECIPIENT: RECIPIENT_HINT,
    SIZE: SIZE_HINT,
}

FIELD_TYPES = (
    "text", "textarea", "integer", "decimal", "boolean", "date", "datetime", "choice",
    "multichoice", "email", "phone", "rating", "nps", "ces", "file", "user", "reference",
    "group",
)
#: How a ``notify`` action may send (plugins add more: see :func:`schemas`).
CHANNELS = ("inbox", "email", "sms")
CATEGORIES = ("open", "paused", "done")
PERMISSIONS = ("editable", "readonly", "hidden")
LANGS = ("en", "zh")


def _s(description: str, **kw: Any) -> dict[str, Any]:
    return {"description": description, **kw}


def _obj(description: str, props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        out["required"] = list(required)
    return out


def _list(description: str, items: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"description": description, "type": "array", "items": items, **kw}


TEXT = {
    "description": "Text shown to people: a plain string, or {en: …, zh: …}.",
    "type": ["string", "object"],
    "properties": {lang: {"type": "string"} for lang in LANGS},
    "additionalProperties": False,
    "minProperties": 1,
}
EXPR = _s("An expression (CEL), checked against the form's fields.", type="string", minLength=1)
NAME_S = _s(NAME_HINT, type="string", pattern=NAME)
NAMES = _list("A list of names.", NAME_S, uniqueItems=True)
DUR = _s(DURATION_HINT, type="string", pattern=DURATION)

CHOICE = {
    "description": "A choice: its stored value alone, or {value, label}.",
    "type": ["string", "object"],
    "properties": {"value": {"type": "string", "minLength": 1}, "label": TEXT},
    "required": ["value"],
    "additionalProperties": False,
}
MESSAGES = _obj(
    "Custom error messages, per rule.",
    {k: TEXT for k in ("required", "min", "max", "length", "pattern", "choices", "rows",
                       "invalid")},
)


def field_schema(nested: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": NAME_S,
        "type": _s("The kind of value.", enum=list(FIELD_TYPES)),
        "label": TEXT,
        "help": TEXT,
        "placeholder": TEXT,
        "required": _s("The field must be filled.", type="boolean"),
        "required_if": EXPR,
        "visible_if": EXPR,
        "readonly_if": EXPR,
        "value": _s("A computed value (expression); the field is then read-only.",
                    type="string", minLength=1),
        "default": _s("The initial value.", type=["string", "number", "boolean", "array"]),
        "min": _s("Smallest number, or earliest date (YYYY-MM-DD).", type=["number", "string"]),
        "max": _s("Largest number, or latest date (YYYY-MM-DD).", type=["number", "string"]),
        "min_length": _s("Fewest characters.", type="integer", minimum=0),
        "max_length": _s("Most characters.", type="integer", minimum=1),
        "pattern": _s("A regular expression the whole text must match.", type="string"),
        "messages": MESSAGES,
        "choices": _list("The options of a choice or multichoice field.", CHOICE, minItems=1),
        "min_selected": _s("Fewest options to pick.", type="integer", minimum=0),
        "max_selected": _s("Most options to pick.", type="integer", minimum=1),
        "region": _s("Default region for phone numbers without +country (e.g. CN).",
                     type="string", pattern=r"^[A-Z]{2}$"),
        "places": _s("Decimal places of a decimal field.", type="integer", minimum=0,
                     maximum=10),
        "metric": _s("Which satisfaction metric a rating feeds.", enum=["csat", "nps", "ces"]),
        "report": _s("How CSAT is reported: the mean rating or the % of 4-5 answers.",
                     enum=["mean", "top2box"]),
        "accept": _list("Allowed file types: extensions ('.pdf') or MIME types ('image/*').",
                        {"type": "string", "minLength": 2}, minItems=1),
        "max_size": _s(SIZE_HINT, type="string", pattern=SIZE),
        "max_files": _s("Most files.", type="integer", minimum=1),
        "of": _s("What a user field picks.", enum=["user", "team"]),
        "roles": _list("Only people with one of these roles.", NAME_S, minItems=1),
        "to": _s("What a reference field links to.", enum=["case", "customer"]),
        "workflow": _s("For references to cases: the workflow of the case.", type="string",
                       pattern=NAME),
    }
    if not nested:
        props.update({
            "fields": {"$ref": "#/definitions/group_fields"},
            "min_rows": _s("Fewest rows of a group.", type="integer", minimum=0),
            "max_rows": _s("Most rows of a group.", type="integer", minimum=1),
            "row_label": TEXT,
        })
    return _obj("A field.", props, ("name", "type", "label"))


INCLUDE = _obj("Insert the fields of another form here.", {"include": NAME_S}, ("include",))

FORM = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://caseloop.dev/schema/form.json",
    "title": "Caseloop form",
    "type": "object",
    "additionalProperties": False,
    "required": ["form", "fields"],
    "properties": {
        "form": _s("The form's name; other definitions refer to it.", type="string",
                   pattern=NAME),
        "title": TEXT,
        "description": TEXT,
        "fields": _list("The fields, in order; '- include: NAME' inserts another form's fields.",
                        {"anyOf": [{"$ref": "#/definitions/include"},
                                   {"$ref": "#/definitions/field"}]}, minItems=1),
    },
    "definitions": {
        "field": field_schema(nested=False),
        "include": INCLUDE,
        "group_fields": _list("The fields of each row.", field_schema(nested=True), minItems=1),
    },
}

RECIPIENTS = _list("Who is told.", {"type": "string", "pattern": RECIPIENT}, minItems=1)
ASSIGN = _obj("Assign the case.", {"team": NAME_S, "role": NAME_S, "user": EXPR})


def _action(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "when": EXPR,
        "start": _obj("Start a linked case of another workflow.", {
            "workflow": NAME_S,
            "after": DUR,
            "map": _s("Field of the new case -> expression over this case.", type="object",
                      additionalProperties=EXPR),
            "assign": ASSIGN,
        }, ("workflow",)),
        "timer": _obj("Fire a transition later, unless the case has left the state: "
                      "'after' a duration, or 'at' a time (an expression, e.g. a field).",
                      {"after": DUR, "at": EXPR, "fire": NAME_S}, ("fire",)),
        "notify": _obj("Send a message.", {
            "to": RECIPIENTS,
            "message": TEXT,
            "channel": _s("How.", enum=list(CHANNELS)),
        }, ("to", "message")),
        "crm": _obj("Tell the customer's CRM.", {
            "push": _s("What to send.", enum=["case", "activity", "survey"]),
            "note": TEXT,
        }, ("push",)),
        "fire": _obj("Fire a transition on a linked case, or on this case itself (later, "
                     "through the outbox: a transition that is not possible then is noted).", {
            "case": _s("Which case.", enum=["parent", "children", "self"]),
            "trigger": NAME_S,
        }, ("case", "trigger")),
        "set": _s("Set fields: field -> expression.", type="object", additionalProperties=EXPR,
                  minProperties=1),
        "assign": ASSIGN,
        "cancel": _obj("Withdraw this case's linked cases of a workflow: starts still "
                       "scheduled are dropped, and open ones take 'trigger' (with 'map').", {
            "workflow": NAME_S,
            "trigger": NAME_S,
            "map": _s("Field of the linked case -> expression over this case.",
                      type="object", additionalProperties=EXPR),
        }, ("workflow",)),
        "measure": _obj("Compute an indicator over other cases (in the database) into a "
                        "field of this case.", {
            "workflow": NAME_S,
            "aggregate": _s("count: how many cases; mean: the average of 'field'.",
                            enum=["count", "mean"]),
            "field": _s("The numeric field averaged by 'mean'.", type="string",
                        pattern=NAME),
            "where": _s("Field of the measured cases -> expression over this case; only "
                        "cases whose field equals it count.", type="object",
                        additionalProperties=EXPR),
            "window": DUR,
            "into": _s("The numeric field of this case that receives the figure.",
                       type="string", pattern=NAME),
            "report": _s("A text field of this case that receives the figures in words.",
                         type="string", pattern=NAME),
        }, ("workflow", "aggregate", "window", "into")),
        "remind": _obj("Remind the owner of each row of a group before its due date, and "
                       "escalate after it, while the case stays in the state.", {
            "rows": _s("The group field.", type="string", pattern=NAME),
            "due": _s("The row's date field.", type="string", pattern=NAME),
            "owner": _s("The row's user field: who is reminded.", type="string",
                        pattern=NAME),
            "title": _s("The row's field that names it in messages.", type="string",
                        pattern=NAME),
            "done": _s("Row field -> the values that end its reminders.", type="object",
                       minProperties=1, maxProperties=1,
                       additionalProperties=_list("Values.", {"type": "string"},
                                                  minItems=1)),
            "before": DUR,
            "escalate": _list("After the due date, with the row still open.", _obj(
                "A level (the owner is always told too).",
                {"after": DUR, "notify": RECIPIENTS}, ("after", "notify"))),
            "calendar": _s("The calendar whose time zone says what 'today' is.",
                           type="string"),
            "at": _s("Local time of the daily check.", type="string",
                     pattern=r"^\d{2}:\d{2}$"),
        }, ("rows", "due", "owner", "done")),
        "survey": _obj("Send the customer a link to answer a survey: the answer sets "
                       "'fields' and takes 'fire'; the link works once, until it "
                       "'expires', and then 'expired' is fired.", {
            "fire": NAME_S,
            "fields": _list("The questions: fields the answer may set.", NAME_S,
                            minItems=1, uniqueItems=True),
            "expires": DUR,
            "message": TEXT,
            "channel": _list("Tried in order: the first the customer has an address for.",
                             {"enum": ["email", "sms"]}, minItems=1, uniqueItems=True),
            "expired": NAME_S,
        }, ("fire", "fields", "expires", "message")),
    }
    props.update(extra or {})
    return {"description": "One action ('when' is optional).", "type": "object",
            "properties": props, "additionalProperties": False, "minProperties": 1}


STATE = _obj("A state.", {
    "label": TEXT,
    "description": TEXT,
    "category": _s("open / paused (SLA clock stops) / done.", enum=list(CATEGORIES)),
    "final": _s("The case ends here.", type="boolean"),
    "fields": _obj("Field permissions in this state.", {
        "default": _s("For fields not listed.", enum=list(PERMISSIONS)),
        "editable": NAMES, "readonly": NAMES, "hidden": NAMES,
    }),
    "on_enter": _list("Actions run when a case enters the state.", _action()),
})

TRANSITION = _obj("A transition.", {
    "trigger": NAME_S,
    "from": _s("A state, a list of states, or '*' for any state that is not final.",
               type=["string", "array"], items={"type": "string"}, minItems=1),
    "to": _s("The state after.", type="string"),
    "label": TEXT,
    "description": TEXT,
    "allow": _list("Roles that may fire it. None listed: nobody may.", NAME_S),
    "guard": _obj("A condition and the reason shown when it is false.",
                  {"if": EXPR, "message": TEXT}, ("if", "message")),
    "requires": _list("Fields the user must fill to take it.", NAME_S, uniqueItems=True),
}, ("trigger", "from", "to"))

ESCALATION = _obj("What happens after a breach.", {
    "after": DUR,
    "notify": RECIPIENTS,
    "assign": ASSIGN,
    "raise_priority": _s("Move to the next higher priority.", type="boolean"),
    "fire": NAME_S,
})

TARGET = _obj("A time target.", {
    "name": NAME_S,
    "label": TEXT,
    "until": _s("Met when the case enters one of these states.", type=["string", "array"],
                items={"type": "string"}, minItems=1),
    "within": _s("A duration, or priority -> duration.", type=["string", "object"],
                 pattern=DURATION, additionalProperties=DUR),
    "warn_before": DUR,
    "escalate": _list("Escalation levels after a breach.", ESCALATION),
}, ("name", "until", "within"))

SLA = _obj("Service levels.", {
    "pause": _s("State categories that stop the clock.", type="array",
                items={"enum": list(CATEGORIES)}, uniqueItems=True),
    "policies": _list("The first policy whose 'when' holds applies.", _obj("A policy.", {
        "name": NAME_S,
        "when": EXPR,
        "calendar": _s("A calendar's name, or '24x7'.", type="string"),
        "targets": _list("Targets.", TARGET, minItems=1),
    }, ("name", "targets")), minItems=1),
}, ("policies",))

WORKFLOW = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://caseloop.dev/schema/workflow.json",
    "title": "Caseloop workflow",
    "type": "object",
    "additionalProperties": False,
    "required": ["workflow", "form", "roles", "states", "transitions"],
    "properties": {
        "workflow": _s("The workflow's name.", type="string", pattern=NAME),
        "title": TEXT,
        "description": TEXT,
        "form": _s("The case form: a form's name.", type="string", pattern=NAME),
        "reference_prefix": _s("Case references look like PREFIX-2026-000123.",
                               type="string", pattern=r"^[A-Z][A-Z0-9]{0,9}$"),
        "public": _s("Anyone may submit the intake form without logging in.", type="boolean"),
        "intake": _obj("The public intake page (with 'public: true'): what the public "
                       "fills, what the page sets, where the case lands.", {
                           "fields": _list("The fields the public fills, in order: each "
                                           "editable in the initial state.", NAME_S,
                                           minItems=1),
                           "set": _s("Fields the page sets, whatever was posted: field -> "
                                     "expression (channel: \"'web'\").", type="object",
                                     additionalProperties=EXPR),
                           "team": _s("The team whose queue a new case lands in.",
                                      type="string", minLength=1),
                           "thanks": TEXT,
                       }, ("fields",)),
        "roles": _list("The roles used here ('system' is built in).", NAME_S, minItems=1,
                       uniqueItems=True),
        "start": _list("Roles that may open a case.", NAME_S),
        "initial": _s("The first state (default: the first listed).", type="string"),
        "priority_field": _s("The choice field holding the priority.", type="string",
                             pattern=NAME),
        "customer_field": _s("The field identifying the customer.", type="string",
                             pattern=NAME),
        "states": _s("State name -> state.", type="object", minProperties=1,
                     propertyNames={"pattern": NAME}, additionalProperties=STATE),
        "transitions": _list("Transitions.", TRANSITION, minItems=1),
        "sla": SLA,
        "cooldown": _obj("Recontact limit: no automatic new case for a customer who had "
                         "one within this time (starts by hand are not limited).", {
            "within": DUR,
            "ignore": _list("Cases that ended in these states do not count.", NAME_S),
        }, ("within",)),
    },
}

CALENDAR = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://caseloop.dev/schema/calendar.json",
    "title": "Caseloop business calendar",
    "type": "object",
    "additionalProperties": False,
    "required": ["calendar", "timezone", "hours"],
    "properties": {
        "calendar": _s("The calendar's name.", type="string", pattern=NAME),
        "title": TEXT,
        "timezone": _s("An IANA time zone, e.g. Asia/Shanghai.", type="string"),
        "hours": _obj("Working hours per weekday.", {
            d: _s(HOURS_HINT, type="string", pattern=HOURS)
            for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        }),
        "holidays": _list("Days off.", _s(DATE_HINT, type="string", pattern=DATE),
                          uniqueItems=True),
        "workdays": _list("Extra working days (e.g. make-up days), with Monday's hours.",
                          _s(DATE_HINT, type="string", pattern=DATE), uniqueItems=True),
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "form": FORM,
    "workflow": WORKFLOW,
    "calendar": CALENDAR,
}


def schemas(field_types: Iterable[str] = (), channels: Iterable[str] = ()
            ) -> dict[str, dict[str, Any]]:
    """The schemas with plugins' field types and notification channels added to the
    built-in ones (an install's own formats); none given: :data:`SCHEMAS` itself."""
    types, ways = sorted(field_types), sorted(channels)
    if not types and not ways:
        return SCHEMAS
    out = copy.deepcopy(SCHEMAS)
    # Found by their enums, wherever they sit: a field's type (also in a group's rows)
    # and a notify action's channel.
    extend = {tuple(FIELD_TYPES): types, CHANNELS: ways}
    stack: list[Any] = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            more = extend.get(tuple(node.get("enum", ())))
            if more:
                node["enum"] = [*node["enum"], *more]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def write(directory: Path, found: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write one ``KIND.json`` per format (``found``, else the built-in formats) into
    ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for kind, schema in (found or SCHEMAS).items():
        path = directory / f"{kind}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", "utf-8")
        out.append(path)
    return out
