"""On-enter actions: what happens when a case enters a state.

Actions that change Caseloop's own data run here, in the caller's
transaction: ``start`` (a linked case now), ``set``, ``assign``, ``measure``
and the dropping of scheduled starts by ``cancel``. Actions that wait or reach
outside run later from a job row written in the same transaction: timers,
delayed starts, reminders, notifications, CRM pushes and firing a transition
on a linked case (which must never fail the step that caused it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from . import values
from .expr import ExprError
from .indicators import NotMeasurable, measure
from .models import Case, DbSession, Event, Job, User, append, reference, team_named
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
    data = evaluate(a.map, scope)
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
    target = cases.registry.workflow(a.workflow)
    if target is not None and (why := recontact_blocked(cases.session, target, data,
                                                        scope["now"], case.id)):
        _note(cases, case, actor, f"{a.workflow} not started: {why}", action="start",
              workflow=a.workflow)
        return
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
    for name, value in evaluate(a.map, scope).items():
        f = wf.form.field(name)
        if f is None:
            continue
        try:
            new[name] = values.convert(f, value, region=cases.region, lang="en",
                                       out=values.Outcome({}), path=name)
        except values.Rejected:  # a value that does not fit is skipped, and said so
            _note(cases, case, actor, f"'{name}' not set: the value does not fit",
                  action="set")
    _store(cases, wf, case, new, scope, actor, {"action": "set"})


def _store(cases: Cases, wf: Workflow, case: Case, new: dict[str, Any], scope: dict[str, Any],
           actor: Actor, payload: dict[str, Any]) -> None:
    """Write what an action set, with computed fields brought up to date, and let
    the actions after it see the new values."""
    new = values.recompute(wf.form, new, scope)
    if new != case.data:
        from .cases import changes

        append(cases.session, Event, case_id=case.id, kind="action", actor_id=actor.id,
               actor_name=actor.name, at=scope["now"],
               payload={**payload, "changes": changes(case.data, new)})
        case.data = new
        scope.update(values.expression_values(wf.form, new))


def _measure(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
             actor: Actor, depth: int, index: int) -> None:
    m = a.measure
    assert m is not None
    try:
        figure = measure(cases.session, m, scope, scope["now"])
    except NotMeasurable as exc:
        _note(cases, case, actor, f"not measured: {exc}", action="measure")
        return
    new = dict(case.data)
    if figure.value is None:
        new.pop(m.into, None)
    else:
        f = wf.form.field(m.into)
        places = f.places if f is not None and f.places is not None else 4
        number = round(figure.value, places)
        new[m.into] = int(number) if f is not None and f.type != "decimal" else number
    lang = "zh" if str(case.data.get("preferred_language", "")).startswith("zh") else "en"
    if m.report:
        new[m.report] = figure.describe(lang)
    _store(cases, wf, case, new, scope, actor, {
        "action": "measure", "value": figure.value, "n": figure.n,
        "since": figure.since.isoformat(), "until": figure.until.isoformat(),
        "where": {k: values.stored(v) for k, v in figure.where.items()},
        "figures": figure.describe("en")})


def _cancel(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
            actor: Actor, depth: int, index: int) -> None:
    """Withdraw linked cases of a workflow: drop its starts still scheduled (in
    this transaction, so none can start after) and have its open cases take the
    trigger (through the outbox, so that a case which cannot take it now does not
    fail this step)."""
    now = scope["now"]
    pending = [job_id for job_id, payload in cases.session.execute(
        select(Job.id, Job.payload).where(Job.case_id == case.id, Job.kind == "start",
                                          Job.status == "pending"))
        if (payload or {}).get("workflow") == a.workflow]
    if pending:
        cases.session.execute(update(Job).where(Job.id.in_(pending), Job.status == "pending")
                              .values(status="cancelled", finished_at=now,
                                      result=f"withdrawn: {case.reference} entered "
                                             f"'{case.state}'"))
    withdrawn, left = [], []
    if a.trigger is not None:
        data = evaluate(a.map, scope)
        for child in cases.session.execute(select(Case).where(
                Case.parent_id == case.id, Case.workflow == a.workflow,
                Case.closed.is_(False)).order_by(Case.id)).scalars():
            child_wf = cases.workflow_of(child)
            if any(t.trigger == a.trigger for t in child_wf.transitions_from(child.state)):
                _job(cases, child, "fire", now, index, case="self", trigger=a.trigger,
                     data=data)
                withdrawn.append(child.reference)
            elif child_wf.states[child.state].category != "done":
                left.append(f"{child.reference} ({child.state})")
    if pending or withdrawn or left:
        payload: dict[str, Any] = {"action": "cancel", "workflow": a.workflow,
                                   "scheduled_dropped": len(pending), "cases": withdrawn}
        if left:
            payload["note"] = (f"left as they are ('{a.trigger}' is not possible now): "
                               + ", ".join(left))
        append(cases.session, Event, case_id=case.id, kind="action", actor_id=actor.id,
               actor_name=actor.name, at=now, payload=payload)


def _survey(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
            actor: Actor, depth: int, index: int) -> None:
    from .surveys import issue

    assert a.survey is not None
    issue(cases, wf, case, a.survey, scope, actor.name)


def _remind(cases: Cases, wf: Workflow, case: Case, a: Action, scope: dict[str, Any],
            actor: Actor, depth: int, index: int) -> None:
    # The first check runs at once; each check schedules the next (reminders.py).
    _job(cases, case, "remind", scope["now"], index, state=case.state, action=index,
         entered_at=scope["now"].isoformat(), sent={})


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
        payload["role"] = assign.role
    append(cases.session, Event, case_id=case.id, kind="assigned", actor_name="system",
           at=scope["now"], payload=payload)


def _job(cases: Cases, case: Case, kind: str, run_at: dt.datetime, index: int, /,
         **payload: Any) -> None:
    # Positional-only: a payload key may be named 'case' (the fire action's target).
    append(cases.session, Job, kind=kind, case_id=case.id, run_at=run_at, payload=payload,
           created_at=cases.clock())


def _note(cases: Cases, case: Case, actor: Actor, message: str, /, **payload: Any) -> None:
    append(cases.session, Event, case_id=case.id, kind="action", actor_id=actor.id,
           actor_name=actor.name, at=cases.clock(), payload={"note": message, **payload})


def evaluate(mapping: Any, scope: dict[str, Any]) -> dict[str, Any]:
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


def recontact_blocked(session: DbSession, wf: Workflow, data: dict[str, Any],
                      now: dt.datetime, parent_id: int | None = None) -> str | None:
    """Why a customer may not get an automatic new case of ``wf`` now (its
    cooldown), or None. A case without a customer is never held back, nor a
    follow-up on the same matter (an earlier case of the same parent: the
    revisit of a complaint that was reopened and resolved again)."""
    if wf.cooldown is None or not wf.customer_field:
        return None
    customer = data.get(wf.customer_field)
    if customer in (None, ""):
        return None
    stmt = (select(Case.reference_prefix, Case.created_at, Case.id)
            .where(Case.workflow == wf.name, Case.customer_ref == str(customer),
                   Case.created_at > now - wf.cooldown.within)
            .order_by(Case.created_at.desc()).limit(1))
    if wf.cooldown.ignore:
        stmt = stmt.where(Case.state.not_in(wf.cooldown.ignore))
    if parent_id is not None:
        stmt = stmt.where(or_(Case.parent_id.is_(None), Case.parent_id != parent_id))
    row = session.execute(stmt).first()
    if row is None:
        return None
    days = wf.cooldown.within.total_seconds() / 86400
    return (f"customer {customer} already had {reference(*row)} on "
            f"{row[1].date().isoformat()} (no recontact within {days:g} days)")


_HANDLERS = {
    "start": _start, "timer": _timer, "notify": _outbox("notify"), "crm": _outbox("crm"),
    "fire": _outbox("fire"), "set": _set, "assign": _assign, "cancel": _cancel,
    "measure": _measure, "remind": _remind, "survey": _survey,
}
