"""Reconnecting by ourselves to the identities we trust.

A trusted peer that is not connected is dialled at the address it was last
seen at: on start, and after its connection drops. The first try comes after
``FIRST_S``; each failure doubles the wait, up to ``CAP_S``; a success (by our
dial or by its own) ends the plan. The observer hears once when a plan
starts, never once per try: the next line is the usual ``connected to``.
``terminate`` stops the plan for that identity until it is connected again
(our ``connect``, or its own).

The dial itself belongs to the node (one connect in flight at a time, and our
user's ``connect`` goes first): :meth:`Reconnector.due` asks it, and a busy node
is asked again a moment later without counting as a failure.
"""

from __future__ import annotations

from typing import Callable

from .outcomes import Recipient

FIRST_S = 1.0
CAP_S = 60.0
BUSY_RETRY_S = 0.5        # the node was dialling someone else: ask again this soon


class _Plan:
    __slots__ = ("fingerprint", "name", "address", "wait_s", "timer", "dialling")

    def __init__(self, fingerprint: bytes, name: str, address: tuple[str, int]) -> None:
        self.fingerprint = fingerprint
        self.name = name
        self.address = address
        self.wait_s = FIRST_S
        self.timer = None
        self.dialling = False


class Reconnector:
    def __init__(self, reactor, dial: Callable[[bytes, tuple, Callable[[bool], None]], bool],
                 announce: Callable[[Recipient, tuple], None]) -> None:
        self._reactor = reactor
        self._dial = dial              # dial(fingerprint, address, done) -> started?
        self._announce = announce
        self._plans: dict[bytes, _Plan] = {}
        self._stopped: set[bytes] = set()
        self.enabled = True

    def want(self, fingerprint: bytes, name: str, address: tuple[str, int] | None) -> None:
        """Reconnect to this identity (unless it is planned already, or stopped)."""
        if not self.enabled or address is None or fingerprint in self._stopped \
                or fingerprint in self._plans:
            return
        plan = self._plans[fingerprint] = _Plan(fingerprint, name, tuple(address))
        self._announce(Recipient(name), plan.address)
        self._schedule(plan, FIRST_S)

    def seen_at(self, fingerprint: bytes, name: str, address: tuple[str, int]) -> None:
        """It says it is at ``address`` now (a LAN announcement, or an ID our user just
        trusted): dial there, soon. Only a claim: the dial checks the identity."""
        plan = self._plans.get(fingerprint)
        if plan is None:
            self.want(fingerprint, name, address)
            return
        plan.address = tuple(address)
        if plan.timer is not None and not plan.dialling:
            plan.timer.cancel()
            plan.wait_s = FIRST_S
            self._schedule(plan, 0.0)

    def connected(self, fingerprint: bytes) -> None:
        """It is connected (whoever dialled): no plan, and ``terminate`` is forgotten."""
        self._stopped.discard(fingerprint)
        plan = self._plans.pop(fingerprint, None)
        if plan is not None and plan.timer is not None:
            plan.timer.cancel()

    def drop(self, fingerprint: bytes) -> None:
        """Its address proved to be someone else's: no more tries until it is heard of
        again (an announcement, or its own connection)."""
        plan = self._plans.pop(fingerprint, None)
        if plan is not None and plan.timer is not None:
            plan.timer.cancel()

    def stop(self, fingerprint: bytes) -> None:
        """Our user closed it: no reconnecting until it is connected again."""
        self.connected(fingerprint)
        self._stopped.add(fingerprint)

    def close(self) -> None:
        for plan in self._plans.values():
            if plan.timer is not None:
                plan.timer.cancel()
        self._plans.clear()
        self.enabled = False

    def planned(self) -> list[bytes]:
        return list(self._plans)

    def _schedule(self, plan: _Plan, delay_s: float) -> None:
        plan.timer = self._reactor.call_later(delay_s, self._due, plan)

    def _due(self, plan: _Plan) -> None:
        plan.timer = None
        if self._plans.get(plan.fingerprint) is not plan:
            return
        plan.dialling = True
        if not self._dial(plan.fingerprint, plan.address,
                          lambda ok: self._settled(plan, ok)):
            plan.dialling = False
            self._schedule(plan, BUSY_RETRY_S)

    def _settled(self, plan: _Plan, ok: bool) -> None:
        plan.dialling = False
        if self._plans.get(plan.fingerprint) is not plan:
            return      # connected: the plan is over (even ``ok`` with another identity
                        # at that address leaves it planned, and it is tried again)
        plan.wait_s = min(plan.wait_s * 2, CAP_S)
        self._schedule(plan, plan.wait_s)
