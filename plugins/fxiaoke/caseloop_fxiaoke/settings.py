"""The connector's settings: their JSON Schema (Caseloop checks it at start-up) and defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Defaults for everything but the credentials. Object and field names are the standard
#: ones where third-party code shows them; the custom fields (``*__c``) must be created
#: by the integrator in Fxiaoke's object management.
DEFAULTS: dict[str, Any] = {
    "base_url": "https://open.fxiaoke.com",
    "case_object": "CasesObj",
    "contact_object": "ContactObj",
    "activity_object": "ActiveRecordObj",
    "case_id_field": "caseloop_id__c",
    "activity_id_field": "caseloop_id__c",
    "activity_text_field": "active_record_content",
    "activity_link_field": "related_object_data",
    "email_field": "email",
    "phone_fields": ["mobile", "tel"],
    "default_region": "CN",
    "field_map": {"subject": "name", "description": "description", "status": "status",
                  "priority": "priority", "contact": "contact_id", "reference": "", "url": ""},
    "status_map": {"open": "open", "paused": "paused", "done": "closed"},
    "priority_map": {},
    "profile_fields": {"segment": "segment__c", "value_tier": "value_tier__c",
                       "lifecycle_stage": "lifecycle_stage__c"},
    # 20016 is the one code third-party probes saw for a bad or expired token; 20005 is
    # "accessToken 不存在或者已经过期" in the copied code table. Unverified.
    "token_error_codes": [20016, 20005],
    # -1 系统繁忙, -2 系统错误, 50009 服务异常(如超时): retried with backoff. Unverified.
    "busy_error_codes": [-1, -2, 50009],
    # 30004 秒频次超限, 14001 接口调用超过限制, 30002 当天访问频次超限. Unverified.
    "rate_error_codes": [30004, 14001, 30002],
    "record_url": "",
}

_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
_CODES = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Fxiaoke / 纷享销客",
    "type": "object",
    "required": ["app_id", "app_secret", "permanent_code"],
    "anyOf": [{"required": ["current_open_user_id"]}, {"required": ["operator_mobile"]}],
    "additionalProperties": False,
    "properties": {
        "base_url": {"type": "string", "format": "uri", "default": DEFAULTS["base_url"],
                     "description": "API host; tests point it at the fake."},
        "app_id": {"type": "string", "minLength": 1, "description": "FSAID_…"},
        "app_secret": {"type": "string", "minLength": 1},
        "permanent_code": {"type": "string", "minLength": 1},
        "current_open_user_id": {"type": "string", "minLength": 1,
                                 "description": "The employee CRM calls act as (FSUID_…)."},
        "operator_mobile": {"type": "string", "minLength": 1,
                            "description": "Or: that employee's mobile, looked up once."},
        "case_object": {**_NAME, "default": DEFAULTS["case_object"]},
        "contact_object": {**_NAME, "default": DEFAULTS["contact_object"]},
        "activity_object": {**_NAME, "default": DEFAULTS["activity_object"]},
        "case_id_field": {**_NAME, "default": DEFAULTS["case_id_field"]},
        "activity_id_field": {**_NAME, "default": DEFAULTS["activity_id_field"]},
        "activity_text_field": {**_NAME, "default": DEFAULTS["activity_text_field"]},
        "activity_link_field": {"type": "string", "default": DEFAULTS["activity_link_field"]},
        "email_field": {**_NAME, "default": DEFAULTS["email_field"]},
        "phone_fields": {"type": "array", "items": _NAME, "minItems": 1,
                         "default": DEFAULTS["phone_fields"]},
        "default_region": {"type": "string", "pattern": "^[A-Z]{2}$",
                           "default": DEFAULTS["default_region"]},
        "field_map": {**_STRINGS, "default": DEFAULTS["field_map"],
                      "description": "Case field -> CRM field name ('' leaves it out): "
                                     "subject, description, status, priority, contact, "
                                     "reference, url."},
        "status_map": {**_STRINGS, "default": DEFAULTS["status_map"],
                       "description": "state_category -> status value, when the case "
                                      "carries no status of its own."},
        "priority_map": {**_STRINGS, "default": {},
                         "description": "Caseloop priority -> CRM option value."},
        "profile_fields": {**_STRINGS, "default": DEFAULTS["profile_fields"]},
        "token_error_codes": {**_CODES, "default": DEFAULTS["token_error_codes"]},
        "busy_error_codes": {**_CODES, "default": DEFAULTS["busy_error_codes"]},
        "rate_error_codes": {**_CODES, "default": DEFAULTS["rate_error_codes"]},
        "record_url": {"type": "string", "default": "",
                       "description": "Link to a record, with {object} and {id}; '' for none."},
    },
}


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings with defaults filled in (maps merged key by key)."""
    out = {**DEFAULTS, **config}
    for key in ("field_map", "status_map", "profile_fields"):
        out[key] = {**DEFAULTS[key], **dict(config.get(key) or {})}
    return out
