"""The Zoho connector's settings: their JSON Schema, defaults and the data-centre map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Zoho Accounts server per data centre (Zoho's "Multi DC support" pages). The API
#: domain is NOT derived from this: it comes back in every token response.
ACCOUNTS_URLS: Mapping[str, str] = {
    "com": "https://accounts.zoho.com",
    "eu": "https://accounts.zoho.eu",
    "in": "https://accounts.zoho.in",
    "com.cn": "https://accounts.zoho.com.cn",
    "com.au": "https://accounts.zoho.com.au",
    "jp": "https://accounts.zoho.jp",
    # Canada is the exception: its accounts server lives under zohocloud.ca.
    "ca": "https://accounts.zohocloud.ca",
    "sa": "https://accounts.zoho.sa",
}

DEFAULT_STATUS_MAP: Mapping[str, str] = {"open": "New", "paused": "On Hold", "done": "Closed"}
DEFAULT_PRIORITY_MAP: Mapping[str, str] = {
    "low": "Low", "normal": "Medium", "medium": "Medium", "high": "High", "urgent": "High",
}
DEFAULT_PROFILE_FIELDS: Mapping[str, str] = {
    "segment": "Segment", "value_tier": "Value_Tier", "lifecycle_stage": "Lifecycle_Stage",
}
DEFAULT_WATCH_EVENTS = ("Cases.all", "Contacts.edit")

_field_name = {"type": "string", "minLength": 1, "maxLength": 100}

CONFIG_SCHEMA: Mapping[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Zoho CRM connector settings",
    "type": "object",
    "additionalProperties": False,
    "required": ["client_id", "client_secret", "refresh_token"],
    "properties": {
        "data_centre": {"enum": sorted(ACCOUNTS_URLS), "default": "com",
                        "description": "Where the Zoho org lives; picks the accounts server."},
        "accounts_url": {"type": "string", "format": "uri",
                         "description": "Override of the accounts server (tests, new DCs)."},
        "api_domain": {"type": "string", "format": "uri",
                       "description": "Override of the API domain; normally it comes from "
                                      "the token response (api_domain) and is kept with "
                                      "the token."},
        "client_id": {"type": "string", "minLength": 1},
        "client_secret": {"type": "string", "minLength": 1},
        "refresh_token": {"type": "string", "minLength": 1},
        "api_version": {"type": "string", "pattern": "^v[0-9]+(\\.[0-9]+)?$", "default": "v8"},
        "case_id_field": {**_field_name, "default": "Caseloop_Id",
                          "description": "Unique custom field on Cases holding Caseloop's "
                                         "case id (upsert duplicate_check_fields)."},
        "contact_lookup_field": {**_field_name, "default": "Related_To",
                                 "description": "Lookup field on Cases that points to the "
                                                "Contact."},
        "status_map": {"type": "object",
                       "properties": {k: {"type": "string"} for k in DEFAULT_STATUS_MAP},
                       "additionalProperties": False},
        "priority_map": {"type": "object", "additionalProperties": {"type": "string"}},
        "case_origin": {"type": "string", "default": "Web"},
        "case_fields": {"type": "object", "additionalProperties": _field_name,
                        "description": "Caseloop case field -> Zoho Cases API name."},
        "profile_fields": {"type": "object",
                           "properties": {k: _field_name for k in DEFAULT_PROFILE_FIELDS},
                           "additionalProperties": False},
        "phone_region": {"type": "string", "pattern": "^[A-Z]{2}$",
                         "description": "Region for CRM phone numbers stored without +."},
        "notify_token": {"type": "string", "minLength": 16, "maxLength": 50,
                         "description": "Token Zoho echoes in every notification body."},
        "url_secret": {"type": "string", "minLength": 16,
                       "description": "Second secret, sent as ?key= in the notify URL."},
        "channel_id": {"type": ["string", "integer"], "pattern": "^[0-9]+$",
                       "description": "The watch channel id (a long)."},
        "watch_events": {"type": "array", "minItems": 1, "uniqueItems": True,
                         "items": {"type": "string",
                                   "pattern": "^[A-Za-z0-9_]+\\.(all|create|edit|delete)$"},
                         "default": list(DEFAULT_WATCH_EVENTS)},
        "channel_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 24,
                          "default": 23,
                          "description": "Lifetime asked for a watch channel (Zoho: <= 1 day)."},
        "webhook_max_age_seconds": {"type": "integer", "minimum": 60, "default": 86400},
    },
}


@dataclass(frozen=True)
class Settings:
    """The settings with their defaults applied."""

    client_id: str
    client_secret: str
    refresh_token: str
    accounts_url: str
    api_domain: str | None = None
    api_version: str = "v8"
    case_id_field: str = "Caseloop_Id"
    contact_lookup_field: str = "Related_To"
    status_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    priority_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    case_origin: str = "Web"
    case_fields: Mapping[str, str] = field(default_factory=dict)
    profile_fields: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_PROFILE_FIELDS))
    phone_region: str | None = None
    notify_token: str | None = None
    url_secret: str | None = None
    channel_id: str | None = None
    watch_events: tuple[str, ...] = DEFAULT_WATCH_EVENTS
    channel_hours: float = 23.0
    webhook_max_age_seconds: int = 86400

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if not config.get(k)]
        if missing:
            raise ValueError(f"zoho: missing setting(s) {', '.join(missing)}; create a self "
                             "client in the Zoho API console and put its values in CASELOOP_CRM")
        return cls(
            client_id=config["client_id"], client_secret=config["client_secret"],
            refresh_token=config["refresh_token"],
            accounts_url=accounts_url(config.get("data_centre", "com"),
                                      config.get("accounts_url")),
            api_domain=_strip(config.get("api_domain")),
            api_version=config.get("api_version", "v8"),
            case_id_field=config.get("case_id_field", "Caseloop_Id"),
            contact_lookup_field=config.get("contact_lookup_field", "Related_To"),
            status_map={**DEFAULT_STATUS_MAP, **config.get("status_map", {})},
            priority_map={**DEFAULT_PRIORITY_MAP, **config.get("priority_map", {})},
            case_origin=config.get("case_origin", "Web"),
            case_fields=dict(config.get("case_fields", {})),
            profile_fields={**DEFAULT_PROFILE_FIELDS, **config.get("profile_fields", {})},
            phone_region=config.get("phone_region"),
            notify_token=config.get("notify_token"),
            url_secret=config.get("url_secret"),
            channel_id=str(config["channel_id"]) if config.get("channel_id") else None,
            watch_events=tuple(config.get("watch_events", DEFAULT_WATCH_EVENTS)),
            channel_hours=float(config.get("channel_hours", 23)),
            webhook_max_age_seconds=int(config.get("webhook_max_age_seconds", 86400)),
        )


def accounts_url(data_centre: str, override: str | None = None) -> str:
    """The accounts server for a data centre (or the override)."""
    if override:
        return override.rstrip("/")
    try:
        return ACCOUNTS_URLS[data_centre]
    except KeyError:
        raise ValueError(f"zoho: unknown data_centre {data_centre!r} (known: "
                         f"{', '.join(sorted(ACCOUNTS_URLS))}); or set accounts_url") from None


def _strip(url: str | None) -> str | None:
    return url.rstrip("/") if url else None
