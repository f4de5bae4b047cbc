"""The worker loop: claim due jobs, run them, sleep a little, repeat until stopped.

``caseloop worker`` runs it in the foreground (several may run at once against
PostgreSQL); ``caseloop serve`` runs one in a background thread so that the
embedded default needs no second process. Stopping is graceful: the job in
hand finishes, jobs claimed but not started go back to the queue.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Callable

from flask import Flask

from .jobs import Executor

log = logging.getLogger("caseloop.worker")


class Worker:
    def __init__(self, executor: Executor, *, poll: float = 1.0,
                 on_error_wait: float = 5.0) -> None:
        self.executor = executor
        self.poll = poll
        self.on_error_wait = on_error_wait
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()

    def run(self, *, until_idle: bool = False,
            tick: Callable[[Counter[str]], None] | None = None) -> Counter[str]:
        """Work until :meth:`stop` is set (or, with ``until_idle``, until no job is due)."""
        while not self.stop.is_set():
            try:
                ran = self.run_batch()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("the worker could not claim jobs; retrying in %ss",
                              self.on_error_wait)
                self.stop.wait(self.on_error_wait)
                continue
            if tick is not None and ran:
                tick(self.counts)
            if until_idle and not ran:
                break
            if ran < self.executor.batch:
                self.stop.wait(0 if until_idle else self.poll)
        return self.counts

    def run_batch(self) -> int:
        """One round: the SLA moments that have come, then a batch of due jobs
        (which include the notifications the sweep just wrote)."""
        swept = self.executor.sweep()
        if swept:
            self.counts["sla"] += swept
        ids = self.executor.claim()
        for i, job_id in enumerate(ids):
            if self.stop.is_set():
                self.executor.release(ids[i:])
                break
            try:
                self.counts[self.executor.run(job_id)] += 1
            except BaseException:
                # The database failed under us: the rest go back now rather than
                # waiting out their lease and paying an attempt.
                self.executor.release(ids[i + 1:])
                raise
        return len(ids) + swept


def executor_for(app: Flask) -> Executor:
    """An executor over the application's database, definitions and settings."""
    from . import listeners
    from .crm import inbound
    from .extension import state
    from .handlers import builtin

    with app.app_context():
        st = state()
        engine = st.db.engine
    config = app.config
    tickers = [listeners.ticker(st.plugins)]
    if st.crm is not None:
        tickers.append(inbound.ticker(st.crm))
    return Executor(
        engine, st.registry, builtin(), settings=config, plugins=st.plugins, crm=st.crm,
        tickers=tickers,
        lease=dt.timedelta(seconds=float(config["CASELOOP_JOB_LEASE"])),
        time_limit=dt.timedelta(seconds=float(config["CASELOOP_JOB_TIME_LIMIT"])),
        region=config["CASELOOP_PHONE_REGION"], zone=config["CASELOOP_TIMEZONE"])


def start_in_background(app: Flask) -> tuple[Worker, threading.Thread]:
    """The in-process worker of ``caseloop serve`` (a daemon thread)."""
    worker = Worker(executor_for(app), poll=float(app.config["CASELOOP_WORKER_POLL"]))
    thread = threading.Thread(target=worker.run, name="caseloop-worker", daemon=True)
    thread.start()
    return worker, thread
