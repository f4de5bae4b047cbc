"""The closed-loop actions of the definition language (cancel, measure, remind) and
the workflow's recontact cooldown: each mistake an ops person can make in the
shipped workflows is reported at its line and column, with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from caseloop.spec import check_texts

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {str(p.relative_to(ROOT)): p.read_text("utf-8")
           for folder in ("forms", "workflows") for p in sorted((ROOT / folder).rglob("*.yaml"))
           if "scenarios" not in p.parts}


def _problems(path: str, old: str, new: str) -> list[str]:
    texts = dict(SHIPPED)
    assert texts[path].count(old) == 1, f"{old!r} must occur once in {path}"
    texts[path] = texts[path].replace(old, new)
    _, problems = check_texts(texts)
    return [f"{p.code} {p.message} @{p.line}" for p in problems if p.is_error]


def _line(path: str, text: str) -> int:
    return SHIPPED[path].splitlines().index(text) + 1


def test_the_shipped_definitions_are_sound() -> None:
    _, problems = check_texts(SHIPPED)
    assert [p for p in problems if p.is_error] == []


PLAN = "workflows/improvement_plan.yaml"
COMPLAINT = "workflows/complaint.yaml"
REVISIT = "workflows/revisit.yaml"


@pytest.mark.parametrize(("path", "old", "new", "expected"), [
    (PLAN, "          due: due\n", "          due: title\n",
     "CL013 'title' is a text field; it cannot be a due date (use a date field)"),
    (PLAN, "          owner: owner\n", "          owner: ownr\n",
     "CL022 'actions' has no field 'ownr' (did you mean 'owner'?)"),
    (PLAN, "          rows: actions\n", "          rows: title\n",
     "CL013 'title' is a text field; it cannot hold rows (use a group field)"),
    (PLAN, "            status: [done, cancelled]\n", "            status: [done, canceled]\n",
     "CL014 'canceled' is not a value of 'status' (did you mean 'cancelled'?)"),
    (PLAN, "              notify: [assignee, role:manager]\n",
     "              notify: [assignee, role:boss]\n", "CL024 unknown role 'boss'"),
    (PLAN, "          into: effectiveness_result\n", "          into: replan_reason\n",
     "CL013 'replan_reason' is a textarea field; it cannot hold the figure"),
    (PLAN, "          into: effectiveness_result\n", "          into: target_met\n",
     "CL013 'target_met' is a boolean field; it cannot hold the figure"),
    (PLAN, "          report: replan_reason\n", "          report: effectiveness_target\n",
     "CL013 'effectiveness_target' is a decimal field; it cannot hold the figures in words"),
    (PLAN, "          window: 30d\n          into: effectiveness_result\n",
     "          window: 30d\n          field: csat\n          into: effectiveness_result\n",
     "CL016 'field' is for 'mean'; 'count' counts cases"),
    (PLAN, "          window: 30d\n          into: effectiveness_result\n",
     "          window: 30d\n          into: effectiveness_result\n          bogus: 1\n",
     "CL011"),
    (PLAN, "          trigger: standardise\n", "          trigger: standardize\n",
     "CL026 unknown trigger 'standardize' (did you mean 'standardise'?)"),
    (COMPLAINT, "          trigger: cancel\n          map:\n",
     "          trigger: cancl\n          map:\n",
     "CL026 unknown trigger 'cancl' of workflow 'revisit' (did you mean 'cancel'?)"),
    (COMPLAINT, "            cancel_reason: \"'投诉",
     "            cancel_reasn: \"'投诉",
     "CL022 form 'revisit' has no field 'cancel_reasn' (did you mean 'cancel_reason'?)"),
    (REVISIT, "  ignore: [cancelled]\n", "  ignore: [canceled]\n",
     "CL023 unknown state 'canceled' (did you mean 'cancelled'?)"),
    (REVISIT, "customer_field: customer_id\n", "",
     "CL016 a cooldown needs the workflow's 'customer_field' to know who the customer is"),
])
def test_closed_loop_mistakes_are_reported(path: str, old: str, new: str,
                                           expected: str) -> None:
    found = _problems(path, old, new)
    assert any(f.startswith(expected) for f in found), found


def test_mean_needs_a_numeric_field_of_the_measured_workflow() -> None:
    old = ("          workflow: complaint\n          aggregate: count\n          where:\n"
           "            category: category\n          window: 30d\n"
           "          into: effectiveness_result\n")
    found = _problems(PLAN, old, old.replace("aggregate: count", "aggregate: mean"))
    assert any("CL012 'mean' needs 'field'" in f for f in found), found
    found = _problems(PLAN, old, old.replace("aggregate: count",
                                             "aggregate: mean\n          field: subject"))
    assert any("CL013 'subject' is a text field; it cannot average" in f for f in found), found


def test_a_problem_points_at_the_offending_line() -> None:
    line = _line(PLAN, "          due: due")
    found = _problems(PLAN, "          due: due\n", "          due: title\n")
    assert any(f.startswith("CL013") and f.endswith(f"@{line}") for f in found), found


def test_cancel_of_a_workflow_never_started_here_is_reported() -> None:
    found = _problems(COMPLAINT, "      - cancel:\n          workflow: revisit\n",
                      "      - cancel:\n          workflow: complaint\n")
    assert any("CL025 'complaint' starts no 'complaint' cases" in f for f in found), found
