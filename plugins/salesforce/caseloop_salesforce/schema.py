"""The connector's settings: their JSON Schema (draft-07) and defaults."""

from __future__ import annotations

from typing import Any

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
#: Pinned rather than "latest": every feature used here exists since v46.0, and a
#: pinned version keeps Salesforce's per-version behaviour changes out.
DEFAULT_API_VERSION = "v62.0"
DEFAULT_EXTERNAL_ID_FIELD = "Caseloop_Id__c"
#: Standard Case Status values of a new org; orgs with "On Hold" etc. override them.
DEFAULT_STATUS = {"open": "New", "paused": "Working", "done": "Closed"}
#: Caseloop priority → standard Case Priority picklist values.
DEFAULT_PRIORITY = {"low": "Low", "normal": "Medium", "medium": "Medium", "high": "High",
                    "urgent": "High", "critical": "High"}
DEFAULT_ORIGIN = "Web"
#: Where the profile values come from: a Contact field, or "Account.<field>".
DEFAULT_PROFILE = {"segment": "Account.Type", "value_tier": "Account.Rating",
                   "lifecycle_stage": None}
DEFAULT_POLL_OBJECTS = ("Case", "Contact")

_NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"}
_PATH = {"type": ["string", "null"],
         "pattern": "^([A-Za-z][A-Za-z0-9_]*\\.)?[A-Za-z][A-Za-z0-9_]*$"}

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Salesforce connector settings",
    "type": "object",
    "additionalProperties": False,
    "required": ["client_id", "client_secret", "refresh_token"],
    "properties": {
        "login_url": {"type": "string", "format": "uri", "default": DEFAULT_LOGIN_URL,
                      "description": "OAuth host: https://login.salesforce.com, "
                                     "https://test.salesforce.com (sandboxes) or your My "
                                     "Domain; tests point it at the fake."},
        "client_id": {"type": "string", "minLength": 1,
                      "description": "The connected app's consumer key."},
        "client_secret": {"type": "string", "minLength": 1,
                          "description": "The connected app's consumer secret."},
        "refresh_token": {"type": "string", "minLength": 1,
                          "description": "From the OAuth web-server flow (scopes: api, "
                                         "refresh_token)."},
        "api_version": {"type": "string", "pattern": "^v[0-9]+\\.0$",
                        "default": DEFAULT_API_VERSION},
        "external_id_field": {**_NAME, "default": DEFAULT_EXTERNAL_ID_FIELD,
                              "description": "Unique External ID text field on Case holding "
                                             "Caseloop's case id."},
        "status_map": {"type": "object", "additionalProperties": False,
                       "properties": {k: {"type": "string", "minLength": 1}
                                      for k in DEFAULT_STATUS},
                       "description": "Case Status per state category (open, paused, done) "
                                      "when the workflow names none."},
        "priority_map": {"type": "object", "additionalProperties": {"type": "string"}},
        "origin": {"type": "string", "minLength": 1, "default": DEFAULT_ORIGIN},
        "field_map": {"type": "object", "additionalProperties": _NAME,
                      "description": "Caseloop case field → Case field API name."},
        "profile_fields": {"type": "object", "additionalProperties": False,
                           "properties": {k: _PATH for k in DEFAULT_PROFILE}},
        "phone_region": {"type": "string", "pattern": "^[A-Z]{2}$",
                         "description": "Region for Contact phones stored without a "
                                        "country code (e.g. DE)."},
        "organization_id": {"type": "string", "pattern": "^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$",
                            "description": "The org id Outbound Messages must carry."},
        "url_secret": {"type": "string", "minLength": 16,
                       "description": "The ?key= in the Outbound Message endpoint URL."},
        "poll_objects": {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True,
                         "default": list(DEFAULT_POLL_OBJECTS)},
        "poll_lookback_seconds": {"type": "integer", "minimum": 0, "default": 60},
    },
}
