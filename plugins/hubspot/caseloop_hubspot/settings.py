"""The connector's settings: their JSON Schema (Caseloop checks CASELOOP_CRM against
it at start-up and renders it as the admin form) and their typed, defaulted form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_API_VERSION = "2026-03"
#: The stages of HubSpot's default support pipeline ("0"): 1 New, 2 Waiting on
#: contact, 3 Waiting on us, 4 Closed. A paused case waits on the customer.
DEFAULT_STAGES = {"open": "1", "paused": "2", "done": "4"}
DEFAULT_PROFILE_FIELDS = {"segment": "caseloop_segment", "value_tier": "caseloop_value_tier",
                          "lifecycle_stage": "lifecyclestage"}
#: Caseloop priorities → hs_ticket_priority's internal values.
PRIORITIES = {"low": "LOW", "medium": "MEDIUM", "normal": "MEDIUM", "high": "HIGH",
              "urgent": "URGENT"}

_PROPERTY = {"type": "string", "pattern": "^[a-z0-9_]+$", "maxLength": 100}

CONFIG_SCHEMA: Mapping[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "HubSpot",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "access_token": {"type": "string", "minLength": 1, "title": "Private app access token",
                         "description": "Static bearer token of a private app (instead of "
                                        "OAuth). Cannot be refreshed: replace it when revoked."},
        "client_id": {"type": "string", "minLength": 1, "title": "OAuth client id"},
        "client_secret": {"type": "string", "minLength": 1, "title": "App client secret",
                          "description": "OAuth refresh, and the key of webhook signatures "
                                         "(v3)."},
        "refresh_token": {"type": "string", "minLength": 1, "title": "OAuth refresh token"},
        "api_version": {"type": "string", "pattern": "^(v3|[0-9]{4}-[0-9]{2})$",
                        "default": DEFAULT_API_VERSION,
                        "description": "Date version of the CRM API (2026-03), or v3 for the "
                                       "legacy paths (supported until September 2027)."},
        "base_url": {"type": "string", "format": "uri", "default": DEFAULT_BASE_URL},
        "app_url": {"type": "string", "format": "uri", "default": "https://app.hubspot.com",
                    "description": "Where record links point (app-eu1.hubspot.com for EU)."},
        "portal_id": {"type": ["string", "integer"],
                      "description": "Hub id; with it, records get links into HubSpot."},
        "webhook_url": {"type": "string", "format": "uri",
                        "description": "The public URL HubSpot calls, when a proxy changes "
                                       "scheme, host or path on the way in."},
        "case_id_property": {**_PROPERTY, "default": "caseloop_id",
                             "description": "Ticket property with unique values that holds "
                                            "Caseloop's case id (create it first)."},
        "activity_id_property": {**_PROPERTY, "default": "caseloop_activity_id",
                                 "description": "Note property holding the activity's "
                                                "idempotency key (create it first)."},
        "pipeline": {"type": "string", "minLength": 1, "default": "0"},
        "pipeline_stages": {
            "type": "object", "description": "Stage id per state category.",
            "properties": {k: {"type": "string", "minLength": 1} for k in DEFAULT_STAGES},
            "additionalProperties": False},
        "profile_fields": {
            "type": "object", "description": "Contact property per profile attribute.",
            "properties": {k: _PROPERTY for k in DEFAULT_PROFILE_FIELDS},
            "additionalProperties": False},
        "default_region": {"type": "string", "pattern": "^[A-Z]{2}$",
                           "description": "Region for phones stored without +country."},
        "poll_settle_seconds": {"type": "number", "minimum": 0, "default": 10,
                                "description": "Changes younger than this wait for the next "
                                               "poll (HubSpot's search index lags)."},
    },
    "anyOf": [
        {"required": ["access_token"]},
        {"required": ["client_id", "client_secret", "refresh_token"]},
    ],
}


@dataclass(frozen=True)
class Settings:
    access_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    api_version: str = DEFAULT_API_VERSION
    base_url: str = DEFAULT_BASE_URL
    app_url: str = "https://app.hubspot.com"
    portal_id: str | None = None
    webhook_url: str | None = None
    case_id_property: str = "caseloop_id"
    activity_id_property: str = "caseloop_activity_id"
    pipeline: str = "0"
    pipeline_stages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STAGES))
    profile_fields: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_PROFILE_FIELDS))
    default_region: str | None = None
    poll_settle_seconds: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        c = dict(config)
        portal = c.get("portal_id")
        return cls(
            access_token=c.get("access_token"), client_id=c.get("client_id"),
            client_secret=c.get("client_secret"), refresh_token=c.get("refresh_token"),
            api_version=c.get("api_version", DEFAULT_API_VERSION),
            base_url=str(c.get("base_url", DEFAULT_BASE_URL)).rstrip("/"),
            app_url=str(c.get("app_url", "https://app.hubspot.com")).rstrip("/"),
            portal_id=str(portal) if portal is not None else None,
            webhook_url=c.get("webhook_url"),
            case_id_property=c.get("case_id_property", "caseloop_id"),
            activity_id_property=c.get("activity_id_property", "caseloop_activity_id"),
            pipeline=str(c.get("pipeline", "0")),
            pipeline_stages={**DEFAULT_STAGES, **c.get("pipeline_stages", {})},
            profile_fields={**DEFAULT_PROFILE_FIELDS, **c.get("profile_fields", {})},
            default_region=c.get("default_region"),
            poll_settle_seconds=float(c.get("poll_settle_seconds", 10)))
