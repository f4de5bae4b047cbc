"""Record-level helpers: phone numbers, profile field paths, comment bodies,
Salesforce dateTimes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import httpx
import phonenumbers

from caseloop.crm import Activity

_COMMENT_MAX = 4000  # CaseComment.CommentBody
_LABELS = {"note": "Note", "call": "Call", "survey_result": "Survey result"}


def e164(value: Any, region: str | None) -> str | None:
    """A stored phone number in E.164, or None when it does not parse."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_digits(phone_e164: str) -> str:
    try:
        return str(phonenumbers.parse(phone_e164, None).national_number)
    except phonenumbers.NumberParseException:
        return "".join(ch for ch in phone_e164 if ch.isdigit())


def pick(raw: Mapping[str, Any], path: str | None) -> str | None:
    """The value at a profile field path ("Rating", "Account.Type"), as text."""
    if not path:
        return None
    value: Any = raw
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return None if value is None else str(value)


def comment_body(activity: Activity, marker: str) -> str:
    """The CommentBody: plain text (Salesforce shows it as is), a header, the
    text cut to fit 4,000 characters, and the marker line last."""
    when = activity.occurred_at
    when = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    head = f"{_LABELS.get(activity.kind, activity.kind)} from Caseloop, {when:%Y-%m-%d %H:%M} UTC"
    room = _COMMENT_MAX - len(head) - len(marker) - 4
    text = activity.body_text if len(activity.body_text) <= room else \
        activity.body_text[:room - 1] + "…"
    return f"{head}\n\n{text}\n\n{marker}"


def sf_datetime(value: str | None) -> dt.datetime | None:
    """A Salesforce dateTime ("2026-11-23T09:30:00.000+0000" or "...Z") in UTC."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        return None


def token_error(resp: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = json.loads(resp.content)
    except ValueError:
        return []
    return [body] if isinstance(body, dict) else []
