"""The definition documentation: diagram, tables and Markdown page, from the shipped
definitions and from small inline ones with labels meant to break out of the syntax."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from caseloop import outline, spec
from caseloop.spec import Definitions

from .conftest import ROOT, SHIPPED
from .test_browser import browser  # noqa: F401  (fixture)

MERMAID = ROOT / "engine" / "static" / "vendor" / "mermaid.min.js"

#: Labels typed by an ops user that must stay text in a diagram and on a page.
NASTY = [
    '"><script>alert(1)</script>',
    '<img src=x onerror="alert(1)">',
    "a --> b; c",
    'x"] ; click s0 call alert(1) %% hi',
    "line one\nline two",
    "#quot; #35; &lt;b&gt; &amp;",
    "`**bold**` {braces} [box] (round) |pipe| _under_ ~strike~ $x$",
    '%%{init: {"securityLevel": "loose"}}%%',
    "style s0 fill:#f00;",
    "- list\n1. numbered\n# heading\n    indented",
    "策划（D0-D2）：“引号”；完成",
]


@pytest.fixture(scope="module")
def shipped() -> Definitions:
    return spec.load(SHIPPED)


def inline(labels: list[str]) -> Definitions:
    """A form with one field per label and a workflow with a state and a transition (every
    other one guarded) per label; JSON is YAML, so the labels go in verbatim."""
    form = {"form": "t", "title": {"en": labels[0], "zh": labels[-1]}, "fields": [
        {"name": f"f{i}", "type": "text", "label": {"en": text, "zh": text},
         "help": {"en": text, "zh": text}} for i, text in enumerate(labels)]}
    states: dict[str, object] = {f"st{i}": {"label": {"en": text, "zh": text}}
                                 for i, text in enumerate(labels)}
    states["last"] = {"label": {"en": labels[0]}, "category": "done", "final": True}
    order = list(states)
    transitions = [{"trigger": f"go{i}", "from": order[i], "to": order[i + 1],
                    "allow": ["agent"], "label": {"en": text, "zh": text},
                    **({"guard": {"if": "filled(f0)", "message": {"en": text}}} if i % 2 else {})}
                   for i, text in enumerate(labels)]
    workflow = {"workflow": "t", "title": {"en": labels[0]}, "form": "t", "roles": ["agent"],
                "start": ["agent"], "initial": "st0", "states": states,
                "transitions": transitions}
    definitions, problems = spec.check_texts({"t.form.yaml": json.dumps(form),
                                              "t.workflow.yaml": json.dumps(workflow)})
    assert [p for p in problems if p.is_error] == []
    return definitions


def decoded(label: str) -> list[str]:
    """A quoted mermaid label back to its lines of text: entities decoded, split at <br>."""
    return [re.sub(r"#(\d+);", lambda m: chr(int(m[1])), part) for part in label.split("<br>")]


def unescaped(cell: str) -> str:
    """Markdown text as :func:`outline.md` wrote it, back to the text."""
    return re.sub(r"\\(.)", r"\1", cell.replace("<br>", "\n"))


# -- the diagram -------------------------------------------------------------------------
NODE = re.compile(r'^    (s\d+)(?:\(\["|\[\["|\(")([^"\n]*)(?:"\]\)|"\]\]|"\))$')
EDGE = re.compile(r'^    (s\d+) -->\|"([^"\n]*)"\| (s\d+)$')
STYLE = re.compile(r"^    (?:classDef \w+ [\w:#,]+|class (?:s\d+,)*s\d+ \w+)$")


def parse(source: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Nodes (id -> label) and edges of a diagram; fails on any line that is neither."""
    lines = source.splitlines()
    assert lines[0] == "flowchart LR"
    nodes, edges = {}, []
    for line in lines[1:]:
        if m := NODE.match(line):
            nodes[m[1]] = m[2]
        elif m := EDGE.match(line):
            edges.append((m[1], m[2], m[3]))
        else:
            assert STYLE.match(line), line
    return nodes, edges


def test_the_complaint_diagram_has_every_state_and_every_way_between_them(
        shipped: Definitions) -> None:
    wf = shipped.workflows["complaint"]
    nodes, edges = parse(outline.diagram(wf, "en"))
    assert list(nodes) == [f"s{i}" for i in range(len(wf.states))]
    assert decoded(nodes["s0"]) == ["Received", "open · initial"]
    assert decoded(nodes["s5"]) == ["Waiting for customer", "paused"]
    assert decoded(nodes["s10"]) == ["Closed", "done · final"]
    assert len(edges) == sum(len(t.sources) for t in wf.transitions)
    ids = {name: f"s{i}" for i, name in enumerate(wf.states)}
    assert (ids["decision_communicated"], "Customer accepts<br>agent, supervisor [guard]",
            ids["resolved"]) in edges
    assert (ids["acknowledged"], "Escalate (assessment overdue)<br>system",
            ids["escalated"]) in edges
    zh, _ = parse(outline.diagram(wf, "zh"))
    assert decoded(zh["s0"]) == ["已受理", "处理中 · 初始"]


def test_a_state_no_transition_enters_is_still_drawn() -> None:
    d = inline(["One", "Two"])
    wf = d.workflows["t"]
    orphan = {**wf.states, "orphan": wf.states["st1"]}
    nodes, edges = parse(outline.diagram(wf.__class__(**{
        **{k: getattr(wf, k) for k in wf.__dataclass_fields__}, "states": orphan}), "en"))
    assert "s3" in nodes and all("s3" not in (a, b) for a, _, b in edges)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_nasty_labels_stay_inside_their_quotes_and_come_back_intact(lang: str) -> None:
    wf = inline(NASTY).workflows["t"]
    source = outline.diagram(wf, lang)
    nodes, edges = parse(source)  # every line is a node, an edge or a style: nothing broke out
    assert len(nodes) == len(NASTY) + 1 and len(edges) == len(NASTY)
    for i, text in enumerate(NASTY):
        assert decoded(nodes[f"s{i}"])[0] == text
        assert decoded(edges[i][1])[0] == text
    for label in [*nodes.values(), *(e[1] for e in edges)]:
        bare = re.sub(r"#\d+;", "", label).replace("<br>", "")
        assert not set(bare) & set('"<>&;#:`%{}|\n\r\\'), bare
    assert "<script" not in source and "%%" not in source


RENDER = """async ([source, id]) => {
  mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
  const {svg} = await mermaid.render(id, source);
  const out = document.getElementById("out");
  out.innerHTML = svg;
  return {nodes: [...out.querySelectorAll("g.node")].map(n => n.textContent),
          edges: [...out.querySelectorAll("g.edgeLabel")].map(n => n.textContent),
          markup: out.querySelectorAll("script, img, iframe, a, [onerror], [onload]").length};
}"""


def squeezed(text: str) -> str:
    return "".join(text.split())


def test_the_vendored_mermaid_draws_nasty_labels_as_text(browser: Any,  # noqa: F811
                                                          shipped: Definitions) -> None:
    """What a designer's browser does with the diagram: the labels come out as the text
    typed (compared without white space, which the layout rearranges), and no element
    that runs or loads anything is made."""
    if not MERMAID.exists():
        pytest.skip(f"no {MERMAID.relative_to(ROOT)} (the designer's vendored mermaid)")
    page = browser.new_page()
    dialogs: list[str] = []

    def dialog(d: Any) -> None:  # an alert() that got through
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.set_content("<div id=out></div>")
    page.add_script_tag(path=str(MERMAID))
    for i, wf in enumerate([shipped.workflows["complaint"], inline(NASTY).workflows["t"]]):
        drawn = page.evaluate(RENDER, [outline.diagram(wf, "en"), f"d{i}"])
        assert drawn["markup"] == 0
        nodes = [squeezed(text) for text in drawn["nodes"]]
        assert len(nodes) == len(wf.states)
        for st, text in zip(wf.states.values(), nodes, strict=True):
            assert text.startswith(squeezed(st.label.en)), (text, st.label.en)
        edges = {squeezed(text) for text in drawn["edges"]}
        for t in wf.transitions:
            assert any(e.startswith(squeezed(t.label.en)) for e in edges), t.label.en
    assert dialogs == []
    page.close()


def test_mermaid_escapes_everything_but_letters_and_harmless_punctuation() -> None:
    assert outline.mermaid("Send response (v2)") == "Send response (v2)"
    assert outline.mermaid('a"b') == "a#34;b"
    assert outline.mermaid("#quot;") == "#35;quot#59;"
    assert outline.mermaid("x\ny") == "x#10;y"
    assert outline.mermaid("\u2028") == "#8232;"  # a line break to JavaScript
    assert outline.mermaid("客户（VIP）：“好”") == "客户（VIP）：“好”"


# -- the tables --------------------------------------------------------------------------
def cell(table: outline.Table, row: str, column: str) -> str:
    found = next(r for r in table.rows if r[0] == row)
    return found[table.headers.index(column)]


def test_the_permission_matrix_matches_the_complaint_workflow(shipped: Definitions) -> None:
    wf = shipped.workflows["complaint"]
    table = outline.permissions(wf, "en")
    assert table.headers[:4] == ("Name", "Field", "Received", "Acknowledged")
    assert len(table.headers) == 2 + len(wf.states)
    assert [r[0] for r in table.rows] == list(wf.form.names)
    assert cell(table, "severity", "Received") == "hidden"
    assert cell(table, "severity", "Acknowledged") == "editable"
    assert cell(table, "subject", "Acknowledged") == "read-only"
    assert cell(table, "decision", "Response sent") == "hidden"
    assert cell(table, "decision", "Decision communicated") == "editable"
    assert cell(table, "improvement_needed", "Resolved") == "editable"
    assert cell(table, "withdrawal_reason", "Closed") == "hidden"
    assert cell(table, "customer_id", "Closed") == "read-only"  # the state's default
    zh = outline.permissions(wf, "zh")
    assert zh.headers[2] == "已受理" and cell(zh, "severity", "已受理") == "隐藏"


def test_levels_are_the_engines_and_a_computed_field_is_never_editable(
        shipped: Definitions) -> None:
    for wf in shipped.workflows.values():
        for st in wf.states.values():
            for f in wf.form.fields:
                if not f.computed:
                    assert outline.level(st, f) == st.fields.of(f.name)
    wf = shipped.workflows["complaint"]
    is_vip = wf.form.field("is_vip")
    assert is_vip is not None and is_vip.computed
    assert wf.states["responded"].fields.of("is_vip") == "readonly"
    d, _ = spec.check_texts({"f.yaml": "form: f\ntitle: F\nfields:\n"
                             "  - {name: a, type: integer, label: A}\n"
                             "  - {name: b, type: integer, label: B, value: 'a + 1'}\n"})
    form = d.forms["f"]
    st = spec.State("s", spec.Text("S"))  # everything editable by default
    assert [outline.level(st, f) for f in form.fields] == ["editable", "readonly"]


def test_transitions_say_who_needs_what_and_the_guard(shipped: Definitions) -> None:
    table = outline.requirements(shipped.workflows["complaint"], "en")
    assess = next(r for r in table.rows if r[0] == "assess")
    assert assess[1:6] == ("Record assessment", "Acknowledged", "Assessed", "agent, supervisor",
                           "Severity (1-5), Impact, Complexity")
    respond = [r for r in table.rows if r[0] == "respond"]
    assert [r[2] for r in respond] == ["Assessed, Investigating", "Escalated"]
    assert respond[1][6] == "(filled(severity) && severity <= 2) || filled(root_cause)"
    assert respond[1][7].startswith("Complaints of severity 3 or more need a root cause")
    zh = outline.requirements(shipped.workflows["complaint"], "zh")
    assert next(r for r in zh.rows if r[0] == "assess")[1] == "完成初步评估"


def test_the_sla_table_has_each_target_of_each_policy(shipped: Definitions) -> None:
    table = outline.sla(shipped.workflows["complaint"], "en")
    assert [(r[0], r[3]) for r in table.rows] == [
        ("vip", "First response (VIP)"), ("vip", "Resolution (VIP)"),
        ("standard", "First response"), ("standard", "Resolution")]
    vip = table.rows[0]
    assert vip[1] == "filled(segment) && segment == 'high_value'"
    assert vip[2] == "cn_office"
    assert vip[4] == "Acknowledged, Withdrawn"
    assert vip[5] == "Urgent 30m · High 1h · Normal 2h · Low 4h"
    assert vip[6] == "15m"
    assert vip[7] == ("at breach: notify assignee, role:supervisor\n"
                      "1h after breach: raise priority; assign to role:supervisor")
    assert table.rows[2][1] == "always"
    revisit = outline.sla(shipped.workflows["revisit"], "zh")
    assert revisit.rows[0][5] == "1d"  # one duration for every priority
    assert revisit.headers[0] == "策略"


def test_a_workflow_without_service_levels_has_an_empty_sla_table() -> None:
    table = outline.sla(inline(["A", "B"]).workflows["t"], "en")
    assert table.rows == () and table.headers[0] == "Policy"


def test_the_field_table_tells_rules_conditions_and_help(shipped: Definitions) -> None:
    table = outline.fields(shipped.forms["complaint"], "en")
    assert cell(table, "subject", "Required") == "yes"
    assert cell(table, "subject", "Rules") == "length 4 to 120"
    assert cell(table, "phone", "Required") == "if !filled(email)"
    assert cell(table, "severity", "Rules") == "1 to 5"
    assert cell(table, "attachments", "Rules") == ("at most 5 files\neach at most 20 MB\n"
                                                   "types .jpg .jpeg .png .heic .pdf .mp4 .mov")
    assert cell(table, "is_vip", "Rules") == "computed: filled(segment) && segment == 'high_value'"
    assert cell(table, "compensation_amount", "Shown if").startswith("filled(remedy_offered)")
    assert cell(table, "priority", "Rules").endswith("\ndefault normal")
    assert cell(table, "root_cause", "Help").startswith("Required before responding")
    plan = outline.fields(shipped.forms["improvement_plan"], "zh")
    assert plan.headers[:3] == ("名称", "类型", "标签")
    assert cell(plan, "actions", "规则") == "1 至 30 行"
    assert cell(plan, "actions.owner", "类型") == "user"
    assert cell(plan, "actions.owner", "必填") == "是"


def test_durations_read_as_they_are_written() -> None:
    assert outline.duration(dt.timedelta(days=1, hours=4)) == "1d 4h"
    assert outline.duration(dt.timedelta(minutes=30)) == "30m"
    assert outline.duration(dt.timedelta(weeks=2)) == "14d"
    assert outline.duration(dt.timedelta(hours=1, seconds=5)) == "1h 5s"
    assert outline.duration(dt.timedelta(0)) == "0m"


# -- Markdown ----------------------------------------------------------------------------
def test_md_escapes_what_markdown_or_html_would_read_and_nothing_is_lost() -> None:
    for text in NASTY:
        escaped = outline.md(text)
        assert unescaped(escaped) == text.strip()
        assert "\n" not in escaped
        assert not re.search(r"(?<!\\)[<>|`*\[\]&]", escaped.replace("<br>", "")), escaped
    assert outline.md("customer_id and _this_") == "customer_id and \\_this\\_"
    assert outline.md("1. first") == "1\\. first"
    assert outline.md("- item") == "\\- item"


def test_code_spans_survive_backticks_and_pipes() -> None:
    assert outline.code("a || b") == "`a \\|\\| b`"
    assert outline.code("x `y` z") == "``x `y` z``"
    assert outline.code("`edge`") == "`` `edge` ``"


def pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_the_workflow_page_has_every_part_and_tables_keep_their_shape(
        shipped: Definitions) -> None:
    wf = shipped.workflows["complaint"]
    page = outline.markdown(shipped, "complaint", "en")
    assert page.startswith("# Customer complaint\n\nHandles a complaint")
    assert f"- **Version**: `{wf.version}`" in page
    assert re.findall(r"^## (.+)$", page, re.M) == [
        "Diagram", "States", "Transitions", "Fields", "Fields by state", "Service levels"]
    assert f"```mermaid\n{outline.diagram(wf, 'en')}```" in page
    assert "- `cn_office`: China office" in page
    for block in re.findall(r"((?:^\|.*\n)+)", page, re.M):
        rows = block.splitlines()
        assert len({pipes(r) for r in rows}) == 1, rows[0]
        assert rows[1].strip("|").split("|") == ["---"] * (pipes(rows[0]) - 1)
    assert "\\&\\& severity \\<= 2) \\|\\| filled(root_cause)" in page
    zh = outline.markdown(shipped, "complaint", "zh")
    assert zh.startswith("# 客户投诉\n") and "## 各状态的字段权限" in zh


def test_a_form_page_has_its_fields_only(shipped: Definitions) -> None:
    page = outline.markdown(shipped, "customer_contact", "en")
    assert re.findall(r"^## (.+)$", page, re.M) == ["Fields"]
    assert "- **Form**: `customer_contact`" in page
    assert "| customer\\_name | text |" not in page and "| customer_name | text |" in page


def test_a_page_of_nasty_labels_has_no_markup_of_theirs() -> None:
    d = inline(NASTY)
    page = outline.markdown(d, "t", "en")
    assert set(re.findall(r"(?<!\\)<[^>]*>", page)) == {"<br>"}  # ours: line breaks in cells
    diagram = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert diagram == outline.diagram(d.workflows["t"], "en")
    blocks = re.findall(r"((?:^\|.*\n)+)", page, re.M)
    assert len(blocks) == 4  # states, transitions, fields, permissions (no SLA: a dash)
    for block in blocks:
        assert len({pipes(r) for r in block.splitlines()}) == 1
    title = page.splitlines()[0]
    assert unescaped(title.removeprefix("# ")) == NASTY[0]
    fields = next(b for b in blocks if b.startswith("| Name | Type |")).splitlines()[2:]
    assert [unescaped(r.split(" | ")[2]) for r in fields] == [t.strip() for t in NASTY]


def test_an_unknown_name_is_refused_with_a_suggestion(shipped: Definitions) -> None:
    assert outline.names(shipped) == ["complaint", "customer_contact", "improvement_plan",
                                      "revisit"]
    with pytest.raises(LookupError, match="did you mean 'complaint'"):
        outline.markdown(shipped, "complant")
