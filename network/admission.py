"""Who may connect: limits that no stranger can use to lock anyone out.

* **The table** holds at most ``max_peers`` connections (established or
  still in their handshake). When it is full, a plain client that has been
  silent for ``PLAIN_IDLE_EVICT_S`` or more makes room for the newcomer;
  otherwise the newcomer is refused (``REFUSE full <limit>``).
* **One address** (one remote IP) may hold at most ``max_per_address`` of
  the incoming connections (``REFUSE busy <limit>``), so one host cannot
  fill the table. 0 turns the limit off.
* **A handshake** cannot last: a silent connection counts as a plain client
  after a second, and a hello begun must be finished within seconds (the
  protocol's timing), so no half-open connection holds a place for long.
* **Refusals are told**, not just done: the refused side gets a
  ``REFUSE`` line and a half-close, and its last bytes are read, so the reason
  reaches it before the connection ends (closing with unread input would
  reset it and could destroy the line). At most ``MAX_FAREWELLS`` refusals
  linger at a time; past that a newcomer is closed at once.
* **Notices are throttled**: the first refusal of a burst is reported, then
  at most one summary per ``REFUSAL_SUMMARY_S``.
"""

from __future__ import annotations

import collections
from typing import Callable, Iterable

from .outcomes import Refusal

PLAIN_IDLE_EVICT_S = 300.0
MAX_FAREWELLS = 32
REFUSAL_SUMMARY_S = 1.0


class Admission:
    def __init__(self, max_peers: int, max_per_address: int,
                 call_later: Callable, report: Callable[[str | None, Refusal, int, int], None]
                 ) -> None:
        self.max_peers = max_peers
        self.max_per_address = max_per_address
        self._call_later = call_later
        self._report = report
        self._per_address: collections.Counter = collections.Counter()
        self._throttled = 0
        self._timer = None
        self._farewells = 0         # refused connections still saying why

    # -- counting incoming connections per address --------------------------------------------

    def arrived(self, ip: str) -> None:
        self._per_address[ip] += 1

    def departed(self, ip: str) -> None:
        left = self._per_address[ip] - 1
        if left > 0:
            self._per_address[ip] = left
        else:
            del self._per_address[ip]

    def farewell_begins(self) -> bool:
        """One more refused connection may say why (False: too many already; close it)."""
        if self._farewells >= MAX_FAREWELLS:
            return False
        self._farewells += 1
        return True

    def farewell_ends(self) -> None:
        self._farewells -= 1

    # -- decisions --------------------------------------------------------------------------

    def check(self, ip: str | None, in_use: int,
              plain_idle: Iterable[tuple[float, object]], now: float
              ) -> tuple[Refusal | None, int, object]:
        """``(refusal, limit, evict)`` for one more connection.

        ``ip`` is the remote address of an incoming connection (``None`` for
        one of our own connects, which no address limit applies to);
        ``plain_idle`` gives ``(last_heard, entry)`` of established plain
        clients. ``evict`` is the entry of the connection to drop to make room, if any.
        """
        if ip is not None and self.max_per_address and \
                self._per_address[ip] >= self.max_per_address:
            return Refusal.BUSY, self.max_per_address, None
        if in_use < self.max_peers:
            return None, 0, None
        idle = [(heard, id(conn), conn) for heard, conn in plain_idle
                if now - heard >= PLAIN_IDLE_EVICT_S]
        if idle:
            return None, 0, min(idle)[2]
        return Refusal.FULL, self.max_peers, None

    def refused(self, address: str, refusal: Refusal, limit: int) -> None:
        """Say so once, then sum up the rest of a burst."""
        if self._timer is None:
            self._report(address, refusal, 1, limit)
            self._timer = self._call_later(REFUSAL_SUMMARY_S, self._summary, refusal, limit)
        else:
            self._throttled += 1

    def _summary(self, refusal: Refusal, limit: int) -> None:
        self._timer = None
        if self._throttled:
            count, self._throttled = self._throttled, 0
            self._report(None, refusal, count, limit)
            self._timer = self._call_later(REFUSAL_SUMMARY_S, self._summary, refusal, limit)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
