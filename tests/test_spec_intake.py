"""The workflow's ``intake`` (the public intake page): each mistake is reported at its
line and column, with a problem code and what is wrong."""

from __future__ import annotations

import pytest

from caseloop.spec import check_texts

from .test_spec_actions import SHIPPED

COMPLAINT = "workflows/complaint.yaml"
FIELDS = ("  fields: [customer_name, phone, email, preferred_language, category, subject, "
          "description,\n")


def _problems(old: str, new: str) -> list[tuple[str, str, int, int]]:
    texts = dict(SHIPPED)
    assert texts[COMPLAINT].count(old) == 1, old
    texts[COMPLAINT] = texts[COMPLAINT].replace(old, new)
    _, problems = check_texts(texts)
    return [(p.code, p.message, p.line, p.col) for p in problems if p.is_error]


def _line(text: str) -> int:
    return SHIPPED[COMPLAINT].splitlines().index(text) + 1


def test_the_shipped_intake_is_sound_and_built() -> None:
    registry, problems = check_texts(SHIPPED)
    assert [p for p in problems if p.is_error] == []
    wf = registry.workflows["complaint"]
    assert wf.public and wf.intake is not None
    assert wf.intake.fields[:3] == ("customer_name", "phone", "email")
    assert "priority" not in wf.intake.fields and set(wf.intake.set) == {"channel"}
    assert wf.intake.team == "care"
    assert wf.intake.thanks is not None and "编号" in wf.intake.thanks.get("zh")


@pytest.mark.parametrize(("old", "new", "expected", "col"), [
    (FIELDS, FIELDS.replace("subject", "subjet"),
     "CL022 unknown field 'subjet' (did you mean 'subject'?)", 71),
    (FIELDS, FIELDS.replace("subject", "priority, subject"), None, None),
    (FIELDS, FIELDS.replace("subject", "severity"),
     "CL015 'severity' is hidden in the initial state 'received'; the public could not "
     "fill it", 71),
    (FIELDS, FIELDS.replace("subject", "is_vip"),
     "CL015 'is_vip' is computed; the public cannot fill it", 71),
    (FIELDS, FIELDS.replace("subject", "attachments"),
     "CL015 'attachments' is a file field; the intake page takes no uploads yet", 71),
    (FIELDS, FIELDS.replace("subject", "email"), "CL020 'email' is listed twice", 71),
    (FIELDS, FIELDS.replace("subject", "channel"),
     "CL015 'channel' is both filled by the public and set by the page", 5),  # at set
    ('    channel: "\'web\'"\n', '    channel: "\'fax\'"\n', None, None),
    ('    channel: "\'web\'"\n', '    chanel: "\'web\'"\n',
     "CL022 form 'complaint' has no field 'chanel' (did you mean 'channel'?)", 5),
    ('    channel: "\'web\'"\n', '    channel: "1"\n',
     "CL048 'channel' holds string but the expression gives int", 14),
])
def test_intake_mistakes_are_reported_where_they_are(old: str, new: str,
                                                     expected: str | None,
                                                     col: int | None) -> None:
    found = _problems(old, new)
    if expected is None:  # accepted by the checker (priority is editable when received)
        assert [f for f in found if "intake" in f[1]] == [] or found == []
        return
    line = _line('    channel: "\'web\'"') if "set by the page" in expected \
        else _line(old.rstrip("\n"))
    messages = [f"{code} {message}" for code, message, *_ in found]
    assert expected in messages, found
    [hit] = [f for f in found if f"{f[0]} {f[1]}" == expected]
    assert hit[2] == line and hit[3] == col, hit


def test_intake_without_public_is_reported_at_the_key() -> None:
    found = _problems("public: true\n", "")
    assert [(c, line, col) for c, _, line, col in found] == [("CL016", _line("intake:") - 1, 1)]
    assert "add 'public: true'" in found[0][1]


def test_intake_needs_its_fields() -> None:
    found = _problems(FIELDS + "           remedy_sought, order_number, occurred_on]\n", "")
    assert [c for c, *_ in found] == ["CL012"], found
