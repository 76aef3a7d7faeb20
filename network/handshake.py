"""The first line of a connection, and TLS: how the peer protocol tells who is there.

A mixin of :class:`network.peer_protocol.PeerProtocol` (it uses that class's
state): the part of the state machine that reads the first line and decides,
from it alone, what the other side is. Bytes in, events out; no I/O here either.

* ``\\x01HELLO chat/2 cert=...``: a chat.py peer with an identity offers TLS.
  With an identity of ours we answer in kind and ask for TLS (:class:`StartTLS`);
  without one we answer with our full hello and go on in plain text.
* ``\\x01HELLO chat/2 port=... node=... heartbeat=...``: a chat.py peer in plain
  text (or, inside TLS, the real hello). The node decides (:class:`HelloReceived`).
* ``\\x01REFUSE ...`` in answer to our hello: it will not have us.
* Anything else: a plain client (``nc``); what it said is a message.
"""

from __future__ import annotations

from reactor.lines import LineCodec

from . import wire
from .outcomes import Direction, Refusal
from .protocol_events import (BadHello, BecamePlain, HelloReceived, Messages, PeerRefused,
                              StartTLS, State)


class Handshake:
    _awaiting_full_hello = False

    def secured_now(self, now: float) -> list:
        """The TLS handshake is done: the hellos again, inside it, the same way round
        (the side that connected speaks first; the other answers once its node agrees)."""
        self.secured = True
        self.state = State.HANDSHAKE
        self._codec = LineCodec() if self._max_line_bytes is None else \
            LineCodec(self._max_line_bytes)
        self._lines_seen = 0
        self._started = self.last_received = now
        self._answered = False
        if self.direction is Direction.OUTGOING:
            self.answer_hello(now)
        return []

    def _maybe_late_hello(self, line: str) -> bool:
        return wire.is_control(line) and wire.split_control(line)[0] == wire.HELLO

    def _first_line(self, line: str, now: float) -> list:
        late = self.state is State.PLAIN
        if wire.is_control(line):
            verb, words = wire.split_control(line)
            if verb == wire.HELLO:
                try:
                    hello = wire.parse_hello(words)
                except wire.BadHello as exc:
                    argument = " ".join(wire.VERSIONS) if exc.refusal is Refusal.VERSION else None
                    self._queue(wire.refuse_line(exc.refusal, argument))
                    self._finish(now)
                    return [BadHello(exc.refusal, exc.detail)]
                if isinstance(hello, wire.TlsHello):
                    return self._tls_offered(hello, now)
                if self._answered and self._cert and not self.secured \
                        and self.direction is Direction.OUTGOING:
                    # We offered TLS; it has no identity: our full hello, in plain text.
                    self._queue(wire.hello_line(self.ours))
                    self.last_sent = now
                self.theirs = hello
                self._deciding = True
                return [HelloReceived(hello, late)]
            if verb == wire.REFUSE and self.direction is Direction.OUTGOING:
                self._finish(now)
                return [PeerRefused(wire.parse_refuse(words))]
        if self.secured or self._awaiting_full_hello:
            # Inside TLS, or after we answered a certificate with our full hello,
            # only a full hello may come first.
            self._queue(wire.refuse_line(Refusal.MALFORMED))
            self._finish(now)
            return [BadHello(Refusal.MALFORMED, "expected a full hello")]
        events: list = []
        if self.state is State.HANDSHAKE:
            self.state = State.PLAIN
            events.append(BecamePlain())
        if line:
            events.append(Messages([line]))
        return events

    _awaiting_full_hello = False

    def _tls_offered(self, hello: wire.TlsHello, now: float) -> list:
        """The other side offers TLS with its certificate."""
        if self.secured or self._awaiting_full_hello or (
                self.direction is Direction.OUTGOING and not self._cert):
            self._queue(wire.refuse_line(Refusal.MALFORMED))
            self._finish(now)
            return [BadHello(Refusal.MALFORMED, "a certificate where none belongs")]
        if self._cert is None:
            # No identity of ours: answer with the full hello, go on in plain text; the
            # next line must be its full hello.
            self._answered = True
            self._awaiting_full_hello = True
            self._lines_seen = 0
            self._queue(wire.hello_line(self.ours))
            self.last_sent = now
            return []
        if self.direction is Direction.INCOMING:
            self._queue(wire.tls_hello_line(self._cert))
        self.peer_cert = hello.cert_der
        self.state = State.SECURING
        return [StartTLS(hello.cert_der, server_side=self.direction is Direction.INCOMING)]
