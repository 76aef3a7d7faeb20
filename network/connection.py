"""The adapter between one socket's transport, the loop's timers and the peer protocol.

It owns no chat logic and none of the node's bookkeeping (that is the node's
:class:`~network.registry.Entry`). Bytes from the transport go into the
:class:`~network.peer_protocol.PeerProtocol`; the events that come out go to
the node; what the protocol wants sent goes to the transport; one timer is
kept at the protocol's next deadline.

**One door.** The node never reaches into the protocol: it uses the verbs
here (:meth:`accept`, :meth:`refuse`, :meth:`defer`, :meth:`retire`,
:meth:`rename`, :meth:`leave`, :meth:`send`, :meth:`close`), each of which
calls the protocol, hands its events to the node and then flushes, half-closes,
pauses or re-arms as the protocol's state asks. The node queues the events
and handles them after the one it is handling (never re-entrantly), and a
``done`` callback is always called later, through the node's ``later``,
never from inside the call that was given it.

Nothing lost silently: every message handed to the transport is remembered
by the offset where it ends in the stream, so when the connection goes away
the number of messages still in our own buffer (a partly written one
included) is known exactly. (A message still waiting above the transport's
high-water mark was never confirmed: its sender is told on its own.)
"""

from __future__ import annotations

import bisect
import collections
from typing import Callable, Protocol as TypingProtocol

from reactor.loop import Reactor

from .outcomes import Direction, Refusal
from .peer_protocol import PeerProtocol, State


class Owner(TypingProtocol):
    """What a connection tells the node (implemented by :class:`network.node.Node`)."""

    def connection_events(self, conn: "Connection", events: list) -> None: ...
    def connection_ended(self, conn: "Connection", exc: BaseException | None,
                         unsent: int) -> None: ...
    def later(self, callback: Callable[..., None], *args) -> None: ...


class Connection:
    """One connection: transport below, peer protocol beside, the node above.

    It is the transport's ``reactor.protocol.Protocol`` (it has every method of one) but
    does not inherit the class: with ``__slots__`` of its own and no base with a
    ``__dict__``, an idle connection is one small object (there may be 20,000)."""

    __slots__ = ("_reactor", "_owner", "protocol", "direction", "remote_ip", "transport",
                 "_timer", "_timer_when", "_read_paused_by_node", "_eof_sent", "_written",
                 "_messages", "waiting", "fingerprint", "_expected_fingerprint")

    def __init__(self, reactor: Reactor, owner: Owner, protocol: PeerProtocol,
                 direction: Direction, remote_ip: str) -> None:
        self._reactor = reactor
        self._owner = owner
        self.protocol = protocol
        self.direction = direction
        self.remote_ip = remote_ip
        self.transport = None
        self._timer = None
        self._timer_when = 0.0
        self._read_paused_by_node = False
        self._eof_sent = False
        # Accounts: bytes handed to the transport, and where each message ends.
        self._written = 0
        # (base, ends): messages that end at base + each of ends (ascending); a batch of
        # send_to_all shares one ``ends`` list with every connection. A list (an empty
        # one is 56 bytes; a deque is 600, and thousands of connections sit idle).
        self._messages: list = []
        # (text, done) above high water: made when first needed, for the same reason.
        self.waiting: collections.deque | tuple = ()
        self.fingerprint: bytes | None = None   # proven by TLS (None: a plain connection)
        self._expected_fingerprint: bytes | None = None

    # -- what the node asks of it -----------------------------------------------------

    def accept(self) -> None:
        """Its hello is welcome: a chat.py peer (lines held meanwhile come out now)."""
        self._events(self.protocol.accept_peer(self._reactor.time()))

    def refuse(self, refusal: Refusal, introduce: bool = True) -> None:
        """Tell it why not, then finish (see :meth:`PeerProtocol.refuse`)."""
        self._events(self.protocol.refuse(refusal, self._reactor.time(), introduce=introduce))

    def defer(self) -> None:
        """Answer its hello now, decide later (our own connect has to settle first)."""
        self.protocol.answer_hello(self._reactor.time())
        self._after()

    def retire(self) -> None:
        """A duplicate: say so (our hello first, so it can tell which), then finish."""
        now = self._reactor.time()
        self.protocol.answer_hello(now)
        self._events(self.protocol.finish(now))

    def rename(self, name: str | None) -> None:
        self.protocol.send_name(name, self._reactor.time())
        self._after()

    def leave(self) -> None:
        """We are exiting: what waits goes into the buffer, then BYE, then close."""
        while self.waiting:
            text, done = self.waiting.popleft()
            self._write_message(text)
            self._owner.later(done, True)
        self.protocol.send_bye(self._reactor.time())
        self.close()

    def send(self, text: str, done: Callable[[bool], None]) -> None:
        """Queue one message; ``done(True)`` (later) once it is in the transport's buffer."""
        if self.waiting or self.transport.write_paused:
            self.wait((text, done))
            return
        self._write_message(text)
        self._owner.later(done, True)

    def wait(self, item: tuple) -> None:
        """``(text, done)`` waits until the transport takes writes again."""
        if not self.waiting:
            self.waiting = collections.deque()
        self.waiting.append(item)

    def acknowledge(self, stream: str | None, upto: int) -> None:
        """Tell a delivery peer what of its stream we have stored and shown (``GOT``)."""
        self.protocol.send_got(stream, upto, self._reactor.time())
        self._after()

    def number_from(self, stream: str, seq: int) -> None:
        """Our next message is number ``seq`` of ``stream`` (``FROM``): sent before it."""
        self.protocol.send_from(stream, seq, self._reactor.time())
        if not self.waiting:
            self._flush()

    @property
    def delivers(self) -> bool:
        return self.protocol.delivers

    def send_batch(self, data: bytes, ends: list, now: float) -> bool:
        """Messages already framed and joined (``ends``: where each ends in ``data``).

        False if they must wait their turn (write paused, or messages waiting).
        """
        if self.waiting or self.transport.write_paused:
            return False
        self._flush()                         # control lines queued before them go first
        if self.protocol.sending(now) and not self.transport.closed:
            self._messages.append((self._written, ends))
            self._account(data)
        return True

    def set_reading(self, reading: bool) -> None:
        """The node pauses every connection while its output is congested."""
        self._read_paused_by_node = not reading
        self.protocol.reading_paused(not reading, self._reactor.time())
        self._update_reading()

    def close(self) -> None:
        """Send what is buffered, then close (``terminate``, exit)."""
        self._flush()
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def start_tls(self, context, cert_der: bytes, server_side: bool, timeout_s: float) -> None:
        """Switch to TLS now: our certificate hello leaves in clear, all else inside TLS."""
        from reactor.tls import start_tls
        from .identity import fingerprint
        self._flush()
        self._expected_fingerprint = fingerprint(cert_der)
        start_tls(self._reactor, self.transport, self, context, server_side=server_side,
                  handshake_timeout=timeout_s)

    # -- from the transport -----------------------------------------------------------

    def connection_made(self, transport) -> None:
        if self.transport is not None:        # the TLS layer, its handshake done
            self._secured(transport)
            return
        self.transport = transport
        self._after()

    def _secured(self, tls) -> None:
        from .tlscontext import peer_matches
        # The context trusts exactly the certificate announced; this compares the exact
        # leaf too (an announced certificate could have signed another one).
        if not peer_matches(tls.peer_certificate, self._expected_fingerprint):
            tls.abort(ConnectionError("the peer's certificate is not the one it announced"))
            return
        self.transport = tls
        self.fingerprint = self._expected_fingerprint
        self._written = 0                 # accounts start again inside TLS
        self._messages = []
        self._events(self.protocol.secured_now(self._reactor.time()))

    def data_received(self, data: bytes) -> None:
        self._events(self.protocol.receive_data(data, self._reactor.time()))

    def eof_received(self) -> None:
        events = self.protocol.receive_eof(self._reactor.time())
        if events:
            self._owner.connection_events(self, events)
        self._flush()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.protocol.closed()
        unsent = self.unsent_messages()
        for _, done in self.waiting:
            self._owner.later(done, False)
        self.waiting = ()
        self._owner.connection_ended(self, exc, unsent)

    def pause_writing(self) -> None:
        pass   # send() looks at transport.write_paused

    def resume_writing(self) -> None:
        while self.waiting and not self.transport.write_paused and not self.transport.closed:
            text, done = self.waiting.popleft()
            self._write_message(text)
            self._owner.later(done, True)

    # -- accounts ---------------------------------------------------------------------

    def _write_message(self, text: str) -> None:
        self._flush()                         # control lines queued before it go first
        data = self.protocol.send_message(text, self._reactor.time())
        if data and not self.transport.closed:
            self._messages.append((self._written, (len(data),)))
            self._account(data)

    def _account(self, data: bytes) -> None:
        """Write ``data`` (its messages already noted) and forget those wholly sent."""
        self.transport.write(data)
        self._written += len(data)
        messages = self._messages
        sent = self._written - self.transport.get_write_buffer_size()
        gone = 0
        for base, ends in messages:
            if base + ends[-1] > sent:
                break
            gone += 1
        if gone:
            del messages[:gone]

    def unsent_messages(self) -> int:
        """Messages confirmed as sent that never fully left our own buffer."""
        transport = self.transport
        if transport is None:
            return 0
        left = transport.get_write_buffer_size() + transport.dropped_bytes
        sent = self._written - left
        return sum(len(ends) - bisect.bisect_right(ends, sent - base)
                   for base, ends in self._messages)

    # -- keeping the protocol's promises ----------------------------------------------

    def _events(self, events: list) -> None:
        """After a call into the protocol: its events to the node, then :meth:`_after`."""
        if events:
            self._owner.connection_events(self, events)
        self._after()

    def _flush(self) -> None:
        data = self.protocol.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)
            self._written += len(data)

    def _after(self) -> None:
        """Send what the protocol queued, half-close, read or not, re-arm the timer."""
        if self.transport is None or self.transport.closed:
            return
        self._flush()
        if self.protocol.state is State.FINISHING and not self._eof_sent:
            self._eof_sent = True
            if self.transport.can_write_eof:
                self.transport.write_eof()
            else:
                self.transport.close()    # TLS: close_notify (it reads no more after it)
        self._update_reading()
        self._arm()

    def _update_reading(self) -> None:
        if self.transport is None:
            return
        if self._read_paused_by_node or self.protocol.deciding:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _arm(self) -> None:
        """Keep one timer at the protocol's next deadline.

        Deadlines mostly move later (each message pushes the silence limit
        back), so the timer is only moved when the new deadline is *earlier*;
        a timer that fires early just asks again.
        """
        when = self.protocol.next_deadline()
        if when is None:
            return
        if self._timer is not None:
            if self._timer_when <= when:
                return
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._reactor.call_later(max(0.0, when - self._reactor.time()),
                                               self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.transport is None or self.transport.closed:
            return
        self._events(self.protocol.tick(self._reactor.time()))
