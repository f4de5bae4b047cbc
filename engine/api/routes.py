"""The API's routes. Each reads its input, calls :mod:`caseloop.cases`, commits, answers."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from flask import Response, current_app, g, jsonify, request, url_for
from sqlalchemy import or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ..cases import Actor
from ..errors import NotFound
from ..extension import state
from ..models import Case, Event, IdempotentRequest, Team, User
from ..spec import Workflow
from . import ApiError, blueprint
from .schemas import CaseCreate, CaseQuery, PageQuery, TransitionBody, load

#: Largest id a path or cursor may name (64-bit signed, as the id columns); larger
#: ones are a 404 or a bad cursor instead of an overflow in the database driver.
MAX_ID = 2**63 - 1
#: ``<int:…>`` bounded to :data:`MAX_ID`.
CASE_ID = f"<int(max={MAX_ID}):case_id>"
#: JSON bodies nest at most this deep (a deeper one is a 400, not a RecursionError).
MAX_DEPTH = 32
#: One instance of each: building a marshmallow schema costs more than loading with it.
CASE_CREATE, CASE_QUERY = CaseCreate(), CaseQuery()
TRANSITION_BODY, PAGE_QUERY = TransitionBody(), PageQuery()


def actor() -> Actor:
    found: Actor = g.caseloop_actor
    return found


# -- workflows ------------------------------------------------------------------------
@blueprint.get("/workflows")
def list_workflows() -> Response:
    workflows = state().registry.current.workflows
    return jsonify({"items": [workflow_json(wf, actor().lang, brief=True)
                              for wf in workflows.values()]})


@blueprint.get("/workflows/<name>")
def get_workflow(name: str) -> Response:
    wf = state().registry.workflow(name)
    if wf is None:
        raise NotFound(f"no workflow '{name}'")
    return jsonify(workflow_json(wf, actor().lang))


# -- cases --------------------------------------------------------------------------------
@blueprint.post("/cases")
def create_case() -> tuple[Response, int, dict[str, str]]:
    body = load(CASE_CREATE, _json())
    st, who = state(), actor()
    session = st.db.session
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200 or not key.isprintable():
        raise ApiError(400, "bad_idempotency_key", "an Idempotency-Key is at most 200 "
                       "printable characters, e.g. a UUID")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    if key:
        replay = _replay(key, digest, who)
        if replay is not None:
            return replay
    case = st.cases().create(body["workflow"], body["data"], who)
    if key and who.id is not None:
        session.add(IdempotentRequest(user_id=who.id, key=key, request_hash=digest,
                                      case_id=case.id))
    out = case_json(case)
    try:
        session.commit()
    except IntegrityError:  # the same key raced in: answer as the winner did
        session.rollback()
        replay = _replay(key, digest, who)
        if replay is None:
            raise
        return replay
    return jsonify(out), 201, _case_headers(out)


def _replay(key: str, digest: str, who: Actor) -> tuple[Response, int, dict[str, str]] | None:
    session = state().db.session
    seen = session.execute(select(IdempotentRequest).where(
        IdempotentRequest.user_id == who.id, IdempotentRequest.key == key)
    ).scalar_one_or_none()
    if seen is None:
        return None
    if seen.request_hash != digest:
        raise ApiError(422, "idempotency_mismatch", "this Idempotency-Key was used with "
                       "another body; use a new key for a new request")
    case = session.get(Case, seen.case_id)
    if case is None:
        raise NotFound("the case created with this Idempotency-Key no longer exists")
    out = case_json(case)
    return jsonify(out), 201, _case_headers(out)


@blueprint.get("/cases")
def list_cases() -> Response:
    query = load(CASE_QUERY, request.args.to_dict())
    who, session = actor(), state().db.session
    limit = _limit(query)
    assignee, team = aliased(User), aliased(Team)
    stmt = (select(Case, assignee.name, team.name)
            .outerjoin(assignee, assignee.id == Case.assignee_id)
            .outerjoin(team, team.id == Case.team_id))
    if not who.sees_all:
        stmt = stmt.where(or_(Case.assignee_id == who.id, Case.team_id.in_(who.teams),
                              Case.created_by == who.id))
    if "workflow" in query:
        stmt = stmt.where(Case.workflow == query["workflow"])
    if "state" in query:
        stmt = stmt.where(Case.state == query["state"])
    if "customer" in query:
        stmt = stmt.where(Case.customer_ref == query["customer"])
    if "open" in query:
        stmt = stmt.where(Case.closed.is_(not query["open"]))
    if "assignee" in query:
        name = who.name if query["assignee"] == "me" else query["assignee"]
        stmt = stmt.where(assignee.name == name)
    if "cursor" in query:
        at, last_id = _cursor(query["cursor"])
        stmt = stmt.where(tuple_(Case.updated_at, Case.id) < tuple_(at, last_id))
    rows = session.execute(stmt.order_by(Case.updated_at.desc(), Case.id.desc())
                           .limit(limit + 1)).all()
    items = [case_json(c, names=(a, t)) for c, a, t in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1][0] if more else None
    return jsonify({"items": items,
                    "next_cursor": _make_cursor(last.updated_at, last.id) if last else None})


@blueprint.get(f"/cases/{CASE_ID}")
def get_case(case_id: int) -> tuple[Response, int, dict[str, str]]:
    case = state().cases().get(case_id, actor())
    out = case_json(case, names=_names(case))
    return jsonify(out), 200, _case_headers(out)


@blueprint.get(f"/cases/{CASE_ID}/actions")
def case_actions(case_id: int) -> tuple[Response, int, dict[str, str]]:
    cases = state().cases()
    case = cases.get(case_id, actor())
    body = {"version": case.version, "state": case.state,
            "actions": cases.actions(case, actor())}
    return jsonify(body), 200, {"ETag": f'"{case.version}"'}


@blueprint.post(f"/cases/{CASE_ID}/transitions/<trigger>")
def fire_transition(case_id: int, trigger: str) -> tuple[Response, int, dict[str, str]]:
    body = load(TRANSITION_BODY, _json(optional=True))
    expected = _if_match()
    st = state()
    case = st.cases().fire(case_id, trigger, body["data"], actor(), expected_version=expected)
    out = case_json(case)
    st.db.session.commit()
    return jsonify(out), 200, _case_headers(out)


@blueprint.patch(f"/cases/{CASE_ID}")
def update_case(case_id: int) -> tuple[Response, int, dict[str, str]]:
    body = load(TRANSITION_BODY, _json())
    expected = _if_match()
    st = state()
    case = st.cases().update(case_id, body["data"], actor(), expected_version=expected)
    out = case_json(case)
    st.db.session.commit()
    return jsonify(out), 200, _case_headers(out)


@blueprint.get(f"/cases/{CASE_ID}/events")
def case_events(case_id: int) -> Response:
    query = load(PAGE_QUERY, request.args.to_dict())
    session = state().db.session
    state().cases().get(case_id, actor())  # visibility
    limit = _limit(query)
    stmt = select(Event).where(Event.case_id == case_id)
    if "cursor" in query:
        _, after = _cursor(query["cursor"])
        stmt = stmt.where(Event.id > after)
    events = session.execute(stmt.order_by(Event.id).limit(limit + 1)).scalars().all()
    more = len(events) > limit
    items = [event_json(e) for e in events[:limit]]
    last = events[limit - 1] if more else None
    return jsonify({"items": items,
                    "next_cursor": _make_cursor(last.at, last.id) if last else None})


# -- JSON shapes --------------------------------------------------------------------------
def case_json(case: Case, names: tuple[str | None, str | None] | None = None) -> dict[str, Any]:
    out = {
        "id": case.id, "reference": case.reference, "workflow": case.workflow,
        "definition_version": case.definition_version, "state": case.state,
        "closed": case.closed, "data": case.data, "customer_ref": case.customer_ref,
        "priority": case.priority, "assignee_id": case.assignee_id, "team_id": case.team_id,
        "parent_id": case.parent_id, "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at), "version": case.version,
        "due_at": _iso(case.due_at) if case.due_at else None,
        "sla_breached": bool(case.sla_breached),
    }
    if names is not None:
        out["assignee"], out["team"] = names
    return out


def event_json(e: Event) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "actor": e.actor_name, "trigger": e.trigger,
            "from_state": e.from_state, "to_state": e.to_state, "payload": e.payload,
            "at": _iso(e.at)}


def workflow_json(wf: Workflow, lang: str, *, brief: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": wf.name, "title": wf.title.get(lang), "version": wf.version,
        "initial": wf.initial, "public": wf.public, "start_roles": sorted(wf.start_roles),
    }
    if brief:
        return out
    out["states"] = [{"name": s.name, "label": s.label.get(lang), "category": s.category,
                      "final": s.final} for s in wf.states.values()]
    out["transitions"] = [{"trigger": t.trigger, "from": list(t.sources), "to": t.dest,
                           "label": t.label.get(lang), "allow": sorted(t.allow),
                           "requires": list(t.requires),
                           "guard": t.guard.expression.source if t.guard else None}
                          for t in wf.transitions]
    out["form"] = {"name": wf.form.name, "fields": [_field_json(f, lang)
                                                    for f in wf.form.fields]}
    return out


def _field_json(f: Any, lang: str) -> dict[str, Any]:
    out = {"name": f.name, "type": f.type, "label": f.label.get(lang), "required": f.required,
           "computed": f.computed}
    for key in ("visible_if", "required_if", "readonly_if"):
        expr = getattr(f, key)
        if expr is not None:
            out[key] = expr.source
    if f.choices:
        out["choices"] = [{"value": c.value, "label": c.label.get(lang)} for c in f.choices]
    if f.fields:
        out["fields"] = [_field_json(sub, lang) for sub in f.fields]
    return out


# -- helpers --------------------------------------------------------------------------------
def _json(optional: bool = False) -> Any:
    # Read at most the limit: a chunked body has no Content-Length for the
    # early check in the blueprint's before_request to see.
    limit = int(current_app.config["CASELOOP_MAX_BODY"])
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "too_large", f"the body is larger than {limit} bytes")
    if optional and not raw:
        return {}
    bad = ApiError(400, "bad_json", "the body is not valid JSON "
                   "(send Content-Type: application/json)")
    if not request.is_json:
        raise bad
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to parse
        raise bad from None
    problem = _json_problem(data)
    if problem:
        raise ApiError(400, "bad_json", problem)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_problem(data: Any) -> str | None:
    """What the database could not store or the engine should not walk: text
    with NUL characters (PostgreSQL refuses them) and very deep nesting."""
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_DEPTH:
            return f"the body nests deeper than {MAX_DEPTH} levels"
        if isinstance(value, str) and "\x00" in value:
            return "text in the body may not contain the NUL character (\\u0000)"
        if isinstance(value, dict):
            todo.extend((k, depth) for k in value)
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)
    return None


def _if_match() -> int | None:
    raw = request.headers.get("If-Match", "").strip()
    if not raw or raw == "*":
        return None
    value = raw.removeprefix("W/")
    if len(value) > 1 and value[0] == value[-1] == '"':
        value = value[1:-1]  # quoted, as an ETag is; a bare number is forgiven
    if not (value.isascii() and value.isdigit()):
        raise ApiError(400, "bad_if_match", "If-Match must be the case's ETag, e.g. \"3\"")
    return int(value)


def _case_headers(out: dict[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{out["version"]}"',
            "Location": url_for("caseloop_api.get_case", case_id=out["id"])}


def _names(case: Case) -> tuple[str | None, str | None]:
    if case.assignee_id is None and case.team_id is None:
        return None, None
    session = state().db.session
    user = session.get(User, case.assignee_id) if case.assignee_id else None
    team = session.get(Team, case.team_id) if case.team_id else None
    return (user.name if user else None, team.name if team else None)


def _limit(query: dict[str, Any]) -> int:
    default = current_app.config["CASELOOP_PAGE_SIZE"]
    return min(int(query.get("limit", default)), int(current_app.config["CASELOOP_MAX_PAGE_SIZE"]))


def _make_cursor(at: dt.datetime, last_id: int) -> str:
    raw = f"{_iso(at)}|{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(raw: str) -> tuple[dt.datetime, int]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, last_id = text.split("|")
        found = dt.datetime.fromisoformat(at), int(last_id)
        if not 0 <= found[1] <= MAX_ID:
            raise ValueError(last_id)
        return found
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "the cursor is not one this API gave out") from None


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

