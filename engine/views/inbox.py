"""The inbox page: a tab of cases (mine, my teams' queue, overdue, due soon, recent)
with its count per tab, filters and search, keyset pages (:mod:`caseloop.inbox`, as
``GET /api/inbox``), and **Claim** on the team queue (``Cases.claim``).

The filter form is a GET: its address is shareable and the back button works. The
cursor of the next page is the API's (``base64(iso time|id)``); one this page did
not give out is a 400 page, never a 500.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from .. import inbox
from ..cases import Actor
from ..errors import Conflict, Forbidden, NotFound
from ..extension import state
from ..models import Case, Team, User, utcnow
from ..spec.model import Choice, Workflow
from ..users import actor_for
from . import blueprint, current_user, error_page, local_path, login_required, t
from .forms import ButtonForm

FILTERS = ("workflow", "state", "priority", "channel", "customer", "q")
#: The longest filter value read; longer ones are cut (no reference, phone or name
#: is this long).
FILTER_MAX = 200
MAX_ID = 2**63 - 1
#: The endpoint of the case page; until it exists references are shown as text.
CASE_PAGE = "caseloop_views.case"


@blueprint.get("/inbox")
@login_required
def inbox_page() -> str | tuple[str, int]:
    tab = request.args.get("tab") or "mine"
    if tab not in inbox.TABS:
        return error_page(400, "inbox_bad_tab")
    values = _filter_values()
    if values is None:
        return error_page(400, "bad_request")
    after = None
    if raw := request.args.get("cursor"):
        after = decode_cursor(raw)
        if after is None:
            return error_page(400, "inbox_bad_cursor")
    who = _actor()
    session, now = state().db.session, utcnow()
    soon = dt.timedelta(hours=float(current_app.config["CASELOOP_DUE_SOON_HOURS"]))
    found = inbox.page(session, who, tab, inbox.Filters(**{k: v or None for k, v in
                                                          values.items()}),
                       now=now, soon=soon, after=after,
                       limit=int(current_app.config["CASELOOP_PAGE_SIZE"]))
    lang = g.caseloop_lang
    workflows = _workflows()
    kept: dict[str, Any] = {k: v for k, v in values.items() if v}
    return render_template(
        "caseloop/inbox.html", tab=tab, tabs=inbox.TABS, counts=found.counts,
        values=values, filters=kept, filtered=bool(kept), paged=after is not None,
        rows=_rows(found.cases, workflows, lang, now),
        choices=_choices(workflows, lang, values),
        next_url=url_for("caseloop_views.inbox_page", tab=tab, **kept,
                         cursor=encode_cursor(*found.next)) if found.next else None)


@blueprint.post("/inbox/claim/<int:case_id>")
@login_required
def claim(case_id: int) -> Response | tuple[str, int]:
    form = ButtonForm()  # the CSRF token was checked before the view ran
    back = local_path(form.next.data, url_for("caseloop_views.inbox_page", tab="team"))
    st, who = state(), _actor()
    cases = st.cases()
    try:
        reference = cases.get(case_id, who).reference
    except NotFound:
        st.db.session.rollback()
        return error_page(404, "not_found")
    try:
        cases.claim(case_id, who)
    except Conflict as exc:
        st.db.session.rollback()
        key = "inbox_closed" if exc.code == "wrong_state" else "inbox_taken"
        flash(t(key, reference=reference), "error")
    except Forbidden:
        st.db.session.rollback()
        flash(t("inbox_not_yours", reference=reference), "error")
    else:
        st.db.session.commit()
        flash(t("inbox_claimed", reference=reference), "info")
    return redirect(back)


# -- helpers ----------------------------------------------------------------------------
def encode_cursor(at: dt.datetime, last_id: int) -> str:
    """The API's cursor: ``base64url("<ISO time in UTC>|<id>")`` without padding."""
    if at.tzinfo is None:  # SQLite gives naive UTC
        at = at.replace(tzinfo=dt.UTC)
    text = at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return base64.urlsafe_b64encode(f"{text}|{last_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[dt.datetime, int] | None:
    """The keyset of a cursor this page (or the API) gave out; None for anything else."""
    if len(raw) > 200:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, sep, last_id = text.partition("|")
        found = dt.datetime.fromisoformat(at), int(last_id)
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return None
    if not sep or found[0].tzinfo is None or not 0 <= found[1] <= MAX_ID:
        return None
    return found


def _filter_values() -> dict[str, str] | None:
    """The filters as typed (trimmed, cut at FILTER_MAX); None when one holds a
    control character (the database refuses NUL: a 400, not a 500)."""
    out = {}
    for name in FILTERS:
        value = request.args.get(name, "").strip()[:FILTER_MAX]
        if any(ord(c) < 32 for c in value):
            return None
        out[name] = value
    return out


def _actor() -> Actor:
    user = current_user()
    assert user is not None  # login_required
    found = actor_for(state().db.session, user,
                      sees_all_roles=current_app.config["CASELOOP_SEE_ALL_ROLES"])
    return dataclasses.replace(found, lang=g.caseloop_lang)


def _workflows() -> dict[str, Workflow]:
    st = state()
    return dict(st.registry.current.workflows) if st.load_error is None else {}


def _label(choices: Iterable[Choice], value: str | None, lang: str) -> str:
    for c in choices:
        if c.value == value:
            return c.label.get(lang) or c.value
    return value or ""


def _priority_choices(wf: Workflow) -> tuple[Choice, ...]:
    found = wf.form.field(wf.priority_field) if wf.priority_field else None
    return found.choices if found is not None else ()


def _channel_choices(wf: Workflow) -> tuple[Choice, ...]:
    found = wf.form.field("channel")
    return found.choices if found is not None else ()


def _merged(groups: Iterable[Iterable[Choice]], lang: str) -> list[tuple[str, str]]:
    """(value, label) of every choice, once each, in the order first seen."""
    out: dict[str, str] = {}
    for choices in groups:
        for c in choices:
            out.setdefault(c.value, c.label.get(lang) or c.value)
    return list(out.items())


def _choices(workflows: dict[str, Workflow], lang: str, values: dict[str, str]
             ) -> dict[str, Any]:
    """The selects' options, from the loaded definitions, in the reader's language.
    States are grouped by workflow (only the chosen one's when one is chosen)."""
    ordered = sorted(workflows.values(), key=lambda wf: wf.title.get(lang))
    chosen = values["workflow"]
    shown = [workflows[chosen]] if chosen in workflows else ordered
    out: dict[str, Any] = {
        "workflow": [(wf.name, wf.title.get(lang)) for wf in ordered],
        "state": [(wf.title.get(lang), [(s.name, s.label.get(lang) or s.name)
                                        for s in wf.states.values()]) for wf in shown],
        "priority": _merged((_priority_choices(wf) for wf in shown), lang),
        "channel": _merged((_channel_choices(wf) for wf in shown), lang),
    }
    for name in ("workflow", "priority", "channel"):
        out[name] = _keep(out[name], values[name])
    state_ = values["state"]
    if state_ and not any(v == state_ for _, group in out["state"] for v, _ in group):
        out["state"].append(("—", [(state_, state_)]))
    return out


def _keep(options: list[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    """The options, with the value in the address when it is none of them (a shared
    link from before a definition changed): the select shows what filters the list."""
    return options if not value or any(v == value for v, _ in options) else [
        *options, (value, value)]


def _rows(cases: Sequence[Case], workflows: dict[str, Workflow], lang: str,
          now: dt.datetime) -> list[dict[str, Any]]:
    session = state().db.session
    user_ids = {c.assignee_id for c in cases if c.assignee_id is not None}
    team_ids = {c.team_id for c in cases if c.team_id is not None}
    users: dict[int, str] = {i: d or n for i, d, n in session.execute(select(
        User.id, User.display_name, User.name).where(User.id.in_(user_ids)))
    } if user_ids else {}
    teams: dict[int, str] = {i: n for i, n in session.execute(select(
        Team.id, Team.name).where(Team.id.in_(team_ids)))} if team_ids else {}
    has_page = CASE_PAGE in current_app.view_functions
    out = []
    for case in cases:
        wf = workflows.get(case.workflow)
        st = wf.states.get(case.state) if wf is not None else None
        due = case.due_at
        if due is not None and due.tzinfo is None:
            due = due.replace(tzinfo=dt.UTC)
        data = case.data or {}
        out.append({
            "case": case, "link": _case_link(case.id) if has_page else None,
            "subject": _text(data.get("subject")), "customer": _text(data.get("customer_name")),
            "workflow": wf.title.get(lang) if wf is not None else case.workflow,
            "state": st.label.get(lang) if st is not None else case.state,
            "priority": _label(_priority_choices(wf), case.priority, lang)
            if wf is not None else (case.priority or ""),
            "assignee": users.get(case.assignee_id, "") if case.assignee_id else "",
            "team": teams.get(case.team_id, "") if case.team_id else "",
            "overdue": not case.closed and due is not None and due < now,
        })
    return out


def _case_link(case_id: int) -> str | None:
    try:
        return url_for(CASE_PAGE, case_id=case_id)
    except BuildError:
        return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
