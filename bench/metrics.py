"""B4: satisfaction metrics and the dashboard over 1M cases and 1M answers.

    python bench/metrics.py [--database-url URL] [--cases 1000000] [--answers 1000000]
                            [--seed 7] [--reuse] [--requests 50] [--small 2000]

Generates the data once with bench/generate.py (complaints over two years, revisits
with CSAT/NPS/CES answers, survey links), into a SQLite file or a PostgreSQL schema of
its own (``--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test``: the
schema goes on the URL's search_path, as tests/conftest.py does, and is dropped
afterwards). ``--reuse`` keeps the data between runs (a file under the temporary
folder, or a named schema) and uses it again when its counts match.

Measures, in-process through Flask's test client with a manager's bearer token,
after a warm-up, the median of ``--requests`` requests (each timing capped at a
minute of requests, at least 10):

(a) ``GET /api/metrics/satisfaction`` for the last 30 days of the data; target
    <= 25 ms;
(b) the same for all time, interleaved with the equivalent hand-written SQL (one
    aggregate statement over caseloop_answers computing the same counts and sums,
    run on the app's engine); target <= 1.25x;
(c) the SQL statements of one ``GET /dashboard`` (logged in; the satisfaction and
    operations calls for the period, by week, by category and by channel) on a small
    dataset (``--small`` cases and answers) and on the large one; target: equal.

Also prints each statement of the API call with its time and, for a target that
fails, the database's plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on
PostgreSQL). Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402  (bench/generate.py, next to this file)

from caseloop.app import create_app  # noqa: E402
from caseloop.extension import state  # noqa: E402
from caseloop.facts import ANSWERS  # noqa: E402
from caseloop.migrations import upgrade  # noqa: E402
from caseloop.models import Case, User  # noqa: E402
from caseloop.users import add_user, issue_token  # noqa: E402

ZONE = "Asia/Shanghai"
MANAGER, PASSWORD = "bench.manager", "bench-manager-password"
TARGET_30D_MS, TARGET_RATIO = 25.0, 1.25
TIME_CAP_S = 60.0
#: The satisfaction call's work written by hand (the baseline of (b)): the answers
#: aggregate, the survey links answered / sent, the calls by outcome.
HAND_SQL = ("""
SELECT metric, report, count(*) AS n,
       sum(CASE WHEN value >= 9 THEN 1 ELSE 0 END) AS nine_up,
       sum(CASE WHEN value <= 6 THEN 1 ELSE 0 END) AS six_down,
       sum(value) AS total, sum(value * value) AS total_sq,
       sum(CASE WHEN value >= high - 1 THEN 1 ELSE 0 END) AS top2,
       sum(CASE WHEN value >= 5 THEN 1 ELSE 0 END) AS agree,
       min(low) AS low, max(high) AS high
FROM caseloop_answers {where}
GROUP BY metric, report
""", """
SELECT count(*) AS sent, count(answered_at) AS answered
FROM caseloop_survey_links {where_links}
""", """
SELECT outcome, count(*) AS n FROM caseloop_cases
WHERE outcome IS NOT NULL {and_cases}
GROUP BY outcome
""")


# -- the databases --------------------------------------------------------------------------
class Database:
    """A SQLite file or a PostgreSQL schema holding one generated dataset."""

    def __init__(self, base_url: str, label: str, *, keep: bool, folder: Path) -> None:
        self.base_url, self.label, self.keep = base_url, label, keep
        self.postgresql = make_url(base_url).get_backend_name() == "postgresql"
        if self.postgresql:
            self.schema = label if keep else f"{label}_{uuid.uuid4().hex[:8]}"
            sep = "&" if "?" in base_url else "?"
            self.url = f"{base_url}{sep}options=-csearch_path%3D{self.schema}"
        else:
            self.path = folder / f"{label}.sqlite3"
            self.url = f"sqlite:///{self.path}"

    def has(self, cases: int, answers: int) -> bool:
        """Already generated with these counts (--reuse)?"""
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                if self.postgresql:
                    found = conn.execute(text(
                        "SELECT 1 FROM information_schema.tables WHERE table_schema = :s "
                        "AND table_name = 'caseloop_answers'"), {"s": self.schema}).first()
                    if found is None:
                        return False
                elif not self.path.exists():
                    return False
                n_cases = conn.execute(select(func.count()).select_from(Case)).scalar_one()
                n_answers = conn.execute(select(func.count()).select_from(ANSWERS)
                                         ).scalar_one()
                return bool(n_cases == cases and n_answers == answers)
        except sqlalchemy.exc.OperationalError:
            return False
        finally:
            engine.dispose()

    def create(self) -> None:
        if self.postgresql:
            engine = create_engine(self.base_url)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            engine.dispose()
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def drop(self) -> None:
        if self.keep:
            return
        if self.postgresql:
            engine = create_engine(self.base_url)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            engine.dispose()
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def fill(db: Database, cases: int, answers: int, seed: int, *, reuse: bool) -> str:
    if reuse and db.has(cases, answers):
        return "reused"
    db.create()
    engine = create_engine(db.url)
    generate.bulk_pragmas(engine)
    upgrade(engine)
    began = time.perf_counter()
    counts = generate.generate(engine, cases=cases, answers=answers, seed=seed,
                               progress=cases >= 100_000)
    seconds = time.perf_counter() - began
    engine.dispose()
    rows = counts["cases"] + counts["answers"] + counts["survey_links"]
    return (f"generated in {seconds:.0f} s ({rows / seconds:,.0f} rows/s; "
            f"{counts['complaints']:,} complaints, {counts['revisits']:,} revisits, "
            f"{counts['survey_links']:,} survey links)")


# -- the app ---------------------------------------------------------------------------------
def app_on(url: str, folder: Path) -> tuple[Flask, str]:
    """The app on a dataset, and a manager's API token (the manager logs in too)."""
    app = create_app({
        "CASELOOP_DEFINITIONS": [str(p) for p in generate.SHIPPED],
        "CASELOOP_DATABASE_URL": url, "CASELOOP_SECRET_KEY": "bench",
        "CASELOOP_LOAD_PLUGINS": False, "CASELOOP_TIMEZONE": ZONE,
    })
    app.instance_path = str(folder / "instance")
    with app.app_context():
        st = state()
        session = st.db.session
        upgrade(st.db.engine)
        st.registry.record(session)
        user = session.execute(select(User).where(User.name == MANAGER)).scalar_one_or_none()
        if user is None:
            user = add_user(session, MANAGER, roles=["manager"], password=PASSWORD,
                            timezone=ZONE)
        token = issue_token(session, user, label="bench")
        session.commit()
    return app, token


def last_day(app: Flask) -> dt.date:
    """The data's last answer day in the zone (a reused dataset may be days old)."""
    with app.app_context():
        session = state().db.session
        latest = max(session.execute(select(func.max(ANSWERS.c.answered_at)).where(
            ANSWERS.c.metric == metric)).scalar() or dt.datetime.min.replace(tzinfo=dt.UTC)
            for metric in ("csat", "nps", "ces"))
    return latest.astimezone(ZoneInfo(ZONE)).date()


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any, float]]]:
    """Every statement run on the engine meanwhile, with its parameters and ms."""
    found: list[tuple[str, Any, float]] = []
    started: list[float] = []

    def before(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
        started.append(time.perf_counter())

    def after(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
        found.append((statement, params, (time.perf_counter() - started.pop()) * 1000))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def timed(runs: list[tuple[str, Callable[[], None]]], requests: int, warm: int = 3
          ) -> dict[str, list[float]]:
    """Interleaved timings (A B, then B A, ...) in ms after ``warm`` untimed rounds."""
    for _ in range(warm):
        for _, fn in runs:
            fn()
    out: dict[str, list[float]] = {name: [] for name, _ in runs}
    began = time.perf_counter()
    for i in range(requests):
        order = runs if i % 2 == 0 else runs[::-1]
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t0) * 1000)
        if i >= 9 and time.perf_counter() - began > TIME_CAP_S:
            break
    return out


def api(client: FlaskClient, token: str, query: str) -> Callable[[], None]:
    headers = {"Authorization": f"Bearer {token}"}

    def call() -> None:
        resp = client.get(f"/api/metrics/satisfaction?{query}", headers=headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)

    return call


#: The periods of the hand-written statements: where, where for links, and for cases.
PERIOD = {"where": "WHERE answered_at >= :low AND answered_at < :high",
          "where_links": "WHERE created_at >= :low AND created_at < :high",
          "and_cases": "AND created_at >= :low AND created_at < :high"}
ALL_TIME = {"where": "", "where_links": "", "and_cases": ""}


def hand_sql(app: Flask, where: dict[str, str], params: dict[str, Any]
             ) -> Callable[[], None]:
    engine = state_engine(app)
    stmts = [text(sql.format(**where)) for sql in HAND_SQL]

    def call() -> None:
        with engine.connect() as conn:
            rows = [conn.execute(stmt, params).all() for stmt in stmts]
        assert rows[0]

    return call


def state_engine(app: Flask) -> Engine:
    with app.app_context():
        return state().db.engine  # type: ignore[no-any-return]


def dashboard_statements(app: Flask, first: dt.date, last: dt.date) -> tuple[int, int, float]:
    """Statements of one dashboard page (after a warm-up request), status, ms."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf is not None, "no CSRF token on the login page"
    resp = client.post("/login", data={"username": MANAGER, "password": PASSWORD,
                                       "csrf_token": csrf.group(1)})
    assert resp.status_code == 302, f"bench manager cannot log in: {resp.status_code}"
    path = f"/dashboard?from={first}&to={last}"
    client.get(path)
    with statements(state_engine(app)) as found:
        t0 = time.perf_counter()
        resp = client.get(path)
        ms = (time.perf_counter() - t0) * 1000
    return len(found), resp.status_code, ms


def plans(app: Flask, found: list[tuple[str, Any, float]]) -> list[str]:
    engine = state_engine(app)
    out = []
    with engine.connect() as conn:
        for statement, params, ms in found:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            out.append(f"-- {ms:.1f} ms: {' '.join(statement.split())[:160]}...")
            if engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
                out += [f"   {r[-1]}" for r in rows]
            else:
                rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement,
                                            params).all()
                out += [f"   {r[0]}" for r in rows]
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default="sqlite://",
                    help="PostgreSQL URL, or sqlite:// (default: files in a temporary folder)")
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--answers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--small", type=int, default=2000,
                    help="cases and answers of the small dataset for (c)")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the large dataset for the next run, and use a kept one")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    began = time.perf_counter()
    kept = Path(tempfile.gettempdir()) / "caseloop-bench"
    kept.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="caseloop-b4-") as tmp:
        folder = Path(tmp)
        label = f"bench_metrics_{args.cases}c_{args.answers}a_s{args.seed}"
        large = Database(args.database_url, label, keep=args.reuse,
                         folder=kept if args.reuse else folder)
        small = Database(args.database_url, f"bench_metrics_small_{args.small}", keep=False,
                         folder=folder)
        try:
            return run(args, large, small, folder, began)
        finally:
            small.drop()
            large.drop()


def run(args: argparse.Namespace, large: Database, small: Database, folder: Path,
        began: float) -> int:
    backend = "PostgreSQL" if large.postgresql else "SQLite"
    print(f"large dataset ({args.cases:,} cases, {args.answers:,} answers): "
          f"{fill(large, args.cases, args.answers, args.seed, reuse=args.reuse)}")
    print(f"small dataset ({args.small:,} cases, {args.small:,} answers): "
          f"{fill(small, args.small, args.small, args.seed, reuse=False)}")
    app, token = app_on(large.url, folder / "large")
    small_app, _ = app_on(small.url, folder / "small")
    try:
        return measure(args, app, token, small_app, backend, began)
    finally:
        for a in (app, small_app):
            with a.app_context():
                state().db.session.remove()
                state().db.engine.dispose()


def measure(args: argparse.Namespace, app: Flask, token: str, small_app: Flask,
            backend: str, began: float) -> int:
    last = last_day(app)
    first = last - dt.timedelta(days=29)
    client = app.test_client()
    window = f"from={first}&to={last}"
    engine = state_engine(app)
    versions = (f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
                f"{backend} {'.'.join(map(str, engine.dialect.server_version_info or ()))}")

    # (a) 30 days through the API; the same work in hand-written SQL for comparison.
    low, high = _bounds(first, last)
    params = {"low": _bind(engine, low), "high": _bind(engine, high)}
    t30 = timed([("api", api(client, token, window)),
                 ("sql", hand_sql(app, PERIOD, params))], args.requests)
    with statements(engine) as per_call_30:
        api(client, token, window)()
    # (b) all time, interleaved with the hand-written SQL.
    tall = timed([("api", api(client, token, "all=true")),
                  ("sql", hand_sql(app, ALL_TIME, {}))], args.requests)
    with statements(engine) as per_call_all:
        api(client, token, "all=true")()
    # (c) the dashboard's statements, small and large.
    small_last = last_day(small_app)
    n_small, s_small, ms_small = dashboard_statements(
        small_app, small_last - dt.timedelta(days=29), small_last)
    n_large, s_large, ms_large = dashboard_statements(app, first, last)

    a_ms = median(t30["api"])
    ratio = median(tall["api"]) / median(tall["sql"])
    print(f"\nB4 satisfaction metrics: {args.cases:,} cases, {args.answers:,} answers, "
          f"{backend}; in-process (Flask test client, bearer token), median of "
          f"{len(t30['api'])} / {len(tall['api'])} requests after 3 warm-up; {versions}\n")
    print("| measurement | median ms | min | max | vs hand SQL | SQL statements |")
    print("|---|---:|---:|---:|---:|---|")
    rows = [("API satisfaction, 30 days", t30["api"], median(t30["api"]) / median(t30["sql"]),
             len(per_call_30)),
            ("hand-written SQL (same work), 30 days", t30["sql"], 1.0, 1),
            ("API satisfaction, all time", tall["api"], ratio, len(per_call_all)),
            ("hand-written SQL (same work), all time", tall["sql"], 1.0, 1)]
    for name, values, vs, n in rows:
        print(f"| {name} | {median(values):,.1f} | {min(values):,.1f} | {max(values):,.1f} "
              f"| {vs:.2f}x | {n} |")
    print("\nstatements of one API call (ms each):")
    for label, found in (("30 days", per_call_30), ("all time", per_call_all)):
        print(f"  {label}: " + "; ".join(f"{_what(s)} {ms:.1f}" for s, _, ms in found))
    print(f"\ndashboard page (/dashboard?from=...&to=..., logged in): {n_small} statements "
          f"on {args.small:,} cases ({ms_small:.0f} ms, HTTP {s_small}), {n_large} on "
          f"{args.cases:,} ({ms_large:.0f} ms, HTTP {s_large})")
    checks = [
        (f"(a) API satisfaction, 30 days <= {TARGET_30D_MS:g} ms", f"{a_ms:.1f} ms",
         a_ms <= TARGET_30D_MS),
        (f"(b) API all time <= {TARGET_RATIO}x hand-written SQL", f"{ratio:.2f}x",
         ratio <= TARGET_RATIO),
        ("(c) dashboard statements: small == large", f"{n_small} / {n_large}",
         n_small == n_large and s_small == s_large == 200),
    ]
    print("\n| check | result | |\n|---|---|---|")
    for name, value, ok in checks:
        print(f"| {name} | {value} | {'PASS' if ok else 'FAIL'} |")
    if not checks[0][2]:
        print("\nplans of the 30-day call's statements:")
        print("\n".join(plans(app, per_call_30)))
    if not checks[1][2]:
        print("\nplans of the all-time call's statements:")
        print("\n".join(plans(app, per_call_all)))
    print(f"\ntotal run: {time.perf_counter() - began:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({
            "backend": backend, "versions": versions, "cases": args.cases,
            "answers": args.answers, "api_30d_ms": t30["api"], "sql_30d_ms": t30["sql"],
            "api_all_ms": tall["api"], "sql_all_ms": tall["sql"],
            "dashboard_statements": [n_small, n_large],
            "checks": {name: ok for name, _, ok in checks}}, indent=1))
    return 0 if all(ok for _, _, ok in checks) else 1


def _bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = ZoneInfo(ZONE)
    return (dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC))


def _bind(engine: Engine, moment: dt.datetime) -> Any:
    # As the app stores them: naive UTC text on SQLite, timestamptz on PostgreSQL.
    if engine.dialect.name == "sqlite":
        return moment.replace(tzinfo=None).isoformat(" ", "microseconds")
    return moment


def _what(statement: str) -> str:
    s = " ".join(statement.split())
    table = re.search(r"FROM (\w+)", s)
    return f"{s.split(' ', 1)[0]} {table.group(1) if table else ''}".strip()


if __name__ == "__main__":
    sys.exit(main())
