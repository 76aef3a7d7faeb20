"""What time does to a connection: the hello wait, the handshake's deadline, heartbeats,
a plain client's unfinished line, and the linger of a finishing connection.

A mixin of :class:`network.peer_protocol.PeerProtocol` (it uses that class's
state and its ``timing``), like :mod:`network.handshake`. The adapter asks
:meth:`Liveness.next_deadline` when to call :meth:`Liveness.tick`; both take the
time as an argument, so tests drive them on a fake clock.
"""

from __future__ import annotations

from reactor.lines import LineCodec

from . import wire
from .protocol_events import (BecamePlain, CloseNow, HandshakeTimedOut, Messages, PeerSilent,
                              State)


class Liveness:
    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next (``None``: nothing planned)."""
        state, t = self.state, self.timing
        if state is State.HANDSHAKE:
            if self._deciding or self.theirs is not None:
                return None
            if self.secured or self._awaiting_full_hello or _control_line_begun(self._codec):
                return self._started + t.handshake_timeout_s
            return self._started + t.hello_wait_s
        if state is State.PEER:
            ping = self.last_sent + self.ours.heartbeat_ms / 1000
            if not self._judging:
                return ping
            return min(ping, self.last_received + self._allowed_silence_s())
        if state is State.PLAIN:
            return self.last_received + t.raw_flush_s if self._codec.pending_bytes else None
        if state is State.FINISHING:
            return self._finish_started + t.linger_s
        return None

    def _allowed_silence_s(self) -> float:
        return self.timing.heartbeat_misses * self.theirs.heartbeat_ms / 1000

    def tick(self, now: float) -> list:
        state, t = self.state, self.timing
        if state is State.HANDSHAKE and not self._deciding and self.theirs is None:
            if self.secured or self._awaiting_full_hello or _control_line_begun(self._codec):
                if now >= self._started + t.handshake_timeout_s:
                    self._finish(now)
                    return [HandshakeTimedOut()]
            elif now >= self._started + t.hello_wait_s:
                self.state = State.PLAIN
                return [BecamePlain()] + self.tick(now)
        elif state is State.PEER:
            silent = now - self.last_received
            if self._judging and silent >= self._allowed_silence_s():
                return [PeerSilent(silent)]
            if now - self.last_sent >= self.ours.heartbeat_ms / 1000:
                self._queue(wire.control_line(wire.PING))
                self.last_sent = now
        elif state is State.PLAIN:
            if self._codec.pending_bytes and now - self.last_received >= t.raw_flush_s:
                text = self._codec.maybe_take_partial()
                if text:
                    return [Messages([text])]
        elif state is State.FINISHING:
            if now >= self._finish_started + t.linger_s:
                return [CloseNow()]
        return []


def _control_line_begun(codec: LineCodec) -> bool:
    """Has a control line begun (bytes without their newline yet)?"""
    return codec.pending_bytes > 0 and codec.peek_partial(1) == b"\x01"
