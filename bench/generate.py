"""Synthetic complaint and revisit history, seeded, for the metrics benchmark and the demo.

    python bench/generate.py [--database-url URL] [--cases 1000000] [--answers 1000000]
                             [--seed 7] [--days 730] [--method auto|core|copy]

Writes ``--cases`` rows into ``caseloop_cases`` (complaints, and the revisits that
follow them up) and exactly ``--answers`` rows into ``caseloop_answers``, as the app
itself would have kept them (engine/facts.py), so that every page and metric reads
them like real data:

- complaints over ``--days`` (about two years) up to today, more on weekdays and
  office hours, a peak after the 11.11 shopping festival (mostly deliveries), a dip
  at the spring festival and slow growth; channels, categories, segments and
  priorities with skewed shares; teams and agents (some busier, some better);
- first response and resolution times log-normal by priority and category; the SLA
  targets of the shipped ``complaint`` workflow (wall-clock approximation of its
  office calendar) met or breached; repeats (same customer and category within 30
  days, as facts.REPEAT_DAYS); reopened complaints (a poor revisit reopens its
  complaint, as the workflow does);
- revisits (``revisit`` cases): the follow-up call 3 days after resolution, child of
  its complaint with the complaint's dimensions, and periodic care calls; each with a
  ``call_outcome`` (reached, refused, unreachable, survey_link), survey links sent and
  answered or expired, and CSAT (1-5, reported top-2-box), NPS (0-10) and CES (1-7)
  answers correlated with each other and with the team, agent, category and time.

The schema is migrated and the shipped definitions recorded first (cases pin a
recorded ``definition_version``, or their pages refuse them). Ids continue after the
existing rows; PostgreSQL sequences are moved past them. Inserts go in batches of
``--batch`` rows per table inside one transaction each: SQLAlchemy Core executemany,
or on PostgreSQL ``COPY ... FROM STDIN`` through psycopg (``--method auto`` picks COPY
there; measured in bench/README.md). Prints rows/s.

Every generated row is marked: agents are ``synthetic.*`` users, customers ``SYN-*``,
and each case's description says it is synthetic data with its seed.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import hashlib
import itertools
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, func, insert, select, text
from sqlalchemy.orm import Session

from caseloop import rollup
from caseloop.facts import ANSWERS, REPEAT_DAYS
from caseloop.models import Case, Membership, SurveyLink, Team, User, reference
from caseloop.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "forms", ROOT / "workflows"]
CASES: Table = Case.__table__  # type: ignore[assignment]
LINKS: Table = SurveyLink.__table__  # type: ignore[assignment]
HOUR, DAY = 3600.0, 86400.0
#: The shipped calendar's office is in China (UTC+8, no daylight saving).
LOCAL = dt.timezone(dt.timedelta(hours=8))

CHANNELS = {"phone": 34, "web": 24, "chat": 16, "email": 12, "store": 6, "social": 6, "crm": 2}
CATEGORIES = {"delivery": 27, "product_quality": 22, "billing": 15, "usage_problem": 13,
              "service_attitude": 12, "other": 7, "feature_suggestion": 4}
#: Around 11.11 deliveries dominate.
FESTIVAL_CATEGORIES = {**CATEGORIES, "delivery": 70, "billing": 20}
SEGMENTS = {"regular": 52, "loyal": 18, "potential": 12, "high_value": 8, "churn_risk": 6,
            "": 4}
PRIORITIES = {"normal": 60, "high": 22, "low": 10, "urgent": 8}
#: (team, share of non-VIP complaints, satisfaction effect); the VIP desk takes most
#: high-value customers.
TEAMS = [("care", 40, 0.0), ("care_east", 32, 0.25), ("care_west", 28, -0.3),
         ("vip_desk", 0, 0.35)]
TEAM_SHARES = {name: share for name, share, _ in TEAMS if share}
AGENTS_PER_TEAM = 8
CARE_SEGMENTS = {"high_value": 50, "loyal": 35, "churn_risk": 15}
#: What happened to a revisit without answers (one still recent is still open).
UNANSWERED = {"survey_link": 60, "unreachable": 18, "refused": 13, "cancelled": 9}
SUBJECTS = {
    "delivery": ["包裹延误", "Parcel arrived late", "快递外箱破损", "配送地址错误"],
    "product_quality": ["产品使用后故障", "Device stopped working", "电水壶漏水", "屏幕有坏点"],
    "billing": ["重复扣款", "Charged twice", "发票金额不符", "退款未到账"],
    "usage_problem": ["无法登录账户", "App keeps crashing", "设置说明不清楚"],
    "service_attitude": ["客服态度差", "Rude staff in store", "电话等待时间过长"],
    "other": ["其他问题", "Something else"],
    "feature_suggestion": ["希望增加夜间模式", "Please add export to PDF"],
}
#: Category effect on resolution time and on satisfaction.
CATEGORY_EFFECTS = {"delivery": (0.8, -0.15), "product_quality": (1.4, -0.2),
                    "billing": (0.9, -0.05), "usage_problem": (0.7, 0.15),
                    "service_attitude": (1.0, -0.3), "other": (0.9, 0.1),
                    "feature_suggestion": (1.2, 0.3)}
#: SLA targets of the shipped complaint workflow in hours (first response, resolution).
SLA_TARGETS = {
    "vip": {"urgent": (0.5, 24), "high": (1, 48), "normal": (2, 72), "low": (4, 120)},
    "standard": {"urgent": (1, 48), "high": (2, 72), "normal": (4, 120), "low": (24, 240)},
}
#: Working hours to wall-clock hours on the office calendar (nights, weekends), roughly.
OFFICE_HOURS, OFFICE_DAYS = 2.5, 1.4
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明",
         "超", "秀英", "桂英", "建华", "晓东"]
SURNAMES_EN = ["Zhou", "Smith", "Chen", "Garcia", "Wang", "Müller", "Tan", "Lee"]


def generate(engine: Engine, *, cases: int, answers: int, seed: int = 7,
             start: dt.datetime | None = None, end: dt.datetime | None = None,
             registry: Registry | None = None, batch: int = 10_000, method: str = "auto",
             progress: bool = False) -> dict[str, int]:
    """Write ``cases`` cases (complaints + revisits) and exactly ``answers`` answers
    between ``start`` and ``end`` (default: the two years up to now). ``registry``:
    the app's (the demo), else the shipped definitions are loaded. Returns the rows
    written per table and the seconds spent writing."""
    end = end or dt.datetime.now(dt.UTC)
    start = start or end - dt.timedelta(days=730)
    if registry is None:
        registry = Registry([str(p) for p in SHIPPED])
        registry.load()
    complaint, revisit = registry.workflow("complaint"), registry.workflow("revisit")
    if complaint is None or revisit is None:
        raise ValueError("the definitions have no 'complaint' or 'revisit' workflow; "
                         "generate into a database using the shipped definitions")
    with Session(engine) as session:
        registry.record(session)
        session.commit()
    if method == "auto":
        method = "copy" if engine.dialect.name == "postgresql" else "driver"
    gen = Generator(engine, seed=seed, start=start.timestamp(), end=end.timestamp(),
                    versions=(complaint.version, revisit.version))
    return gen.run(cases, answers, batch=batch, method=method, progress=progress)


class Generator:
    def __init__(self, engine: Engine, *, seed: int, start: float, end: float,
                 versions: tuple[str, str]) -> None:
        self.engine, self.seed, self.start, self.end = engine, seed, start, end
        self.complaint_version, self.revisit_version = versions
        self.rng = random.Random(seed)
        self.teams: dict[str, int] = {}
        #: team -> [(agent id, weight, satisfaction effect)]
        self.agents: dict[str, list[tuple[int, float, float]]] = {}
        self.team_effect = {name: effect for name, _, effect in TEAMS}
        self.last_seen: dict[tuple[int, str], float] = {}  # (customer, category) -> created
        self.rows: dict[str, list[dict[str, Any]]] = {"cases": [], "answers": [], "links": []}
        self.written = {"cases": 0, "complaints": 0, "revisits": 0, "answers": 0,
                        "survey_links": 0}
        self.write_seconds = 0.0
        self.kinds: list[int] = []
        self.pool = 100

    # -- the run ------------------------------------------------------------------------
    def run(self, cases: int, answers: int, *, batch: int, method: str, progress: bool
            ) -> dict[str, int]:
        revisits, self.kinds = plan(cases, answers, self.rng)
        complaints = cases - revisits
        self.pool = max(100, int(complaints * 0.7))  # customers who complain
        self.people()
        with self.engine.connect() as conn:
            self.ids = {name: int(conn.execute(select(func.coalesce(func.max(t.c.id), 0)))
                                  .scalar_one()) for name, t in
                        (("cases", CASES), ("answers", ANSWERS), ("links", LINKS))}
        self.method, self.batch, self.progress = method, batch, progress
        began = time.perf_counter()
        # Not every complaint is followed up (resolved too recently, cooldown, no
        # consent): pace the follow-ups so they last to the end; the rest of the
        # planned revisits are periodic care calls.
        self.follow_share = min(0.85, len(self.kinds) * 0.75 / max(1, complaints * 0.8))
        for moment in self.moments(complaints):
            self.complaint(moment)
            if len(self.rows["cases"]) >= batch:
                self.flush()
        care = len(self.kinds)
        for moment in self.moments(care, care_calls=True):
            self.care_call(moment)
            if len(self.rows["cases"]) >= batch:
                self.flush()
        self.flush()
        self.finish()
        total = time.perf_counter() - began
        out = dict(self.written)
        out["seconds"] = round(total)
        out["write_ms"] = round(self.write_seconds * 1000)
        return out

    def people(self) -> None:
        """Teams and synthetic agents (get or create), with their workload and skill."""
        with Session(self.engine) as session:
            for name, _, _ in TEAMS:
                team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
                if team is None:
                    team = Team(name=name)
                    session.add(team)
                    session.flush()
                self.teams[name] = team.id
                self.agents[name] = []
                for i in range(1, AGENTS_PER_TEAM + 1):
                    login = f"synthetic.{name}.{i:02d}"
                    user = session.execute(select(User).where(User.name == login)
                                           ).scalar_one_or_none()
                    if user is None:
                        user = User(name=login, roles=["agent"], locale="zh", active=True,
                                    display_name=f"{SURNAMES[(i * 7) % len(SURNAMES)]}"
                                                 f"{GIVEN[i % len(GIVEN)]} (synthetic)")
                        session.add(user)
                        session.flush()
                        session.add(Membership(user_id=user.id, team_id=team.id))
                    # Busier and better agents: a skewed workload, a skill around the team's.
                    self.agents[name].append((user.id, 1.0 / i ** 0.6,
                                              self.rng.gauss(0.0, 0.25)))
            session.commit()
        self.agent_weights = {team: list(itertools.accumulate(w for _, w, _ in agents))
                              for team, agents in self.agents.items()}

    def moments(self, count: int, *, care_calls: bool = False) -> Iterator[float]:
        """``count`` creation instants, sorted, with the volume's weekly and yearly shape."""
        rng = self.rng
        first = dt.datetime.fromtimestamp(self.start, LOCAL).date()
        last = dt.datetime.fromtimestamp(self.end, LOCAL).date()
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        weights, total = [], 0.0
        for i, day in enumerate(days):
            total += volume(day, i / max(1, len(days) - 1), care_calls)
            weights.append(total)
        hours = [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.6, 2.4, 2.6, 2.3, 1.6, 2.0,
                 2.4, 2.3, 2.1, 1.8, 1.3, 1.1, 1.0, 0.8, 0.6, 0.4]
        hour_weights = [sum(hours[: i + 1]) for i in range(24)]
        picked = rng.choices(range(len(days)), cum_weights=weights, k=count)
        picked.sort()
        out: list[float] = []
        for index in picked:
            day = days[index]
            hour = rng.choices(range(24), cum_weights=hour_weights)[0]
            moment = dt.datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL).timestamp()
            moment += rng.random() * HOUR
            out.append(min(max(moment, self.start), self.end - 60))
        out.sort()
        return iter(out)

    # -- complaints ---------------------------------------------------------------------
    def complaint(self, created: float) -> None:
        rng, end = self.rng, self.end
        day = dt.datetime.fromtimestamp(created, LOCAL)
        festival = day.month == 11 and 11 <= day.day <= 25
        channel = pick(rng, CHANNELS)
        category = pick(rng, FESTIVAL_CATEGORIES if festival else CATEGORIES)
        segment = pick(rng, SEGMENTS) or None
        priority = pick(rng, PRIORITIES)
        policy = "vip" if segment == "high_value" else "standard"
        team = ("vip_desk" if segment == "high_value" and rng.random() < 0.8 else
                pick(rng, TEAM_SHARES))
        agent, _, skill = self.agent(team)
        customer = self.customer()
        speed = {"urgent": 0.4, "high": 0.6, "normal": 1.0, "low": 1.8}[priority]
        slow, mood = CATEGORY_EFFECTS[category]
        first_h = rng.lognormvariate(math.log(1.6 * speed), 1.0)
        resolve_h = max(first_h + 0.5, rng.lognormvariate(math.log(50 * speed * slow), 0.9))
        key = (customer, category)
        earlier = self.last_seen.get(key)
        repeat = earlier is not None and created - earlier <= REPEAT_DAYS * DAY
        self.last_seen[key] = created
        case_id = self.next_id("cases")
        first_at = created + first_h * HOUR
        resolved = created + resolve_h * HOUR
        withdrawn = rng.random() < 0.03
        reopened = 0
        state, closed, resolved_at, updated = "received", False, None, created
        entered = created
        if first_at > end:
            first_at = None  # not yet answered
        elif withdrawn and created + resolve_h * 0.4 * HOUR < end:
            resolved = created + resolve_h * 0.4 * HOUR
            state, closed, resolved_at, updated = "withdrawn", True, resolved, resolved
            entered = resolved
        elif resolved > end:
            progress = (end - created) / (resolved - created)
            state = progress_state(rng, progress)
            entered = updated = max(first_at, end - rng.random() * 0.5 * (end - first_at))
        else:
            state, resolved_at, updated, entered = "resolved", resolved, resolved, resolved
            if rng.random() < 0.015:  # quality review reopens it before any revisit
                reopened = 1
                again = resolved + rng.lognormvariate(math.log(30), 0.8) * HOUR
                if again > end:
                    state, resolved_at, updated = "reopened", None, resolved + DAY
                    entered = updated
                else:
                    resolved_at, updated, entered = again, again, again
            if state == "resolved" and resolved_at is not None:
                state, closed, updated, entered = "closed", True, resolved_at + 14 * DAY, \
                    resolved_at + 14 * DAY
                if updated > end:
                    state, closed, updated, entered = "resolved", False, resolved_at, \
                        resolved_at
        targets = SLA_TARGETS[policy][priority]
        first_due = created + targets[0] * OFFICE_HOURS * HOUR
        resolve_due = created + targets[1] * OFFICE_DAYS * HOUR
        sla = {
            "first_response": sla_record(first_due, first_at, end),
            "resolution": sla_record(resolve_due, resolution_met(state, resolved), end),
        }
        breached = sla["first_response"]["breached"] or sla["resolution"]["breached"]
        unmet = [d for name, d in (("first_response", first_due), ("resolution", resolve_due))
                 if sla[name]["met"] is None]
        name = customer_name(customer)
        lang = "en" if customer % 11 == 0 else "zh"
        subject = rng.choice(SUBJECTS[category])
        data: dict[str, Any] = {
            "customer_id": f"SYN-{customer:07d}", "customer_name": name,
            "preferred_language": lang, "channel": channel, "category": category,
            "subject": subject, "description": f"合成数据 Synthetic data (seed {self.seed}).",
            "priority": priority, "is_vip": segment == "high_value",
        }
        if segment:
            data["segment"] = segment
        if reopened:
            data["reopen_count"] = reopened
        row = {
            "id": case_id, "workflow": "complaint",
            "definition_version": self.complaint_version, "reference_prefix": "CMP",
            "state": state, "closed": closed, "data": data,
            "customer_ref": data["customer_id"], "priority": priority,
            "assignee_id": agent if first_at is not None or rng.random() < 0.5 else None,
            "team_id": self.teams[team], "parent_id": None,
            "created_by": agent if channel in ("phone", "store", "chat") else None,
            "created_at": at(created), "updated_at": at(updated), "version": 3 if closed else 2,
            "entered_at": at(entered), "sla_policy": policy, "sla": sla,
            "due_at": at(min(unmet)) if unmet and not closed else None,
            "sla_breached": breached, "paused_at": at(entered) if state == "on_hold" else None,
            "sla_next_at": None, "first_response_at": at(first_at) if first_at else None,
            "resolved_at": at(resolved_at) if resolved_at else None, "reopened": reopened,
            "repeat": repeat, "channel": channel, "category": category, "segment": segment,
            "outcome": None,
        }
        self.rows["cases"].append(row)
        self.written["complaints"] += 1
        # The follow-up call, 3 days after the resolution, for most resolved complaints.
        if (state in ("resolved", "closed") and not reopened and self.kinds
                and resolved_at is not None and resolved_at + 3 * DAY + HOUR < end
                and rng.random() < self.follow_share):
            self.revisit(resolved_at + 3 * DAY + rng.random() * 6 * HOUR, parent=row,
                         mood=mood + self.team_effect[team] + skill, team=team)

    # -- revisits -----------------------------------------------------------------------
    def care_call(self, created: float) -> None:
        rng = self.rng
        team = "vip_desk" if rng.random() < 0.6 else pick(
            rng, {name: share for name, share, _ in TEAMS if share})
        self.revisit(created, parent=None, mood=0.2 + self.team_effect[team], team=team)

    def revisit(self, created: float, *, parent: dict[str, Any] | None, mood: float,
                team: str) -> None:
        rng, end = self.rng, self.end
        kind = self.kinds.pop()
        agent, _, skill = self.agent(team)
        case_id = self.next_id("cases")
        customer = (int(parent["data"]["customer_id"][4:]) if parent is not None
                    else self.customer(care=True))
        segment = (parent["segment"] if parent is not None else
                   pick(self.rng, CARE_SEGMENTS))
        data: dict[str, Any] = {
            "reason": "after_resolution" if parent is not None else "periodic_care",
            "customer_id": f"SYN-{customer:07d}", "customer_name": customer_name(customer),
            "preferred_language": "en" if customer % 11 == 0 else "zh",
        }
        if segment:
            data["segment"] = segment
        if parent is not None:
            p_created = parent["created_at"]
            data["complaint_reference"] = reference("CMP", p_created, parent["id"])
            data["complaint_subject"] = parent["data"]["subject"]
        else:
            data["care_topic"] = rng.choice(["季度关怀回访", "Annual account review",
                                             "新品使用回访"])
        call = min(created + rng.lognormvariate(math.log(4), 0.8) * HOUR, end - 60)
        state, closed, done_at, link = "scheduled", False, None, None
        first_response = call if call < end - 60 else None
        if kind:  # answered: on the phone, or through the survey link
            by_link = rng.random() < 0.25
            if by_link:
                sent = min(call + DAY, end - 120)
                answered = min(sent + rng.lognormvariate(math.log(10), 1.0) * HOUR, end - 60)
                link = (sent, answered)
                data["call_outcome"], data["attempts"] = "survey_link", 3
            else:
                answered = call
                data["call_outcome"], data["attempts"] = "reached", 1
            done_at = answered
            state = "closed" if answered + DAY < end else "answered"
            closed = state == "closed"
            scores = self.scores(rng, kind, mood + skill, created)
            data.update(scores)
            for field_name in ("csat", "nps", "ces"):
                if field_name in scores:
                    self.answer(case_id, field_name, scores[field_name], answered, parent,
                                team, agent, segment)
            if parent is not None and data["low_score"]:
                reopen(rng, parent, answered, end)
            elif parent is not None:
                close(parent, answered)
        else:
            outcome = pick(rng, UNANSWERED)
            if outcome == "cancelled" and parent is not None:
                outcome = "refused"  # a follow-up is cancelled only by a reopening
            if created > end - 2 * DAY:
                outcome = "open"
            if outcome == "open":
                state = "scheduled" if created > end - DAY else "calling"
                first_response = None if state == "scheduled" else first_response
            elif outcome == "cancelled":
                state, closed, done_at, first_response = "cancelled", True, call, None
            elif outcome == "survey_link":
                sent = min(call + DAY, end - 120)
                link = (sent, None)
                data["call_outcome"], data["attempts"] = "survey_link", 3
                if sent + 7 * DAY < end:
                    state, closed, done_at = "closed", True, sent + 7 * DAY
                else:
                    state = "survey_sent"
            else:
                data["call_outcome"] = outcome
                data["attempts"] = 3 if outcome == "unreachable" else 1
                gave_up = call + (2 * DAY if outcome == "unreachable" else 0)
                if gave_up < end:
                    state, closed, done_at = "closed", True, gave_up
                else:
                    state = "unreachable"
            if parent is not None and closed:
                close(parent, done_at or call)
        if link is not None:
            self.link(case_id, *link, lang=data["preferred_language"])
        updated = done_at or (first_response or created)
        self.rows["cases"].append({
            "id": case_id, "workflow": "revisit", "definition_version": self.revisit_version,
            "reference_prefix": "REV", "state": state, "closed": closed, "data": data,
            "customer_ref": data["customer_id"], "priority": None, "assignee_id": agent,
            "team_id": self.teams[team], "parent_id": parent["id"] if parent else None,
            "created_by": None, "created_at": at(created), "updated_at": at(updated),
            "version": 4 if closed else 2, "entered_at": at(updated), "sla_policy": None,
            "sla": {}, "due_at": None, "sla_breached": False,
            "paused_at": at(updated) if state in ("survey_sent", "unreachable") else None,
            "sla_next_at": None,
            "first_response_at": at(first_response) if first_response else None,
            "resolved_at": at(done_at) if done_at and state != "cancelled" else None,
            "reopened": 0, "repeat": False,
            "channel": parent["channel"] if parent else None,
            "category": parent["category"] if parent else None, "segment": segment,
            "outcome": data.get("call_outcome"),
        })
        self.written["revisits"] += 1

    def scores(self, rng: random.Random, kind: int, mood: float, created: float
               ) -> dict[str, Any]:
        """Correlated answers: one latent satisfaction, better over time, with a tail
        of very unhappy customers."""
        trend = 0.3 * (created - self.start) / max(1.0, self.end - self.start)
        z = rng.gauss(mood + trend, 1.0) - (2.0 if rng.random() < 0.05 else 0.0)
        out: dict[str, Any] = {
            "csat": clamp(round(3.9 + 0.8 * z + 0.6 * rng.gauss(0, 1)), 1, 5),
            "issue_resolved": z > -1.3,
        }
        if kind & 2:
            out["nps"] = clamp(round(8 + 1.9 * z), 0, 10)
        if kind & 4:
            out["ces"] = clamp(round(5 + 1.3 * (0.7 * z + 0.7 * rng.gauss(0, 1))), 1, 7)
        out["low_score"] = (out.get("nps", 10) <= 6 or out["csat"] <= 2
                            or not out["issue_resolved"])
        return out

    def answer(self, case_id: int, field_name: str, value: int, answered: float,
               parent: dict[str, Any] | None, team: str, agent: int,
               segment: str | None) -> None:
        metric = {"csat": "csat", "nps": "nps", "ces": "ces"}[field_name]
        low, high = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}[field_name]
        self.rows["answers"].append({
            "id": self.next_id("answers"), "case_id": case_id, "workflow": "revisit",
            "parent_workflow": "complaint" if parent else None, "field": field_name,
            "metric": metric, "report": "top2box" if metric == "csat" else None,
            "value": value, "low": low, "high": high, "answered_at": at(answered),
            "team_id": self.teams[team], "assignee_id": agent,
            "channel": parent["channel"] if parent else None,
            "category": parent["category"] if parent else None, "segment": segment})
        self.written["answers"] += 1

    def link(self, case_id: int, sent: float, answered: float | None, *, lang: str) -> None:
        link_id = self.next_id("links")
        digest = hashlib.sha256(f"synthetic:{self.seed}:{link_id}".encode()).hexdigest()
        self.rows["links"].append({
            "id": link_id, "case_id": case_id, "digest": digest, "state": "survey_sent",
            "trigger": "survey_answered", "channel": "sms" if link_id % 3 == 0 else "email",
            "lang": lang, "created_at": at(sent), "expires_at": at(sent + 7 * DAY),
            "answered_at": at(answered) if answered is not None else None})
        self.written["survey_links"] += 1

    # -- helpers ------------------------------------------------------------------------
    def agent(self, team: str) -> tuple[int, float, float]:
        agents, cum = self.agents[team], self.agent_weights[team]
        return agents[bisect.bisect(cum, self.rng.random() * cum[-1])]

    def customer(self, care: bool = False) -> int:
        # A skewed pool: a few customers complain often (repeats), most once.
        pool = 50_000_000 if care else self.pool
        return int(pool * self.rng.random() ** 3)

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def flush(self) -> None:
        began = time.perf_counter()
        with self.engine.begin() as conn:
            for name, table in (("cases", CASES), ("answers", ANSWERS), ("links", LINKS)):
                rows = self.rows[name]
                if rows:
                    write(conn, table, rows, self.method)
        self.write_seconds += time.perf_counter() - began
        self.written["cases"] += len(self.rows["cases"])
        for rows in self.rows.values():
            rows.clear()
        if self.progress:
            print(f"  {self.written['cases']:>10,} cases  {self.written['answers']:>10,} "
                  "answers", file=sys.stderr)

    def finish(self) -> None:
        """Sum the answers by hour (as the app keeps them, row by row); move
        PostgreSQL's id sequences past the ids written here; refresh statistics."""
        with Session(self.engine) as session:
            rollup.rebuild(session)
            session.commit()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                for table in ("caseloop_cases", "caseloop_answers", "caseloop_survey_links"):
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))"))
            conn.execute(text("ANALYZE"))
        if self.engine.dialect.name == "postgresql":
            # As autovacuum would soon: the visibility map lets PostgreSQL answer the
            # metrics from the covering indexes alone (index-only scans).
            with self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))


def plan(cases: int, answers: int, rng: random.Random) -> tuple[int, list[int]]:
    """How many revisits, and for each what was answered (a bit mask: 1 csat, 2 nps,
    4 ces; 0 nothing), so that the answers add up exactly. About 70% of revisits get
    answers; an answered revisit has CSAT (required), most have NPS and CES."""
    if answers < 0 or cases < 0:
        raise ValueError("--cases and --answers must be 0 or more")
    answered = min(answers, max(math.ceil(answers / 3), round(answers / 2.75)))
    revisits = max(answered, round(answered / 0.7)) if answers else round(cases * 0.3)
    revisits = min(revisits, max(answered, cases - math.ceil(cases * 0.3)))
    if answered > cases - 1 and answers:
        raise ValueError(f"{answers:,} answers need at least {answered + 1:,} cases (at most "
                         "3 answers per revisit, and complaints to revisit); raise --cases")
    extra = answers - answered  # NPS and CES beyond the CSAT each answered revisit has
    nps = min(answered, max(extra - answered, round(extra * 0.9 / 1.75)))
    ces = extra - nps
    masks = [1] * answered
    for i in rng.sample(range(answered), nps):
        masks[i] |= 2
    for i in rng.sample(range(answered), ces):
        masks[i] |= 4
    kinds = masks + [0] * (revisits - answered)
    rng.shuffle(kinds)
    return revisits, kinds


def volume(day: dt.date, progress: float, care_calls: bool) -> float:
    """Relative volume of a day: weekdays, the year's shape, growth."""
    if care_calls:  # scheduled by the office: weekdays only, flat over the year
        return 1.0 if day.weekday() < 5 else 0.05
    weekly = (1.15, 1.1, 1.05, 1.0, 0.95, 0.6, 0.5)[day.weekday()]
    yearly = 1 + 0.2 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 330) / 365)
    if day.month == 11 and 11 <= day.day <= 25:
        yearly *= 1.8  # after the 11.11 shopping festival
    if (day.month, day.day) >= (1, 28) and (day.month, day.day) <= (2, 8):
        yearly *= 0.55  # spring festival, roughly
    return weekly * yearly * (0.8 + 0.4 * progress)


def progress_state(rng: random.Random, progress: float) -> str:
    if progress < 0.15:
        return "acknowledged"
    if progress < 0.3:
        return "assessed"
    if progress < 0.7:
        roll = rng.random()
        return "escalated" if roll < 0.06 else "on_hold" if roll < 0.14 else "investigating"
    return "responded" if progress < 0.85 else "decision_communicated"


def resolution_met(state: str, resolved: float) -> float | None:
    return resolved if state in ("resolved", "closed", "withdrawn", "reopened") else None


def sla_record(due: float, met: float | None, end: float) -> dict[str, Any]:
    breached = (met if met is not None else end) > due
    return {"due": iso(due), "met": iso(met) if met is not None else None,
            "breached": breached, "warned": breached, "level": 1 if breached else 0,
            "paused_s": 0}


def reopen(rng: random.Random, parent: dict[str, Any], answered: float, end: float) -> None:
    """A poor revisit reopens the complaint; it is resolved again later (or still open)."""
    parent["reopened"] += 1
    parent["data"]["reopen_count"] = parent["reopened"]
    again = answered + rng.lognormvariate(math.log(30), 0.8) * HOUR
    if again > end:
        parent.update(state="reopened", closed=False, resolved_at=None, due_at=None,
                      updated_at=at(answered), entered_at=at(answered))
    else:
        closed = again + 14 * DAY < end
        parent.update(state="closed" if closed else "resolved", closed=closed,
                      resolved_at=at(again), updated_at=at(again + (14 * DAY if closed else 0)),
                      entered_at=at(again + (14 * DAY if closed else 0)))


def close(parent: dict[str, Any], moment: float) -> None:
    """The revisit is over: its complaint closes then (not 14 days after resolving)."""
    if parent["state"] in ("resolved", "closed"):
        parent.update(state="closed", closed=True, updated_at=at(moment), entered_at=at(moment))


def write(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], method: str) -> None:
    """One batch. core: SQLAlchemy Core executemany (bind processors per value);
    driver: the same INSERT with the values converted once here, straight to the
    DBAPI's executemany (SQLite); copy: PostgreSQL COPY through psycopg."""
    columns = list(rows[0])
    if method == "core":
        conn.execute(insert(table), list(rows))
        return
    convert = [(i, f) for i, c in enumerate(columns)
               if (f := _converter(table.c[c].type, method)) is not None]
    values = []
    for row in rows:
        items = list(row.values())
        for i, f in convert:
            if items[i] is not None:
                items[i] = f(items[i])
        values.append(tuple(items))
    if method == "copy":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(
                f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row_values in values:
                copy.write_row(row_values)
    else:
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                             f"VALUES ({marks})", values)  # type: ignore[arg-type]


def _converter(kind: Any, method: str) -> Callable[[Any], Any] | None:
    """How a column's Python value goes to the driver without SQLAlchemy's processors:
    SQLAlchemy's own storage formats (SQLite: naive UTC text with microseconds, JSON
    text; booleans as integers)."""
    name = type(kind).__name__
    if name == "JSON":
        return json.dumps
    if name == "UTCDateTime" and method == "driver":
        # The values are UTC: drop the '+00:00' (SQLAlchemy stores naive UTC text).
        return lambda v: v.isoformat(" ", "microseconds")[:26]
    if name == "Boolean" and method == "driver":
        return int
    return None


_CUMULATIVE: dict[int, tuple[list[str], list[float], float]] = {}


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    """rng.choices with the cumulative weights worked out once per table."""
    found = _CUMULATIVE.get(id(weights))
    if found is None:
        cum = list(itertools.accumulate(weights.values()))
        found = _CUMULATIVE[id(weights)] = (list(weights), [float(c) for c in cum], cum[-1])
    names, cum, total = found
    return names[bisect.bisect(cum, rng.random() * total)]


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def at(moment: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(moment, dt.UTC)


def iso(moment: float) -> str:
    return at(moment).isoformat()


def customer_name(customer: int) -> str:
    if customer % 11 == 0:
        return f"{GIVEN[customer % 7]} {SURNAMES_EN[customer % len(SURNAMES_EN)]}".strip()
    return SURNAMES[customer % len(SURNAMES)] + GIVEN[(customer // 20) % len(GIVEN)]


def bulk_pragmas(engine: Engine) -> None:
    """SQLite while loading: WAL (it persists in the file, as the app sets it), no fsync
    per batch (a crash means generating again) and a 256 MB page cache, so that the
    indexes' B-trees stay in memory as they grow."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-262144")
        cur.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default="sqlite:///caseloop-synthetic.sqlite3",
                    help="SQLite file or PostgreSQL URL (default: %(default)s)")
    ap.add_argument("--cases", type=int, default=1_000_000,
                    help="cases in all: complaints and revisits (default: %(default)s)")
    ap.add_argument("--answers", type=int, default=1_000_000,
                    help="scored answers (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=730, help="history up to now, in days")
    ap.add_argument("--batch", type=int, default=10_000, help="rows per INSERT batch")
    ap.add_argument("--method", choices=("auto", "core", "driver", "copy"), default="auto",
                    help="core: SQLAlchemy Core executemany; driver: the DBAPI's executemany "
                         "with values converted once (SQLite); copy: PostgreSQL COPY "
                         "(auto: driver on SQLite, copy on PostgreSQL)")
    args = ap.parse_args(argv)
    from caseloop.migrations import upgrade

    engine = create_engine(args.database_url)
    if args.method == "copy" and engine.dialect.name != "postgresql":
        ap.error("--method copy needs a PostgreSQL --database-url")
    if args.method == "driver" and engine.dialect.name != "sqlite":
        ap.error("--method driver is for SQLite; use copy or core on PostgreSQL")
    upgrade(engine)
    end = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    bulk_pragmas(engine)
    counts = generate(engine, cases=args.cases, answers=args.answers, seed=args.seed,
                      start=end - dt.timedelta(days=args.days), end=end,
                      batch=args.batch, method=args.method, progress=True)
    seconds = time.perf_counter() - began
    rows = counts["cases"] + counts["answers"] + counts["survey_links"]
    print(f"{engine.dialect.name}: {counts['complaints']:,} complaints + "
          f"{counts['revisits']:,} revisits = {counts['cases']:,} cases, "
          f"{counts['answers']:,} answers, {counts['survey_links']:,} survey links")
    print(f"{rows:,} rows in {seconds:.1f} s: {rows / seconds:,.0f} rows/s overall, "
          f"{rows / max(0.001, counts['write_ms'] / 1000):,.0f} rows/s writing "
          f"({counts['write_ms'] / 1000:.1f} s writing, the rest generating)")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
