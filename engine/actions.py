"""On-enter actions: what happens when a case enters a state.

Actions that change Caseloop's own data run here, in the caller's
transaction: ``start`` (a linked case now), ``set`` and ``assign``. Actions
that wait or reach outside run later from a job row written in the same
transaction: timers, delayed starts, notifications, CRM pushes and firing a
transition on a linked case (which must never fail the step that caused it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from . import values
from .expr import ExprError
from .models import Case, Event, Job, User, append, team_named
from .spec.model import Action, Workflow

if TYPE_CHECKING:
    from .cases import Actor, Cases


def run_on_enter(cases: Cases, wf: Workflow, case: Case, scope: dict[str, Any], actor: Actor,
                 depth: int) -> None:
    state = wf.states[case.state]
    for index, action in enumerate(state.on_enter):
        if action.when is not None and not action.when.test(scope):
            continue
        handler = _HANDLERS[action.kind]
        handler(cases, wf, case, action, scope, actor, depth, index)


def _start(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
           actor: Actor, depth: int, index: int) -> None:
    data = _evaluate(a.map, scope)
    if a.after is not None:
        _job(cases, case, "start", scope["now"] + a.after, index, workflow=a.workflow, data=data,
             assign=_assign_payload(a, scope))
        return
    if depth >= cases.max_depth:
        _note(cases, case, actor, f"not started: linked cases nested deeper than "
              f"{cases.max_depth}", action="start", workflow=a.workflow)
        return
    from .cases import Actor as _Actor

    assert a.workflow is not None
    child = cases.create(a.workflow, data, _Actor.system(), parent=case, depth=depth + 1)
    if a.assign is not None:
        _apply_assign(cases, child, a, scope)


def _timer(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
           actor: Actor, depth: int, index: int) -> None:
    if a.at is not None:
        try:
            when = a.at.evaluate(scope)
        except ExprError:
            when = None
        if not isinstance(when, dt.datetime):
            _note(cases, case, actor, "timer not set: its time is empty", action="timer",
                  trigger=a.trigger)
            return
    else:
        assert a.after is not None
        when = scope["now"] + a.after
    # The worker fires only if the case is still in the state that set the timer.
    _job(cases, case, "timer", when, index, trigger=a.trigger, state=case.state,
         entered_at=scope["now"].isoformat())


def _outbox(kind: str) -> Any:
    def handler(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
                actor: Actor, depth: int, index: int) -> None:
        payload: dict[str, Any] = {}
        if kind == "notify":
            payload = {"to": list(a.to), "channel": a.channel, "state": case.state,
                       "message": {"en": a.message.en, "zh": a.message.zh} if a.message else {}}
        elif kind == "crm":
            payload = {"push": a.push, "state": case.state,
                       "note": {"en": a.message.en, "zh": a.message.zh} if a.message else None}
        elif kind == "fire":
            payload = {"case": a.case, "trigger": a.trigger}
        _job(cases, case, kind, scope["now"], index, **payload)

    return handler


def _set(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
         actor: Actor, depth: int, index: int) -> None:
    new = dict(case.data)
    for name, value in _evaluate(a.map, scope).items():
        f = wf.form.field(name)
        if f is None:
            continue
        try:
            new[name] = values.convert(f, value, region=cases.region, lang="en",
                                       out=values.Outcome({}), path=name)
        except values.Rejected:  # a value that does not fit is skipped, and said so
            _note(cases, case, actor, f"'{name}' not set: the value does not fit",
                  action="set")
    if new != case.data:
        from .cases import changes

        append(cases.session, Event, case_id=case.id, kind="action", actor_id=actor.id,
               actor_name=actor.name, at=scope["now"],
               payload={"action": "set", "changes": changes(case.data, new)})
        case.data = new


def _assign(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
            actor: Actor, depth: int, index: int) -> None:
    _apply_assign(cases, case, a, scope)


def _apply_assign(cases: Cases, case: Case, a: Action, scope: dict[str, Any]) -> None:
    assign = a.assign
    if assign is None:
        return
    payload: dict[str, Any] = {"action": "assign"}
    if assign.team:
        team = team_named(cases.session, assign.team)
        if team is not None:
            case.team_id = team.id
        payload["team"] = assign.team if team is not None else None
    if assign.user is not None:
        try:
            name = assign.user.evaluate(scope)
        except ExprError:
            name = None
        user = cases.session.execute(select(User).where(User.name == name)
                                     ).scalar_one_or_none() if name else None
        case.assignee_id = user.id if user is not None else case.assignee_id
        payload["user"] = name if user is not None else None
    if assign.role:
        # Choosing a person with the role is the worker's job (load, availability).
        _job(cases, case, "assign", scope["now"], 0, role=assign.role)
    append(cases.session, Event, case_id=case.id, kind="assigned", actor_name="system",
           at=scope["now"], payload=payload)


def _job(cases: Cases, case: Case, kind: str, run_at: dt.datetime, index: int, /,
         **payload: Any) -> None:
    # Positional-only: a payload key may be named 'case' (the fire action's target).
    append(cases.session, Job, kind=kind, case_id=case.id, run_at=run_at, payload=payload,
           created_at=cases.clock())


def _note(cases: Cases, case: Case, actor: Actor, message: str, /, **payload: Any) -> None:
    append(cases.session, Event, case_id=case.id, kind="action", actor_id=actor.id,
           actor_name=actor.name, payload={"note": message, **payload})


def _evaluate(mapping: Any, scope: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, expr in mapping.items():
        try:
            out[name] = values.stored(expr.evaluate(scope))
        except ExprError:
            continue  # an empty source leaves the target empty
    return out


def _assign_payload(a: Action, scope: dict[str, Any]) -> dict[str, Any] | None:
    """Who gets a case started later: the user expression is evaluated now, over
    the case as it is when the start is scheduled."""
    if a.assign is None:
        return None
    user = None
    if a.assign.user is not None:
        try:
            user = a.assign.user.evaluate(scope)
        except ExprError:
            user = None
    return {"team": a.assign.team, "role": a.assign.role,
            "user": user if isinstance(user, str) and user else None}


_HANDLERS = {
    "start": _start, "timer": _timer, "notify": _outbox("notify"), "crm": _outbox("crm"),
    "fire": _outbox("fire"), "set": _set, "assign": _assign,
}
