"""B2 + M1: one transition in-process, Caseloop against the bare ORM operation.

    python bench/inproc_transition.py [--cases 2000] [--rounds 12] [--block 250] [--memory 10000]

On one SQLite file (WAL, synchronous=NORMAL, as Caseloop configures it), with
a two-state workflow whose every transition has a guard and writes one outbox
job, measures interleaved blocks (A B, then B A, ...) over many cases:

- caseloop: ``Cases.fire(case_id, trigger, {}, actor)`` + ``commit`` in a fresh session
  (loads the case, checks role, step fields, permissions and the guard, fires the
  shared model-less machine, writes the event and the on-enter job);
- bare: the same SQL by hand with the same models: get by primary key, change the
  state (``UPDATE ... WHERE id = ? AND version = ?``), insert the event and the job,
  commit (the baseline the target is measured against);
- bare Core: the same four statements with SQLAlchemy Core and no ORM at all, the
  floor (reported, not gated). Caseloop writes events and jobs as Core INSERTs
  (append-only rows need no unit of work), so it can beat the ORM baseline.

Prints ops/s of each and the ratio (target >= 0.95x bare ORM), the SQL statements
per operation (expected 1 SELECT + 1 UPDATE + 2 INSERT + COMMIT; a rejected guard or
a stale version: 1 SELECT and no write), YAML parses and machines built while
measuring (expected 0), and the memory growth after --memory transitions of each
kind under tracemalloc (gate: <= 1 MB above bare). Exits 1 when a gate fails.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from ruamel.yaml import YAML
from sqlalchemy import Engine, event, insert, select, update
from sqlalchemy.orm import Session
from transitions import Machine

from caseloop.app import create_app
from caseloop.cases import Actor, Cases
from caseloop.errors import CaseError
from caseloop.extension import state
from caseloop.migrations import upgrade
from caseloop.models import Case, Event, Job, utcnow
from caseloop.registry import Registry
from caseloop.users import add_user

FORM = """\
form: ticket
title: {en: Ticket, zh: 工单}
fields:
  - name: subject
    type: text
    label: {en: Subject, zh: 标题}
    required: true
    max_length: 200
  - name: priority
    type: choice
    label: {en: Priority, zh: 优先级}
    required: true
    choices: [urgent, high, normal, low]
  - name: note
    type: textarea
    label: {en: Note, zh: 备注}
    max_length: 2000
"""
WORKFLOW = """\
workflow: ticket
title: {en: Ticket, zh: 工单}
form: ticket
roles: [agent]
start: [agent]
initial: open
priority_field: priority
states:
  open:
    label: {en: Open, zh: 处理中}
    on_enter:
      - notify: {to: [team], message: {en: Ticket open, zh: 工单处理中}}
  waiting:
    label: {en: Waiting, zh: 等待}
    category: paused
    on_enter:
      - notify: {to: [team], message: {en: Ticket waiting, zh: 工单等待中}}
  closed: {label: {en: Closed, zh: 已关闭}, final: true}
transitions:
  - trigger: wait
    from: open
    to: waiting
    allow: [agent]
    guard: {if: "priority != 'low'", message: {en: Low tickets do not wait, zh: 低优先级不等待}}
  - trigger: resume
    from: waiting
    to: open
    allow: [agent]
    guard: {if: "priority != 'low'", message: {en: Low tickets do not wait, zh: 低优先级不等待}}
  - {trigger: close, from: [open, waiting], to: closed, allow: [agent]}
"""
FLIP = {"open": ("wait", "waiting"), "waiting": ("resume", "open")}
MESSAGES = {"open": {"en": "Ticket open", "zh": "工单处理中"},
            "waiting": {"en": "Ticket waiting", "zh": "工单等待中"}}


class Bench:
    def __init__(self, engine: Engine, registry: Registry, actor: Actor) -> None:
        self.engine, self.registry, self.actor = engine, registry, actor
        self.states: dict[int, str] = {}

    # -- the two operations ---------------------------------------------------------------
    def caseloop(self, case_id: int) -> None:
        trigger, dest = FLIP[self.states[case_id]]
        with Session(self.engine) as session:
            Cases(session, self.registry).fire(case_id, trigger, {}, self.actor)
            session.commit()
        self.states[case_id] = dest

    def bare(self, case_id: int) -> None:
        with Session(self.engine) as session:
            case = session.get(Case, case_id)
            assert case is not None
            source = case.state
            trigger, dest = FLIP[source]
            now = utcnow()
            case.state = dest
            case.updated_at = now
            session.add(Event(case_id=case_id, kind="transition", actor_id=self.actor.id,
                              actor_name=self.actor.name, trigger=trigger, from_state=source,
                              to_state=dest, payload={"changes": {}}, at=now))
            session.add(Job(kind="notify", case_id=case_id, run_at=now, created_at=now,
                            payload={"to": ["team"], "channel": None, "state": dest,
                                     "message": MESSAGES[dest]}))
            session.commit()
        self.states[case_id] = dest

    def bare_core(self, case_id: int) -> None:
        with self.engine.begin() as conn:
            source, version = conn.execute(select(Case.state, Case.version).where(
                Case.id == case_id)).one()
            trigger, dest = FLIP[source]
            now = utcnow()
            done = conn.execute(update(Case).where(Case.id == case_id, Case.version == version)
                                .values(state=dest, updated_at=now, version=version + 1))
            assert done.rowcount == 1
            conn.execute(insert(Event), {
                "case_id": case_id, "kind": "transition", "actor_id": self.actor.id,
                "actor_name": self.actor.name, "trigger": trigger, "from_state": source,
                "to_state": dest, "payload": {"changes": {}}, "at": now})
            conn.execute(insert(Job), {
                "kind": "notify", "case_id": case_id, "run_at": now, "created_at": now,
                "payload": {"to": ["team"], "channel": None, "state": dest,
                            "message": MESSAGES[dest]}})
        self.states[case_id] = dest

    # -- the refusals (no writes expected) --------------------------------------------------
    def rejected_guard(self, case_id: int) -> None:
        with Session(self.engine) as session:
            try:
                Cases(session, self.registry).fire(case_id, "wait", {}, self.actor)
            except CaseError as exc:
                assert exc.code == "guard_failed", exc.code
                session.rollback()
            else:
                raise AssertionError("the guard should have held the low ticket back")

    def stale(self, case_id: int) -> None:
        trigger, _ = FLIP[self.states[case_id]]
        with Session(self.engine) as session:
            try:
                Cases(session, self.registry).fire(case_id, trigger, {}, self.actor,
                                                   expected_version=0)
            except CaseError as exc:
                assert exc.code == "stale", exc.code
                session.rollback()
            else:
                raise AssertionError("a stale version should be refused")


def make_cases(engine: Engine, registry: Registry, actor: Actor, count: int,
               priority: str = "normal") -> list[int]:
    ids: list[int] = []
    with Session(engine) as session:
        cases = Cases(session, registry)
        for i in range(count):
            case = cases.create("ticket", {"subject": f"Ticket {i}", "priority": priority},
                                actor)
            ids.append(case.id)
            if i % 500 == 499:
                session.commit()
        session.commit()
    return ids


@contextmanager
def statements(engine: Engine) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts[statement.lstrip().split(None, 1)[0].upper()] += 1

    def on_commit(_conn: Any) -> None:
        counts["COMMIT"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


@contextmanager
def spies() -> Iterator[Counter[str]]:
    """Counts YAML parses and machine constructions while active."""
    counts: Counter[str] = Counter()
    originals = {"load": YAML.load, "load_all": YAML.load_all, "init": Machine.__init__}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return fn(*args, **kwargs)
        return spy

    YAML.load = wrap("yaml", originals["load"])  # type: ignore[method-assign]
    YAML.load_all = wrap("yaml", originals["load_all"])  # type: ignore[method-assign]
    Machine.__init__ = wrap("machine", originals["init"])  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        YAML.load = originals["load"]  # type: ignore[method-assign]
        YAML.load_all = originals["load_all"]  # type: ignore[method-assign]
        Machine.__init__ = originals["init"]  # type: ignore[method-assign]


def per_op(counts: Counter[str], ops: int) -> str:
    order = ["SELECT", "UPDATE", "INSERT", "DELETE", "COMMIT"]
    keys = order + sorted(k for k in counts if k not in order)
    return ", ".join(f"{counts[k] / ops:g} {k}" for k in keys if counts[k])


def memory_growth(op: Callable[[int], None], ids: list[int], n: int) -> int:
    """Bytes still allocated after ``n`` operations (after warm-up and a full collection)."""
    for i in range(200):
        op(ids[i % len(ids)])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            op(ids[i % len(ids)])
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000, help="cases per side")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--block", type=int, default=250, help="operations per block")
    ap.add_argument("--memory", type=int, default=10_000, help="transitions under tracemalloc")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="caseloop-b2-") as tmp:
        folder = Path(tmp)
        (folder / "defs").mkdir()
        (folder / "defs" / "ticket_form.yaml").write_text(FORM, "utf-8")
        (folder / "defs" / "ticket.yaml").write_text(WORKFLOW, "utf-8")
        app = create_app({"CASELOOP_DATABASE_URL": f"sqlite:///{folder / 'b2.sqlite3'}",
                          "CASELOOP_DEFINITIONS": [str(folder / "defs")],
                          "CASELOOP_SECRET_KEY": "bench"})
        with app.app_context():
            st = state()
            if st.load_error is not None:
                print("bench definitions do not load:", st.load_error)
                return 2
            engine, registry = st.db.engine, st.registry
            upgrade(engine)
            with Session(engine) as session:
                registry.record(session)
                user = add_user(session, "bench", roles=["agent"], teams=["care"])
                session.commit()
                actor = Actor("bench", frozenset({"agent"}), id=user.id, sees_all=True)
            bench = Bench(engine, registry, actor)
            ids_a = make_cases(engine, registry, actor, args.cases)
            ids_b = make_cases(engine, registry, actor, args.cases)
            ids_c = make_cases(engine, registry, actor, args.cases)
            low = make_cases(engine, registry, actor, 50, priority="low")
            bench.states.update({i: "open" for i in ids_a + ids_b + ids_c + low})
            wf = registry.workflow("ticket")
            assert wf is not None

            # Warm-up (builds the shared machine once), then statement counts.
            for i in range(200):
                bench.caseloop(ids_a[i])
                bench.bare(ids_b[i])
                bench.bare_core(ids_c[i])
            counted = 200
            with statements(engine) as c_a:
                for i in range(counted):
                    bench.caseloop(ids_a[i])
            with statements(engine) as c_b:
                for i in range(counted):
                    bench.bare(ids_b[i])
            with statements(engine) as c_core:
                for i in range(counted):
                    bench.bare_core(ids_c[i])
            with statements(engine) as c_guard:
                for i in range(counted):
                    bench.rejected_guard(low[i % len(low)])
            with statements(engine) as c_stale:
                for i in range(counted):
                    bench.stale(ids_a[i])

            # Timing: interleaved blocks, the order alternating every round.
            runs: dict[str, list[float]] = {"caseloop": [], "bare": [], "core": []}
            ops = {"caseloop": (bench.caseloop, ids_a), "bare": (bench.bare, ids_b),
                   "core": (bench.bare_core, ids_c)}
            cursor = {"caseloop": 0, "bare": 0, "core": 0}
            with spies() as spied:
                for r in range(args.rounds):
                    order = ["caseloop", "bare", "core"]
                    for name in order if r % 2 == 0 else order[::-1]:
                        op, ids = ops[name]
                        start = time.perf_counter()
                        for _ in range(args.block):
                            op(ids[cursor[name] % len(ids)])
                            cursor[name] += 1
                        runs[name].append(args.block / (time.perf_counter() - start))
            models = len(registry.machine(wf).models)

            # M1: retained memory after many transitions, each kind on its own.
            grown_a = memory_growth(bench.caseloop, ids_a, args.memory)
            grown_b = memory_growth(bench.bare, ids_b, args.memory)
            engine.dispose()

    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio = med["caseloop"] / med["bare"]
    extra_mb = (grown_a - grown_b) / 2**20
    floor = med["caseloop"] / med["core"]
    print(f"B2 transition in-process: {args.cases} cases per side, {args.rounds} rounds x "
          f"{args.block} ops, SQLite WAL; Python {platform.python_version()}, "
          f"SQLAlchemy {sqlalchemy.__version__}")
    print()
    print("| operation | median ops/s | min | max | ms/op | SQL per op |")
    print("|---|---:|---:|---:|---:|---|")
    for name, label, counts in (("bare", "bare ORM (baseline)", c_b),
                                ("core", "bare Core (floor, not gated)", c_core),
                                ("caseloop", "Caseloop `Cases.fire` + commit", c_a)):
        values = runs[name]
        print(f"| {label} | {med[name]:,.0f} | {min(values):,.0f} | {max(values):,.0f} | "
              f"{1000 / med[name]:.3f} | {per_op(counts, counted)} |")
    print(f"| Caseloop, guard refuses | | | | | {per_op(c_guard, counted)} |")
    print(f"| Caseloop, stale version | | | | | {per_op(c_stale, counted)} |")
    print()
    print(f"| memory after {args.memory:,} transitions (tracemalloc) | retained |")
    print("|---|---:|")
    print(f"| bare ORM | {grown_b / 1024:,.1f} KiB |")
    print(f"| Caseloop | {grown_a / 1024:,.1f} KiB |")
    print(f"| Caseloop above bare | {extra_mb * 1024:,.1f} KiB |")
    print()
    expected = Counter({"SELECT": 1, "UPDATE": 1, "INSERT": 2, "COMMIT": 1})
    exact = {k: v / counted for k, v in c_a.items()} == dict(expected)
    no_write = all(c[k] == 0 for c in (c_guard, c_stale) for k in ("UPDATE", "INSERT", "DELETE"))
    gates = [
        ("ratio >= 0.95x bare ORM (target)", ratio >= 0.95, f"{ratio:.2f}x"),
        ("exactly 1 SELECT + 1 UPDATE + 2 INSERT + COMMIT", exact, per_op(c_a, counted)),
        ("refused (guard, stale): no write", no_write, "0 writes" if no_write else "writes!"),
        ("0 YAML parses, 0 machines built while timing",
         spied["yaml"] == 0 and spied["machine"] == 0,
         f"{spied['yaml']} parses, {spied['machine']} machines"),
        ("shared machine keeps no models", models == 0, f"{models} models"),
        (f"memory after {args.memory:,} ops <= 1 MB above bare", extra_mb <= 1.0,
         f"{extra_mb * 1024:+,.1f} KiB"),
    ]
    print(f"Caseloop vs bare Core (the floor, for information): {floor:.2f}x")
    print()
    print("| check | result | |")
    print("|---|---|---|")
    for label, ok, figure in gates:
        print(f"| {label} | {figure} | {'PASS' if ok else 'FAIL'} |")
    print()
    print(f"total run: {time.perf_counter() - started:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "runs": runs, "medians": med, "ratio": ratio, "vs_core": floor,
            "statements": {"caseloop": c_a, "bare": c_b, "core": c_core, "guard": c_guard,
                           "stale": c_stale},
            "memory": {"caseloop": grown_a, "bare": grown_b}}, indent=2))
    return 0 if all(ok for _, ok, _ in gates) else 1


if __name__ == "__main__":
    sys.exit(main())
