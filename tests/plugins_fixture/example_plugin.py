"""A small plugin with one of each: field types, expression functions, a channel.

Registered by import name (``CASELOOP_PLUGINS = ["tests.plugins_fixture.example_plugin"]``).
The channel keeps what it sends in ``SENT``; a test sets ``FAILURE`` to make it fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from caseloop import hookimpl
from caseloop.crm.errors import CRMTransientError
from caseloop.plugins import Channel, FieldType, Function

NAME = "tests.plugins_fixture.example_plugin"
#: (to, subject, body, settings) of each message the pager channel delivered.
SENT: list[tuple[str, str, str, Mapping[str, Any]]] = []
#: How the next sends fail: None, "retry" (a retryable CRMError), "network" (an
#: OSError) or "refused" (anything else).
FAILURE: dict[str, str | None] = {"mode": None}


def clean_postcode(value: Any) -> str:
    text = "".join(str(value).split())
    if not (len(text) == 6 and text.isdigit()):
        raise ValueError("Enter a six-digit postcode.")
    return text


def clean_percent(value: Any) -> int:
    try:
        number = int(str(value).strip().rstrip("%"))
    except ValueError:
        raise ValueError("Enter a whole percentage.") from None
    if not 0 <= number <= 100:
        raise ValueError("A percentage goes from 0 to 100.")
    return number


def in_service_area(postcode: str | None) -> bool:
    if postcode is None:
        raise ValueError("no postcode")  # fails at run time, like a built-in on null
    return postcode[:2] in ("10", "20")


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def send_page(to: str, subject: str, body: str, settings: Mapping[str, Any]) -> None:
    mode = FAILURE["mode"]
    if mode == "retry":
        raise CRMTransientError("the pager gateway is busy", retry_after=120)
    if mode == "network":
        raise ConnectionRefusedError("pager gateway refused the connection")
    if mode == "refused":
        raise RuntimeError("the pager number is blocked")
    SENT.append((to, subject, body, settings))


def pager_of(data: Mapping[str, Any]) -> str | None:
    found = data.get("pager")
    return str(found) if found else None


@hookimpl
def register_field_types() -> list[FieldType]:
    return [FieldType("postcode", clean_postcode, help="Six digits."),
            FieldType("percent", clean_percent, expr_type="int", input_type="number")]


@hookimpl
def register_functions() -> list[Function]:
    return [Function("in_service_area", in_service_area, ("string",), "bool"),
            Function("clamp", clamp, ("int", "int", "int"), "int")]


@hookimpl
def register_channels() -> list[Channel]:
    return [Channel("pager", send_page, pager_of)]
