"""Marshmallow schemas of the API's bodies, query strings and answers.

They check the *envelope* (types, unknown keys, limits); the case's field
values are checked by :mod:`caseloop.values` against the workflow's form.
They also describe the API in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..jobs import STATUSES


class CaseCreate(Schema):
    class Meta:
        unknown = RAISE

    workflow = fields.String(required=True, validate=validate.Length(1, 64))
    data = fields.Dict(keys=fields.String(), load_default=dict)


class TransitionBody(Schema):
    class Meta:
        unknown = RAISE

    data = fields.Dict(keys=fields.String(), load_default=dict)


class CaseQuery(Schema):
    class Meta:
        unknown = RAISE

    workflow = fields.String()
    state = fields.String()
    assignee = fields.String(metadata={"description": "user name, or 'me'"})
    customer = fields.String()
    open = fields.Boolean(metadata={"description": "only open (true) or closed (false)"})
    limit = fields.Integer(validate=validate.Range(1, 1000))
    cursor = fields.String()


class PageQuery(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(validate=validate.Range(1, 1000))
    cursor = fields.String()


class JobQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.Length(1, 32))
    case = fields.Integer(validate=validate.Range(1, 2**63 - 1))
    limit = fields.Integer(validate=validate.Range(1, 1000))
    cursor = fields.String()


class AssignBody(Schema):
    class Meta:
        unknown = RAISE

    user = fields.String(required=True, allow_none=True, validate=validate.Length(1, 64),
                         metadata={"description": "a user name; null: back to the queue"})


class CommentBody(Schema):
    class Meta:
        unknown = RAISE

    text = fields.String(required=True)


class InboxQuery(Schema):
    class Meta:
        unknown = RAISE

    tab = fields.String(load_default="mine", validate=validate.OneOf(
        ["mine", "team", "overdue", "due_soon", "recent"]))
    workflow = fields.String(validate=validate.Length(1, 64))
    state = fields.String(validate=validate.Length(1, 64))
    priority = fields.String(validate=validate.Length(1, 32))
    channel = fields.String(validate=validate.Length(1, 64))
    customer = fields.String(validate=validate.Length(1, 200))
    q = fields.String(validate=validate.Length(1, 200),
                      metadata={"description": "a reference, a phone number or a name"})
    limit = fields.Integer(validate=validate.Range(1, 1000))
    cursor = fields.String()


class CaseOut(Schema):
    id = fields.Integer()
    reference = fields.String()
    workflow = fields.String()
    definition_version = fields.String()
    state = fields.String()
    closed = fields.Boolean()
    data = fields.Dict()
    customer_ref = fields.String(allow_none=True)
    priority = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    parent_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()
    due_at = fields.DateTime(allow_none=True, metadata={
        "description": "the earliest deadline of the SLA targets not yet met"})
    sla_breached = fields.Boolean()


class CasePage(Schema):
    items = fields.List(fields.Nested(CaseOut))
    next_cursor = fields.String(allow_none=True)


class ActionOut(Schema):
    trigger = fields.String()
    label = fields.String()
    to = fields.String()
    requires = fields.List(fields.String())
    available = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={"description": "why not, if unavailable"})


class ActionList(Schema):
    version = fields.Integer()
    state = fields.String()
    actions = fields.List(fields.Nested(ActionOut))


class EventOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    actor = fields.String()
    trigger = fields.String(allow_none=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    payload = fields.Dict()
    at = fields.DateTime()


class EventPage(Schema):
    items = fields.List(fields.Nested(EventOut))
    next_cursor = fields.String(allow_none=True)


class WorkflowOut(Schema):
    name = fields.String()
    title = fields.Dict()
    version = fields.String()
    initial = fields.String()
    public = fields.Boolean()
    start_roles = fields.List(fields.String())
    states = fields.List(fields.Dict())
    transitions = fields.List(fields.Dict())
    form = fields.Dict()


class ErrorOut(Schema):
    class Inner(Schema):
        code = fields.String()
        message = fields.String()
        fields_ = fields.Dict(data_key="fields")

    error = fields.Nested(Inner)


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """Validate with ``schema``; raise the API's 400/422 error on failure."""
    from . import ApiError

    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    try:
        result: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid", "the request is not valid",
                       _flatten(exc.messages)) from None
    return result


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, path))
    elif isinstance(messages, list):
        out[prefix or "_"] = [str(m) for m in messages]
    else:
        out[prefix or "_"] = [str(messages)]
    return out
