"""Failed-login throttling: a sliding window of recent failures per user name and
address, and a looser one per address alone (one address trying many names).

The counters live in this process's memory. That fits the embedded default
(``caseloop serve``: one process, threads) and needs no table or server; behind
several processes or hosts each keeps its own counters, so an attacker gets that
many times the allowance — the shared store DESIGN.md names (Redis) slots in behind
the same three methods when it is configured. A restart forgets the counters.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

#: One address may fail this many times more often than one name on it.
ADDRESS_FACTOR = 4
#: Past this many keys, the expired ones are dropped (memory stays bounded).
MAX_KEYS = 50_000


class LoginThrottle:
    """At most ``limit`` failures per name and address within ``window`` seconds;
    after that, logins from there are refused until the oldest failure ages out."""

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str, address: str) -> float:
        """Seconds until a login for ``name`` from ``address`` is accepted again (0: now)."""
        now = self.clock()
        with self._lock:
            return max(self._wait(self._user_key(name, address), self.limit, now),
                       self._wait(("ip", address), self.limit * ADDRESS_FACTOR, now))

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > MAX_KEYS:
                self._forget_expired(now)
            for key, limit in ((self._user_key(name, address), self.limit),
                               (("ip", address), self.limit * ADDRESS_FACTOR)):
                self._failures.setdefault(key, deque(maxlen=limit)).append(now)

    def succeeded(self, name: str, address: str) -> None:
        """A good password clears the name's count (not the address's)."""
        with self._lock:
            self._failures.pop(self._user_key(name, address), None)

    @staticmethod
    def _user_key(name: str, address: str) -> Hashable:
        return ("user", name.strip().casefold(), address)

    def _wait(self, key: Hashable, limit: int, now: float) -> float:
        recent = self._failures.get(key)
        if recent is None or len(recent) < limit:
            return 0.0
        left = recent[0] + self.window - now  # the oldest of the last `limit` failures
        return left if left > 0 else 0.0

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, v in self._failures.items() if v[-1] + self.window <= now]:
            del self._failures[key]


def minutes(seconds: float) -> int:
    """Whole minutes to tell a person (never 0 while they must still wait)."""
    return max(1, math.ceil(seconds / 60))
