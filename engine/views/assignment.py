"""Who works a case, from its page: take it from the team's queue, or give it to
someone (the assignee to a teammate, CASELOOP_ASSIGN_ROLES to anyone who works the
workflow) or back to the queue. The rules are Cases.claim and Cases.assign's."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for
from sqlalchemy import select

from ..cases import SYSTEM, Actor
from ..errors import CaseError, Conflict, Invalid
from ..extension import state
from ..models import Case, Membership, User
from ..spec.model import Workflow
from . import blueprint, login_required, t
from .cases import CASE_ID, Page, _fail, actor


def options(found: Case, who: Actor, wf: Workflow) -> dict[str, Any]:
    """What the case page offers: a Take button, and the people it may be given to."""
    works = bool(wf.roles & who.acting_roles)
    lead = bool(set(current_app.config["CASELOOP_ASSIGN_ROLES"]) & who.acting_roles)
    take = (works and not found.closed and found.assignee_id is None
            and found.team_id is not None and found.team_id in who.teams)
    people: list[tuple[str, str]] = []
    if not found.closed and (lead or (found.assignee_id is not None
                                      and found.assignee_id == who.id)):
        stmt = select(User).where(User.active.is_(True)).order_by(User.name)
        if not lead and found.team_id is not None:
            stmt = stmt.join(Membership, Membership.user_id == User.id).where(
                Membership.team_id == found.team_id)
        roles = wf.roles - {SYSTEM}
        people = [(u.name, u.display_name or u.name)
                  for u in state().db.session.execute(stmt).scalars()
                  if roles & set(u.roles or ()) and u.id != found.assignee_id]
    return {"take": take, "people": people, "may_give": bool(people) or (
        lead and found.assignee_id is not None and not found.closed)}


@blueprint.post(f"/cases/{CASE_ID}/take")
@login_required
def case_take(case_id: int) -> Page:
    return _done(case_id, lambda who: state().cases().claim(case_id, who), "case_taken")


@blueprint.post(f"/cases/{CASE_ID}/give")
@login_required
def case_give(case_id: int) -> Page:
    to = request.form.get("user", "").strip() or None
    return _done(case_id, lambda who: state().cases().assign(case_id, to, who),
                 "case_given" if to else "case_queued", to=to or "")


def _done(case_id: int, change: Any, message: str, **words: str) -> Page:
    who, session = actor(), state().db.session
    try:
        change(who)
    except (Conflict, Invalid) as exc:  # someone was quicker, or a bad choice: say so
        session.rollback()
        flash(exc.message if not exc.fields else " ".join(
            m for ms in exc.fields.values() for m in ms), "error")
        return redirect(url_for("caseloop_views.case", case_id=case_id))
    except CaseError as exc:
        return _fail(exc)
    session.commit()
    flash(t(message, **words))
    return redirect(url_for("caseloop_views.case", case_id=case_id))
