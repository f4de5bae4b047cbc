"""The inbox page (views/inbox.py): who may see it, what each tab lists with its
count, filters and search, keyset pages, claiming from the team queue through the
page (CSRF, conflicts, unseen cases), data shown as text, Chinese labels. On SQLite
and PostgreSQL where the queries differ."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from caseloop.extension import state
from caseloop.models import Case
from caseloop.users import add_user, issue_token

from .test_api import COMPLAINT
from .test_views_auth import PASSWORD, login, token

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def person(app: Flask, name: str, *, roles: tuple[str, ...] = ("agent",),
           teams: tuple[str, ...] = ("care",)) -> dict[str, str]:
    """A user who can log in to the pages; their API headers, to make cases."""
    with app.app_context():
        session = state().db.session
        user = add_user(session, name, roles=roles, teams=teams, password=PASSWORD)
        secret = issue_token(session, user)
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


def new_case(app: Flask, headers: dict[str, str], **data: Any) -> dict[str, Any]:
    """A complaint in team care's queue (unassigned)."""
    resp = app.test_client().post("/api/cases", json={
        "workflow": "complaint", "data": {**COMPLAINT, **data}}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    found: dict[str, Any] = resp.get_json()
    return found


def set_due(app: Flask, case_id: int, at: dt.datetime | None) -> None:
    with app.app_context():
        session = state().db.session
        session.execute(update(Case).where(Case.id == case_id).values(due_at=at))
        session.commit()


def assignee_of(app: Flask, case_id: int) -> int | None:
    with app.app_context():
        case = state().db.session.get(Case, case_id)
        assert case is not None
        return case.assignee_id


def page_client(app: Flask, name: str, lang: str = "en") -> FlaskClient:
    client = app.test_client()
    client.set_cookie("caseloop_lang", lang)
    assert login(client, name).status_code == 302
    return client


def html_of(client: FlaskClient, url: str, status: int = 200) -> str:
    resp = client.get(url)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_data(as_text=True)


def listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="case-(\d+)"', html)]


def counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'id="count-(\w+)">(\d+)<', html)}


def test_anonymous_readers_are_sent_to_log_in(app: Flask) -> None:
    headers = person(app, "alice")
    case = new_case(app, headers)
    client = app.test_client()
    resp = client.get("/inbox?tab=team")
    assert resp.status_code == 302 and resp.location.startswith("/login?next=/inbox")
    resp = client.post(f"/inbox/claim/{case['id']}", data={"csrf_token": token(client)})
    assert resp.status_code == 302 and resp.location.startswith("/login")
    assert assignee_of(app, case["id"]) is None
    # Logged in, the nav links to the inbox; the default tab is 'mine'.
    client = page_client(app, "alice")
    assert 'href="/inbox"' in html_of(client, "/home")
    html = html_of(client, "/inbox")
    assert re.search(r'href="/inbox\?tab=mine" aria-current="page"', html)
    assert "No open cases are assigned to you." in html


def test_each_tab_lists_its_cases_with_counts(any_db_app: Flask) -> None:
    app, now = any_db_app, dt.datetime.now(dt.UTC)
    agent = person(app, "alice")
    queued = new_case(app, agent, subject="Queued")
    mine = new_case(app, agent, subject="Mine")
    client = page_client(app, "alice")
    resp = client.post(f"/inbox/claim/{mine['id']}",
                       data={"csrf_token": token(client, "/inbox"), "next": "/inbox?tab=team"})
    assert resp.status_code == 302 and resp.location == "/inbox?tab=team"
    for case in (queued, mine):
        set_due(app, case["id"], now + dt.timedelta(days=10))
    late = new_case(app, agent, subject="Late")
    set_due(app, late["id"], now - dt.timedelta(hours=1))
    soon = new_case(app, agent, subject="Soon")
    set_due(app, soon["id"], now + dt.timedelta(hours=2))
    later = new_case(app, agent, subject="Later")
    set_due(app, later["id"], now + dt.timedelta(days=3))

    expected = {"mine": 1, "team": 4, "overdue": 1, "due_soon": 1, "recent": 5}
    team = html_of(client, "/inbox?tab=team")
    assert counts(team) == expected
    assert queued["id"] in listed(team) and mine["id"] not in listed(team)
    assert re.search(r'href="/inbox\?tab=team" aria-current="page"', team)
    assert team.count('>Claim</button>') == 4
    assert f'aria-label="Claim {queued["reference"]}"' in team
    assert listed(html_of(client, "/inbox?tab=mine")) == [mine["id"]]
    overdue = html_of(client, "/inbox?tab=overdue")
    assert listed(overdue) == [late["id"]] and 'class="badge warn">overdue<' in overdue
    assert listed(html_of(client, "/inbox?tab=due_soon")) == [soon["id"]]
    recent = html_of(client, "/inbox?tab=recent")
    assert listed(recent)[0] == later["id"] and len(listed(recent)) == 5
    assert ">Claim</button>" not in recent  # claiming is the team queue's
    assert late["reference"] in recent and "Customer complaint" in recent
    assert "Received" in recent and "Li Wei" in recent and "alice" in recent
    if "caseloop_views.case" in app.view_functions:  # the case pages link each reference
        assert f'<a href="/cases/{late["id"]}">{late["reference"]}</a>' in recent
    # Someone of another team sees none of these; each empty tab says so.
    person(app, "otto", teams=("billing",))
    other = page_client(app, "otto")
    for tab, message in (("mine", "No open cases are assigned to you."),
                         ("team", "Your teams&#39; queue is empty: nothing to claim."),
                         ("overdue", "Nothing is overdue."),
                         ("due_soon", "Nothing is due soon."), ("recent", "No cases yet.")):
        html = html_of(other, f"/inbox?tab={tab}")
        assert listed(html) == [] and message in html, tab
        assert set(counts(html).values()) == {0}


def test_filters_and_search_narrow_the_table(any_db_app: Flask) -> None:
    app = any_db_app
    agent = person(app, "alice")
    billing = new_case(app, agent, category="billing", channel="email",
                       customer_name="Wang Fang", phone="139 1234 5678")
    delivery = new_case(app, agent, category="delivery", channel="phone", priority="high")
    client = page_client(app, "alice")
    html = html_of(client, "/inbox?tab=recent")
    # The selects come from the definitions, in the reader's language.
    assert '<option value="complaint"' in html and '<option value="email"' in html
    assert '<option value="high"' in html and '<optgroup label="Customer complaint">' in html
    assert '<label for="f-q">Search</label>' in html
    assert listed(html_of(client, "/inbox?tab=recent&channel=email")) == [billing["id"]]
    narrowed = html_of(client, "/inbox?tab=recent&priority=high")
    assert listed(narrowed) == [delivery["id"]]
    assert '<option value="high" selected>' in narrowed and counts(narrowed)["recent"] == 1
    # The tabs keep the filters.
    assert 'href="/inbox?tab=team&amp;priority=high"' in narrowed
    assert listed(html_of(client, "/inbox?tab=recent&workflow=complaint&state=received")) \
        == [delivery["id"], billing["id"]]
    assert listed(html_of(client, "/inbox?tab=recent&state=closed")) == []
    for q in (billing["reference"], billing["reference"].lower(), "139-1234-5678",
              "wang fang", "Fang"):
        found = html_of(client, f"/inbox?tab=recent&q={q}")
        assert listed(found) == [billing["id"]], q
    none = html_of(client, "/inbox?tab=recent&q=CMP-1999-000001")
    assert listed(none) == [] and "No cases match these filters." in none
    assert listed(html_of(client, "/inbox?tab=recent&customer=nobody")) == []
    # A value from an old link that no select offers is still shown as chosen.
    assert '<option value="fax" selected>' in html_of(client, "/inbox?tab=recent&channel=fax")
    # Control characters (PostgreSQL refuses NUL) are a 400 page, not a 500.
    assert "not understood" in html_of(client, "/inbox?tab=recent&q=a%00b", 400)


def test_pages_walk_every_case_once_and_bad_links_are_a_400(app: Flask) -> None:
    app.config["CASELOOP_PAGE_SIZE"] = 2
    now = dt.datetime.now(dt.UTC)
    agent = person(app, "alice")
    ids = [new_case(app, agent, subject=f"Case {i}")["id"] for i in range(5)]
    for i, case_id in enumerate(ids):
        set_due(app, case_id, now - dt.timedelta(hours=10 - i))
    client = page_client(app, "alice")
    for tab in ("recent", "overdue", "team"):
        seen: list[int] = []
        url: str | None = f"/inbox?tab={tab}&workflow=complaint"
        while url:
            html = html_of(client, url)
            seen += listed(html)
            found = re.search(r'<a href="([^"]+)" rel="next">', html)
            url = found.group(1).replace("&amp;", "&") if found else None
            if url:
                assert "workflow=complaint" in url and f"tab={tab}" in url
        assert sorted(seen) == ids and len(seen) == 5, tab
        if tab == "overdue":
            assert seen == ids  # the most overdue first
    for bad in ("%%%", "bm9wZQ", "MjAyNi0wMS0wMXwx", "x" * 300):
        assert "That page link is not valid" in html_of(client, f"/inbox?cursor={bad}", 400)
    assert "There is no such inbox tab." in html_of(client, "/inbox?tab=everything", 400)


def test_claiming_from_the_team_queue(any_db_app: Flask) -> None:
    app = any_db_app
    agent = person(app, "alice")
    person(app, "bob")
    person(app, "otto", teams=("billing",))
    case = new_case(app, agent)
    alice, bob = page_client(app, "alice"), page_client(app, "bob")
    back = "/inbox?tab=team&priority=normal"
    # Without a CSRF token: refused, nothing changed.
    resp = alice.post(f"/inbox/claim/{case['id']}", data={"next": back})
    assert resp.status_code == 400 and assignee_of(app, case["id"]) is None
    assert "The form expired" in resp.get_data(as_text=True)
    csrf = token(bob, "/inbox?tab=team")  # Bob's page is open, then Alice is quicker
    resp = alice.post(f"/inbox/claim/{case['id']}",
                      data={"csrf_token": token(alice, "/inbox?tab=team"), "next": back})
    assert resp.status_code == 302 and resp.location == back
    html = html_of(alice, back)
    assert f"You took {case['reference']}." in html and listed(html) == []
    assert listed(html_of(alice, "/inbox?tab=mine")) == [case["id"]]
    alice_id = assignee_of(app, case["id"])
    assert alice_id is not None
    resp = bob.post(f"/inbox/claim/{case['id']}", data={"csrf_token": csrf, "next": back})
    assert resp.status_code == 302
    html = html_of(bob, back)
    assert f"Someone else took {case['reference']} meanwhile: nothing was changed." in html
    assert assignee_of(app, case["id"]) == alice_id
    # A case they may not see is a 404, the same as one that does not exist.
    otto = page_client(app, "otto")
    for case_id in (case["id"], 999999):
        resp = otto.post(f"/inbox/claim/{case_id}",
                         data={"csrf_token": token(otto, "/inbox")})
        assert resp.status_code == 404 and "There is nothing here." in resp.get_data(
            as_text=True)
    assert assignee_of(app, case["id"]) == alice_id
    # A 'next' elsewhere is not followed.
    resp = alice.post(f"/inbox/claim/{case['id']}", data={
        "csrf_token": token(alice, "/inbox"), "next": "https://evil.example/"})
    assert resp.location == "/inbox?tab=team"


def test_data_is_shown_as_text_and_labels_in_chinese(app: Flask) -> None:
    agent = person(app, "alice")
    case = new_case(app, agent, subject=XSS, customer_name=f"Li {XSS}")
    client = page_client(app, "alice", lang="zh")
    html = html_of(client, "/inbox?tab=team")
    assert listed(html) == [case["id"]]
    assert XSS not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    for text in ("<h1>工作台</h1>", "我的案件", "团队待领取", "已逾期", "即将到期", "最近更新",
                 "客户投诉", ">领取</button>", "未分配", '<label for="f-q">搜索</label>',
                 "优先级", "渠道"):
        assert text in html, text
    assert html_of(client, "/inbox?tab=mine").count("目前没有分配给您的未结案件。") == 1
    assert "该分页链接无效" in html_of(client, "/inbox?cursor=zzz", 400)
