"""``caseloop simulate WORKFLOW SCENARIO.yaml``: run a scenario and print its trace.

The runner (:mod:`caseloop.simulation`) gives the happenings as data; this module
words them, one line each, in English or Chinese, under a heading per local day.
A kind of event or job it has no words for still gets a line: its kind and a short
summary of what it carried.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from ..simulation import Happening, Result, ScenarioError, SimulationError, simulate

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Scenario: {title}", "setup": "Workflow {workflow}; times in {zone}",
        "created": "created by {actor} in {state}", "team": "team {0}", "assignee": "assignee {0}",
        "priority": "priority {0}", "parent": "linked to {0}", ",": ", ", ";": "; ",
        "transition": "{0} → {1} ({2}) by {3}",
        "set": "set {0}", "note": "note: {0}", "assigned": "assigned to {0}",
        "role": "(role {0})", "to_team": "moved to team {0}", "nobody": "assignment found nobody",
        "breached": "SLA {label} breached (was due {due})",
        "escalation": "SLA {label}: escalation {n}", "raise": "priority {0} → {1}",
        "to_role": "to a {0}", "fires": "fires '{0}'", "timer": "timer '{0}' fired",
        "started": "started {0} {1}", "notified": "notified {0}",
        "logged": "logged only", "fired": "fired '{0}' on {1}",
        "not_sent": "{kind} not sent (simulation){what}", "done": "{kind}: {0}",
        "skipped": "{kind} skipped: {0}", "dead": "{kind} failed for good after {n} tries: {0}",
        "retry": "{kind} failed (try {n} of {most}): {0}; next try {when}",
        "set_timer": "timer '{0}' set for {when} (if still {1})", "to_start": "{0} to start {when}",
        "scheduled": "{kind} job due {when}", "deadline": "SLA {label} due {when}",
        "moved": "SLA {label} now due {when}", "met": "SLA {label} met",
        "met_late": "SLA {label} met, late", "warning": "SLA warning: {label} due {when}",
        "paused": "SLA clock paused", "resumed": "SLA clock resumed",
        "refused": "✗ '{0}' by {by} refused: {reason}", "expected": "(as expected)",
        "ok": "✓ as expected: {0}", "wrong": "✗ not as expected: {0}",
        "end": "At the end, {when}:", "sla_breached": "SLA breached", "pending": "Still scheduled:",
        "passed": "OK: {steps} steps, {checks} expectations met.",
        "failed": "FAILED at the step below; the trace stops there.",
        "day": "%A %d %B %Y", "when": "%a %d %b %H:%M",
        "reminder": "reminded {owner}: '{row}' due {due}",
        "overdue": "overdue: '{row}' (owner {owner}, due {due}), escalation {n} to {to}",
        "measured": "measured {0}",
        "withdrawn": "withdrew {workflow}: {dropped} scheduled dropped, cancelling {cases}",
        "survey_sent": "survey link sent by {channel}, expires {when}",
        "survey_answered": "survey answered by the customer via {channel}: {0}",
        "updated": "{actor} changed {0}",
    },
    "zh": {
        "title": "场景：{title}", "setup": "流程 {workflow}；时间为 {zone}",
        "created": "{actor} 创建，状态 {state}", "team": "团队 {0}", "assignee": "经办人 {0}",
        "priority": "优先级 {0}", "parent": "关联 {0}", ",": "，", ";": "；",
        "transition": "{0} → {1}（{2}），执行人 {3}", "set": "设置 {0}",
        "note": "备注：{0}", "assigned": "分派给 {0}", "role": "（角色 {0}）",
        "to_team": "转到团队 {0}", "nobody": "分派未找到人员",
        "breached": "时限「{label}」已超时（应于 {due} 完成）",
        "escalation": "时限「{label}」第 {n} 级升级", "raise": "优先级 {0} → {1}",
        "to_role": "交给{0}", "fires": "触发 {0}", "timer": "定时器 {0} 触发",
        "started": "启动关联案件 {0} {1}", "notified": "通知 {0}", "logged": "仅记录",
        "fired": "在 {1} 上触发 {0}", "not_sent": "{kind} 未发送（模拟）{what}",
        "done": "{kind}：{0}", "skipped": "{kind} 跳过：{0}",
        "dead": "{kind} 最终失败（已尝试 {n} 次）：{0}",
        "retry": "{kind} 失败（第 {n}/{most} 次）：{0}；{when} 重试",
        "set_timer": "定时器 {0} 定于 {when}（若仍处于 {1}）", "to_start": "{0} 将于 {when} 启动",
        "scheduled": "{kind} 任务定于 {when}", "deadline": "时限「{label}」截止 {when}",
        "moved": "时限「{label}」顺延至 {when}", "met": "时限「{label}」已达成",
        "met_late": "时限「{label}」已完成（超时）",
        "warning": "时限预警：「{label}」将于 {when} 到期",
        "paused": "时限暂停计时", "resumed": "时限恢复计时",
        "refused": "✗ {by} 执行 {0} 被拒绝：{reason}", "expected": "（符合预期）",
        "ok": "✓ 符合预期：{0}", "wrong": "✗ 不符合预期：{0}",
        "end": "结束时（{when}）：", "sla_breached": "曾超时", "pending": "尚待执行：",
        "passed": "通过：{steps} 个步骤，{checks} 项预期全部符合。",
        "failed": "失败：见下方步骤；追踪到此为止。",
        "day": "%Y年%m月%d日 {weekday}", "when": "%m月%d日 {weekday} %H:%M",
        "reminder": "提醒 {owner}：措施“{row}”将于 {due} 到期",
        "overdue": "逾期：措施“{row}”（负责人 {owner}，期限 {due}），第 {n} 级升级通知 {to}",
        "measured": "测量结果 {0}",
        "withdrawn": "撤回 {workflow}：取消 {dropped} 个待启动，正在取消 {cases}",
        "survey_sent": "已通过 {channel} 发送调查链接，{when} 失效",
        "survey_answered": "客户通过 {channel} 链接作答：{0}",
        "updated": "{actor} 修改 {0}",
    },
}
WEEKDAYS_ZH = "一二三四五六日"


class Words:
    """The trace's wording in one language, with times in the scenario's zone."""

    def __init__(self, lang: str, zone: dt.tzinfo) -> None:
        self.lang, self.zone, self.words = lang, zone, WORDS[lang]

    def __call__(self, key: str, *args: Any, **kwargs: Any) -> str:
        return self.words[key].format(*args, **kwargs)

    def time(self, moment: dt.datetime, key: str = "when") -> str:
        local = moment.astimezone(self.zone)
        pattern = self.words[key].replace("{weekday}", "周" + WEEKDAYS_ZH[local.weekday()])
        return local.strftime(pattern)

    def label(self, facts: Mapping[str, Any]) -> str:
        label = facts.get("label") or {}
        return str(label.get(self.lang) or label.get("en") or facts.get("target")
                   or (facts.get("payload") or {}).get("sla", ""))


def describe(h: Happening, w: Words) -> str | None:
    """One happening in words; None for one that another line already tells."""
    f, p = h.facts, h.facts.get("payload") or {}
    group, _, kind = h.kind.partition(":")
    if h.kind == "event:created":
        parts = [w("created", actor=f["actor"], state=f["to"])]
        parts += [w(key, f[key]) for key in ("team", "assignee", "priority", "parent")
                  if f.get(key)]
        return w(",").join(parts)
    if h.kind == "event:transition":
        text = w("transition", f["from"], f["to"], f["trigger"], f["actor"])
        return text + (w(";") + w("set", _changes(p["changes"])) if p.get("changes") else "")
    if h.kind == "event:action" and p.get("action") == "measure" and "figures" in p:
        text = w("measured", p["figures"])
        return text + (w(";") + w("set", _changes(p["changes"])) if p.get("changes") else "")
    if h.kind == "event:action" and p.get("action") == "remind":
        if p.get("level") == "reminder":
            return w("reminder", owner=p["owner"], row=p["row"], due=p["due"])
        to = w(",").join(str(t).removeprefix("user:") for t in p.get("to") or [])
        return w("overdue", owner=p["owner"], row=p["row"], due=p["due"],
                 n=p.get("escalation"), to=to)
    if h.kind == "event:action" and p.get("action") == "cancel":
        text = w("withdrawn", workflow=p["workflow"], dropped=p["scheduled_dropped"],
                 cases=w(",").join(p["cases"]) or "-")
        return text + (w(";") + p["note"] if p.get("note") else "")
    if h.kind == "event:action" and p.get("action") == "survey" and p.get("channel"):
        return w("survey_sent", channel=p["channel"], when=w.time(_dt(p["expires_at"])))
    if h.kind == "event:survey":
        return w("survey_answered", w(",").join(p.get("answered") or []),
                 channel=p.get("channel"))
    if h.kind == "event:updated":
        return w("updated", _changes(p.get("changes") or {}), actor=f["actor"])
    if h.kind == "event:sla" and "warned" in p:
        return None  # the SLA warning line, read from the case's clock, tells it
    if h.kind == "event:action" and p.get("changes"):
        return w("set", _changes(p["changes"]))
    if h.kind == "event:action" and p.get("note"):
        return w("note", p["note"])
    if h.kind == "event:assigned":
        # Keys present but empty: the team or person named was not found. No keys: a
        # person with a role is chosen by a job, whose 'assigned' event follows.
        parts = [w("to_team", p["team"]) if p["team"] else w("nobody")] if "team" in p else []
        if "user" in p:
            parts.append(w("assigned", p["user"]) + (f" {w('role', p['role'])}"
                                                     if p.get("role") else "")
                         if p["user"] else w("nobody"))
        return w(";").join(parts) or None
    if h.kind == "event:sla" and "breached" in p:
        return w("breached", label=w.label(f), due=w.time(_dt(p["breached"])))
    if h.kind == "event:sla" and "escalation" in p:
        parts = [w("escalation", label=w.label(f), n=p["escalation"])]
        parts += [w("raise", *p["priority"])] if p.get("priority") else []
        parts += [w("to_team", p["team"])] if p.get("team") else []
        parts += [w("to_role", p["role"])] if p.get("role") else []
        parts += [w("fires", p["fire"])] if p.get("fire") else []
        return w(";").join(parts)
    if group == "job":
        return _job(kind, f, p, w)
    if h.kind == "scheduled:remind":
        return None  # the next daily check of due dates
    if group == "scheduled":
        when = w.time(f["run_at"])
        if kind == "timer":
            return w("set_timer", p.get("trigger"), p.get("state"), when=when)
        if kind == "start":
            return w("to_start", p.get("workflow"), when=when)
        return w("scheduled", kind=kind, when=when)
    if group == "sla":
        if kind in ("paused", "resumed"):
            return w(kind)
        key = "moved" if kind == "deadline" and f.get("moved") else kind
        key = "met_late" if kind == "met" and f.get("breached") else key
        return w(key, label=w.label(f), when=w.time(f["due"]))
    if h.kind == "step:refused":
        fields = "".join(f"; {name}: {' '.join(msgs)}" for name, msgs in f["fields"].items())
        text = w("refused", f["trigger"], by=f["by"], reason=f["reason"]) + fields
        return text + (f" {w('expected')}" if f["expected"] else "")
    if h.kind == "step:expect":
        if f["wrong"]:
            return w("wrong", w(";").join(f["wrong"]))
        checks = {**{k: v for k, v in f["checks"].items() if k != "fields"},
                  **(f["checks"].get("fields") or {})}
        return w("ok", w(",").join(f"{k} {_value(v)}" for k, v in checks.items()))
    if h.kind == "step:note":
        return f"» {f['text']}"
    # Anything else (a kind of event or job added later): its kind and what it carried.
    what = p.get("action") if h.kind == "event:action" and p.get("action") else h.kind
    rest = {k: v for k, v in (p or f).items() if k != "action" and v not in (None, "", {})}
    return f"{what}: {_short(rest)}"


def _job(kind: str, f: Mapping[str, Any], p: Mapping[str, Any], w: Words) -> str | None:
    status, result, error = f["status"], f.get("result") or "", f.get("error") or ""
    if status == "retry":
        return w("retry", error, kind=kind, n=f["attempts"], most=f["max_attempts"],
                 when=w.time(f["run_at"]))
    if status == "dead":
        return w("dead", error, kind=kind, n=f["attempts"])
    if status == "cancelled":
        return w("skipped", result, kind=kind)
    if result.startswith("not sent (simulation)"):
        return w("not_sent", kind=kind, what=result[len("not sent (simulation)"):])
    if kind == "assign":
        return None  # the 'assigned' event says to whom
    if kind == "remind":
        return None  # the daily check: the reminders it sent are events of their own
    if kind == "timer":
        return w("timer", p.get("trigger"))
    if kind == "start" and result.startswith("started "):
        return w("started", p.get("workflow"), result.rsplit(" ", 1)[-1])
    if kind == "fire" and " on " in result:
        return w("fired", p.get("trigger"), result.rsplit(" on ", 1)[-1])
    if kind == "notify" and f.get("sent") is not None:
        by: dict[tuple[str, str], list[str]] = {}
        for n in f["sent"]:
            by.setdefault((n["channel"], n["status"]), []).append(str(n["to"]))
        groups = [f"{', '.join(names)} ({channel}"
                  f"{', ' + w('logged') if status == 'logged' else ''})"
                  for (channel, status), names in by.items()]
        missing = result.partition("; ")[2]
        return w("notified", w(";").join(groups)) + (w(";") + missing if missing else "")
    return w("done", result or "done", kind=kind)


def render(result: Result, lang: str) -> Iterator[str]:
    """The trace as lines of text: a heading per local day, then one line per happening."""
    s = result.scenario
    w = Words(lang, s.zone)
    yield w("title", title=s.title)
    yield w("setup", workflow=s.workflow, zone=s.zone.key)
    day = None
    for h in result.trace:
        text = describe(h, w)
        if text is None:
            continue
        local = h.at.astimezone(s.zone)
        if local.date() != day:
            day = local.date()
            yield ""
            yield w.time(h.at, "day")
        yield f"  {local:%H:%M}  {h.case:<16} {text}".rstrip()
    yield ""
    yield w("end", when=w.time(result.end))
    for c in result.cases:
        extra = w(",").join([str(c[k]) for k in ("assignee", "team") if c[k]]
                          + ([w("sla_breached")] if c["breached"] else []))
        yield f"  {c['reference']:<16} {c['workflow']:<16} {c['state']:<20} {extra}".rstrip()
    if result.pending:
        yield w("pending")
        for h in result.pending:
            yield f"  {h.case:<16} {describe(h, w)}"
    if result.ok:
        steps = sum(1 for step in s.steps if step.do != "note")
        checks = sum(1 for step in s.steps if step.do == "expect")
        yield w("passed", steps=steps, checks=checks)
    else:
        yield w("failed")


def as_json(result: Result) -> dict[str, Any]:
    s = result.scenario

    def local(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.astimezone(s.zone).isoformat()
        if isinstance(value, dict):
            return {k: local(v) for k, v in value.items()}
        return [local(v) for v in value] if isinstance(value, list) else value

    trace = [{"at": h.at, "case": h.case, "workflow": h.workflow, "kind": h.kind, **h.facts}
             for h in result.trace]
    pending = [{"at": h.at, "case": h.case, "kind": h.kind, **h.facts} for h in result.pending]
    out: dict[str, Any] = local({
        "scenario": s.title, "workflow": s.workflow, "timezone": s.zone.key, "ok": result.ok,
        "failure": result.failure, "end": result.end, "trace": trace, "cases": result.cases,
        "pending": pending})
    return out


@click.command("simulate")
@click.argument("workflow")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the trace.")
@click.option("--json", "json_out", is_flag=True, help="The trace as one JSON object.")
@with_appcontext
def simulate_command(workflow: str, scenario: str, lang: str, json_out: bool) -> None:
    """Run SCENARIO (a YAML file) against WORKFLOW with a fake clock and print the trace.

    Cases, timers, SLA deadlines, notifications and linked cases run as in the
    service, on a temporary database that is removed afterwards; nothing is sent.
    Exits 1 if the scenario has a problem, a step is refused unexpectedly or an
    'expect' does not hold; shipped scenarios are in workflows/scenarios/.
    """
    try:
        result = simulate(workflow, scenario, config=current_app.config, lang=lang)
    except ScenarioError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        click.echo(f"{len(exc.lines)} problem{'s' if len(exc.lines) != 1 else ''} in the "
                   "scenario; nothing was run", err=True)
        sys.exit(1)
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - ops staff get one line, not a traceback
        raise click.ClickException(
            f"the simulation stopped: {type(exc).__name__}: {exc} (a bug in Caseloop: "
            "please report it with the scenario)") from None
    if json_out:
        click.echo(json.dumps(as_json(result), ensure_ascii=False, indent=2))
    else:
        for line in render(result, lang):
            click.echo(line)
    if result.failure is not None:
        click.echo(result.failure, err=True)
        sys.exit(1)


def _changes(changes: Mapping[str, list[Any]]) -> str:
    return ", ".join(_rows(k, old, new) if _table(old) and _table(new)
                     else f"{k} {_value(old)} → {_value(new)}" if old not in (None, "", [])
                     else f"{k} {_value(new)}" for k, (old, new) in changes.items())


def _table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def _rows(name: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """A group's change, row by row: 'actions row 2 status in_progress → done'."""
    if len(old) != len(new):
        return f"{name} {len(old)} → {len(new)} rows"
    parts = [f"{name} row {i} {k} {_value(a.get(k))} → {_value(b.get(k))}"
             for i, (a, b) in enumerate(zip(old, new, strict=True), 1)
             for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return ", ".join(parts) or name


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "empty"}[value]
    if _table(value):
        return f"{len(value)} rows"
    if isinstance(value, list):
        return "[" + ", ".join(map(_value, value)) + "]"
    text = " ".join(str(value).split())
    return text if len(text) <= 40 else text[:39] + "…"


def _short(payload: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in list(payload.items())[:4]
                     if not isinstance(v, dict))


def _dt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
