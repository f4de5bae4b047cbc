"""The WSGI server behind ``caseloop serve``: waitress.

Waitress is pure Python (nothing to compile, runs wherever Python does) and
production-grade; it serves requests from a small pool of threads. The pool is
kept modest on purpose: on SQLite every write queues on the database file, so
more threads only mean more waiting writers.
"""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

from flask import Flask

#: Threads per process. Enough to overlap slow clients and reads; writes serialise anyway.
THREADS = 4


class Server:
    """A listening server; :meth:`run` serves until interrupted.

    Raises :class:`OSError` when the address cannot be bound (port in use,
    unknown host), before anything is served.
    """

    def __init__(self, app: Flask, host: str, port: int, threads: int = THREADS) -> None:
        # Imported here: an application embedding Caseloop never loads waitress.
        from waitress.server import create_server  # type: ignore[import-untyped]

        sock = _bind(host, port)
        try:
            self._server: Any = create_server(app, sockets=[sock], threads=threads,
                                              ident="caseloop")
        except BaseException:
            sock.close()
            raise

    @property
    def url(self) -> str:
        host, port = self._server.effective_host, self._server.effective_port
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def run(self) -> None:
        """Serve until Ctrl+C or SIGTERM (``docker stop``, systemd), then close."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _stop)
        # Waitress catches SystemExit and KeyboardInterrupt, closes and returns.
        self._server.run()

    def close(self) -> None:
        self._server.close()


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by waitress: when the port is
    taken, waitress leaves the socket of its half-made server open; we close ours.
    One address only (the first the host resolves to), so ``--port 0`` means one port."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    return socket.create_server(address, family=family)
