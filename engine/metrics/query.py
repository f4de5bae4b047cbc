"""A metrics request from a query string (the API's and the dashboard's): checked,
names resolved, turned into :class:`Filters`. No Flask here: callers pass the
arguments, the default zone and today's date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from ..models import DbSession, Team, User
from . import GROUPS, Filters

#: Without 'from' and 'to': the last 30 days up to today.
DEFAULT_DAYS = 30
NAME = validate.Length(1, 64)


class MetricsQuery(Schema):
    class Meta:
        unknown = RAISE

    workflow = fields.String(validate=NAME)
    from_ = fields.Date(data_key="from", metadata={"description": "first day (ISO date, "
                                                   "inclusive); 'all' for all time"})
    to = fields.Date(metadata={"description": "last day (ISO date, inclusive)"})
    all = fields.Boolean(metadata={"description": "all time (no first day)"})
    team = fields.String(validate=NAME)
    agent = fields.String(validate=NAME)
    channel = fields.String(validate=NAME)
    category = fields.String(validate=NAME)
    segment = fields.String(validate=NAME)
    group_by = fields.String(validate=validate.OneOf(GROUPS))
    tz = fields.String(validate=validate.Length(1, 64),
                       metadata={"description": "IANA time zone of the days (default: "
                                                "yours)"})

    @validates_schema
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("'from' is after 'to'", "from")


class BadQuery(Exception):
    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("the metrics query is not valid")
        self.fields = fields


def filters(session: DbSession, args: Mapping[str, str], *, zone: str, today: dt.date,
            minimum: int) -> Filters:
    try:
        q = MetricsQuery().load(dict(args))
    except ValidationError as exc:
        messages: Any = exc.messages
        raise BadQuery({str(k): [str(m) for m in (v if isinstance(v, list) else [v])]
                        for k, v in dict(messages).items()}) from None
    zone = q.get("tz") or zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadQuery({"tz": [f"unknown time zone '{zone}'"]}) from None
    end = q.get("to") or today
    start = None if q.get("all") else q.get("from_") or (
        end - dt.timedelta(days=DEFAULT_DAYS - 1))
    team_id = assignee_id = None
    if "team" in q:
        team_id = session.execute(select(Team.id).where(Team.name == q["team"])).scalar()
        if team_id is None:
            raise BadQuery({"team": [f"no team '{q['team']}'"]})
    if "agent" in q:
        assignee_id = session.execute(select(User.id).where(User.name == q["agent"])).scalar()
        if assignee_id is None:
            raise BadQuery({"agent": [f"no user '{q['agent']}'"]})
    return Filters(end=end, zone=zone, start=start, workflow=q.get("workflow"),
                   team_id=team_id, assignee_id=assignee_id, channel=q.get("channel"),
                   category=q.get("category"), segment=q.get("segment"),
                   group_by=q.get("group_by"), minimum=minimum)
