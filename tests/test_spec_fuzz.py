"""Property tests: whatever text a definition file holds, the checker answers with problems.

It never raises, every problem has a known code and a real position, and
``load`` fails only with :class:`DefinitionError`. The inputs are random text
and bytes, and small mutations of a valid form + workflow + calendar (the
mistakes people make when editing YAML by hand: a line lost, doubled or moved,
a wrong indent, a mistyped word, stray characters).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseloop.spec import (
    CODES,
    DefinitionError,
    Definitions,
    Problem,
    check,
    check_texts,
    load,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

FORM = """\
form: ticket
title:
  en: Ticket
  zh: 工单
fields:
  - name: subject
    type: text
    label: Subject
    required: true
    max_length: 120
  - name: severity
    type: choice
    label: Severity
    choices: [low, high]
    default: low
  - name: score
    type: integer
    label: Score
    min: 0
    max: 10
  - name: note
    type: textarea
    label: Note
    visible_if: "filled(score) && score < 5"
  - name: items
    type: group
    label: Items
    fields:
      - name: done
        type: boolean
        label: Done
  - name: all_done
    type: boolean
    label: All done
    value: "items.all(i, i.done)"
"""

WORKFLOW = """\
workflow: ticket_flow
form: ticket
roles: [agent, lead]
priority_field: severity
states:
  new:
    fields:
      readonly: [score]
  working:
    on_enter:
      - timer:
          after: 2d
          fire: escalate
      - notify:
          to: [assignee]
          message: Work on it
  closed:
    final: true
    on_enter:
      - set:
          note: "'closed by ' + user.name"
transitions:
  - trigger: start
    from: new
    to: working
    allow: [agent]
  - trigger: escalate
    from: working
    to: working
    allow: [lead, system]
  - trigger: close
    from: [new, working]
    to: closed
    allow: [agent, lead]
    requires: [subject]
    guard:
      if: "severity == 'low' || filled(note)"
      message: Explain high-severity tickets first.
sla:
  policies:
    - name: standard
      calendar: office
      targets:
        - name: resolve
          until: closed
          within:
            low: 3d
            high: 1d
"""

CALENDAR = """\
calendar: office
timezone: Asia/Shanghai
hours:
  mon: 09:00-12:00, 13:00-18:00
  tue: 09:00-18:00
  sat: closed
holidays: ['2025-10-01']
workdays: ['2025-09-28']
"""

FILES = {"ticket.yaml": FORM, "ticket_flow.yaml": WORKFLOW, "office.yaml": CALENDAR}



def _checked(run: Callable[[], tuple[Definitions, list[Problem]]]) -> list[Problem]:
    _, problems = run()
    return problems


def _checked_texts(texts: dict[str, str]) -> list[Problem]:
    return _checked(lambda: check_texts(texts))


def _assert_well_formed(problems: list[Problem], names: set[str]) -> None:
    for p in problems:
        assert p.code in CODES, p
        assert p.line >= 1 and p.col >= 1, p
        assert Path(p.path).name in names, p
        assert p.message, p
        p.format()
        p.as_dict()


def test_the_fuzz_seed_is_valid() -> None:
    """The mutations start from definitions without a single problem."""
    definitions, problems = check_texts(FILES)
    assert problems == []
    assert set(definitions.forms) == {"ticket"}
    assert set(definitions.workflows) == {"ticket_flow"}
    assert set(definitions.calendars) == {"office"}


# -- (a) random text and bytes ---------------------------------------------------------


@FUZZ
@given(st.text())
def test_random_text_only_gives_problems(text: str) -> None:
    problems = _checked_texts({"random.yaml": text})
    _assert_well_formed(problems, {"random.yaml"})


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("abform:- \n\t[]{}\"'#&*!|>?,%@`0123456789.~"))))
def test_yaml_flavoured_text_only_gives_problems(text: str) -> None:
    problems = _checked_texts({"random.yaml": text})
    _assert_well_formed(problems, {"random.yaml"})


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_in_a_file_only_give_problems(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.yaml"
        raw.write_bytes(data)
        lenient = Path(tmp) / "lenient.yaml"
        lenient.write_text(data.decode("utf-8", errors="replace"), "utf-8")
        problems = _checked(lambda: check([raw, lenient]))
    _assert_well_formed(problems, {"raw.yaml", "lenient.yaml"})


# -- (b) mutations of a valid form + workflow --------------------------------------------

WORDS = [
    "form", "workflow", "calendar", "fields", "name", "type", "label", "text", "choice",
    "group", "include", "ticket", "ticket_flow", "states", "transitions", "from", "to",
    "trigger", "allow", "system", "final", "true", "false", "yes", "null", "~", "-", ":",
    "[", "]", "{", "}", "'", '"', "#", "&a", "*a", "!!str", "!", "|", ">", "?", "---", "...",
    "%YAML 1.1", "0", "-1", "1e9", "99999999999999999999", "0x1F", ".inf", "2024-02-30",
    "09:00-18:00", "1d 4h", "score > '3'", "filled(", "))", "items.all(", "\t", "", "é", "工单",
]

VALUES = [
    "subject", "severity", "score", "note", "items", "all_done", "new", "working", "closed",
    "agent", "lead", "escalate", "start", "close", "[]", "{}", "[new, closed]", "'*'", "2d",
    "integer", "decimal", "date", "boolean", "multichoice", "textarea", "group", "readonly",
    "hidden", "'score > 3'", "'score > 3.0'", "'note + 1'", "'unknown_name'", "'score'",
    "'items.all(i, i.dne)'", "'subject = 1'", "{en: A}", "[assignee, 'role:nobody']",
    "{low: 1d}", "{low: 1d, high: 2d, urgent: 3d}", "Europe/Berlin", "Asia/Nowhere",
    "24:00-09:00", "09:00-24:00", "08:00-09:00, 08:30-10:00", "closed", "office", "24x7",
    "'" + "(" * 45 + "score > 1" + ")" * 45 + "'",
]

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S")


OPS = ("delete", "duplicate", "swap", "indent", "word", "insert", "value")


@st.composite
def mutations(draw: st.DrawFn, ops: tuple[str, ...] = OPS) -> tuple[str, str]:
    """One of the files, with one to four random edits."""
    name = draw(st.sampled_from(sorted(FILES)))
    lines = FILES[name].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(ops))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            stripped = lines[i].lstrip(" ")
            indent = len(lines[i]) - len(stripped)
            change = draw(st.sampled_from([-4, -2, -1, 1, 2, 4, "tab"]))
            if change == "tab":
                lines[i] = "\t" + lines[i]
            else:
                lines[i] = " " * max(0, indent + change) + stripped
        elif op == "value":
            # Keep the YAML shape, change what a key holds: reaches the schema and builders.
            key, colon, _ = lines[i].partition(": ")
            if colon:
                value = draw(st.one_of(
                    st.sampled_from(WORDS + VALUES),
                    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
                    st.integers(-5, 99).map(str),
                ))
                lines[i] = f"{key}: {value}"
        elif op == "word":
            spans = [m.span() for m in TOKEN.finditer(lines[i])]
            if spans:
                a, b = draw(st.sampled_from(spans))
                word = draw(st.one_of(st.sampled_from(WORDS),
                                      st.from_regex(r"[a-z_]{1,12}", fullmatch=True)))
                lines[i] = lines[i][:a] + word + lines[i][b:]
        else:
            at = draw(st.integers(0, len(lines[i])))
            junk = draw(st.text(min_size=1, max_size=5))
            lines[i] = lines[i][:at] + junk + lines[i][at:]
    return name, "\n".join(lines) + "\n"


@FUZZ
@given(mutations())
def test_mutated_definitions_only_give_problems(mutation: tuple[str, str]) -> None:
    name, text = mutation
    texts = {**FILES, name: text}
    problems = _checked_texts(texts)
    _assert_well_formed(problems, set(texts))


@FUZZ
@given(mutations(ops=("value",)))
def test_mutated_values_only_give_problems(mutation: tuple[str, str]) -> None:
    """Edits that keep the YAML intact get past the parser to the schema and the builders."""
    name, text = mutation
    texts = {**FILES, name: text}
    problems = _checked_texts(texts)
    _assert_well_formed(problems, set(texts))


@FUZZ
@given(mutations())
def test_load_raises_only_definition_error(mutation: tuple[str, str]) -> None:
    name, text = mutation
    with tempfile.TemporaryDirectory() as tmp:
        for file, content in {**FILES, name: text}.items():
            (Path(tmp) / file).write_text(content, "utf-8")
        try:
            definitions = load([tmp])
        except DefinitionError as exc:
            assert any(p.is_error for p in exc.problems)
            assert str(exc)
            _assert_well_formed(exc.problems, set(FILES))
        else:
            assert definitions.forms
