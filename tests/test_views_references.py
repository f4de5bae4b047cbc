"""Suggestions for reference fields (views/references.py): the cases the reader may
see, of the field's workflow, by reference, phone or name. SQLite, Flask's client."""

from __future__ import annotations

from flask import Flask

from .test_views_auth import add, login
from .test_views_cases import agent, case_row, new_case


def test_suggestions_find_visible_cases_by_reference_and_name(app: Flask) -> None:
    amy = agent(app)
    case_id = new_case(amy, customer_name="Wang Fang", subject="Late parcel")
    reference = case_row(app, case_id).reference
    found = amy.get("/forms/references", query_string={"q": "wang", "workflow": "complaint"})
    assert found.status_code == 200
    [item] = found.get_json()
    assert item["reference"] == reference and "Late parcel" in item["label"]
    assert amy.get("/forms/references", query_string={"q": reference}).get_json()[0][
        "reference"] == reference
    assert amy.get("/forms/references", query_string={"q": "wang",
                                                      "workflow": "revisit"}).get_json() == []
    assert amy.get("/forms/references", query_string={"q": "w"}).get_json() == []  # too short
    # Another team's agent sees nothing of care's cases.
    add(app, "lin", roles=("agent",), teams=["billing"])
    lin = app.test_client()
    login(lin, "lin")
    assert lin.get("/forms/references", query_string={"q": "wang"}).get_json() == []


def test_anonymous_readers_are_sent_to_log_in(app: Flask) -> None:
    resp = app.test_client().get("/forms/references", query_string={"q": "wang"})
    assert resp.status_code == 302 and "/login" in resp.location
