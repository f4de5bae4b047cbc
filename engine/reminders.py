"""Due-date reminders for the rows of a group: an improvement plan's actions.

A ``remind`` job checks the rows once a day (at the declared local time) while
the case stays in the state that started it: the owner of an open row is
reminded once ``before`` its due date, and after the date the escalation levels
are told (the owner too). What was sent is kept in the job's payload per row
and due date, so a row whose date moves is reminded again for the new date,
and a day the worker missed is caught up with one message, not a backlog.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from .jobs import Context, Fail, Skip, enqueue
from .models import Case, Event, append
from .spec.model import Remind, Workflow
from .spec.sla import ALWAYS

MESSAGES = {
    "reminder": {
        "en": "Reminder: the action \u201c{title}\u201d is due on {due}. Mark it done in the "
              "plan once it is in place.",
        "zh": "提醒：措施\u201c{title}\u201d将于 {due} 到期，落实后请在计划中标记为已完成。",
    },
    "overdue": {
        "en": "Overdue: the action \u201c{title}\u201d (owner {owner}) was due on {due} and "
              "is not done.",
        "zh": "逾期：措施\u201c{title}\u201d（负责人 {owner}）已于 {due} 到期，尚未完成。",
    },
}


def remind(ctx: Context) -> str | None:
    if (case := ctx.case) is None:
        raise Skip("the case no longer exists")
    p = ctx.payload
    entered = dt.datetime.fromisoformat(p["entered_at"]) if p.get("entered_at") else None
    if case.state != p.get("state") or case.entered_at != entered:
        raise Skip(f"the case left state '{p.get('state')}'; reminders stop")
    wf = ctx.cases.workflow_of(case)
    actions = wf.states[case.state].on_enter
    index = int(p.get("action", -1))
    r = actions[index].remind if 0 <= index < len(actions) else None
    if r is None:
        raise Fail(f"state '{case.state}' has no reminder at action {index + 1} any more")
    zone = ZoneInfo(zone_of(ctx, wf, r))
    sent: dict[str, list[str]] = {}
    counts = {"reminder": 0, "overdue": 0}
    for row in case.data.get(r.rows) or []:
        if not isinstance(row, dict) or row.get(r.done) in r.done_values:
            continue
        due, owner = row.get(r.due), row.get(r.owner)
        if not due or not owner:
            continue
        title = str(row.get(r.title) or "") if r.title else ""
        key = f"{title}|{owner}|{due}"
        before = set((p.get("sent") or {}).get(key, []))
        level = _level(r, dt.date.fromisoformat(str(due)), ctx.now, zone)
        if level is not None and level not in before:
            _send(ctx, case, r, level, title, str(owner), str(due))
            counts["overdue" if level.startswith("e") else "reminder"] += 1
            before.add(level)
            if level != "r":  # lower levels are covered: a missed day is not replayed
                before.update(f"e{i}" for i in range(int(level[1:])))
        sent[key] = sorted(before)
    enqueue(ctx.session, "remind", case_id=case.id, run_at=next_check(ctx.now, r.at, zone),
            state=case.state, action=index, entered_at=p.get("entered_at"), sent=sent)
    return f"{counts['reminder']} reminders, {counts['overdue']} overdue notices"


def _level(r: Remind, due: dt.date, now: dt.datetime, zone: ZoneInfo) -> str | None:
    """'eN' (the highest escalation level reached), 'r' (reminder time, not yet
    overdue), or None."""
    deadline = dt.datetime.combine(due, r.at, zone)
    reached = [i for i, e in enumerate(r.escalate) if now >= deadline + e.after]
    if reached:
        return f"e{reached[-1]}"
    end_of_due_day = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(), zone)
    if r.before is not None and deadline - r.before <= now < end_of_due_day:
        return "r"
    return None


def _send(ctx: Context, case: Case, r: Remind, level: str, title: str, owner: str,
          due: str) -> None:
    kind = "reminder" if level == "r" else "overdue"
    to = [f"user:{owner}"]
    if level != "r":
        to += [w for w in r.escalate[int(level[1:])].notify if w not in to]
    words = {"title": title or "-", "owner": owner, "due": due}
    message = {lang: text.format(**words) for lang, text in MESSAGES[kind].items()}
    enqueue(ctx.session, "notify", case_id=case.id, run_at=ctx.now, to=to, channel="inbox",
            state=case.state, message=message)
    payload: dict[str, Any] = {"action": "remind", "level": kind, "row": title,
                               "owner": owner, "due": due, "to": to}
    if level != "r":
        payload["escalation"] = int(level[1:]) + 1
    append(ctx.session, Event, case_id=case.id, kind="action", actor_name="system",
           at=ctx.now, payload=payload)


def zone_of(ctx: Context, wf: Workflow, r: Remind) -> str:
    """The time zone that says what 'today' is: the reminder's calendar, else the
    workflow's first SLA calendar, else UTC."""
    calendars = ctx.cases.registry.current.calendars
    names = [r.calendar] if r.calendar else [
        p.calendar for p in (wf.sla.policies if wf.sla else ()) if p.calendar != ALWAYS]
    for name in names:
        if name in calendars:
            return calendars[name].timezone
    return "UTC"


def next_check(now: dt.datetime, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The next moment after ``now`` when the local clock shows ``at``."""
    local = now.astimezone(zone)
    moment = dt.datetime.combine(local.date(), at, zone)
    if moment <= local:
        moment = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, zone)
    return moment.astimezone(dt.UTC)
