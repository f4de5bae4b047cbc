"""``caseloop demo``: serve after seeding demo people and sample complaints."""

from __future__ import annotations

import datetime as dt
import importlib.util
import secrets
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from ..cases import Cases
from ..errors import CaseError
from ..extension import state
from ..models import Case, User, utcnow
from ..server import THREADS
from ..users import actor_for, add_user, issue_token
from .common import _database
from .serve import prepare, run

#: (name, display name, roles, teams): one of each role the shipped workflows use, and
#: a designer.
PEOPLE = [
    ("li.na", "李娜", ["agent"], ["care"]),
    ("wang.qiang", "王强", ["supervisor", "agent"], ["care"]),
    ("zhao.min", "赵敏", ["quality"], ["quality"]),
    ("chen.jie", "陈杰", ["manager"], ["quality"]),
    # Changes forms and workflows in the designer (/designer).
    ("sun.li", "孙丽", ["designer"], ["quality"]),
]

#: Sample complaints and how far to walk each (trigger, step data).
SAMPLES: list[tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]] = [
    ({"customer_name": "张伟", "phone": "138 0013 8000", "channel": "phone",
      "category": "delivery", "subject": "包裹延误五天",
      "description": "订单 20261104-88 的包裹晚到五天，外箱破损。", "priority": "high"},
     [("acknowledge", {}),
      ("assess", {"severity": 3, "impact": "single_customer", "complexity": "simple"})]),
    ({"customer_name": "Emily Zhou", "email": "emily.zhou@example.com", "channel": "email",
      "category": "billing", "subject": "Charged twice for one order",
      "description": "My card was charged twice for order 20261112-17.",
      "priority": "normal", "preferred_language": "en"},
     [("acknowledge", {})]),
    ({"customer_name": "刘洋", "phone": "+86 139 1234 5678", "channel": "web",
      "category": "product_quality", "subject": "电水壶使用一周后漏水",
      "description": "购买的电水壶使用一周后底部漏水，担心安全问题。", "priority": "urgent"},
     []),
]


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(0, 65535), show_default=True)
@click.option("--threads", default=THREADS, type=click.IntRange(1, 64), show_default=True)
@click.option("--history/--no-history", default=True, show_default=True,
              help="Also add a few months of synthetic complaints, revisits and survey "
                   "answers (marked as such), so the dashboard has numbers.")
@with_appcontext
@_database
def demo_command(host: str, port: int, threads: int, history: bool) -> None:
    """Like 'serve', after adding demo people (printed with their passwords and API
    tokens) and a few sample complaints. Safe to repeat: existing people are kept
    and get new tokens."""
    prepare("start the demo")
    session = state().db.session
    click.echo("\ndemo people (password, API token):")
    for name, display, roles, teams in PEOPLE:
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        password = "(unchanged)"
        if user is None:
            password = secrets.token_urlsafe(9)
            user = add_user(session, name, roles=roles, teams=teams, password=password,
                            display_name=display)
        token = issue_token(session, user, label="demo")
        session.commit()
        click.echo(f"  {name:<11} {', '.join(roles):<18} {password:<14} {token}")
    if session.execute(select(Case.id).limit(1)).first() is None:
        _seed_cases()
        if history:
            _synthetic_history()
    click.echo()
    run(host, port, threads)


def _seed_cases() -> None:
    st = state()
    session = st.db.session
    agent = session.execute(select(User).where(User.name == "li.na")).scalar_one()
    actor = actor_for(session, agent,
                      sees_all_roles=current_app.config["CASELOOP_SEE_ALL_ROLES"])
    cases = Cases(session, st.registry, region=current_app.config["CASELOOP_PHONE_REGION"])
    made = 0
    for data, steps in SAMPLES:
        try:
            case = cases.create("complaint", data, actor)
            for trigger, step in steps:
                case = cases.fire(case.id, trigger, step, actor)
            session.commit()
            made += 1
        except CaseError as exc:  # definitions changed locally: seed what still fits
            session.rollback()
            click.echo(f"  (sample complaint skipped: {exc.message})", err=True)
    click.echo(f"\nsample complaints: {made}")


#: The synthetic history: enough for every dashboard tile and chart, seconds to write.
HISTORY_DAYS, HISTORY_CASES, HISTORY_ANSWERS, HISTORY_SEED = 90, 700, 600, 2026


def _synthetic_history() -> None:
    """Months of seeded synthetic cases and answers from the benchmark's generator
    (bench/generate.py, in a source checkout only): agents 'synthetic.*', customers
    'SYN-*', each case's description saying it is synthetic."""
    source = Path(__file__).resolve().parents[2] / "bench" / "generate.py"
    loader = importlib.util.spec_from_file_location("caseloop_bench_generate", source)
    if not source.is_file() or loader is None or loader.loader is None:
        click.echo("  (no synthetic history: bench/generate.py comes with the source "
                   "checkout only)", err=True)
        return
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    st = state()
    st.db.session.commit()
    now = utcnow()
    try:
        counts = module.generate(st.db.engine, cases=HISTORY_CASES, answers=HISTORY_ANSWERS,
                                 seed=HISTORY_SEED, start=now - dt.timedelta(days=HISTORY_DAYS),
                                 end=now, registry=st.registry)
    except ValueError as exc:  # definitions changed locally: no complaint or revisit
        click.echo(f"  (no synthetic history: {exc})", err=True)
        return
    click.echo(f"synthetic history (demo data, seed {HISTORY_SEED}, last {HISTORY_DAYS} "
               f"days): {counts['complaints']} complaints, {counts['revisits']} revisits, "
               f"{counts['answers']} answers")
