"""The OpenAPI 3 document at ``/api/openapi.json``, built with apispec from the schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, jsonify, request

from .. import __version__
from ..metrics.query import MetricsQuery
from . import blueprint
from .schemas import (
    ActionList,
    AssignBody,
    CaseCreate,
    CaseOut,
    CasePage,
    CaseQuery,
    CommentBody,
    ErrorOut,
    EventPage,
    InboxQuery,
    JobQuery,
    PageQuery,
    TransitionBody,
    WorkflowOut,
)

_ERRORS = {
    "400": "malformed JSON, cursor or If-Match", "401": "missing, unknown or revoked token",
    "403": "your roles may not do this", "404": "no such case, workflow or trigger",
    "409": "stale version (code 'stale') or wrong state (code 'wrong_state')",
    "410": "the survey link has expired or was answered, or its case has moved on",
    "413": "body too large",
    "503": "the service is not set up for this (definitions or CASELOOP_CRM have errors)",
    "422": "invalid fields (code 'invalid', per-field messages in 'fields') or a guard that "
           "does not hold (code 'guard_failed', with its message)",
}


def _responses(ok: str, schema: str | None, *codes: str, public: bool = False
               ) -> dict[str, Any]:
    out: dict[str, Any] = {ok: {"description": "success"}}
    if schema:
        out[ok]["content"] = {"application/json": {"schema": schema}}
    for code in ((*codes,) if public else ("401", *codes)):
        out[code] = {"description": _ERRORS[code],
                     "content": {"application/json": {"schema": "Error"}}}
    return out


def _path_id() -> dict[str, Any]:
    return {"name": "case_id", "in": "path", "required": True, "schema": {"type": "integer"}}


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
IF_MATCH = {"name": "If-Match", "in": "header", "schema": {"type": "string"},
            "description": "the ETag you read; a stale one gets 409"}


def _export_paths() -> dict[str, dict[str, Any]]:
    """The exports: an attachment, CSV (UTF-8 with a byte order mark) or XLSX."""
    from .exports import CSV_TYPE, XLSX_TYPE, ExportQuery

    out: dict[str, dict[str, Any]] = {}
    for ext, mime in (("csv", CSV_TYPE), ("xlsx", XLSX_TYPE)):
        file = {"content": {mime: {"schema": {"type": "string", "format": "binary"}}}}
        out[f"/exports/cases.{ext}"] = {"get": {
            "summary": f"The cases you may see as {ext.upper()}, oldest first; with "
                       "'workflow', its form's fields as data.<field> columns",
            "parameters": [{"in": "query", "schema": ExportQuery}],
            "responses": {**_responses("200", None, "400", "422"),
                          "200": {"description": "an attachment", **file}}}}
        out[f"/exports/metrics.{ext}"] = {"get": {
            "summary": f"The satisfaction and operations metrics as {ext.upper()}: one "
                       "row per group and metric (query of /metrics/*; roles in "
                       "CASELOOP_METRICS_ROLES)",
            "parameters": [{"in": "query", "schema": MetricsQuery}],
            "responses": {**_responses("200", None, "400", "403", "422"),
                          "200": {"description": "an attachment", **file}}}}
    return out


def build(prefix: str) -> dict[str, Any]:
    spec = APISpec(title="Caseloop API", version=__version__, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Cases moving through declared workflows."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in (("Error", ErrorOut), ("Case", CaseOut), ("CasePage", CasePage),
                         ("CaseCreate", CaseCreate), ("TransitionBody", TransitionBody),
                         ("CommentBody", CommentBody), ("AssignBody", AssignBody),
                         ("ActionList", ActionList), ("EventPage", EventPage),
                         ("Workflow", WorkflowOut)):
        spec.components.schema(name, schema=schema)
    case_id = _path_id()
    paths: dict[str, dict[str, Any]] = {
        "/openapi.json": {"get": {
            "summary": "This document (no token needed)", "security": [],
            "responses": {"200": {"description": "the OpenAPI 3 document", "content": {
                "application/json": {"schema": {"type": "object"}}}}}}},
        "/workflows": {"get": {"summary": "Workflows (current versions)",
                               "responses": _responses("200", None)}},
        "/workflows/{name}": {"get": {
            "summary": "A workflow: states, transitions, form",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": _responses("200", "Workflow", "404")}},
        "/cases": {
            "post": {"summary": "Open a case",
                     "parameters": [{"name": "Idempotency-Key", "in": "header",
                                     "schema": {"type": "string"},
                                     "description": "same key + same body: same answer"}],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": "CaseCreate"}}},
                     "responses": _responses("201", "Case", "400", "403", "404", "413", "422")},
            "get": {"summary": "Cases you may see, newest activity first (keyset pages)",
                    "parameters": [{"in": "query", "schema": CaseQuery}],
                    "responses": _responses("200", "CasePage", "400", "422")}},
        "/cases/{case_id}": {
            "get": {"summary": "A case (ETag: its version)", "parameters": [case_id],
                    "responses": _responses("200", "Case", "404")},
            "patch": {"summary": "Change fields editable in the case's state",
                      "parameters": [case_id, IF_MATCH],
                      "requestBody": {"required": True, "content": {
                          "application/json": {"schema": "TransitionBody"}}},
                      "responses": _responses("200", "Case", "400", "403", "404", "409",
                                              "413", "422")}},
        "/cases/{case_id}/actions": {"get": {
            "summary": "What you may do now, and why not",
            "parameters": [case_id], "responses": _responses("200", "ActionList", "404")}},
        "/cases/{case_id}/transitions/{trigger}": {"post": {
            "summary": "Fire a transition",
            "parameters": [case_id,
                           {"name": "trigger", "in": "path", "required": True,
                            "schema": {"type": "string"}},
                           IF_MATCH],
            "requestBody": {"content": {"application/json": {"schema": "TransitionBody"}}},
            "responses": _responses("200", "Case", "400", "403", "404", "409", "413", "422")}},
        "/surveys/{token}": {
            "get": {"summary": "A survey link's questions, in the customer's language "
                               "(no bearer token: the link's token is the credential)",
                    "security": [], "parameters": [TOKEN],
                    "responses": _responses("200", None, "404", "410", public=True)},
            "post": {"summary": "Answer a survey link once",
                     "security": [], "parameters": [TOKEN],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": "TransitionBody"}}},
                     "responses": _responses("200", None, "400", "404", "409", "410",
                                             "413", "422", public=True)}},
        "/inbox": {"get": {
            "summary": "A tab of the inbox (mine, team queue, overdue, due soon, recent) "
                       "with filters and search; counts per tab (keyset pages)",
            "parameters": [{"in": "query", "schema": InboxQuery}],
            "responses": _responses("200", None, "400", "422")}},
        "/cases/{case_id}/comments": {"post": {
            "summary": "Add a comment to the case's history",
            "parameters": [case_id],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": "CommentBody"}}},
            "responses": _responses("201", None, "400", "403", "404", "413", "422")}},
        "/cases/{case_id}/assign": {"post": {
            "summary": "Give the case to someone (null: back to the team's queue)",
            "parameters": [case_id, IF_MATCH],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": "AssignBody"}}},
            "responses": _responses("200", "Case", "400", "403", "404", "409", "422")}},
        "/cases/{case_id}/claim": {"post": {
            "summary": "Take an unassigned case of one of your teams",
            "parameters": [case_id, IF_MATCH],
            "responses": _responses("200", "Case", "403", "404", "409")}},
        "/jobs": {"get": {
            "summary": "Jobs, the next due first, with a count per status (administrators)",
            "parameters": [{"in": "query", "schema": JobQuery}],
            "responses": _responses("200", None, "400", "403", "422")}},
        "/jobs/{job_id}/retry": {"post": {
            "summary": "Queue a dead letter again, now, its attempts reset (administrators)",
            "parameters": [JOB_ID],
            "responses": _responses("200", None, "403", "404", "409")}},
        "/jobs/{job_id}/discard": {"post": {
            "summary": "Give up on a dead letter; it stays listed as cancelled (administrators)",
            "parameters": [JOB_ID],
            "responses": _responses("200", None, "403", "404", "409")}},
        "/hooks/{crm}": {"post": {
            "summary": "Inbound CRM webhook: verified by the connector (signature or shared "
                       "token), deduplicated on the event id, stored; the worker acts on it",
            "security": [],
            "parameters": [{"name": "crm", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"*/*": {"schema": {}}}},
            "responses": {**_responses("200", None, "400", "404", "413", "503",
                                       public=True),
                          "401": {"description": "the connector refused the signature or "
                                                 "token (forged, replayed or stale)",
                                  "content": {"application/json": {"schema": "Error"}}}}}},
        "/crm/customers": {"get": {
            "summary": "Customers in the configured CRMs by email or phone, with segment "
                       "(short timeout; CRMs that cannot answer are listed as unavailable)",
            "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                           for n in ("email", "phone")],
            "responses": _responses("200", None, "400")}},
        "/metrics/satisfaction": {"get": {
            "summary": "NPS, CSAT (as the form declares: mean or top-2-box), CES (mean and % "
                       "agree), survey response rate and call reach rate; per group, each "
                       "with value, n, component counts, ci95 and small_sample (supervisors, "
                       "managers; days in your time zone)",
            "parameters": [{"in": "query", "schema": MetricsQuery}],
            "responses": _responses("200", None, "403", "422")}},
        "/metrics/operations": {"get": {
            "summary": "Complaint volume, first response and resolution times (median and "
                       "p90 hours), SLA compliance, reopen and repeat rates, per group; the "
                       "open backlog by age",
            "parameters": [{"in": "query", "schema": MetricsQuery}],
            "responses": _responses("200", None, "403", "422")}},
        "/cases/{case_id}/crm": {"get": {
            "summary": "The case's CRM records (links out) and its last sync status",
            "parameters": [case_id],
            "responses": _responses("200", None, "404")}},
        **_export_paths(),
        "/cases/{case_id}/events": {"get": {
            "summary": "The case's history", "parameters": [case_id,
                                                            {"in": "query", "schema": PageQuery}],
            "responses": _responses("200", "EventPage", "404")}},
    }
    for path, operations in paths.items():
        spec.path(path=f"{prefix}{path}", operations=operations)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


@blueprint.get("/openapi.json")
def openapi() -> Response:
    prefix = request.script_root + request.path.rsplit("/openapi.json", 1)[0]
    return jsonify(build(prefix))
