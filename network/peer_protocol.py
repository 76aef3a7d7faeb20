"""The peer protocol as a state machine: bytes and the time in, events and bytes out.

Nothing here touches a socket, a selector or a clock (in the manner of h11
and wsproto). The connection adapter feeds it what arrived
(:meth:`PeerProtocol.receive_data`, :meth:`~PeerProtocol.receive_eof`), calls
:meth:`~PeerProtocol.tick` when :meth:`~PeerProtocol.next_deadline` comes,
sends what :meth:`~PeerProtocol.data_to_send` returns, and hands the events
to the node, which answers a :class:`HelloReceived` with
:meth:`~PeerProtocol.accept_peer` or :meth:`~PeerProtocol.refuse`.

States::

    HANDSHAKE --hello, accepted--------------------> PEER ----+
        |  \\--silence, a plain first line, EOF----> PLAIN ---+--> FINISHING --> CLOSED
        |                 (a late hello upgrades PLAIN to PEER)  |
        \\--bad hello, refused, handshake timeout-----------------+

* An outgoing connection knocks (one short line: a plain listener sees no
  more than that); a chat.py peer answers with its opening (its certificate,
  or a knock of its own when it has no identity), and the outgoing side
  answers that in kind (see :mod:`network.wire`). A full hello is answered
  once the node accepts it, so the other side's full hello always means
  "accepted".
* The first line decides what the other side is. A hello makes it a chat.py
  peer. A plain line, or silence for ``hello_wait_s``, makes it a *plain*
  client (``nc``): no control lines ever go to it. A hello that arrives
  later (a slow link) as the first line still upgrades it, so timing never
  decides what a chat.py peer is; it only decides how soon a silent
  ``nc`` is listed.
* Heartbeats are agreed: each hello carries its sender's interval. We speak
  at least once per our interval (a PING when we have nothing else to say)
  and judge the other side by *its* interval: silent for
  ``heartbeat_misses`` of its periods, it is dead.
* FINISHING: we will send nothing more (a refusal, or a duplicate connection
  being retired). The adapter half-closes; what still arrives is read (a
  retired duplicate's last messages are shown) until the other side hangs
  up or ``linger_s`` passes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reactor.lines import LineCodec, LineTooLong

from . import wire
from .outcomes import Direction, HelloFault, HelloProblem, Refusal
from .protocol_events import (BadHello, BecamePlain, CloseNow, Goodbye, Got, HandshakeTimedOut,
                              HelloReceived, LineDiscarded, Messages, NameChanged, Numbering,
                              PeerRefused, PeerSilent, StartTLS, State)


@dataclass(frozen=True)
class Timing:
    hello_wait_s: float = 1.0          # silence after which a connection counts as plain
    # ... one we dialled: our hello has to cross a link and be answered, and text of ours
    # sent to a chat.py peer taken for plain would break its TLS: a slow link gets longer.
    answer_wait_s: float = 3.0
    handshake_timeout_s: float = 5.0   # a hello begun must be finished by then
    raw_flush_s: float = 0.5           # a plain client's unterminated text is shown then
    linger_s: float = 2.0              # FINISHING waits this long for the other side
    heartbeat_misses: int = 3          # periods of silence before a peer counts as dead


class PeerProtocol:
    """One connection's worth of the chat protocol."""

    __slots__ = ("direction", "ours", "timing", "state", "theirs", "_codec", "_out", "_started",
                 "last_received", "last_sent", "_finish_started", "_lines_seen", "_judging",
                 "_deciding", "_answered", "_held", "_deliver_when_finishing",
                 "_max_line_bytes", "_cert", "secured", "_awaiting_full_hello", "_knocked",
                 "_announced", "_in_seq")

    def __init__(self, direction: Direction, ours: wire.Hello, now: float,
                 timing: Timing = Timing(), max_line_bytes: int | None = None,
                 cert_der: bytes | None = None) -> None:
        self.direction = direction
        self.ours = ours
        self.timing = timing
        self.state = State.HANDSHAKE
        self.theirs: wire.Hello | None = None
        self._codec = LineCodec() if max_line_bytes is None else LineCodec(max_line_bytes)
        self._out: list[str] = []
        self._started = now
        self.last_received = now
        self.last_sent = now
        self._finish_started = 0.0
        self._lines_seen = 0             # complete lines so far (a late hello must be first)
        self._judging = True             # False while our side does not read
        self._deciding = False           # a hello waits for the node's answer
        self._answered = False           # our full hello is on its way
        self._held: list = []            # lines that came behind the hello being decided
        self._deliver_when_finishing = False
        self._max_line_bytes = max_line_bytes
        self._cert = cert_der            # ours: offer TLS with it (None: no identity)
        self.secured = False             # the TLS handshake is done; all else is inside it
        self._awaiting_full_hello = False   # we answered a certificate with our full hello
        self._knocked = False            # it knocked and we opened: a hello must follow
        self._announced = ours.name      # the name the other side last heard from us
        self._in_seq = 0                 # the number of its next message (0: not numbered)
        if direction is Direction.OUTGOING:
            self._queue(wire.knock_line())

    @classmethod
    def refusing(cls, refusal: Refusal, argument: int | str | None, ours: wire.Hello,
                 now: float, timing: Timing = Timing()) -> "PeerProtocol":
        """A connection refused before it said anything (the table is full ...)."""
        proto = cls(Direction.INCOMING, ours, now, timing)
        proto._queue(wire.refuse_line(refusal, argument))
        proto._finish(now)
        return proto

    # -- output -------------------------------------------------------------------------

    def _queue(self, line: str) -> None:
        self._out.append(line)

    def data_to_send(self) -> bytes:
        """Everything queued for the wire since the last call."""
        if not self._out:
            return b""
        data = wire.frame_lines(self._out)
        self._out.clear()
        return data

    def send_message(self, text: str, now: float) -> bytes:
        """The wire bytes of one line of a user's text, to send right away.

        The caller has checked that it has no control characters. Nothing is
        sent once the connection is finishing.
        """
        if self.sending(now):
            return wire.frame(text)
        return b""

    def sending(self, now: float) -> bool:
        """A message goes out now (already encoded by the caller)? False once finishing."""
        if self.state is State.PEER or self.state is State.PLAIN:
            self.last_sent = now
            return True
        return False

    def send_bye(self, now: float) -> None:
        if self.state is State.PEER:
            self._queue(wire.control_line(wire.BYE))
            self.last_sent = now

    def send_name(self, name: str | None, now: float) -> None:
        """We are called ``name`` from now on: tell a chat.py peer (a plain client hears nothing).

        A hello not yet sent carries it; one already sent is followed by a
        NAME line once the other side is known to be chat.py.
        """
        self.ours = replace(self.ours, name=name)
        if self.state is State.PEER:
            self._announce_name(now)

    def _announce_name(self, now: float) -> None:
        if self._announced != self.ours.name:
            self._announced = self.ours.name
            self._queue(wire.name_line(self.ours.name))
            self.last_sent = now

    @property
    def speaks_protocol(self) -> bool:
        return self.theirs is not None

    @property
    def delivers(self) -> bool:
        """Both sides number their messages and acknowledge (``delivery=1`` both ways)."""
        return self.ours.delivery and self.theirs is not None and self.theirs.delivery

    def send_got(self, stream: str | None, upto: int, now: float) -> None:
        """Acknowledge: of its stream ``stream`` we have everything up to ``upto``."""
        if self.state is State.PEER:
            self._queue(wire.got_line(stream, upto))
            self.last_sent = now

    def send_from(self, stream: str, seq: int, now: float) -> None:
        """Our next message is number ``seq`` of ``stream``."""
        if self.state is State.PEER:
            self._queue(wire.from_line(stream, seq))
            self.last_sent = now

    # -- the node's answers ---------------------------------------------------------------

    @property
    def deciding(self) -> bool:
        """A hello waits for the node's answer (the adapter stops reading meanwhile)."""
        return self._deciding

    def answer_hello(self, now: float) -> None:
        """Send our hello now and decide later (the node waits for its own connect)."""
        if not self._answered:
            self._answered = True
            self._announced = self.ours.name
            self._queue(wire.hello_line(self.ours))
            self.last_sent = now

    def accept_peer(self, now: float) -> list:
        """The node accepts the hello: a chat.py peer. Returns the events of lines held meanwhile."""
        self.answer_hello(now)
        self.state = State.PEER
        self.last_received = now
        self._announce_name(now)      # renamed after our hello left
        return self._decided(now)

    def refuse(self, refusal: Refusal, now: float, argument: int | str | None = None,
               introduce: bool = True) -> list:
        """Tell the other side why not, then finish.

        ``introduce``: our hello first, so it knows who refused (a duplicate, ourselves);
        not when the refusal is about who *it* is (it then learns nothing of us).
        """
        if self._deciding and introduce:
            self.answer_hello(now)
        self._queue(wire.refuse_line(refusal, argument))
        self._finish(now)
        return self._decided(now)

    def finish(self, now: float) -> list:
        """Send nothing more, but show what still arrives until the other side hangs up.

        For a duplicate connection that is being retired: its last messages count, and
        a chat.py peer is told (``BYE duplicate``), so that it does not take the end of
        this connection for the end of the peer, whichever of the two it learns first.
        """
        self._deliver_when_finishing = self.theirs is not None
        if self.theirs is not None and self.state is not State.FINISHING:
            self._queue(wire.control_line(wire.BYE, wire.DUPLICATE_WORD))
        self._finish(now)
        return self._decided(now)

    def _decided(self, now: float) -> list:
        self._deciding = False
        held, self._held = self._held, []
        return self._lines(held, now) if held else []

    def _finish(self, now: float) -> None:
        if self.state is not State.CLOSED:
            self.state = State.FINISHING
            self._finish_started = now

    def reading_paused(self, paused: bool, now: float) -> None:
        """While we do not read, silence proves nothing: do not judge it."""
        self._judging = not paused
        if not paused:
            self.last_received = now

    def closed(self) -> None:
        self.state = State.CLOSED

    # -- input --------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list:
        self.last_received = now
        overflows = self._codec.overflows
        items = self._codec.feed(data)
        if not items:
            return []
        state = self.state
        if self._codec.overflows == overflows and not self._deciding and (
                (state is State.PEER and "\x01" not in "".join(items))
                or (state is State.PLAIN and (self._lines_seen
                                               or not self._maybe_late_hello(items[0])))):
            # The hot path: a batch of text from an established connection.
            self._lines_seen += len(items)
            texts = items if all(items) else [text for text in items if text]
            if not texts:
                return []
            seq = self._in_seq
            if seq:
                self._in_seq = seq + len(texts)
            return [Messages(texts, seq)]
        return self._lines(items, now)

    def _lines(self, items: list, now: float) -> list:
        events: list = []
        texts: list[str] = []
        for index, item in enumerate(items):
            state = self.state
            if state is State.CLOSED:
                break
            if self._deciding:
                self._held.extend(items[index:])
                break
            if state is State.SECURING:
                break        # nothing belongs between a certificate and TLS: TLS will fail
            if type(item) is LineTooLong:
                if state is State.HANDSHAKE and (self.secured or self._awaiting_full_hello):
                    events.extend(self._bad_hello(Refusal.MALFORMED, HelloProblem.ENDLESS, now))
                    break
                if state is State.HANDSHAKE:
                    self.state = State.PLAIN
                    events.append(BecamePlain())
                if state is State.FINISHING:
                    continue
                self._flush_texts(texts, events)
                events.append(LineDiscarded(item.nbytes, self._codec.max_line_bytes))
                continue
            first = self._lines_seen == 0
            self._lines_seen += 1
            if state is State.FINISHING:
                if self._deliver_when_finishing and item and not wire.is_control(item):
                    texts.append(item)     # a retired duplicate's last words
            elif state is State.HANDSHAKE or (state is State.PLAIN and first
                                              and self._maybe_late_hello(item)):
                self._flush_texts(texts, events)
                events.extend(self._first_line(item, now))
            elif state is State.PEER and wire.is_control(item):
                self._flush_texts(texts, events)
                events.extend(self._control(item))
            elif item:
                texts.append(item)
        self._flush_texts(texts, events)
        return events

    def _flush_texts(self, texts: list, events: list) -> None:
        if texts:
            seq = self._in_seq
            if seq:
                self._in_seq = seq + len(texts)
            events.append(Messages(texts[:], seq))
            texts.clear()

    def _control(self, line: str) -> list:
        verb, words = wire.split_control(line)
        if verb == wire.BYE:
            return [Goodbye(duplicate=words[:1] == [wire.DUPLICATE_WORD])]
        if verb == wire.NAME:
            name, bad = wire.parse_name(" ".join(words) if words else None)
            return [NameChanged(name, bad)]
        if verb == wire.REFUSE:
            self._finish(self.last_received)
            return [PeerRefused(wire.parse_refuse(words))]
        if self.delivers and (verb == wire.GOT or verb == wire.FROM):
            numbered = wire.parse_numbered(words)
            if numbered is None:
                return []            # a broken one proves nothing: ignored, as unknown verbs
            stream, number = numbered
            if verb == wire.GOT:
                return [Got(stream, number)]
            if stream is not None and number > 0:
                self._in_seq = number
                return [Numbering(stream, number)]
            return []
        return []   # PING proves life by arriving; unknown verbs are for later versions

    def receive_eof(self, now: float) -> list:
        """The other side will send nothing more."""
        events: list = []
        partial = self._codec.maybe_take_partial()
        if self._expects_hello or self.state is State.SECURING:
            return events
        if self.state is State.HANDSHAKE and (partial or self._lines_seen):
            self.state = State.PLAIN     # it spoke and hung up: show what it said
            events.append(BecamePlain())
        if partial and self.state is State.PLAIN:
            events.append(Messages([partial]))
        return events

    # -- the first line, and TLS -------------------------------------------------------
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

    @property
    def _expects_hello(self) -> bool:
        """Only a hello may come next (it has shown it is chat.py): no silence makes this
        connection plain, and a text line is a broken handshake."""
        return self.secured or self._awaiting_full_hello or self._knocked

    def _maybe_late_hello(self, line: str) -> bool:
        return wire.is_control(line) and wire.split_control(line)[0] == wire.HELLO

    def _first_line(self, line: str, now: float) -> list:
        if wire.is_control(line):
            verb, words = wire.split_control(line)
            if verb == wire.HELLO:
                try:
                    hello = wire.parse_hello(words)
                except wire.BadHello as exc:
                    return self._bad_hello(exc.refusal, exc.fault, now)
                if isinstance(hello, wire.Knock):
                    return self._knock(now)
                if isinstance(hello, wire.TlsHello):
                    return self._tls_offered(hello, now)
                if self.direction is Direction.OUTGOING and not self.secured:
                    # It opened with its full hello (it has no identity): ours, in plain text.
                    self.answer_hello(now)
                self.theirs = hello
                self._deciding = True
                return [HelloReceived(hello)]
            if verb == wire.REFUSE and self.direction is Direction.OUTGOING:
                self._finish(now)
                return [PeerRefused(wire.parse_refuse(words))]
        if self._expects_hello:
            # Inside TLS, after we answered a certificate with our full hello, or after
            # its knock, only a hello may come.
            return self._bad_hello(Refusal.MALFORMED, HelloProblem.FULL_HELLO_EXPECTED, now)
        events: list = []
        if self.state is State.HANDSHAKE:
            self.state = State.PLAIN
            events.append(BecamePlain())
        if line:
            events.append(Messages([line]))
        return events

    def _bad_hello(self, refusal: Refusal, fault: HelloFault | HelloProblem, now: float) -> list:
        """A first line we cannot accept: say why (with our versions, for VERSION), finish."""
        argument = " ".join(wire.VERSIONS) if refusal is Refusal.VERSION else None
        self._queue(wire.refuse_line(refusal, argument))
        self._finish(now)
        if isinstance(fault, HelloProblem):
            fault = HelloFault(fault)
        return [BadHello(refusal, fault)]

    def _knock(self, now: float) -> list:
        """It knocked (it speaks chat.py): we show that we do with our opening, our
        certificate, or our own knock when we have no identity. A knock answering ours
        is that: our full hello goes in plain text, and its own comes once it agrees."""
        if self.direction is Direction.OUTGOING:
            if self._answered or self.secured:
                return self._bad_hello(Refusal.MALFORMED, HelloProblem.FULL_HELLO_EXPECTED, now)
            self.answer_hello(now)
            self._awaiting_full_hello = True
            return []
        if self._expects_hello:
            return self._bad_hello(Refusal.MALFORMED, HelloProblem.FULL_HELLO_EXPECTED, now)
        self._knocked = True
        if self.state is State.PLAIN:
            self.state = State.HANDSHAKE     # a late knock: chat.py after all (see its hello)
        self._queue(wire.tls_hello_line(self._cert) if self._cert is not None
                    else wire.knock_line())
        self.last_sent = now
        return []

    def _tls_offered(self, hello: wire.TlsHello, now: float) -> list:
        """The other side offers TLS with its certificate (after our knock, or answering
        our opening, or an older chat.py's first line)."""
        if self.secured or self._awaiting_full_hello or (self._knocked and self._cert is None):
            # inside TLS; or we answered its certificate with a full hello, or its knock
            # with ours (we have no identity)
            return self._bad_hello(Refusal.MALFORMED, HelloProblem.CERT_MISPLACED, now)
        if self._cert is None:
            # No identity of ours: answer with the full hello, go on in plain text; the
            # next line must be its full hello.
            self._answered = True
            self._awaiting_full_hello = True
            self._lines_seen = 0
            self._queue(wire.hello_line(self.ours))
            self.last_sent = now
            return []
        # The side that spoke its certificate second is the TLS server: it waits for the
        # other's first TLS bytes, which come only after the other has read its line.
        answering = self.direction is Direction.OUTGOING or not self._knocked
        if answering:
            self._queue(wire.tls_hello_line(self._cert))
            self.last_sent = now
        self.state = State.SECURING
        return [StartTLS(hello.cert_der, server_side=answering)]

    # -- time -------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next (``None``: nothing planned)."""
        state, t = self.state, self.timing
        if state is State.HANDSHAKE:
            if self._deciding or self.theirs is not None:
                return None
            if self._expects_hello or _control_line_begun(self._codec):
                return self._started + t.handshake_timeout_s
            return self._started + self._silence_s()
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

    def _silence_s(self) -> float:
        """How long a silent other side may take before it counts as plain."""
        t = self.timing
        if self.direction is Direction.OUTGOING and not self.secured:
            return max(t.hello_wait_s, t.answer_wait_s)
        return t.hello_wait_s

    def _allowed_silence_s(self) -> float:
        return self.timing.heartbeat_misses * self.theirs.heartbeat_ms / 1000

    def tick(self, now: float) -> list:
        state, t = self.state, self.timing
        if state is State.HANDSHAKE and not self._deciding and self.theirs is None:
            if self._expects_hello or _control_line_begun(self._codec):
                if now >= self._started + t.handshake_timeout_s:
                    self._finish(now)
                    return [HandshakeTimedOut()]
            elif now >= self._started + self._silence_s():
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
