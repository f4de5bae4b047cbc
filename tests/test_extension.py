"""Caseloop embedded as a Flask extension in a host application with its own
Flask-SQLAlchemy ``db``, its own model, its own routes and its own login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.exceptions import HTTPException

from caseloop.cases import Actor
from caseloop.extension import Caseloop, state
from caseloop.migrations import upgrade
from caseloop.models import Case, Event, User
from caseloop.users import add_user, issue_token

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = [str(ROOT / "forms"), str(ROOT / "workflows")]
COMPLAINT = {"customer_name": "Li Wei", "phone": "13800138000", "channel": "web",
             "category": "delivery", "subject": "Parcel five days late",
             "description": "The parcel arrived five days late.", "priority": "normal"}
#: The host's own users, by the header its (pretend) front proxy sets after login.
HOST_USERS = {
    "ana": Actor("ana", roles=frozenset({"agent"}), team_names=frozenset({"care"})),
    "sid": Actor("sid", roles=frozenset({"supervisor"}), team_names=frozenset({"care"}),
                 lang="zh"),
}


def make_host(tmp_path: Path, definitions: list[str] | None = None) -> tuple[Flask, SQLAlchemy]:
    """A small shop application that mounts Caseloop under /care."""

    class HostBase(DeclarativeBase):  # a fresh registry per app: tests make several
        pass

    db = SQLAlchemy(model_class=HostBase)

    class Order(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "shop_orders"
        id: Mapped[int] = mapped_column(primary_key=True)
        number: Mapped[str] = mapped_column(String(20), unique=True)

    app = Flask("shop")
    app.config.update(TESTING=True, SECRET_KEY="host-secret",
                      SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'shop.sqlite3'}",
                      CASELOOP_DEFINITIONS=definitions or DEFINITIONS)
    db.init_app(app)

    @app.get("/")
    def home() -> str:
        return "Welcome to the shop"

    @app.post("/orders")
    def add_order() -> tuple[Response, int]:
        order = Order(number=request.get_json()["number"])
        db.session.add(order)
        db.session.commit()
        return jsonify({"id": order.id, "number": order.number}), 201

    @app.get("/orders")
    def orders() -> Response:
        rows = db.session.execute(select(Order).order_by(Order.id)).scalars()
        return jsonify([o.number for o in rows])

    @app.errorhandler(404)
    def not_found(_exc: Any) -> tuple[str, int]:
        return "The shop has no such page", 404

    def host_login() -> Actor | None:
        return HOST_USERS.get(request.headers.get("X-Shop-User", ""))

    Caseloop(db=db, url_prefix="/care", user_loader=host_login).init_app(app)
    with app.app_context():
        db.create_all()  # the host's tables
        upgrade(db.engine)  # Caseloop's, in the same database
        st = state()
        if st.load_error is None:
            st.registry.record(db.session)
            db.session.commit()
    return app, db


def dispose(app: Flask, db: SQLAlchemy) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[Flask, SQLAlchemy]]:
    app, db = make_host(tmp_path)
    yield app, db
    dispose(app, db)


def test_the_host_keeps_its_routes_and_pages(host: tuple[Flask, SQLAlchemy]) -> None:
    app, _ = host
    client = app.test_client()
    assert client.get("/").get_data(as_text=True) == "Welcome to the shop"
    assert client.post("/orders", json={"number": "SO-1001"}).status_code == 201
    assert client.get("/orders").get_json() == ["SO-1001"]
    # The host's own 404 page outside Caseloop's API; JSON inside it.
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.get_data(as_text=True) == "The shop has no such page"
    inside = client.get("/care/api/no/such/route")
    assert inside.status_code == 404 and inside.get_json()["error"]["code"] == "not_found"
    wrong = client.delete("/care/api/cases")
    assert wrong.status_code == 405 and wrong.get_json()["error"]["code"] == "method_not_allowed"
    # Caseloop answers only under its prefix.
    assert client.get("/api/workflows", headers={"X-Shop-User": "ana"}).status_code == 404


def test_caseloop_tables_live_in_the_hosts_database(host: tuple[Flask, SQLAlchemy]) -> None:
    app, db = host
    with app.app_context():
        assert state().db is db
        assert state().db.engine is db.engine
        tables = set(inspect(db.engine).get_table_names())
    assert "shop_orders" in tables
    assert {"caseloop_cases", "caseloop_events", "caseloop_jobs", "caseloop_users"} <= tables
    assert "caseloop_alembic_version" in tables and "alembic_version" not in tables


def test_the_api_answers_under_the_prefix_with_the_hosts_login(
        host: tuple[Flask, SQLAlchemy]) -> None:
    app, db = host
    client = app.test_client()
    ana = {"X-Shop-User": "ana"}
    listing = client.get("/care/api/workflows", headers=ana)
    assert listing.status_code == 200
    assert "complaint" in {w["name"] for w in listing.get_json()["items"]}
    created = client.post("/care/api/cases", json={"workflow": "complaint", "data": COMPLAINT},
                          headers=ana)
    assert created.status_code == 201, created.get_json()
    case = created.get_json()
    assert created.headers["Location"] == f"/care/api/cases/{case['id']}"
    moved = client.post(f"/care/api/cases/{case['id']}/transitions/acknowledge",
                        headers={**ana, "If-Match": created.headers["ETag"]})
    assert moved.status_code == 200 and moved.get_json()["state"] == "acknowledged"
    history = client.get(f"/care/api/cases/{case['id']}/events", headers=ana).get_json()
    assert [e["actor"] for e in history["items"]] == ["ana", "ana"]
    # The host's user got a Caseloop row of its own (for created_by and the history).
    with app.app_context():
        user = db.session.execute(select(User).where(User.name == "ana")).scalar_one()
        assert user.roles == ["agent"] and user.password_hash is None
        row = db.session.get(Case, case["id"])
        assert row is not None and row.created_by == user.id
        assert db.session.execute(select(Event).where(Event.case_id == row.id)).all()
    # The language is the host user's (sid reads Chinese).
    sid = client.get("/care/api/workflows/complaint", headers={"X-Shop-User": "sid"})
    assert sid.get_json()["title"] == "客户投诉"


def test_without_the_hosts_login_the_api_wants_a_bearer_token(
        host: tuple[Flask, SQLAlchemy]) -> None:
    app, db = host
    client = app.test_client()
    for headers in ({}, {"X-Shop-User": "mallory"}):
        resp = client.get("/care/api/workflows", headers=headers)
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    with app.app_context():
        user = add_user(db.session, "integration", roles=["agent"], teams=["care"])
        token = issue_token(db.session, user)
        db.session.commit()
    resp = client.get("/care/api/workflows", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    # the document needs neither
    assert client.get("/care/api/openapi.json").status_code == 200


def test_registering_twice_says_what_to_do(host: tuple[Flask, SQLAlchemy]) -> None:
    app, db = host
    with pytest.raises(RuntimeError, match="already registered.*init_app once"):
        Caseloop(db=db, url_prefix="/other").init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        Caseloop(app)


def test_broken_definitions_answer_503_and_leave_the_host_running(tmp_path: Path) -> None:
    broken = tmp_path / "definitions"
    broken.mkdir()
    (broken / "complaint.yaml").write_text("workflow: complaint\nstates: [received\n",
                                           encoding="utf-8")
    app, db = make_host(tmp_path, [str(broken)])
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.post("/orders", json={"number": "SO-2002"}).status_code == 201
    ana = {"X-Shop-User": "ana"}
    for resp in (client.get("/care/api/workflows", headers=ana),
                 client.post("/care/api/cases", json={"workflow": "complaint", "data": {}},
                             headers=ana),
                 client.get("/care/api/cases/1", headers=ana)):
        assert resp.status_code == 503
        error = resp.get_json()["error"]
        assert error["code"] == "definitions_invalid"
        assert "caseloop check" in error["message"]
    with app.app_context():
        assert state().load_error is not None
    dispose(app, db)


def test_a_hosts_catch_all_error_handler_still_answers_outside_the_api(tmp_path: Path) -> None:
    app = Flask("portal")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'p.db'}",
                      CASELOOP_DEFINITIONS=DEFINITIONS)
    db = SQLAlchemy()
    db.init_app(app)

    @app.errorhandler(HTTPException)
    def any_http_error(exc: HTTPException) -> tuple[str, int]:
        return f"portal says {exc.code}", exc.code or 500

    Caseloop(db=db, url_prefix="/care").init_app(app)
    client = app.test_client()
    assert client.get("/missing").get_data(as_text=True) == "portal says 404"
    assert client.post("/care").get_data(as_text=True) == "portal says 404"
    assert client.get("/care/api/missing").get_json()["error"]["code"] == "not_found"
    dispose(app, db)
