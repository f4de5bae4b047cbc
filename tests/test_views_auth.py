"""The pages' login, logout, language and security rules (views/), through Flask's
test client: generic failure message, throttling and recovery, CSRF, no open
redirect, languages, headers."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from caseloop.extension import state
from caseloop.models import User
from caseloop.users import add_user, issue_token
from caseloop.views import CSP, i18n
from caseloop.views.throttle import ADDRESS_FACTOR

PASSWORD = "correct horse battery"


def add(app: Flask, name: str, *, roles: Iterable[str] = ("agent",),
        teams: Iterable[str] = (), password: str = PASSWORD) -> int:
    with app.app_context():
        session = state().db.session
        user = add_user(session, name, roles=roles, teams=teams, password=password)
        session.commit()
        return user.id


def token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of a page's forms."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def login(client: FlaskClient, name: str, password: str = PASSWORD,
          next_: str | None = None) -> TestResponse:
    data = {"csrf_token": token(client), "username": name, "password": password}
    if next_ is not None:
        data["next"] = next_
    return client.post("/login", data=data)


def logged_in(client: FlaskClient) -> bool:
    return client.get("/home").status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_logging_in_opens_a_session_in_a_safe_cookie(any_db_app: Flask) -> None:
    add(any_db_app, "alice")
    client = any_db_app.test_client()
    assert client.get("/home").location == "/login?next=/home"
    resp = login(client, "alice", next_="/home")
    assert resp.status_code == 302 and resp.location == "/home"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("caseloop_session=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Secure" not in cookie and "Expires=" in cookie
    home = client.get("/home", headers={"Accept-Language": "en"})
    assert home.status_code == 200 and "Hello, alice" in home.get_data(as_text=True)


def test_secure_cookies_when_configured(tmp_path: object) -> None:
    from pathlib import Path

    from .conftest import make_app

    assert isinstance(tmp_path, Path)
    app = make_app(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path,
                   CASELOOP_SECURE_COOKIES=True)
    add(app, "alice")
    resp = login(app.test_client(), "alice")
    assert "Secure" in resp.headers["Set-Cookie"]


def test_an_unknown_name_and_a_wrong_password_get_the_same_answer(app: Flask) -> None:
    add(app, "alice")
    client = app.test_client()
    client.set_cookie(i18n.COOKIE, "en")
    wrong = login(client, "alice", "not it")
    unknown = login(client, "nobody", PASSWORD)
    for resp in (wrong, unknown):
        assert resp.status_code == 200
        assert "Wrong user name or password." in resp.get_data(as_text=True)
    assert not logged_in(client)
    empty = client.post("/login", data={"csrf_token": token(client), "username": "",
                                        "password": ""})
    assert empty.status_code == 400 and "Required." in empty.get_data(as_text=True)


def test_an_inactive_user_cannot_log_in_and_is_logged_out(app: Flask) -> None:
    user_id = add(app, "alice")
    client = app.test_client()
    assert login(client, "alice").status_code == 302 and logged_in(client)
    with app.app_context():
        user = state().db.session.get(User, user_id)
        assert user is not None
        user.active = False
        state().db.session.commit()
    assert not logged_in(client)
    assert login(client, "alice").status_code == 200


def test_failed_logins_are_throttled_then_allowed_again(app: Flask) -> None:
    add(app, "alice")
    add(app, "bob")
    clock = Clock()
    app.extensions["caseloop_pages"].throttle.clock = clock
    client = app.test_client()
    client.set_cookie(i18n.COOKIE, "en")
    for _ in range(5):
        assert login(client, "alice", "guess").status_code == 200
    refused = login(client, "Alice ", PASSWORD)  # the right password changes nothing now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 900
    assert "Too many failed logins. Try again in 15 min." in refused.get_data(as_text=True)
    assert not logged_in(client)
    # Another name from the same address, and the same name from elsewhere, still work.
    assert login(client, "bob").status_code == 302
    other = app.test_client()
    data = {"csrf_token": token(other), "username": "alice", "password": PASSWORD}
    assert other.post("/login", data=data, environ_base={"REMOTE_ADDR": "10.0.0.9"}
                      ).status_code == 302
    clock.now += 899
    assert login(client, "alice").status_code == 429
    clock.now += 2
    assert login(client, "alice").status_code == 302


def test_one_address_trying_many_names_is_throttled_too(app: Flask) -> None:
    add(app, "alice")
    app.extensions["caseloop_pages"].throttle.clock = Clock()
    client = app.test_client()
    for i in range(5 * ADDRESS_FACTOR):
        assert login(client, f"user{i}", "guess").status_code == 200
    assert login(client, "alice").status_code == 429


@pytest.mark.parametrize("path", ["/login", "/logout", "/language"])
def test_a_post_without_or_with_a_forged_csrf_token_changes_nothing(app: Flask,
                                                                    path: str) -> None:
    add(app, "alice")
    client = app.test_client()
    client.set_cookie(i18n.COOKIE, "en")
    assert login(client, "alice").status_code == 302
    data = {"username": "alice", "password": PASSWORD, "lang": "zh"}
    forged = token(client)[:-4] + "AAAA"
    for form in (data, {**data, "csrf_token": forged}, {**data, "csrf_token": ""}):
        resp = client.post(path, data=form)
        assert resp.status_code == 400
        assert "The form expired or did not come from this site." in resp.get_data(True)
        # (The session cookie is refreshed on every answer; the language one is not.)
        assert not any(c.startswith(i18n.COOKIE) for c in resp.headers.getlist("Set-Cookie"))
    assert logged_in(client)
    assert client.get_cookie(i18n.COOKIE).value == "en"  # type: ignore[union-attr]


def test_a_token_from_another_session_is_refused(app: Flask) -> None:
    add(app, "alice")
    stolen = token(app.test_client())
    client = app.test_client()
    client.get("/login")
    resp = client.post("/login", data={"csrf_token": stolen, "username": "alice",
                                       "password": PASSWORD})
    assert resp.status_code == 400 and not logged_in(client)


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
    "http:/evil.example", "/\t/evil.example", "evil", ""])
def test_next_never_leads_off_the_site(app: Flask, target: str) -> None:
    add(app, "alice")
    client = app.test_client()
    assert login(client, "alice", next_=target).location == "/home"
    # Already logged in: the GET form redirects at once, just as safely.
    assert client.get("/login", query_string={"next": target}).location == "/home"


def test_next_keeps_a_local_page_with_its_query(app: Flask) -> None:
    add(app, "ada", roles=["admin"])
    client = app.test_client()
    asked = client.get("/admin/jobs?status=dead")
    assert asked.location == "/login?next=/admin/jobs?status%3Ddead"
    page = client.get(asked.location).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/admin/jobs?status=dead"' in page
    assert login(client, "ada", next_="/admin/jobs?status=dead").location == \
        "/admin/jobs?status=dead"


def test_logging_out_takes_a_post_with_its_token(app: Flask) -> None:
    add(app, "alice")
    client = app.test_client()
    client.set_cookie(i18n.COOKIE, "en")
    login(client, "alice")
    assert client.get("/logout").status_code == 405 and logged_in(client)
    resp = client.post("/logout", data={"csrf_token": token(client, "/home")})
    assert resp.status_code == 302 and resp.location == "/login"
    assert "You are logged out." in client.get("/login").get_data(as_text=True)
    assert not logged_in(client)


def test_the_browser_language_is_the_default_and_a_choice_is_remembered(app: Flask) -> None:
    client = app.test_client()
    english = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.get_data(as_text=True)
    assert "User name" in english.get_data(as_text=True)
    chinese = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in chinese.get_data(as_text=True)
    assert "用户名" in chinese.get_data(as_text=True)
    # No Accept-Language: CASELOOP_DEFAULT_LANGUAGE (zh).
    assert "用户名" in client.get("/login").get_data(as_text=True)
    resp = client.post("/language", data={"csrf_token": token(client), "lang": "zh",
                                          "next": "/login?next=/home"},
                       headers={"Accept-Language": "en"})
    assert resp.status_code == 302 and resp.location == "/login?next=/home"
    assert "Max-Age=31536000" in resp.headers["Set-Cookie"]
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "用户名" in page and 'aria-pressed="true">中文' in page
    # An unknown language and a foreign 'next' change nothing and go home.
    resp = client.post("/language", data={"csrf_token": token(client), "lang": "fr",
                                          "next": "//evil.example"})
    assert resp.location == "/home" and "Set-Cookie" not in resp.headers


def test_pages_send_security_headers_and_no_inline_script_or_style(app: Flask) -> None:
    add(app, "ada", roles=["admin"])
    client = app.test_client()
    assert client.get("/login").headers["Content-Security-Policy"] == CSP
    login(client, "ada")
    for path in ("/home", "/admin/jobs", "/admin/mail", "/assets/caseloop.css",
                 "/assets/caseloop.js", "/admin/nothing-here"):
        resp = client.get(path)
        csp = resp.headers.get("Content-Security-Policy", "")
        if path != "/admin/nothing-here":  # an unknown address is the app's 404, not a page
            assert resp.status_code == 200, path
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert resp.headers["X-Content-Type-Options"] == "nosniff", path
            assert resp.headers["Referrer-Policy"] == "same-origin", path
        if resp.mimetype == "text/html" and resp.status_code == 200:
            html = resp.get_data(as_text=True)
            assert resp.headers["Cache-Control"] == "no-store"
            assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
            assert "<style" not in html and " style=" not in html
            assert not re.search(r"<[^>]*\son[a-z]+\s*=", re.sub(r'"[^"]*"', '""', html))
        resp.close()  # static files answer with an open file


def test_the_api_keeps_bearer_tokens_without_csrf(app: Flask) -> None:
    with app.app_context():
        session = state().db.session
        bearer = issue_token(session, add_user(session, "bot", roles=["admin"]))
        session.commit()
    client = app.test_client()
    add(app, "alice")
    login(client, "alice")  # a page session on the same client changes nothing for the API
    resp = client.get("/api/jobs", headers={"Authorization": f"Bearer {bearer}"})
    assert resp.status_code == 200
    retry = client.post("/api/jobs/1/retry", headers={"Authorization": f"Bearer {bearer}"})
    assert retry.status_code == 404 and retry.get_json()["error"]["code"] == "not_found"
    # The session cookie is not an API credential.
    assert client.get("/api/jobs").status_code == 401
    survey = client.post("/api/surveys/no-such-token", json={"data": {}})
    assert survey.status_code == 404 and survey.mimetype == "application/json"


def test_a_browser_at_the_root_goes_to_the_pages(client: FlaskClient) -> None:
    resp = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.status_code == 302 and resp.location == "/home"
    assert client.get("/").get_json()["pages"] == "/home"


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    fields = string.Formatter()
    for key, (en, zh) in i18n.MESSAGES.items():
        assert en and zh, key
        assert {f[1] for f in fields.parse(en) if f[1]} == \
            {f[1] for f in fields.parse(zh) if f[1]}, key


def test_an_unknown_time_zone_stops_the_start(tmp_path: object) -> None:
    from pathlib import Path

    from .conftest import make_app

    assert isinstance(tmp_path, Path)
    with pytest.raises(RuntimeError, match="CASELOOP_TIMEZONE: unknown time zone 'Mars/Base'"):
        make_app(f"sqlite:///{tmp_path / 'z.sqlite3'}", tmp_path,
                 CASELOOP_TIMEZONE="Mars/Base")
