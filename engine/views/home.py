"""The page after login: the reader's open cases and their teams' unassigned queue
(counts and the latest few), and, for administrators, what needs their attention."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, render_template, url_for
from sqlalchemy import func, select

from .. import queue
from ..extension import state
from ..models import Case, Membership, utcnow
from . import blueprint, current_user, is_admin, login_required

#: Cases listed on the home page (the counts cover them all).
LATEST = 10


@blueprint.get("/home")
@login_required
def home() -> str:
    user = current_user()
    assert user is not None
    session, now = state().db.session, utcnow()
    mine = (Case.assignee_id == user.id) & Case.closed.is_(False)
    my_teams = select(Membership.team_id).where(Membership.user_id == user.id)
    queued = (Case.team_id.in_(my_teams) & Case.assignee_id.is_(None)
              & Case.closed.is_(False))
    counts = session.execute(select(
        func.count().filter(mine),
        func.count().filter(mine & (Case.due_at < now)),
        func.count().filter(queued))).one()
    latest = session.execute(select(Case).where(mine).order_by(
        Case.updated_at.desc(), Case.id.desc()).limit(LATEST)).scalars().all()
    lang = g.caseloop_lang
    rows: list[dict[str, Any]] = []
    for case in latest:
        wf = state().registry.workflow(case.workflow) if state().load_error is None else None
        st = wf.states.get(case.state) if wf is not None else None
        rows.append({"case": case, "overdue": case.due_at is not None and case.due_at < now,
                     "workflow": wf.title.get(lang) if wf is not None else case.workflow,
                     "state": st.label.get(lang) if st is not None else case.state})
    dead = queue.counts(session)["dead"] if is_admin(user) else 0
    roles = set(user.roles or ())
    startable = [(wf.name, wf.title.get(lang)) for wf in (
        state().registry.current.workflows.values() if state().load_error is None else ())
        if wf.start_roles & roles]
    prefix = url_for("caseloop_views.home").rsplit("/home", 1)[0]
    return render_template("caseloop/home.html", mine=counts[0], overdue=counts[1],
                           team_queue=counts[2], rows=rows, dead=dead, startable=startable,
                           api=f"{prefix}/api", doc=f"{prefix}/api/openapi.json",
                           page_size=current_app.config["CASELOOP_PAGE_SIZE"])
