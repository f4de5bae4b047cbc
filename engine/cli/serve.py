"""``caseloop serve``: the embedded default on waitress."""

from __future__ import annotations

import socket

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import migrations
from ..designer import overlay
from ..extension import state
from ..server import THREADS, Server
from ..worker import start_in_background
from .common import _count, _database, _refuse_broken_definitions, _url


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 listens on every interface.")
@click.option("--port", default=5000, type=click.IntRange(0, 65535), show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--threads", default=THREADS, type=click.IntRange(1, 64), show_default=True,
              help="Requests served at once.")
@with_appcontext
@_database
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve Caseloop over HTTP (migrates and records the definitions first).

    The database is CASELOOP_DATABASE_URL, by default a SQLite file in the
    instance folder. Refuses to start while the definitions have errors.
    """
    prepare("serve")
    run(host, port, threads)


def prepare(doing: str) -> None:
    """Refuse broken definitions, migrate, record the definition versions."""
    st = state()
    _refuse_broken_definitions(st, doing)
    _, revision = migrations.upgrade(st.db.engine)
    st.registry.refresh(st.db.session, force=True)
    # Publications the files now hold (exported and committed): the files lead again.
    overlay.settle(st.db.session, st.registry.effect.agreed)
    recorded = st.registry.record(st.db.session)
    st.db.session.commit()
    d = st.registry.current
    click.echo(f"database {_url(st)} at {revision}")
    click.echo(f"definitions: {_count(len(d.workflows), 'workflow')}, "
               f"{_count(len(d.forms), 'form')} ({len(recorded)} new versions recorded)")


def run(host: str, port: int, threads: int) -> None:
    """Listen until stopped (after :func:`prepare`)."""
    st = state()
    st.db.session.remove()  # hold no connection while serving
    try:
        server = Server(current_app._get_current_object(),  # type: ignore[attr-defined]
                        host, port, threads)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}: {exc.strerror or exc}; give an "
                                   "IP address, or a host name this machine resolves") from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what uses the port "
            "or choose another with --port") from None
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = None
    if app.config["CASELOOP_SERVE_WORKER"]:
        worker, thread = start_in_background(app)
        click.echo("jobs: a worker runs in this process (CASELOOP_SERVE_WORKER=false turns "
                   "it off when 'caseloop worker' runs apart)")
    click.echo(f"Caseloop is listening on {server.url} (Ctrl+C stops it): open it in a "
               "browser to log in")
    try:
        server.run()
    finally:
        if worker is not None:
            worker.stop.set()  # the job in hand finishes; claimed ones go back
            thread.join(timeout=float(app.config["CASELOOP_JOB_TIME_LIMIT"]) + 5)
    click.echo("stopped")
