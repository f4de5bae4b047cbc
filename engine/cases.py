"""The unit of work on cases: create, fire a transition, say what may be done and why not.

Free of Flask: it takes a SQLAlchemy session, the registry and an
:class:`Actor`. Each operation only *flushes*; the caller commits, so the
case row, its events and its jobs land in one transaction or not at all. A
concurrent writer is caught by the optimistic ``version`` column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from . import facts, sla, values
from . import machine as machines
from .actions import evaluate, run_on_enter
from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import Case, DbSession, Event, Membership, User, append, team_named, utcnow
from .registry import Registry
from .spec.model import Transition, Workflow

SYSTEM = "system"
#: The actor of the public intake page: anyone, not logged in.
PUBLIC = "public"
#: The longest comment, in characters.
COMMENT_MAX = 4000


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (or the system) with roles and team ids."""

    name: str
    roles: frozenset[str] = frozenset()
    teams: frozenset[int] = frozenset()
    team_names: frozenset[str] = frozenset()
    id: int | None = None
    lang: str = "en"
    #: Sees every case, whatever its team or assignee.
    sees_all: bool = False

    @classmethod
    def system(cls) -> Actor:
        return cls(SYSTEM, frozenset({SYSTEM}), sees_all=True)

    @classmethod
    def public(cls, lang: str = "en") -> Actor:
        """Someone on the public intake page: no user, no team; may open cases of a
        public workflow only, filling its ``intake.fields`` only."""
        return cls(PUBLIC, frozenset({PUBLIC}), lang=lang)

    @property
    def is_public(self) -> bool:
        return self.name == PUBLIC and self.id is None and self.roles == {PUBLIC}

    @property
    def is_system(self) -> bool:
        """Caseloop itself (timers, linked cases): never a user, whatever the user's name."""
        return self.name == SYSTEM and self.id is None and SYSTEM in self.roles

    @property
    def acting_roles(self) -> frozenset[str]:
        """The roles checked by transitions: 'system' counts for Caseloop itself only."""
        return self.roles if self.is_system else self.roles - {SYSTEM}

    def names(self) -> dict[str, Any]:
        return {"name": self.name, "roles": sorted(self.roles), "teams": sorted(self.team_names)}


@dataclass
class Cases:
    session: DbSession
    registry: Registry
    region: str = "CN"
    clock: Callable[[], dt.datetime] = utcnow
    #: Depth of linked cases started within one operation (guards against loops).
    max_depth: int = 5
    #: Roles that may give any case they see to anyone who works its workflow
    #: (others may only hand their own cases to a teammate).
    assign_roles: frozenset[str] = frozenset({"supervisor", "manager", "admin"})
    #: The install's time zone: the day an improvement action was done is a local day.
    zone: str = "UTC"

    # -- reading ------------------------------------------------------------------
    def get(self, case_id: int, actor: Actor) -> Case:
        case = self.session.get(Case, case_id)
        if case is None or not visible(case, actor):
            raise NotFound(f"no case {case_id}")  # same answer when hidden: no leak
        return case

    def workflow_of(self, case: Case) -> Workflow:
        return self.registry.pinned(case.workflow, case.definition_version, self.session)

    def actions(self, case: Case, actor: Actor) -> list[dict[str, Any]]:
        """Transitions from the case's state: available ones with their required
        fields, unavailable ones with the reason why not."""
        wf = self.workflow_of(case)
        scope = self.scope(wf, case, actor, case.data)
        out = []
        for t in wf.transitions_from(case.state):
            reason = self.why_not(t, actor, scope)
            out.append({
                "trigger": t.trigger, "label": t.label.get(actor.lang), "to": t.dest,
                "requires": list(t.requires), "available": reason is None, "reason": reason,
            })
        return out

    def why_not(self, t: Transition, actor: Actor, scope: Mapping[str, Any]) -> str | None:
        if not t.allow & actor.acting_roles:
            return {"en": "Your role may not do this.", "zh": "您的角色无权执行此操作。"}[
                "zh" if actor.lang.startswith("zh") else "en"]
        if t.guard is not None and not t.guard.expression.test(scope):
            return t.guard.message.get(actor.lang)
        return None

    # -- writing --------------------------------------------------------------------
    def create(self, workflow: str, data: Mapping[str, Any], actor: Actor, *,
               parent: Case | None = None, depth: int = 0) -> Case:
        wf = self.registry.workflow(workflow)
        if wf is None:
            raise NotFound(f"no workflow '{workflow}'")
        public = actor.is_public
        if public and (not wf.public or wf.intake is None):
            raise Forbidden(f"'{workflow}' cases are not taken from the public")
        if not public and not actor.is_system and not wf.start_roles & actor.acting_roles:
            raise Forbidden(f"your roles may not open a '{workflow}' case")
        initial = wf.states[wf.initial]
        now = self.clock()
        scope = {"now": now, "state": wf.initial, "reference": "", "created_at": now,
                 "user": actor.names()}
        may_edit: Callable[[str], bool] = lambda f: initial.fields.of(f) != "hidden"  # noqa: E731
        if public:
            assert wf.intake is not None
            # Only the intake's fields, and the page's own values over anything posted.
            taken = frozenset(wf.intake.fields) | frozenset(wf.intake.set)
            may_edit = lambda f: f in taken and initial.fields.of(f) == "editable"  # noqa: E731
            given = {**scope, **values.expression_values(wf.form, values.defaults(wf.form))}
            data = {**data, **evaluate(wf.intake.set, given)}
        outcome = values.clean(wf.form, data, base=values.defaults(wf.form), lang=actor.lang,
                               region=self.region, names=scope, may_edit=may_edit)
        if not outcome.ok and not actor.is_system:
            raise Invalid("some fields are not valid", fields=outcome.errors)
        case = Case(workflow=wf.name, definition_version=wf.version,
                    reference_prefix=wf.reference_prefix, state=wf.initial,
                    closed=initial.final, data=outcome.data, created_by=actor.id,
                    created_at=now, updated_at=now, entered_at=now,
                    parent_id=parent.id if parent else None,
                    team_id=_default_team(actor, parent), version=1)
        if public and wf.intake is not None and wf.intake.team:
            team = team_named(self.session, wf.intake.team)
            case.team_id = team.id if team is not None else None
        self._sync_columns(wf, case)
        if parent is not None:  # a revisit without the dimension fields takes its parent's
            facts.dimensions(wf, case, parent)
        # The names expressions see, once: the SLA policy's and the on-enter actions'.
        scope.update(values.expression_values(wf.form, case.data))
        if wf.sla is not None:  # before the INSERT, so that it carries the clock
            sla.begin(wf, case, scope, self.registry.current.calendars, now)
        self.session.add(case)
        self.session.flush()  # the id, for the event and jobs below (INSERT … RETURNING)
        payload: dict[str, Any] = {"data": outcome.data}
        if outcome.errors:  # a system-started case keeps what it could map
            payload["warnings"] = outcome.errors
        append(self.session, Event, case_id=case.id, kind="created", actor_id=actor.id,
               actor_name=actor.name, to_state=case.state, payload=payload, at=now)
        facts.created(self.session, wf, case, parent, now, self.zone)
        scope["reference"] = case.reference
        run_on_enter(self, wf, case, scope, actor, depth)
        # On-enter actions (set, assign) may change the new row: flush now so that the
        # version the caller reports is the one that will be committed.
        self.session.flush()
        return case

    def fire(self, case_id: int, trigger: str, data: Mapping[str, Any], actor: Actor, *,
             expected_version: int | None = None, depth: int = 0) -> Case:
        case = self.get(case_id, actor)
        if expected_version is not None and case.version != expected_version:
            raise Conflict(f"the case changed meanwhile (version {case.version}, "
                           f"you had {expected_version}); reload it", code="stale")
        wf = self.workflow_of(case)
        if not any(t.trigger == trigger for t in wf.transitions):
            raise NotFound(f"workflow '{wf.name}' has no trigger '{trigger}'")
        t = next((t for t in wf.transitions_from(case.state) if t.trigger == trigger), None)
        if t is None:
            raise Conflict(f"'{trigger}' is not possible in state '{case.state}'",
                           code="wrong_state")
        if not t.allow & actor.acting_roles:
            raise Forbidden(f"your roles may not fire '{trigger}'")
        state = wf.states[case.state]
        now = self.clock()
        outcome = values.clean(
            wf.form, data, base=case.data, lang=actor.lang, region=self.region,
            names=self.scope(wf, case, actor, case.data, now), require=t.requires,
            may_edit=lambda f: state.fields.of(f) == "editable" or f in t.requires)
        if not outcome.ok:
            raise Invalid("some fields are not valid", fields=outcome.errors)
        scope = self.scope(wf, case, actor, outcome.data, now)
        before, source = case.data, case.state
        if not machines.fire(self.registry.machine(wf), trigger, case, scope):
            message = t.guard.message.get(actor.lang) if t.guard else "not allowed"
            raise Invalid(message, code="guard_failed")
        case.data = outcome.data
        case.updated_at = case.entered_at = now
        case.closed = wf.states[case.state].final
        self._sync_columns(wf, case)
        facts.moved(wf, case, source, now, person=not (actor.is_system or actor.is_public))
        facts.changed(self.session, wf, case, before, now, self.zone)
        append(self.session, Event, case_id=case.id, kind="transition", actor_id=actor.id,
               actor_name=actor.name, trigger=trigger, from_state=source,
               to_state=case.state, at=now, payload={"changes": changes(before, outcome.data)})
        scope["state"] = case.state
        sla.entered(wf, case, self.registry.current.calendars, now)
        try:
            # On-enter actions may flush (a linked case's id, a team lookup): the
            # version check can fail there as well as in the final flush.
            run_on_enter(self, wf, case, scope, actor, depth)
            self.session.flush()
        except StaleDataError:
            raise Conflict("the case changed meanwhile; reload it", code="stale") from None
        return case

    def update(self, case_id: int, data: Mapping[str, Any], actor: Actor, *,
               expected_version: int | None = None) -> Case:
        """Change fields without a transition (an action marked done, a phone number
        corrected): only those editable in the case's state, by a user with a role of
        the workflow; validated as a whole, recorded with before/after."""
        case = self.get(case_id, actor)
        if expected_version is not None and case.version != expected_version:
            raise Conflict(f"the case changed meanwhile (version {case.version}, "
                           f"you had {expected_version}); reload it", code="stale")
        wf = self.workflow_of(case)
        if not wf.roles & actor.acting_roles - {SYSTEM} and not actor.is_system:
            raise Forbidden(f"your roles may not edit '{wf.name}' cases")
        state = wf.states[case.state]
        now = self.clock()
        outcome = values.clean(
            wf.form, data, base=case.data, lang=actor.lang, region=self.region,
            names=self.scope(wf, case, actor, case.data, now),
            may_edit=lambda f: state.fields.of(f) == "editable")
        if not outcome.ok:
            raise Invalid("some fields are not valid", fields=outcome.errors)
        diff = changes(case.data, outcome.data)
        if not diff:
            return case  # nothing changed: no event, no new version
        before, case.data = case.data, outcome.data
        case.updated_at = now
        self._sync_columns(wf, case)
        facts.changed(self.session, wf, case, before, now, self.zone)
        append(self.session, Event, case_id=case.id, kind="updated", actor_id=actor.id,
               actor_name=actor.name, at=now, payload={"changes": diff})
        try:
            self.session.flush()
        except StaleDataError:
            raise Conflict("the case changed meanwhile; reload it", code="stale") from None
        return case

    def claim(self, case_id: int, actor: Actor, *,
              expected_version: int | None = None) -> Case:
        """Take an unassigned case of one of my teams (the team queue). Two people
        claiming at once: one gets it, the other a conflict."""
        case = self.get(case_id, actor)
        if expected_version is not None and case.version != expected_version:
            raise Conflict(f"the case changed meanwhile (version {case.version}, "
                           f"you had {expected_version}); reload it", code="stale")
        wf = self.workflow_of(case)
        if actor.id is None or not wf.roles & actor.acting_roles - {SYSTEM}:
            raise Forbidden(f"your roles may not work '{wf.name}' cases")
        if case.closed:
            raise Conflict("the case is closed", code="wrong_state")
        if case.assignee_id is not None:
            if case.assignee_id == actor.id:
                return case  # mine already: claiming again changes nothing
            raise Conflict("someone else has taken this case meanwhile", code="taken")
        if case.team_id not in actor.teams:
            raise Forbidden("only members of the case's team may take it from the queue")
        now = self.clock()
        case.assignee_id, case.updated_at = actor.id, now
        append(self.session, Event, case_id=case.id, kind="assigned", actor_id=actor.id,
               actor_name=actor.name, at=now, payload={"action": "claim", "user": actor.name})
        try:
            self.session.flush()
        except StaleDataError:
            raise Conflict("someone else has taken this case meanwhile", code="stale") from None
        return case

    def assign(self, case_id: int, to: str | None, actor: Actor, *,
               expected_version: int | None = None) -> Case:
        """Give the case to the user named ``to`` (None: back to the team's queue).
        The assignee may hand it to a teammate; ``assign_roles`` to anyone who works
        the workflow."""
        case = self.get(case_id, actor)
        if expected_version is not None and case.version != expected_version:
            raise Conflict(f"the case changed meanwhile (version {case.version}, "
                           f"you had {expected_version}); reload it", code="stale")
        if case.closed:
            raise Conflict("the case is closed", code="wrong_state")
        wf = self.workflow_of(case)
        lead = bool(self.assign_roles & actor.acting_roles) or actor.is_system
        if not lead and (actor.id is None or case.assignee_id != actor.id):
            raise Forbidden("only the case's assignee or a supervisor may reassign it")
        user = None
        if to is not None:
            user = self.session.execute(select(User).where(User.name == to)).scalar_one_or_none()
            if user is None or not user.active:
                raise Invalid("no such person", fields={"user": [f"no active user '{to}'"]})
            if not wf.roles & (set(user.roles or ()) - {SYSTEM}):
                raise Invalid("this person does not work these cases", fields={"user": [
                    f"'{to}' has none of the roles {', '.join(sorted(wf.roles - {SYSTEM}))}"]})
            teammates = case.team_id is None or self.session.execute(select(Membership).where(
                Membership.team_id == case.team_id, Membership.user_id == user.id)).first()
            if not lead and not teammates:
                raise Forbidden("you may hand the case only to a member of its team")
        before = case.assignee_id
        if (user.id if user else None) == before:
            return case  # nothing changes
        now = self.clock()
        case.assignee_id, case.updated_at = (user.id if user else None), now
        previous = self.session.get(User, before) if before is not None else None
        append(self.session, Event, case_id=case.id, kind="assigned", actor_id=actor.id,
               actor_name=actor.name, at=now, payload={
                   "action": "reassign", "user": to,
                   "from": previous.name if previous is not None else None})
        try:
            self.session.flush()
        except StaleDataError:
            raise Conflict("the case changed meanwhile; reload it", code="stale") from None
        return case

    def comment(self, case_id: int, text: str, actor: Actor) -> Case:
        """A note in the case's history (not a field change: the case row and its
        version stay as they are, so a comment never conflicts with an edit)."""
        case = self.get(case_id, actor)
        wf = self.workflow_of(case)
        if not (actor.is_system or actor.sees_all or wf.roles & actor.acting_roles):
            raise Forbidden(f"your roles may not comment on '{wf.name}' cases")
        text = text.strip() if isinstance(text, str) else ""
        zh = actor.lang.startswith("zh")
        if not text or len(text) > COMMENT_MAX:
            message = (f"请填写 1 到 {COMMENT_MAX} 个字符的备注。" if zh else
                       f"Write a comment of 1 to {COMMENT_MAX} characters.")
            raise Invalid("the comment is not valid", fields={"text": [message]})
        now = self.clock()
        append(self.session, Event, case_id=case.id, kind="comment", actor_id=actor.id,
               actor_name=actor.name, at=now, payload={"text": text})
        if case.first_response_at is None and not (actor.is_system or actor.is_public):
            facts.first_comment(self.session, case, now)
        return case

    # -- helpers ------------------------------------------------------------------
    def scope(self, wf: Workflow, case: Case, actor: Actor, data: Mapping[str, Any],
              now: dt.datetime | None = None) -> dict[str, Any]:
        """The names expressions see for this case."""
        # Exactly ``data``: a step that empties every field must not see the old values.
        scope: dict[str, Any] = values.expression_values(wf.form, data)
        scope.update(now=now or self.clock(), state=case.state, created_at=case.created_at,
                     reference=case.reference if case.id else "", user=actor.names())
        return scope

    def _sync_columns(self, wf: Workflow, case: Case) -> None:
        """Columns lists and filters query, copied from the fields that hold them."""
        if wf.priority_field:
            case.priority = case.data.get(wf.priority_field)
        if wf.customer_field:
            value = case.data.get(wf.customer_field)
            case.customer_ref = str(value) if value is not None else None
        facts.dimensions(wf, case)


def _default_team(actor: Actor, parent: Case | None) -> int | None:
    """A new case lands in its parent's team, else in its creator's (the first, if
    several), so teammates see it; an on-enter ``assign`` may move it."""
    if parent is not None:
        return parent.team_id
    return min(actor.teams) if actor.teams and not actor.is_system else None


def visible(case: Case, actor: Actor) -> bool:
    """Record-level visibility: assigned to them, in one of their teams, or a role sees all."""
    return (actor.sees_all or case.assignee_id is not None and case.assignee_id == actor.id
            or case.team_id is not None and case.team_id in actor.teams
            or case.created_by is not None and case.created_by == actor.id)


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field -> [before, after] for every field that changed."""
    keys = list(dict.fromkeys([*before, *after]))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}
