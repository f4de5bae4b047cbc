"""The built-in job handlers: what a job of each kind does when its time comes.

Each takes a :class:`~caseloop.jobs.Context` and works in its session, so its
changes commit together with the job's completion (exactly once). A situation
that changed meanwhile (the case left the state, the parent cannot take the
trigger) is not an error to retry: the handler notes it on the case and skips.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from .actions import recontact_blocked
from .errors import CaseError, Conflict
from .jobs import Context, Fail, Handler, Retry, Skip
from .models import Case, Event, Membership, User, append, team_named

#: A stale case (someone else wrote it between our read and write): try again soon.
CONFLICT_DELAY = dt.timedelta(seconds=5)


def timer(ctx: Context) -> str | None:
    """Fire the timer's trigger if the case is still in the visit of the state that
    set it; a case that left the state (or left and came back) cancels it."""
    case, p = _case(ctx), ctx.payload
    entered = dt.datetime.fromisoformat(p["entered_at"]) if p.get("entered_at") else None
    if case.state != p.get("state") or case.entered_at != entered:
        raise Skip(f"the case left state '{p.get('state')}'; timer '{p.get('trigger')}' "
                   "not fired")
    _fire(ctx, case, str(p["trigger"]))
    return f"fired '{p['trigger']}'"


def start(ctx: Context) -> str | None:
    """A linked case scheduled for later (a revisit three days after resolution)."""
    parent, p = _case(ctx), ctx.payload
    wf = ctx.cases.registry.workflow(str(p.get("workflow")))
    if wf is None:
        raise Fail(f"no workflow '{p.get('workflow')}' is loaded any more")
    if why := recontact_blocked(ctx.session, wf, p.get("data") or {}, ctx.now, parent.id):
        _note(ctx, parent, f"{wf.name} not started: {why}")
        raise Skip(why)
    child = ctx.cases.create(str(p["workflow"]), p.get("data") or {}, ctx.system,
                             parent=parent)
    assign = p.get("assign") or {}
    if assign.get("team"):
        team = team_named(ctx.session, str(assign["team"]))
        child.team_id = team.id if team is not None else child.team_id
    if assign.get("user"):
        user = _user_named(ctx, str(assign["user"]))
        child.assignee_id = user.id if user is not None else child.assignee_id
    if assign.get("role") and child.assignee_id is None:
        _assign_role(ctx, child, str(assign["role"]))
    ctx.session.flush()
    return f"started {child.workflow} {child.reference}"


def fire(ctx: Context) -> str | None:
    """Fire a transition on the parent or on each child (the closed loop: a low
    revisit score reopens the complaint)."""
    case, p = _case(ctx), ctx.payload
    trigger, which, data = str(p["trigger"]), p.get("case"), p.get("data") or {}
    targets: list[Case | None]
    if which == "self":  # an SLA escalation, a parent withdrawing this case
        targets = [case]
    elif which == "parent":
        targets = [ctx.session.get(Case, case.parent_id)] if case.parent_id else []
    else:
        targets = list(ctx.session.execute(select(Case).where(
            Case.parent_id == case.id, Case.closed.is_(False)).order_by(Case.id)).scalars())
    done, notes = [], []
    for target in targets:
        if target is None:
            continue
        try:
            _fire(ctx, target, trigger, data)
            done.append(target.reference)
        except Skip as exc:
            notes.append(f"{target.reference}: {exc}")
    if notes:
        _note(ctx, case, f"'{trigger}' not fired on " + "; ".join(notes))
    if not targets:
        raise Skip(f"no {which} case to fire '{trigger}' on")
    return f"fired '{trigger}' on {', '.join(done) or 'none'}"


def assign(ctx: Context) -> str | None:
    """Give the case to a person with the role: in the case's team when it has
    such members, the one with the fewest open cases."""
    case = _case(ctx)
    user = _assign_role(ctx, case, str(ctx.payload["role"]))
    if user is None:
        raise Skip(f"nobody active has the role '{ctx.payload['role']}'")
    return f"assigned to {user.name}"


# -- helpers --------------------------------------------------------------------------
def _case(ctx: Context) -> Case:
    if ctx.case is None:
        raise Skip("the case no longer exists")
    return ctx.case


def _fire(ctx: Context, case: Case, trigger: str, data: dict[str, Any] | None = None) -> None:
    try:
        ctx.cases.fire(case.id, trigger, data or {}, ctx.system)
    except Conflict as exc:
        if exc.code == "stale":
            raise Retry(str(exc), after=CONFLICT_DELAY) from None
        raise Skip(exc.message) from None  # wrong state: the case moved on
    except CaseError as exc:  # a guard that holds, a required field that is empty
        raise Skip(exc.message) from None


def _assign_role(ctx: Context, case: Case, role: str) -> User | None:
    users = [u for u in ctx.session.execute(select(User).where(User.active.is_(True))
                                            ).scalars() if role in (u.roles or ())]
    if not users:
        return None
    if case.team_id is not None:
        members = set(ctx.session.execute(select(Membership.user_id).where(
            Membership.team_id == case.team_id)).scalars())
        users = [u for u in users if u.id in members] or users
    load: dict[Any, int] = {row[0]: row[1] for row in ctx.session.execute(
        select(Case.assignee_id, func.count()).where(
            Case.assignee_id.in_([u.id for u in users]), Case.closed.is_(False))
        .group_by(Case.assignee_id))}
    user = min(users, key=lambda u: (load.get(u.id, 0), u.id))
    case.assignee_id = user.id
    append(ctx.session, Event, case_id=case.id, kind="assigned", actor_name="system",
           at=ctx.now, payload={"action": "assign", "role": role, "user": user.name})
    return user


def _user_named(ctx: Context, name: str) -> User | None:
    return ctx.session.execute(select(User).where(User.name == name, User.active.is_(True))
                               ).scalar_one_or_none()


def _note(ctx: Context, case: Case, message: str) -> None:
    append(ctx.session, Event, case_id=case.id, kind="action", actor_name="system",
           at=ctx.now, payload={"note": message, "job": ctx.job.id})


def builtin() -> dict[str, Handler]:
    """Handlers by job kind (plugins add theirs)."""
    from .crm import inbound, sync
    from .listeners import dispatch
    from .notify import deliver, webhook
    from .reminders import remind

    return {"timer": timer, "start": start, "fire": fire, "assign": assign, "crm": sync.push,
            "crm_event": inbound.handle, "crm_poll": inbound.poll,
            "crm_subscribe": inbound.subscribe, "notify": deliver, "webhook": webhook,
            "remind": remind, "plugin_event": dispatch}
