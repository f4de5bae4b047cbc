"""B1: open a complaint over HTTP, Caseloop against a bare Flask endpoint, under gunicorn.

    python bench/http_cases.py [--seconds 5] [--requests 20000] [--concurrency 8]
                               [--repeat 3] [--client auto|python|wrk]

Starts gunicorn (2 sync workers each, 127.0.0.1, free ports) serving, on SQLite
files in a temporary folder:

- caseloop: ``caseloop.app:create_app()`` with the shipped definitions;
  ``POST /api/cases`` with a bearer token (authentication, envelope schema, the
  complaint form's validation, the case in its initial state, its event and the
  on-enter notification job);
- bare: a plain Flask + marshmallow + Flask-SQLAlchemy endpoint (this file,
  ``bare_app()``) validating the same body and inserting a case, an event and a
  job (no authentication), and ``POST /ceiling`` answering ``'', 201`` (the
  server's ceiling, which also shows whether the client keeps up).

Drives them interleaved (a 2 s warm-up each, then ``--repeat`` rounds whose order
alternates) with wrk when installed, else a bounded built-in client (threads,
a fresh connection per request as sync workers close them, a fixed request count
and a time cap). Prints median req/s, p50 and p99 per endpoint, the ratios (target
>= 0.75x bare req/s; performance.md gate p99 <= 2.5x bare) and the SQL statements
per request of each endpoint (counted in-process). Stops gunicorn and removes the
folder when done, also on Ctrl-C. Exits 1 when the req/s target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import Flask, Response, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import JSON, DateTime, Engine, ForeignKey, Integer, String, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = {
    "customer_name": "Li Wei", "phone": "13800138000", "channel": "web",
    "category": "delivery", "subject": "Late delivery of order 1234",
    "description": "The parcel arrived five days late and the box was damaged.",
    "priority": "normal",
}
BODY = json.dumps({"workflow": "complaint", "data": DATA}).encode()


# -- the bare baseline (imported by gunicorn as "http_cases:bare_app()") ---------------------
class _Base(DeclarativeBase):
    pass


bare_db = SQLAlchemy(model_class=_Base)


class BareCase(bare_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "bare_cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class BareEvent(bare_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "bare_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("bare_cases.id"))
    kind: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class BareJob(bare_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "bare_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int] = mapped_column(ForeignKey("bare_cases.id"))
    run_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")


class ComplaintData(Schema):
    customer_name = fields.String(required=True, validate=validate.Length(1, 100))
    phone = fields.String(validate=validate.Length(5, 32))
    channel = fields.String(required=True, validate=validate.OneOf(
        ["phone", "email", "web", "chat", "social", "store", "crm"]))
    category = fields.String(required=True, validate=validate.OneOf(
        ["product_quality", "delivery", "service_attitude", "billing", "usage_problem",
         "feature_suggestion", "other"]))
    subject = fields.String(required=True, validate=validate.Length(4, 120))
    description = fields.String(required=True, validate=validate.Length(10, 5000))
    priority = fields.String(required=True, validate=validate.OneOf(
        ["urgent", "high", "normal", "low"]))


class CreateBody(Schema):
    workflow = fields.String(required=True, validate=validate.Length(1, 64))
    data = fields.Nested(ComplaintData, required=True)


def sqlite_pragmas(engine: Engine) -> None:
    """The same connection settings Caseloop uses (WAL, NORMAL, foreign keys, busy timeout)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=5000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()


def bare_app() -> Flask:
    app = Flask("bare")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BARE_DATABASE_URL"]
    bare_db.init_app(app)
    with app.app_context():
        sqlite_pragmas(bare_db.engine)
    schema = CreateBody()

    @app.post("/cases")
    def create() -> tuple[Response, int]:
        try:
            body = schema.load(request.get_json(force=True))
        except ValidationError as exc:
            return jsonify({"error": {"code": "invalid", "fields": exc.messages}}), 422
        now = dt.datetime.now(dt.UTC)
        case = BareCase(workflow=body["workflow"], state="received", data=body["data"],
                        priority=body["data"]["priority"], created_at=now, updated_at=now,
                        version=1)
        bare_db.session.add(case)
        bare_db.session.flush()  # the id (INSERT ... RETURNING)
        bare_db.session.add(BareEvent(case_id=case.id, kind="created", to_state="received",
                                      payload={"data": body["data"]}, at=now))
        bare_db.session.add(BareJob(kind="notify", case_id=case.id, run_at=now,
                                    payload={"to": ["team"], "state": "received"}))
        out = {"id": case.id, "workflow": case.workflow, "state": case.state,
               "data": case.data, "version": case.version, "created_at": now.isoformat()}
        bare_db.session.commit()  # read everything before: no refresh SELECT
        return jsonify(out), 201

    @app.post("/ceiling")
    def ceiling() -> tuple[str, int]:
        return "", 201

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    return app


# -- setup ------------------------------------------------------------------------------------
def caseloop_config(folder: Path) -> dict[str, Any]:
    return {"CASELOOP_DATABASE_URL": f"sqlite:///{folder / 'caseloop.sqlite3'}",
            "CASELOOP_DEFINITIONS": [str(ROOT / "forms"), str(ROOT / "workflows")],
            "CASELOOP_SECRET_KEY": "bench"}


def prepare(folder: Path) -> str:
    """Both databases migrated; a Caseloop agent's token."""
    from caseloop.app import create_app
    from caseloop.extension import state
    from caseloop.migrations import upgrade
    from caseloop.users import add_user, issue_token

    app = create_app(caseloop_config(folder))
    with app.app_context():
        st = state()
        if st.load_error is not None:
            raise SystemExit(f"the shipped definitions do not load: {st.load_error}")
        upgrade(st.db.engine)
        st.registry.record(st.db.session)
        user = add_user(st.db.session, "bench", roles=["agent"], teams=["care"], locale="en")
        token = issue_token(st.db.session, user)
        st.db.session.commit()
        st.db.engine.dispose()
    os.environ["BARE_DATABASE_URL"] = f"sqlite:///{folder / 'bare.sqlite3'}"
    bare = bare_app()
    with bare.app_context():
        bare_db.create_all()
        bare_db.engine.dispose()
    return token


def statements_per_request(folder: Path, token: str, n: int = 50) -> dict[str, Counter[str]]:
    """SQL statements per request of each endpoint, counted in-process (test client)."""
    from caseloop.app import create_app
    from caseloop.extension import state

    out: dict[str, Counter[str]] = {}
    apps = {"caseloop": (create_app(caseloop_config(folder)), "/api/cases",
                         {"Authorization": f"Bearer {token}"}),
            "bare": (bare_app(), "/cases", {})}
    for name, (app, path, headers) in apps.items():
        with app.app_context():
            engine = state().db.engine if name == "caseloop" else bare_db.engine
        counts: Counter[str] = Counter()

        def on_execute(_c: Any, _cur: Any, statement: str, *_a: Any,
                       counts: Counter[str] = counts) -> None:
            counts[statement.lstrip().split(None, 1)[0].upper()] += 1

        def on_commit(_c: Any, counts: Counter[str] = counts) -> None:
            counts["COMMIT"] += 1

        client = app.test_client()
        client.post(path, data=BODY, headers={**headers, "Content-Type": "application/json"})
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "commit", on_commit)
        for _ in range(n):
            resp = client.post(path, data=BODY,
                               headers={**headers, "Content-Type": "application/json"})
            assert resp.status_code == 201, resp.get_data(as_text=True)
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)
        out[name] = Counter({k: v // n for k, v in counts.items()})
        engine.dispose()
    return out


# -- gunicorn ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        if self.process.poll() is not None:
            self.log.close()
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # gunicorn and its own workers
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        self.log.close()


def start(name: str, target: str, folder: Path, ready_path: str) -> Server:
    port = free_port()
    env = dict(os.environ)
    env.update({"BARE_DATABASE_URL": f"sqlite:///{folder / 'bare.sqlite3'}",
                **{k: json.dumps(v) if isinstance(v, list) else v
                   for k, v in caseloop_config(folder).items()}})
    log = (folder / f"{name}.log").open("wb")  # closed by Server.stop
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "sync",
         "--bind", f"127.0.0.1:{port}", "--pythonpath", str(HERE), "--chdir", str(folder),
         "--log-level", "warning", "--timeout", "30", "--graceful-timeout", "3", target],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise SystemExit(f"gunicorn for {name} exited; see its log:\n"
                             + (folder / f"{name}.log").read_text(errors="replace"))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", ready_path)
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"gunicorn for {name} did not answer within 30 s")


# -- load ---------------------------------------------------------------------------------------
@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def drive_python(port: int, path: str, headers: dict[str, str], seconds: float,
                 max_requests: int, concurrency: int) -> Run:
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds
    send = {**headers, "Content-Type": "application/json", "Content-Length": str(len(BODY))}

    def worker() -> None:
        nonlocal issued, failed
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < deadline:
            with lock:
                if issued >= max_requests:
                    break
                issued += 1
            began = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", path, body=BODY, headers=send)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                ok = resp.status == 201
            except OSError:
                ok = False
            mine.append(time.perf_counter() - began)
            bad += not ok
        with lock:
            latencies.extend(mine)
            failed += bad

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return Run(len(latencies), elapsed, percentile(latencies, 50) * 1000,
               percentile(latencies, 99) * 1000, failed)


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def drive_wrk(port: int, path: str, headers: dict[str, str], seconds: float,
              concurrency: int, folder: Path) -> Run:
    script = folder / "post.lua"
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script.write_text(WRK_SCRIPT.format(body=BODY.decode(), headers=lines), "utf-8")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
         "-s", str(script), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if found is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    n, duration_us, p50, p99, failed = (int(g) for g in found.groups())
    return Run(n, duration_us / 1e6, p50 / 1000, p99 / 1000, failed)


@contextmanager
def servers(folder: Path) -> Iterator[dict[str, Server]]:
    running: dict[str, Server] = {}

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signum)

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        running["caseloop"] = start("caseloop", "caseloop.app:create_app()", folder,
                                    "/api/openapi.json")
        running["bare"] = start("bare", "http_cases:bare_app()", folder, "/ready")
        yield running
    finally:
        for server in running.values():
            server.stop()
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="per run (at most 10)")
    ap.add_argument("--requests", type=int, default=20_000, help="per run, at most")
    ap.add_argument("--concurrency", type=int, default=8, help="connections (at most 8)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--client", choices=["auto", "python", "wrk"], default="auto")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 10.0)
    args.concurrency = max(1, min(args.concurrency, 8))
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    began = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="caseloop-b1-"))
    try:
        token = prepare(folder)
        auth = {"Authorization": f"Bearer {token}"}
        targets = {"ceiling": ("bare", "/ceiling", {}), "bare": ("bare", "/cases", {}),
                   "caseloop": ("caseloop", "/api/cases", auth)}
        runs: dict[str, list[Run]] = {name: [] for name in targets}
        with servers(folder) as running:

            def one(name: str, seconds: float) -> Run:
                server, path, headers = targets[name]
                port = running[server].port
                if client == "wrk":
                    return drive_wrk(port, path, headers, seconds, args.concurrency, folder)
                return drive_python(port, path, headers, seconds, args.requests,
                                    args.concurrency)

            for name in targets:  # warm-up: imports, connections, page cache
                one(name, args.warmup)
            order = list(targets)
            for r in range(args.repeat):
                for name in (order if r % 2 == 0 else order[::-1]):
                    runs[name].append(one(name, args.seconds))
        sql = statements_per_request(folder, token)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    med = {name: {"rps": statistics.median(r.rps for r in rs),
                  "p50": statistics.median(r.p50_ms for r in rs),
                  "p99": statistics.median(r.p99_ms for r in rs),
                  "failed": sum(r.failed for r in rs), "requests": sum(r.requests for r in rs)}
           for name, rs in runs.items()}
    ratio = med["caseloop"]["rps"] / med["bare"]["rps"]
    p99_ratio = med["caseloop"]["p99"] / med["bare"]["p99"]
    print(f"B1 create a complaint over HTTP: gunicorn 2 sync workers per app, 127.0.0.1, "
          f"{client} client, -c {args.concurrency}, {args.repeat} x {args.seconds:g} s "
          f"(+{args.warmup:g} s warm-up), SQLite WAL; {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print()
    print("| endpoint | req/s (median) | p50 ms | p99 ms | vs bare req/s | requests | failed "
          "| SQL per request |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    labels = {"ceiling": "`return '', 201` (ceiling)",
              "bare": "bare Flask + marshmallow + Flask-SQLAlchemy (case + event + job)",
              "caseloop": "Caseloop `POST /api/cases` (token, form, case + event + job)"}
    for name in ("ceiling", "bare", "caseloop"):
        m = med[name]
        counts = sql.get(name, Counter())
        per = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=_order)) or "none"
        print(f"| {labels[name]} | {m['rps']:,.0f} | {m['p50']:.1f} | {m['p99']:.1f} | "
              f"{m['rps'] / med['bare']['rps']:.2f}x | {m['requests']:,} | {m['failed']} "
              f"| {per} |")
    print()
    ok_rps, ok_p99 = ratio >= 0.75, p99_ratio <= 2.5
    failed = sum(m["failed"] for m in med.values())
    print("| check | result | |")
    print("|---|---|---|")
    print(f"| req/s >= 0.75x bare (target) | {ratio:.2f}x | {'PASS' if ok_rps else 'FAIL'} |")
    print(f"| p99 <= 2.5x bare p99 (performance.md gate) | {p99_ratio:.2f}x | "
          f"{'PASS' if ok_p99 else 'FAIL'} |")
    print(f"| every request answered 201 | {failed} failed | {'PASS' if not failed else 'FAIL'} |")
    print()
    print(f"total run: {time.perf_counter() - began:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "client": client, "runs": {k: [r.__dict__ for r in v] for k, v in runs.items()},
            "medians": med, "ratio": ratio, "p99_ratio": p99_ratio,
            "sql": {k: dict(v) for k, v in sql.items()}}, indent=2))
    return 0 if ok_rps and not failed else 1


def _order(item: tuple[str, int]) -> int:
    order = ["SELECT", "INSERT", "UPDATE", "DELETE", "COMMIT"]
    return order.index(item[0]) if item[0] in order else len(order)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary folder removed", file=sys.stderr)
        sys.exit(130)
