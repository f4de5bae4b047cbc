"""A definition described for people: a workflow's diagram and its field, permission,
transition and SLA tables, and a Markdown page of them (``caseloop docs``, reviewed in
pull requests; the designer's preview shows the same tables).

Pure: definitions in, text out. Labels, help and messages are typed by ops staff, so
each is escaped for where it goes: mermaid entity codes in the diagram (:func:`mermaid`),
backslashes and entities in Markdown (:func:`md`). A :class:`Table` holds plain text;
a Jinja template escapes it as it escapes anything else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .hints import suggest
from .spec.model import Assign, Definitions, Escalation, Field, Form, State, Text, Workflow
from .uploads import human

#: key -> (English, Chinese), as the pages' catalogue.
WORDS: dict[str, tuple[str, str]] = {
    "open": ("open", "处理中"), "paused": ("paused", "暂停"), "done": ("done", "已结束"),
    "initial": ("initial", "初始"), "final": ("final", "终态"), "guard": ("[guard]", "[有条件]"),
    "editable": ("editable", "可编辑"), "readonly": ("read-only", "只读"),
    "hidden": ("hidden", "隐藏"), "yes": ("yes", "是"), "if": ("if {0}", "满足 {0} 时"),
    "name": ("Name", "名称"), "field": ("Field", "字段"), "type": ("Type", "类型"),
    "label": ("Label", "标签"), "required": ("Required", "必填"),
    "visible_if": ("Shown if", "显示条件"), "validation": ("Rules", "规则"),
    "help": ("Help", "说明"),
    "trigger": ("Trigger", "触发器"), "transition": ("Transition", "流转"),
    "from": ("From", "从"), "to": ("To", "到"), "roles": ("Roles", "角色"),
    "requires": ("Requires", "需填写"), "condition": ("Guard", "条件"),
    "refused": ("Otherwise", "不满足时提示"),
    "policy": ("Policy", "策略"), "when": ("Applies when", "适用条件"),
    "always": ("always", "始终"), "calendar": ("Calendar", "日历"), "target": ("Target", "目标"),
    "until": ("Met on entering", "达成状态"), "within": ("Within", "时限"),
    "warn": ("Warn before", "提前预警"), "escalate": ("Escalation", "升级"),
    "at_breach": ("at breach", "超时时"), "after": ("{0} after breach", "超时后 {0}"),
    "step": ("{0}: {1}", "{0}：{1}"), "then": ("; ", "；"), "notify": ("notify {0}", "通知 {0}"),
    "raise": ("raise priority", "提升优先级"), "assign": ("assign to {0}", "分派给 {0}"),
    "fire": ("fire {0}", "触发 {0}"),
    "computed": ("computed: {0}", "自动计算：{0}"), "default": ("default {0}", "默认 {0}"),
    "readonly_if": ("read-only if {0}", "只读条件：{0}"), "range": ("{0} to {1}", "{0} 至 {1}"),
    "at_least": ("at least {0}", "至少 {0}"), "at_most": ("at most {0}", "至多 {0}"),
    "length": ("length {0}", "长度 {0}"), "pattern": ("matches {0}", "格式 {0}"),
    "options": ("options: {0}", "选项：{0}"), "selected": ("select {0}", "选择 {0} 项"),
    "rows": ("{0} rows", "{0} 行"), "places": ("{0} decimal places", "{0} 位小数"),
    "files": ("{0} files", "{0} 个文件"), "size": ("each at most {0}", "每个不超过 {0}"),
    "accept": ("types {0}", "类型 {0}"), "region": ("region {0}", "地区 {0}"),
    "metric": ("feeds {0}", "计入 {0}"), "picks": ("picks a {0}", "选择{0}"),
    "of_roles": ("with role {0}", "角色 {0}"), "links": ("links to {0}", "关联 {0}"),
    "workflow": ("Workflow", "流程"), "form": ("Form", "表单"), "version": ("Version", "版本"),
    "start": ("Who may start", "可发起角色"), "file": ("File", "文件"),
    "diagram": ("Diagram", "流程图"), "states": ("States", "状态"),
    "transitions": ("Transitions", "流转"), "fields": ("Fields", "字段"),
    "permissions": ("Fields by state", "各状态的字段权限"), "sla": ("Service levels", "服务时限"),
    "state": ("State", "状态"), "category": ("Category", "类别"),
    "description": ("Description", "描述"),
    "sla_note": ("The first policy whose condition holds applies. Times are working time on "
                 "the policy's calendar; the clock stops in states of category: {0}.",
                 "采用第一个条件成立的策略。时限按策略所用日历的工作时间计算；以下类别的状态"
                 "暂停计时：{0}。"),
    "new_note": ("Read-only fields of the initial state can still be filled when a case is "
                 "opened.", "初始状态中的只读字段在新建案件时仍可填写。"),
    "generated": ("Written by {0} from {1}: change the YAML file, not this page.",
                  "由 {0} 根据 {1} 生成：请修改 YAML 文件，而不是本页。"),
}
ROLE_TYPES = {"user": ("person", "人员"), "team": ("team", "团队")}


def word(key: str, lang: str, *args: object) -> str:
    """A word of the catalogue in ``lang`` (``zh…`` or English), filled with ``args``."""
    return WORDS[key][1 if lang.startswith("zh") else 0].format(*args)


@dataclass(frozen=True, slots=True)
class Table:
    """Plain-text cells (a cell may hold newlines): the pages escape them, :func:`markdown`
    escapes them for Markdown."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def duration(delta: dt.timedelta) -> str:
    """``1d 4h``, ``30m``: a definition's duration as it is written."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0m"


# -- the diagram -------------------------------------------------------------------------
#: What a label keeps as it is inside a mermaid string besides letters and digits (of any
#: script): harmless ASCII and CJK punctuation. Everything else becomes ``#NNN;``.
_MERMAID_SAFE = frozenset(" .,-_()[]'!?/+=@·" + "".join(map(chr, (*range(0x2010, 0x2028),
                                                                 *range(0x3001, 0x3040),
                                                                 *range(0xFF01, 0xFF5F)))))
_CATEGORY_STYLE = {"open": "fill:#eef4ff,stroke:#3b5b92", "paused": "fill:#fff6d6,stroke:#9a6b00",
                   "done": "fill:#e9f7ec,stroke:#2f7a3f"}


def _category(name: str, lang: str) -> str:
    return word(name, lang) if name in _CATEGORY_STYLE else name


def mermaid(text: str) -> str:
    """``text`` for inside a quoted mermaid label: letters, digits, spaces and harmless
    punctuation as they are, every other character as its entity code (``#34;``).

    Mermaid turns ``#…;`` into a placeholder before parsing and into ``&#…;`` in the SVG,
    so an escaped character can neither end the string or the statement (``"``, ``;``,
    newlines, ``-->``'s ``>``) nor become markup (``<``, ``&``, backticks), and a ``#``
    typed by the user cannot start an entity of its own. (Text spelling mermaid's own
    placeholders, ``ﬂ°°60¶ß``, shows as the character it stands for: text all the same.)"""
    return "".join(c if c.isalnum() or c in _MERMAID_SAFE else f"#{ord(c)};" for c in text)


def diagram(wf: Workflow, lang: str = "en") -> str:
    """The workflow as mermaid ``flowchart LR`` source: each state (its label, category,
    initial or final) and each transition (its label, roles, whether a guard applies).
    Nodes are ``s0``, ``s1``… in the order the states are declared; every label is quoted."""
    ids = {name: f"s{i}" for i, name in enumerate(wf.states)}
    lines = ["flowchart LR"]
    for name, st in wf.states.items():
        notes = [_category(st.category, lang)]
        notes += [word("initial", lang)] if name == wf.initial else []
        notes += [word("final", lang)] if st.final else []
        text = f"{mermaid(st.label.get(lang) or name)}<br>{mermaid(' · '.join(notes))}"
        shape = ('(["', '"])') if name == wf.initial else ('[["', '"]]') if st.final else (
            '("', '")')
        lines.append(f"    {ids[name]}{shape[0]}{text}{shape[1]}")
    for t in wf.transitions:
        roles = ", ".join(sorted(t.allow))
        guard = f" {word('guard', lang)}" if t.guard is not None else ""
        text = f"{mermaid(t.label.get(lang) or t.trigger)}<br>{mermaid(roles + guard)}"
        lines += [f'    {ids[s]} -->|"{text}"| {ids[t.dest]}' for s in t.sources
                  if s in ids and t.dest in ids]
    for category, style in _CATEGORY_STYLE.items():
        members = [ids[n] for n, st in wf.states.items() if st.category == category]
        if members:
            lines.append(f"    classDef {category}State {style}")
            lines.append(f"    class {','.join(members)} {category}State")
    return "\n".join(lines) + "\n"


# -- the tables --------------------------------------------------------------------------
def level(state: State, f: Field) -> str:
    """``editable``, ``readonly`` or ``hidden``: the state's permission for the field, as
    the case engine applies it (a computed value is never typed in, so never editable)."""
    found = state.fields.of(f.name)
    return "readonly" if found == "editable" and f.computed else found


def permissions(wf: Workflow, lang: str = "en") -> Table:
    """Field x state: each field of the workflow's form, its access in every state."""
    headers = (word("name", lang), word("field", lang),
               *(st.label.get(lang) or st.name for st in wf.states.values()))
    rows = tuple((f.name, f.label.get(lang),
                  *(word(level(st, f), lang) for st in wf.states.values()))
                 for f in wf.form.fields)
    return Table(headers, rows)


def requirements(wf: Workflow, lang: str = "en") -> Table:
    """Each transition: from where to where, who may take it, the fields it requires and
    its guard (the condition, and the message shown when it does not hold)."""
    def label(name: str) -> str:
        st = wf.states.get(name)
        return st.label.get(lang) or name if st is not None else name

    def field_label(name: str) -> str:
        f = wf.form.field(name)
        return f.label.get(lang) if f is not None else name

    headers = tuple(word(k, lang) for k in ("trigger", "transition", "from", "to", "roles",
                                            "requires", "condition", "refused"))
    rows = tuple((t.trigger, t.label.get(lang), ", ".join(label(s) for s in t.sources),
                  label(t.dest), ", ".join(sorted(t.allow)),
                  ", ".join(field_label(n) for n in t.requires),
                  _oneline(t.guard.expression.source) if t.guard else "",
                  t.guard.message.get(lang) if t.guard else "")
                 for t in wf.transitions)
    return Table(headers, rows)


def sla(wf: Workflow, lang: str = "en") -> Table:
    """Per policy (when it applies, its calendar) per target: the states that meet it,
    the time allowed per priority, the warning and each escalation step."""
    headers = tuple(word(k, lang) for k in ("policy", "when", "calendar", "target", "until",
                                            "within", "warn", "escalate"))
    if wf.sla is None:
        return Table(headers, ())
    priority = wf.form.field(wf.priority_field) if wf.priority_field else None
    levels = {c.value: c.label.get(lang) for c in priority.choices} if priority else {}
    rows = []
    for p in wf.sla.policies:
        when = _oneline(p.when.source) if p.when is not None else word("always", lang)
        for t in p.targets:
            within = " · ".join(duration(d) if key == "*" else f"{levels.get(key, key)} "
                                f"{duration(d)}" for key, d in t.within.items())
            until = ", ".join(wf.states[s].label.get(lang) if s in wf.states else s
                              for s in t.until)
            rows.append((p.name, when, p.calendar, t.label.get(lang) or t.name, until, within,
                         duration(t.warn_before) if t.warn_before else "",
                         "\n".join(_escalation(e, lang) for e in t.escalate)))
    return Table(headers, tuple(rows))


def _escalation(e: Escalation, lang: str) -> str:
    when = word("after", lang, duration(e.after)) if e.after else word("at_breach", lang)
    did = [word("notify", lang, ", ".join(e.notify))] if e.notify else []
    did += [word("raise", lang)] if e.raise_priority else []
    did += [word("assign", lang, _assignee(e.assign))] if e.assign is not None else []
    did += [word("fire", lang, e.fire)] if e.fire else []
    return word("step", lang, when, word("then", lang).join(did))


def _assignee(a: Assign) -> str:
    parts = [f"team:{a.team}"] if a.team else []
    parts += [f"role:{a.role}"] if a.role else []
    parts += [f"user:{_oneline(a.user.source)}"] if a.user is not None else []
    return " ".join(parts)


def fields(form: Form, lang: str = "en") -> Table:
    """Each field (a group's row fields after it, as ``group.field``): type, label, when
    it is required and shown, its rules (limits, options, computed value) and help."""
    headers = tuple(word(k, lang) for k in ("name", "type", "label", "required",
                                            "visible_if", "validation", "help"))
    rows = []
    for f in form.fields:
        rows.append(_field_row(f, f.name, lang))
        rows += [_field_row(sub, f"{f.name}.{sub.name}", lang) for sub in f.fields]
    return Table(headers, tuple(rows))


def _field_row(f: Field, name: str, lang: str) -> tuple[str, ...]:
    required = word("yes", lang) if f.required else (
        word("if", lang, _oneline(f.required_if.source)) if f.required_if else "")
    return (name, f.type, f.label.get(lang), required,
            _oneline(f.visible_if.source) if f.visible_if else "", "\n".join(_rules(f, lang)),
            f.help.get(lang) if f.help else "")


def _rules(f: Field, lang: str) -> Iterable[str]:
    if f.value is not None:
        yield word("computed", lang, _oneline(f.value.source))
    if f.readonly_if is not None:
        yield word("readonly_if", lang, _oneline(f.readonly_if.source))
    yield from (r for r in (_span(f.min, f.max, "", lang),
                            _span(f.min_length, f.max_length, "length", lang),
                            _span(f.min_selected, f.max_selected, "selected", lang),
                            _span(f.min_rows, f.max_rows, "rows", lang),
                            _span(None, f.max_files, "files", lang)) if r)
    if f.places is not None:
        yield word("places", lang, f.places)
    if f.pattern:
        yield word("pattern", lang, f.pattern)
    if f.max_size:
        yield word("size", lang, human(f.max_size))
    if f.accept:
        yield word("accept", lang, " ".join(f.accept))
    if f.choices:
        yield word("options", lang, ", ".join(f"{c.value} ({c.label.get(lang)})"
                                              for c in f.choices))
    if f.type == "user":
        yield word("picks", lang, ROLE_TYPES[f.of][1 if lang.startswith("zh") else 0]) + (
            f" ({word('of_roles', lang, ', '.join(f.roles))})" if f.roles else "")
    if f.type == "reference" and f.to:
        yield word("links", lang, f"{f.to}:{f.workflow}" if f.workflow else f.to)
    if f.region:
        yield word("region", lang, f.region)
    if f.metric:
        yield word("metric", lang, f.metric + (f" ({f.report})" if f.report else ""))
    if f.default is not None and not f.computed:
        yield word("default", lang, _value(f.default))


def _span(low: object, high: object, key: str, lang: str) -> str:
    if low is None and high is None:
        return ""
    text = (word("range", lang, low, high) if low is not None and high is not None
            else word("at_least", lang, low) if low is not None else word("at_most", lang, high))
    return word(key, lang, text) if key else text


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _oneline(text: str) -> str:
    return " ".join(text.split())


# -- the Markdown page -------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"[\\`*\[\]<>|~&$#]|(?<![^\W_])_|_(?![^\W_])")
_MD_LIST = re.compile(r"^([-+=]|\d+(?=[.)]))")


def md(text: str) -> str:
    """``text`` for a Markdown paragraph, heading or table cell: what Markdown or HTML
    would interpret (``*``, ``|``, ``<``, ``&``, a leading ``-`` or ``1.``…) escaped with
    a backslash, line breaks as ``<br>``."""
    lines = text.strip().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(_md_line(line) for line in lines)


def _md_line(line: str) -> str:
    line = _MD_SPECIAL.sub(lambda m: "\\" + m[0], line)
    found = _MD_LIST.match(line)
    if found is None:
        return line
    at = found.end() if found[0][0].isdigit() else 0  # escape the '.' of '1.', or the '-'
    return line[:at] + "\\" + line[at:]


def code(text: str) -> str:
    """``text`` as a Markdown code span (one line; ``|`` escaped, as a table needs)."""
    text = _oneline(text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def table_md(table: Table) -> str:
    """A Markdown (GitHub) table; an empty one is a dash."""
    if not table.rows:
        return "—\n"

    def row(cells: Iterable[str]) -> str:
        return "| " + " | ".join(md(c) or " " for c in cells) + " |"

    return "\n".join([row(table.headers), "|" + "---|" * len(table.headers),
                      *(row(r) for r in table.rows)]) + "\n"


def names(definitions: Definitions) -> list[str]:
    """The names that have a page: every workflow's and form's. A form named as a
    workflow has none of its own: the workflow's page shows its form's fields."""
    return sorted({*definitions.workflows, *definitions.forms})


def markdown(definitions: Definitions, name: str, lang: str = "en") -> str:
    """The page of workflow ``name`` (or, if no workflow has that name, form ``name``).
    Raises :class:`LookupError` for a name that is neither."""
    wf, form = definitions.workflows.get(name), definitions.forms.get(name)
    if wf is not None:
        return _workflow_page(wf, definitions, lang)
    if form is not None:
        return _page(form.title, form.description, name, form.path, lang, [
            (word("form", lang), code(name)), (word("version", lang), code(form.version))],
            [(word("fields", lang), table_md(fields(form, lang)))])
    raise LookupError(f"no workflow or form named '{name}'{suggest(name, names(definitions))}")


def _workflow_page(wf: Workflow, d: Definitions, lang: str) -> str:
    states = Table(tuple(word(k, lang) for k in ("name", "state", "category", "description")),
                   tuple((n, (st.label.get(lang) or n) + "".join(
                       f" ({word(k, lang)})" for k, on in (("initial", n == wf.initial),
                                                           ("final", st.final)) if on),
                          _category(st.category, lang),
                          st.description.get(lang) if st.description else "")
                         for n, st in wf.states.items()))
    initial = wf.states.get(wf.initial)
    access = table_md(permissions(wf, lang))
    if initial is not None and any(level(initial, f) == "readonly" and not f.computed
                                   for f in wf.form.fields):
        access += "\n" + word("new_note", lang) + "\n"
    service = table_md(sla(wf, lang))
    if wf.sla is not None:
        pause = ", ".join(_category(c, lang) for c in wf.sla.pause)
        service += "\n" + md(word("sla_note", lang, pause)) + "\n"
        used = dict.fromkeys(p.calendar for p in wf.sla.policies if p.calendar in d.calendars)
        service += "".join(f"\n- {code(c)}: {md(d.calendars[c].title.get(lang))}" for c in used)
        service += "\n" if used else ""
    return _page(wf.title, wf.description, wf.name, wf.path, lang, [
        (word("workflow", lang), code(wf.name)), (word("version", lang), code(wf.version)),
        (word("form", lang), f"{md(wf.form.title.get(lang))} ({code(wf.form.name)})"),
        (word("roles", lang), md(", ".join(sorted(wf.roles)))),
        (word("start", lang), md(", ".join(sorted(wf.start_roles))))], [
        (word("diagram", lang), f"```mermaid\n{diagram(wf, lang)}```\n"),
        (word("states", lang), table_md(states)),
        (word("transitions", lang), table_md(requirements(wf, lang))),
        (word("fields", lang), table_md(fields(wf.form, lang))),
        (word("permissions", lang), access),
        (word("sla", lang), service)])


def _page(title: Text, description: Text | None, name: str, path: str, lang: str,
          facts: list[tuple[str, str]], sections: list[tuple[str, str]]) -> str:
    out = [f"# {md(title.get(lang)) or name}", ""]
    if description is not None and description.get(lang).strip():
        out += [md(description.get(lang)), ""]
    out += [f"- **{md(k)}**: {v}" for k, v in facts]
    command = f"caseloop docs {name}" + (" --lang zh" if lang.startswith("zh") else "")
    out += ["", "_" + word("generated", lang, code(command), code(path)) + "_", ""]
    for heading, body in sections:
        out += [f"## {md(heading)}", "", body]
    return "\n".join(out).rstrip("\n") + "\n"
