"""Every problem code, shown by a small broken definition, at its exact position.

``tests/definitions/`` holds one deliberately broken case per code: a single
file ``CL023_something.yaml`` or a folder ``CL025_something/`` of files. A case
says what it expects in its first comment lines::

    # expect: CL013 at 7:15                 (a single file: line:col in it)
    # expect: CL025 at flow.yaml:8:21       (a folder: in expect.txt, with the file)

The errors the checker reports must be exactly the expected ones (code, file,
line, column); expected warnings must be among the warnings. Other warnings
are tolerated (a single-file case cannot be named after its definition, so it
always draws CL029).

Problems that need files which cannot sensibly be committed (binary, not
UTF-8, larger than 1 MiB, pathological YAML) are generated at runtime below.
"""

from __future__ import annotations

import re
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest

from caseloop.spec import CODES, Problem, Severity, check, check_texts

DEFINITIONS = Path(__file__).parent / "definitions"
EXPECT = re.compile(r"^#\s*expect:\s*(CL\d{3})\s+at\s+(?:(\S+):)?(\d+):(\d+)\s*$")

#: Codes shown only by runtime tests in this module, not by a committed case.
RUNTIME_ONLY = {
    # Binary (NUL bytes), not UTF-8, or a path that does not exist:
    # test_nul_bytes_are_cl001, test_invalid_utf8_is_cl001_at_the_byte, test_missing_path_is_cl001.
    "CL001",
    # A file over 1 MiB must not be committed: test_large_file_is_cl002.
    "CL002",
}


# -- the committed cases ------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    code: str
    file: str
    line: int
    col: int

    @property
    def is_error(self) -> bool:
        return CODES[self.code].severity is Severity.ERROR


@dataclass(frozen=True)
class Case:
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name

    @property
    def code(self) -> str:
        return self.name.split("_", 1)[0]

    def expectations(self) -> list[Expected]:
        header = self.path / "expect.txt" if self.path.is_dir() else self.path
        out = []
        for raw in header.read_text("utf-8").splitlines():
            if not raw.startswith("#"):
                break
            match = EXPECT.match(raw.strip())
            if match is None:
                assert "expect" not in raw, f"{header}: cannot read '{raw}'"
                continue
            code, file, line, col = match.groups()
            if self.path.is_dir():
                assert file, f"{header}: a folder case names the file: '{raw}'"
            else:
                assert file in (None, self.path.name), f"{header}: '{raw}' names another file"
                file = self.path.name
            out.append(Expected(code, file, int(line), int(col)))
        return out


def _cases() -> list[Case]:
    return [
        Case(p) for p in sorted(DEFINITIONS.iterdir())
        if re.match(r"CL\d{3}_", p.name) and (p.is_dir() or p.suffix in (".yaml", ".yml"))
    ]


CASES = _cases()


def _found(problems: list[Problem]) -> set[Expected]:
    return {Expected(p.code, Path(p.path).name, p.line, p.col) for p in problems}


def _show(problems: list[Problem]) -> str:
    return "\n".join(p.format() for p in problems) or "(no problems)"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_reports_exactly_what_it_expects(case: Case) -> None:
    expected = case.expectations()
    assert expected, f"{case.path} declares no '# expect:' line"
    _, problems = check([case.path])
    errors = _found([p for p in problems if p.is_error])
    warnings = _found([p for p in problems if not p.is_error])
    assert errors == {e for e in expected if e.is_error}, _show(problems)
    assert {e for e in expected if not e.is_error} <= warnings, _show(problems)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_is_named_after_a_code_it_expects(case: Case) -> None:
    assert case.code in CODES, f"{case.name}: no such code"
    assert case.code in {e.code for e in case.expectations()}
    if case.path.is_dir():
        files = {e.file for e in case.expectations()}
        assert all((case.path / f).is_file() for f in files), files


def test_every_code_has_a_case() -> None:
    covered = {c.code for c in CASES}
    missing = sorted(set(CODES) - covered - RUNTIME_ONLY)
    assert not missing, f"codes without a case in {DEFINITIONS}: {missing}"
    assert RUNTIME_ONLY <= set(CODES)


# -- the file itself: CL001, CL002, CL003 --------------------------------------------


VALID_FORM = """\
form: sample
fields:
  - name: title
    type: text
    label: Title
"""


def _check_file(path: Path) -> list[Problem]:
    _, problems = check([path])
    return problems


def _codes(problems: list[Problem]) -> list[tuple[str, int, int]]:
    return [(p.code, p.line, p.col) for p in problems]


def test_nul_bytes_are_cl001(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_bytes(VALID_FORM.encode() + b"\0\0\x89PNG\r\n")
    problems = _check_file(path)
    assert _codes(problems) == [("CL001", 1, 1)]
    assert "NUL" in problems[0].message


def test_invalid_utf8_is_cl001_at_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    # Latin-1 'é' (0xe9) on line 5: "    label: Caf" is 14 bytes long.
    path.write_bytes(VALID_FORM.replace("Title", "Caf\u00e9").encode("latin-1"))
    problems = _check_file(path)
    assert _codes(problems) == [("CL001", 5, 15)]
    assert "0xe9" in problems[0].message


def test_invalid_utf8_column_counts_characters(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    # "    label: 客户" is 13 characters but 17 bytes long: the bad byte is character 14.
    path.write_bytes(VALID_FORM.replace("Title", "客户@").encode().replace(b"@", b"\xff"))
    problems = _check_file(path)
    assert _codes(problems) == [("CL001", 5, 14)]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID_FORM.encode())
    assert _check_file(path) == []


def test_missing_path_is_cl001(tmp_path: Path) -> None:
    problems = _check_file(tmp_path / "nowhere.yaml")
    assert [p.code for p in problems] == ["CL001"]


def test_large_file_is_cl002(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    with open(path, "wb") as fh:
        fh.write(VALID_FORM.encode())
        filler = b"# " + b"x" * 1021 + b"\n"  # 1 KiB of comment per line
        for _ in range(10 * 1024):  # 10 MiB
            fh.write(filler)
    started = time.perf_counter()
    problems = _check_file(path)
    assert _codes(problems) == [("CL002", 1, 1)]
    assert time.perf_counter() - started < 5


def test_large_text_is_cl002() -> None:
    text = VALID_FORM + "#" * (1024 * 1024 + 1)
    _, problems = check_texts({"sample.yaml": text})
    assert [p.code for p in problems] == ["CL002"]


def test_a_file_of_exactly_one_mib_is_not_too_large(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    body = VALID_FORM.encode()
    path.write_bytes(body + b"#" * (1024 * 1024 - len(body)))
    assert [p.code for p in _check_file(path)] == []


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\t\n", "# only a comment\n",
                                  "# one\n\n   # two\n", "---\n", "---\n...\n"])
def test_empty_files_are_cl003(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(text, "utf-8")
    assert _codes(_check_file(path)) == [("CL003", 1, 1)]


# -- the YAML: CL004 to CL007 ---------------------------------------------------------


def _problems(text: str, name: str = "sample.yaml") -> list[Problem]:
    _, problems = check_texts({name: text})
    return problems


def test_tab_indentation_is_cl004() -> None:
    text = "form: sample\nfields:\n\t- name: title\n\t  type: text\n\t  label: Title\n"
    problems = _problems(text)
    assert _codes(problems) == [("CL004", 3, 1)]


def test_unclosed_bracket_is_cl004_at_the_end() -> None:
    problems = _problems("form: sample\nfields: [\n")
    assert [p.code for p in problems] == ["CL004"]
    assert problems[0].line == 3


def test_several_documents_are_cl006() -> None:
    text = VALID_FORM + "---\n" + VALID_FORM.replace("sample", "other")
    problems = _problems(text)
    assert [p.code for p in problems] == ["CL006"]
    assert "several YAML documents" in problems[0].message


def test_yaml_1_1_directive_is_cl006() -> None:
    problems = _problems("%YAML 1.1\n---\n" + VALID_FORM)
    assert [p.code for p in problems] == ["CL006"]


def test_alias_is_cl006_at_the_alias() -> None:
    # An alias to an undefined anchor: refused as an alias, not a syntax error.
    text = VALID_FORM + "  - name: other\n    type: text\n    label: *title\n"
    assert _codes(_problems(text)) == [("CL006", 8, 12)]


def test_billion_laughs_is_cl006_without_expanding() -> None:
    lines = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"lol{i}: &a{i} [{refs}]")
    text = "form: sample\n" + "\n".join(lines) + "\n"  # 9**10 strings if expanded
    tracemalloc.start()
    try:
        started = time.perf_counter()
        problems = _problems(text)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _codes(problems) == [("CL006", 2, 7)]
    assert peak < 20 * 1024 * 1024
    assert elapsed < 5


@pytest.mark.parametrize("text, position", [
    ("form: !!str sample\nfields: []\n", (1, 7)),
    ("form: !custom sample\nfields: []\n", (1, 7)),
    ("form: !!str 'sample'\nfields: []\n", (1, 7)),
    ("form: ! sample\nfields: []\n", (1, 7)),
    # Tags on collections (these used to crash the composer with a TypeError).
    ("--- !!map\nform: sample\nfields: []\n", (1, 5)),
    ("form: sample\nfields: !!seq []\n", (2, 9)),
    ("form: sample\nfields: ! []\n", (2, 9)),
    ("form: sample\nfields: !!set {a, b}\n", (2, 9)),
    ("form: sample\nfields: !!omap [a: 1]\n", (2, 9)),
])
def test_tags_are_cl006(text: str, position: tuple[int, int]) -> None:
    assert _codes(_problems(text)) == [("CL006", *position)]


def test_deep_nesting_is_cl007_not_recursion_error() -> None:
    text = "form: sample\nfields: " + "[" * 10_000 + "]" * 10_000 + "\n"
    problems = _problems(text)
    # The root mapping is level 1 and the first '[' level 2: the 32nd '[' is level 33.
    assert _codes(problems) == [("CL007", 2, 9 + 31)]


def test_deep_block_nesting_is_cl007() -> None:
    text = "form: sample\n" + "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "x\n"
    problems = _problems(text)
    assert [p.code for p in problems] == ["CL007"]


@pytest.mark.parametrize("brackets, problem", [(29, None), (30, ("CL007", 6, 14 + 29))])
def test_32_levels_are_allowed_33_are_not(brackets: int, problem: tuple | None) -> None:
    # Levels: the root mapping 1, 'fields' 2, the field 3, the n-th '[' of 'default' n + 3.
    text = VALID_FORM + "    default: " + "[" * brackets + "]" * brackets + "\n"
    found = [(p.code, p.line, p.col) for p in _problems(text) if p.code == "CL007"]
    assert found == ([problem] if problem else [])


# -- the shape: wording, hints, suggestions --------------------------------------------


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "NO"])
def test_yaml_1_1_booleans_are_text_and_cl013(word: str) -> None:
    text = VALID_FORM + f"    required: {word}\n"
    problems = _problems(text)
    assert _codes(problems) == [("CL013", 6, 15)]
    p = problems[0]
    assert f"'{word}'" in p.message
    assert "true" in p.hint and "false" in p.hint
    assert "true" in p.format() and "false" in p.format()


def test_unknown_state_suggests_the_close_name() -> None:
    form = "form: case\nfields:\n  - name: title\n    type: text\n    label: Title\n"
    flow = """\
workflow: flow
form: case
roles: [agent]
states:
  open: {}
  closed:
    final: true
transitions:
  - trigger: close
    from: open
    to: closed
    allow: [agent]
sla:
  policies:
    - name: standard
      targets:
        - name: resolve
          until: closd
          within: 2d
"""
    _, problems = check_texts({"case.yaml": form, "flow.yaml": flow})
    assert _codes(problems) == [("CL023", 18, 18)]
    assert problems[0].message == "unknown state 'closd' (did you mean 'closed'?)"


def test_unknown_key_suggests_the_close_key() -> None:
    problems = _problems(VALID_FORM + "    requird: true\n")
    assert _codes(problems) == [("CL011", 6, 5)]
    assert "did you mean 'required'?" in problems[0].message


def test_unknown_kind_suggests_the_close_kind() -> None:
    problems = _problems(VALID_FORM.replace("form:", "from:"))
    assert _codes(problems) == [("CL010", 1, 1)]
    assert "did you mean 'form'?" in problems[0].message


def test_a_definition_must_be_a_mapping() -> None:
    assert _codes(_problems("- form: sample\n")) == [("CL010", 1, 1)]
    assert _codes(_problems("just some text\n")) == [("CL010", 1, 1)]


# -- one pass finds everything ----------------------------------------------------------


def test_all_problems_of_a_file_in_one_pass() -> None:
    text = """\
form: sample
fields:
  - name: title
    type: text
    label: Title
    choices: [a, b]
  - name: count
    type: integer
    label: Count
    min: 10
    max: 1
  - name: details
    type: text
    label: Details
    visible_if: "count > '3'"
"""
    problems = _problems(text)
    assert _codes(problems) == [("CL016", 6, 5), ("CL015", 10, 10), ("CL032", 15, 18)]


def test_all_shape_problems_of_a_file_in_one_pass() -> None:
    text = """\
form: sample
fields:
  - name: title
    type: txt
    label: Title
  - name: count
    type: integer
    label: Count
    required: yes
  - name: details
    type: text
    label: Details
    colour: red
"""
    problems = _problems(text)
    assert _codes(problems) == [("CL014", 4, 11), ("CL013", 9, 15), ("CL011", 13, 5)]


def test_problems_across_files_in_one_pass() -> None:
    broken = {
        "one.yaml": "form: one\nfields:\n  - name: a\n    type: txt\n    label: A\n",
        "two.yaml": "form: two\nfields:\n  - name: b\n    type: text\n    label: B\n"
                    "    visible_if: \"c > 1\"\n",
        "three.yaml": "",
    }
    _, problems = check_texts(broken)
    assert {(p.path, p.code) for p in problems} == {
        ("one.yaml", "CL014"), ("two.yaml", "CL031"), ("three.yaml", "CL003"),
    }


def test_checking_again_gives_the_same_problems(tmp_path: Path) -> None:
    """Parsed files are cached by content: a second check must not differ or leak state."""
    case = next(c for c in CASES if c.name == "CL023_unknown_state")
    _, first = check([case.path])
    first.clear()
    _, second = check([case.path])
    _, third = check([case.path])
    assert second == third and [p.code for p in second] == ["CL023"]
    path = tmp_path / "sample.yaml"
    path.write_text(VALID_FORM, "utf-8")
    assert _check_file(path) == []
    path.write_text(VALID_FORM.replace("text", "txt"), "utf-8")
    assert [p.code for p in _check_file(path)] == ["CL014"]
    path.write_text(VALID_FORM, "utf-8")
    assert _check_file(path) == []


def test_load_raises_definition_error_with_every_problem() -> None:
    from caseloop.spec import DefinitionError, load

    case = next(c for c in CASES if c.name == "CL042_hidden_required")
    with pytest.raises(DefinitionError) as info:
        load([case.path])
    assert [p.code for p in info.value.problems] == ["CL042"]
    assert "CL042" in str(info.value)
    definitions = load([DEFINITIONS / "CL046_nobody_allowed"])  # a warning only
    assert set(definitions.workflows) == {"flow"}


# -- more ways to the same codes ---------------------------------------------------------

CASE_FORM = "form: case\nfields:\n  - name: title\n    type: text\n    label: Title\n"
FLOW_HEAD = """\
workflow: flow
form: case
roles: [agent]
states:
  open: {}
  closed:
    final: true
transitions:
  - trigger: close
    from: open
    to: closed
    allow: [agent]
"""

VARIANTS: dict[str, tuple[dict[str, str], list[tuple[str, str, int, int]]]] = {
    "CL020 a definition in two files": (
        {"sample.yaml": VALID_FORM, "sample_copy.yaml": VALID_FORM},
        [("sample_copy.yaml", "CL020", 1, 7)],
    ),
    "CL020 a choice listed twice": (
        {"sample.yaml": "form: sample\nfields:\n  - name: kind\n    type: choice\n"
                        "    label: Kind\n    choices: [a, b, a]\n"},
        [("sample.yaml", "CL020", 6, 21)],
    ),
    "CL012 a choice field without choices": (
        {"sample.yaml": "form: sample\nfields:\n  - name: kind\n    type: choice\n"
                        "    label: Kind\n"},
        [("sample.yaml", "CL012", 3, 5)],
    ),
    "CL014 a field name reserved in expressions": (
        {"sample.yaml": "form: sample\nfields:\n  - name: now\n    type: text\n    label: Now\n"},
        [("sample.yaml", "CL014", 3, 11)],
    ),
    "CL014 an invalid regular expression": (
        {"sample.yaml": VALID_FORM + "    pattern: '[a-'\n"},
        [("sample.yaml", "CL014", 6, 14)],
    ),
    "CL015 a computed field cannot be required": (
        {"sample.yaml": VALID_FORM + "    required: true\n    value: \"'x'\"\n"},
        [("sample.yaml", "CL015", 6, 15)],
    ),
    "CL032 computed values depending on each other": (
        {"sample.yaml": "form: sample\nfields:\n"
                        "  - name: a\n    type: integer\n    label: A\n    value: \"b + 1\"\n"
                        "  - name: b\n    type: integer\n    label: B\n    value: \"a + 1\"\n"},
        [("sample.yaml", "CL032", 6, 12), ("sample.yaml", "CL032", 10, 12)],
    ),
    "CL031 a guard in a workflow (user and state are in scope)": (
        {"case.yaml": CASE_FORM,
         "flow.yaml": FLOW_HEAD + "    guard:\n"
                                  "      if: \"state == 'open' && 'lead' in user.roles && titel\"\n"
                                  "      message: Fill the title first.\n"},
        [("flow.yaml", "CL031", 14, 55)],
    ),
    "CL023 an unknown initial state": (
        {"case.yaml": CASE_FORM, "flow.yaml": FLOW_HEAD + "initial: opne\n"},
        [("flow.yaml", "CL023", 13, 10)],
    ),
    "CL015 a final state outside category done": (
        {"case.yaml": CASE_FORM,
         "flow.yaml": FLOW_HEAD.replace("    final: true\n",
                                        "    final: true\n    category: paused\n")},
        [("flow.yaml", "CL015", 8, 15)],
    ),
    "CL015 a transition requiring a computed field": (
        {"case.yaml": CASE_FORM + "  - name: short\n    type: boolean\n    label: Short\n"
                                  "    value: \"size(title) < 10\"\n",
         "flow.yaml": FLOW_HEAD + "    requires: [short]\n"},
        [("flow.yaml", "CL015", 13, 16)],
    ),
    "CL024 a notification to an undeclared role": (
        {"case.yaml": CASE_FORM,
         "flow.yaml": FLOW_HEAD.replace(
             "  open: {}\n",
             "  open:\n    on_enter:\n      - notify:\n          to: [assignee, 'role:boss']\n"
             "          message: New case\n")},
        [("flow.yaml", "CL024", 8, 26)],
    ),
    "CL026 a timer firing a trigger that does not leave its state": (
        {"case.yaml": CASE_FORM,
         "flow.yaml": """\
workflow: flow
form: case
roles: [agent]
states:
  open:
    on_enter:
      - timer:
          after: 1d
          fire: remind
  waiting: {}
  closed:
    final: true
transitions:
  - trigger: wait
    from: open
    to: waiting
    allow: [agent, system]
  - trigger: remind
    from: waiting
    to: waiting
    allow: [agent, system]
  - trigger: close
    from: [open, waiting]
    to: closed
    allow: [agent]
"""},
        [("flow.yaml", "CL026", 9, 17)],
    ),
    "CL047 an escalation firing a trigger closed to the system": (
        {"case.yaml": CASE_FORM,
         "flow.yaml": FLOW_HEAD + """\
sla:
  policies:
    - name: standard
      targets:
        - name: resolve
          until: closed
          within: 2d
          escalate:
            - after: 1h
              fire: close
"""},
        [("flow.yaml", "CL047", 22, 21)],
    ),
    "CL015 a policy without 'when' before another policy": (
        {"case.yaml": CASE_FORM,
         "flow.yaml": FLOW_HEAD + """\
sla:
  policies:
    - name: standard
      targets:
        - {name: resolve, until: closed, within: 2d}
    - name: urgent
      when: "title == 'urgent'"
      targets:
        - {name: resolve, until: closed, within: 1h}
"""},
        [("flow.yaml", "CL015", 15, 13)],
    ),
    "CL015 targets per priority without a priority field": (
        {"case.yaml": CASE_FORM,
         "flow.yaml": FLOW_HEAD + """\
sla:
  policies:
    - name: standard
      targets:
        - name: resolve
          until: closed
          within: {low: 2d}
"""},
        [("flow.yaml", "CL015", 19, 19)],
    ),
    "CL014 an unknown time zone": (
        {"office.yaml": "calendar: office\ntimezone: Mars/Olympus\nhours:\n  mon: 09:00-18:00\n"},
        [("office.yaml", "CL014", 2, 11)],
    ),
    "CL015 a holiday that is also a working day": (
        {"office.yaml": "calendar: office\ntimezone: Asia/Shanghai\nhours:\n  mon: 09:00-18:00\n"
                        "holidays: ['2025-10-01']\nworkdays: ['2025-10-01']\n"},
        [("office.yaml", "CL015", 6, 12)],
    ),
}


@pytest.mark.parametrize("texts, expected", VARIANTS.values(), ids=VARIANTS.keys())
def test_variant(texts: dict[str, str], expected: list[tuple[str, str, int, int]]) -> None:
    _, problems = check_texts(texts)
    errors = [(p.path, p.code, p.line, p.col) for p in problems if p.is_error]
    assert errors == expected, _show(problems)


# -- engine bugs found by these tests, fixed ------------------------------------------------


def test_text_with_a_lone_surrogate_is_a_problem_not_a_crash() -> None:
    # json.loads('"\\ud800"') gives such a string: text posted by an editor can hold one.
    _, problems = check_texts({"sample.yaml": VALID_FORM + "# \ud800\n"})
    assert [p.code for p in problems] == ["CL001"]


@pytest.mark.parametrize("zone", ["America", "Etc"])
def test_a_time_zone_folder_is_cl014(zone: str) -> None:
    text = f"calendar: office\ntimezone: {zone}\nhours:\n  mon: 09:00-18:00\n"
    _, problems = check_texts({"office.yaml": text})
    assert _codes(problems) == [("CL014", 2, 11)]


def test_a_pattern_with_a_huge_repeat_count_is_cl014() -> None:
    _, problems = check_texts({"sample.yaml": VALID_FORM + "    pattern: 'a{99999999999}'\n"})
    assert _codes(problems) == [("CL014", 6, 14)]


def test_min_above_max_with_an_int_and_a_float_is_cl015() -> None:
    text = ("form: sample\nfields:\n  - name: price\n    type: decimal\n    label: Price\n"
            "    min: 10\n    max: 2.5\n")
    _, problems = check_texts({"sample.yaml": text})
    assert _codes(problems) == [("CL015", 6, 10)]


@pytest.mark.parametrize("text, position", [
    ("form: sample\nfields:\n  - name: day\n    type: date\n    label: Day\n"
     "    min: 2024-13-01\n", ("sample.yaml", 6, 10)),
    ("calendar: office\ntimezone: Asia/Shanghai\nhours:\n  mon: 09:00-18:00\n"
     "holidays: [2024-02-30]\n", ("office.yaml", 5, 12)),
])
def test_an_unquoted_impossible_date_is_reported_at_the_date(
        text: str, position: tuple[str, int, int]) -> None:
    name, line, col = position
    _, problems = check_texts({name: text})
    assert [(p.line, p.col) for p in problems] == [(line, col)]
    assert problems[0].code in ("CL004", "CL014")


@pytest.mark.parametrize("broken", ["follow_up.yaml", "flow.yaml"])
def test_a_broken_linked_workflow_is_reported_once(broken: str) -> None:
    folder = DEFINITIONS / "CL047_system_not_allowed"
    texts = {p.name: p.read_text("utf-8") for p in sorted(folder.glob("*.yaml"))}
    texts["flow.yaml"] = texts["flow.yaml"].replace("allow: [agent]", "allow: [agent, system]")
    texts["flow.yaml"] = texts["flow.yaml"].replace(
        "    on_enter:\n", "    on_enter:\n      - fire: {case: children, trigger: finish}\n")
    texts["follow_up.yaml"] = texts["follow_up.yaml"].replace("allow: [agent]",
                                                              "allow: [agent, system]")
    assert check_texts(texts)[1] == []  # the valid starting point
    texts[broken] = texts[broken].replace("form: case\n", "form: case\ncolour: red\n")
    _, problems = check_texts(texts)
    assert [(p.path, p.code) for p in problems] == [(broken, "CL011")], _show(problems)


def test_expression_problem_in_a_multi_line_plain_scalar() -> None:
    text = """\
form: sample
fields:
  - name: kind
    type: text
    label: Kind
  - name: details
    type: text
    label: Details
    visible_if: filled(kind) &&
      knd == 'other'
"""
    assert _codes(_problems(text)) == [("CL031", 10, 7)]


def test_an_impossible_datetime_default_is_cl014() -> None:
    text = ("form: sample\nfields:\n  - name: at\n    type: datetime\n    label: At\n"
            "    default: 2024-01-01 25:00\n")
    assert _codes(_problems(text)) == [("CL014", 6, 14)]


@pytest.mark.parametrize("after", ["1000000000d", "99999999999999999999m"])
def test_a_duration_out_of_range_is_cl014(after: str) -> None:
    flow = FLOW_HEAD.replace("  open: {}\n", f"""\
  open:
    on_enter:
      - timer:
          after: {after}
          fire: close
""").replace("allow: [agent]", "allow: [agent, system]")
    _, problems = check_texts({"case.yaml": CASE_FORM, "flow.yaml": flow})
    assert _codes(problems) == [("CL014", 8, 18)]


def test_a_broken_included_form_is_reported_once() -> None:
    contact = "form: contact\nfields:\n  - name: phone\n    type: phon\n    label: Phone\n"
    case = ("form: case\nfields:\n  - include: contact\n  - name: title\n    type: text\n"
            "    label: Title\n    visible_if: \"filled(phone)\"\n")
    assert check_texts({"case.yaml": case,
                        "contact.yaml": contact.replace("phon\n", "phone\n")})[1] == []
    _, problems = check_texts({"case.yaml": case, "contact.yaml": contact})
    assert [(p.path, p.code) for p in problems] == [("contact.yaml", "CL014")], _show(problems)
