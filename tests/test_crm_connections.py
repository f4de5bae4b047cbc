"""CASELOOP_CRM read and checked; the shared token store under concurrency (SQLite
file and PostgreSQL): many threads, one refresh."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from caseloop.crm import Token
from caseloop.crm.connections import CRMSetupError, load
from caseloop.crm.store import DatabaseTokens
from caseloop.crm.tables import CRMToken
from caseloop.migrations import upgrade

from .conftest import postgresql_url


class Minter:
    """A connector's refresh_token: slow, counting, as a CRM's token endpoint."""

    name = "minter"
    capabilities: ClassVar[frozenset[str]] = frozenset({"cases"})
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "required": ["client_id"], "additionalProperties": False,
        "properties": {"client_id": {"type": "string"}, "secret": {"type": "string"}}}

    def __init__(self, lifetime: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self.minted = 0
        self.lifetime = lifetime
        self.lock = threading.Lock()

    def refresh_token(self, current: Token | None) -> Token:
        time.sleep(0.2)  # the CRM takes its time: the others must wait, not mint too
        with self.lock:
            self.minted += 1
            n = self.minted
        return Token(f"access-{n}", "refresh", dt.datetime.now(dt.UTC) + self.lifetime,
                     {"api_domain": "https://www.zohoapis.eu"})


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (f"sqlite:///{tmp_path / 'tokens.sqlite3'}" if request.param == "sqlite"
           else postgresql_url())
    engine = create_engine(url, connect_args={"timeout": 30} if "sqlite" in url else {})
    upgrade(engine)
    yield engine
    engine.dispose()


def test_many_workers_mint_one_token(engine: Engine) -> None:
    minter, got, errors = Minter(), [], []

    def worker() -> None:
        try:
            store = DatabaseTokens(engine, "zoho")  # each process has its own store
            store.connector = minter
            got.append(store.get())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert minter.minted == 1
    assert {t.access_token for t in got} == {"access-1"}
    assert got[0].extra == {"api_domain": "https://www.zohoapis.eu"}
    with engine.connect() as conn:
        assert conn.execute(select(CRMToken.refreshes)).scalar_one() == 1


def test_a_refused_token_is_refreshed_once_for_everyone(engine: Engine) -> None:
    minter = Minter()
    first = DatabaseTokens(engine, "zoho")
    first.connector = minter
    stale = first.get()
    stores = []
    for _ in range(6):
        store = DatabaseTokens(engine, "zoho")
        store.connector = minter
        stores.append(store)
    fresh = []
    threads = [threading.Thread(target=lambda s=s: fresh.append(s.refresh(stale)))
               for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert minter.minted == 2  # the first token, and one refresh for all six
    assert {t.access_token for t in fresh} == {"access-2"}


def test_an_expired_token_is_replaced_and_a_valid_one_reused(engine: Engine) -> None:
    minter = Minter(lifetime=dt.timedelta(seconds=30))  # inside the one-minute margin
    store = DatabaseTokens(engine, "hubspot")
    store.connector = minter
    assert store.get().access_token == "access-1"
    assert store.get().access_token == "access-2"
    minter.lifetime = dt.timedelta(hours=1)
    assert store.get().access_token == "access-3"
    assert store.get().access_token == "access-3"


# -- CASELOOP_CRM ----------------------------------------------------------------------
CLASSES = {"minter": Minter}


def test_secrets_come_from_the_environment() -> None:
    config = load({"minter": {"client_id": "x", "secret": {"$env": "MINTER_SECRET"},
                              "poll_every": 60}}, CLASSES, environ={"MINTER_SECRET": "s3"})
    assert config == {"minter": {"client_id": "x", "secret": "s3", "poll_every": 60}}
    with pytest.raises(CRMSetupError, match=r"CASELOOP_CRM.minter.secret: the environment "
                                            r"variable MINTER_SECRET is not set"):
        load({"minter": {"client_id": "x", "secret": {"$env": "MINTER_SECRET"}}}, CLASSES,
             environ={})


def test_settings_are_checked_against_the_connector_schema() -> None:
    with pytest.raises(CRMSetupError, match="CASELOOP_CRM.minter: 'client_id' is a required"):
        load({"minter": {"secret": "s"}}, CLASSES)
    with pytest.raises(CRMSetupError, match=r"CASELOOP_CRM.minter.client_id: 5 is not of "
                                            r"type 'string'"):
        load({"minter": {"client_id": 5}}, CLASSES)
    with pytest.raises(CRMSetupError, match="no connector 'nosuch' is installed "
                                            r"\(installed: minter\)"):
        load({"nosuch": {}}, CLASSES)
    with pytest.raises(CRMSetupError, match="must map connector names"):
        load(["minter"], CLASSES)


def test_settings_may_live_in_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text("minter:\n  client_id: abc\n  secret: {$env: S}\n", "utf-8")
    assert load(str(path), CLASSES, environ={"S": "t"}) == {
        "minter": {"client_id": "abc", "secret": "t"}}
    path.write_text("minter: [unclosed\n", "utf-8")
    with pytest.raises(CRMSetupError, match="is not valid YAML"):
        load(str(path), CLASSES)
    with pytest.raises(CRMSetupError, match="cannot read"):
        load(str(tmp_path / "missing.yaml"), CLASSES)
    assert load("", CLASSES) == {}
