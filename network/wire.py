"""The chat wire format: plain lines, plus control lines for our own peers.

A message is its UTF-8 text and ``\\n``: nothing else, so ``nc`` is a full
peer. chat.py peers also exchange *control lines*, which start with
``CONTROL_MARK`` (U+0001, a control character the console refuses in typed
messages, so a user can never forge one)::

    \\x01HELLO chat/2 knock=1               "I speak chat.py; show me that you do" (first)
    \\x01HELLO chat/2 cert=<base64 DER>     "let us switch to TLS; this is my certificate"
    \\x01HELLO chat/2 port=<1-65535> node=<16 hex digits> heartbeat=<ms> [name=<name>]
    \\x01REFUSE <reason> [<argument>]     reason: self | duplicate | full <limit> |
                                        busy <limit> | version <versions we speak> |
                                        malformed
    \\x01PING                             "still here" (any line proves life)
    \\x01BYE                              "I am exiting" (sent before closing)
    \\x01BYE duplicate                    "this connection gives way to our other one"

The side that connects opens with the *knock*, one short line (23 bytes): a
plain listener (``nc -l``, another program speaking bare lines) sees that
and nothing else until it answers, and a connection that never answers is
taken for plain. A chat.py peer answers the knock with its opening: the
short hello that carries only its certificate (or, without an identity, a
knock of its own: "go on in plain text"). The connecting side answers in kind; when both sent a
certificate, both switch to TLS (the side that connected is the TLS
*server*: so the TLS client's first bytes follow a line the other side has
already read, and no byte of TLS can arrive behind a line of text) and send
the full hellos inside it, so the listening port, instance id and heartbeat
never cross the network in clear. A side without an identity answers a
certificate with its full hello, and the two go on in plain text. (A chat.py
from before the knock opens with its certificate instead; it is answered as
it expects, and it is the TLS client.)
    \\x01NAME [<name>]                    "call me this from now on" (none: no name)
    \\x01GOT <stream> <n>                 "of your stream <stream> I have stored and shown
                                        every message up to number <n>" (cumulative)
    \\x01FROM <stream> <n>                "my next message is number <n> of my stream
                                        <stream>, the one after it <n>+1, ..."

**Delivery** is an extension of chat/2, announced by the hello field
``delivery=1`` (a chat/2 peer that does not know it ignores the field, as it
ignores every unknown one, and gets bare lines with no guarantee). When both
hellos carry it, every text line is a numbered message: numbers are implicit
(TCP keeps order), so a message is still its text and ``\\n`` on the wire and
the hot path counts lines. Each side first sends ``GOT`` for the other's
stream as it last stored it (``-`` and 0 when it knows none); on the other's
first ``GOT`` it sends ``FROM`` with the number of its first unacknowledged
message and then that unacknowledged tail, then new messages as they come.
A receiver drops a number it has already shown, so a resend shows nothing
twice, and acknowledges with ``GOT`` once per loop turn, after the messages
are stored and shown. A *stream* is 16 hex digits, made once per
conversation (the pair of identities) and kept with it, so numbers survive
restarts; a sender that lost its store makes a new stream, and the receiver
starts counting that one afresh (see ``network.delivery``).

Names (``network.names``) were added to chat/2 without a version bump: the
field is optional and the verb new, and both are ignored by a chat/2 peer
that does not know them. A name that breaks the rule is *not* a malformed
hello: the connection is useful without it, so the hello is accepted with
no name, and ``bad_name`` keeps the text for one notice.

The parser is strict, because a hello decides who a connection is: the
version must be one we speak, every known field must appear exactly once,
numbers are ASCII digits only (no ``+``, ``_`` or other scripts' digits)
and in range. Unknown *fields* are allowed once each, so a later version can
add some; unknown control *verbs* are ignored for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from reactor.netutil import maybe_ascii_number

from .names import MAX_NAME_CHARS, maybe_name
from .outcomes import HelloFault, HelloProblem, Refusal

CONTROL_MARK = "\x01"
VERSION = "chat/2"
VERSIONS = (VERSION,)             # every version this program speaks

HELLO, REFUSE, PING, BYE, NAME = "HELLO", "REFUSE", "PING", "BYE", "NAME"
GOT, FROM = "GOT", "FROM"
KNOCK = "knock"
NO_STREAM = "-"                   # GOT - 0: we know no stream of yours
STREAM_CHARS = 16
MAX_SEQ = 10 ** 18
DUPLICATE_WORD = "duplicate"      # BYE duplicate: this connection gives way to another
MAX_BAD_NAME_CHARS = 2 * MAX_NAME_CHARS     # what is kept of a refused name, for the notice

NODE_ID_CHARS = 16
MAX_CERT_CHARS = 3000             # base64 of a P-256 certificate is about 700
MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS = 100, 86_400_000
_FIELDS = ("port", "node", "heartbeat")
_HEX = frozenset("0123456789abcdef")
_MAX_NUMBER_CHARS = 10


@dataclass(frozen=True)
class Hello:
    port: int               # where the sender listens
    node_id: str            # random per process: tells two processes apart
    heartbeat_ms: int       # the sender speaks at least this often
    name: str | None = None         # what the sender calls itself (a label, not proof)
    bad_name: str | None = None     # a name it announced that breaks the rule (peer text)
    delivery: bool = False          # it numbers its messages and acknowledges ours


@dataclass(frozen=True)
class Knock:
    """The connecting side's first line: it speaks chat.py, and waits to be shown ours."""


@dataclass(frozen=True)
class TlsHello:
    cert_der: bytes         # the certificate the sender will prove it holds the key of


class BadHello(Exception):
    """A hello we cannot accept; ``refusal`` is VERSION or MALFORMED, ``fault`` says why."""

    def __init__(self, refusal: Refusal, problem: HelloProblem, field: str = "",
                 value: int = 0) -> None:
        super().__init__(problem.value)
        self.refusal = refusal
        self.fault = HelloFault(problem, field, value)


def frame(text: str) -> bytes:
    """One line on the wire: its UTF-8 and ``\\n`` (the only place lines are framed)."""
    return text.encode("utf-8") + b"\n"


def frame_lines(lines: list[str]) -> bytes:
    """Several lines at once, as :func:`frame` would write them one after another."""
    return "\n".join(lines).encode("utf-8") + b"\n"


def is_control(line: str) -> bool:
    return line.startswith(CONTROL_MARK)


def control_line(verb: str, *words: str) -> str:
    return CONTROL_MARK + " ".join((verb,) + words)


def hello_line(hello: Hello) -> str:
    words = [VERSION, f"port={hello.port}", f"node={hello.node_id}",
             f"heartbeat={hello.heartbeat_ms}"]
    if hello.delivery:
        words.append("delivery=1")
    if hello.name is not None:
        words.append(f"name={hello.name}")
    return control_line(HELLO, *words)


def name_line(name: str | None) -> str:
    return control_line(NAME) if name is None else control_line(NAME, name)


def parse_name(text: str | None) -> tuple[str | None, str | None]:
    """``(name, bad)``: a valid name, or ``None`` and the refused text (cut short)."""
    if text is None:
        return None, None
    name = maybe_name(text)
    return (name, None) if name is not None else (None, text[:MAX_BAD_NAME_CHARS])


def tls_hello_line(cert_der: bytes) -> str:
    import base64
    return control_line(HELLO, VERSION, "cert=" + base64.b64encode(cert_der).decode("ascii"))


def refuse_line(refusal: Refusal, argument: str | int | None = None) -> str:
    words = [refusal.value] if argument is None else [refusal.value, str(argument)]
    return control_line(REFUSE, *words)


def split_control(line: str) -> tuple[str, list[str]]:
    """``"\\x01VERB a b"`` -> ``("VERB", ["a", "b"])``; call only if :func:`is_control`."""
    words = line[len(CONTROL_MARK):].split(" ")
    return words[0], [w for w in words[1:] if w]


def _number(fields: dict[str, str], name: str, low: int, high: int) -> int:
    value = maybe_ascii_number(fields[name], _MAX_NUMBER_CHARS)
    if value is None:
        raise BadHello(Refusal.MALFORMED, HelloProblem.NOT_A_NUMBER, name)
    if not low <= value <= high:
        raise BadHello(Refusal.MALFORMED, HelloProblem.OUT_OF_RANGE, name, value)
    return value


def knock_line() -> str:
    return control_line(HELLO, VERSION, f"{KNOCK}=1")


def parse_hello(words: list[str]) -> Hello | TlsHello | Knock:
    """The fields of a HELLO's words, or :class:`BadHello`."""
    if not words or words[0] not in VERSIONS:
        if words and words[0].startswith("chat/"):
            raise BadHello(Refusal.VERSION, HelloProblem.VERSION)
        raise BadHello(Refusal.MALFORMED, HelloProblem.NOT_CHAT)
    fields: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise BadHello(Refusal.MALFORMED, HelloProblem.NOT_KEY_VALUE)
        if key in fields:
            raise BadHello(Refusal.MALFORMED, HelloProblem.TWICE, key)
        fields[key] = value
    if KNOCK in fields:
        if len(fields) != 1 or fields[KNOCK] != "1":
            raise BadHello(Refusal.MALFORMED, HelloProblem.KNOCK_ALONE)
        return Knock()
    if "cert" in fields:
        return _tls_hello(fields)
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise BadHello(Refusal.MALFORMED, HelloProblem.MISSING, missing[0])
    node_id = fields["node"]
    if len(node_id) != NODE_ID_CHARS or not _HEX.issuperset(node_id):
        raise BadHello(Refusal.MALFORMED, HelloProblem.NODE_ID)
    name, bad_name = parse_name(fields.get("name"))
    return Hello(port=_number(fields, "port", 1, 65535), node_id=node_id,
                 heartbeat_ms=_number(fields, "heartbeat", MIN_HEARTBEAT_MS,
                                      MAX_HEARTBEAT_MS), name=name, bad_name=bad_name,
                 delivery=fields.get("delivery") == "1")


def _tls_hello(fields: dict[str, str]) -> TlsHello:
    import base64
    import binascii
    if len(fields) != 1:
        raise BadHello(Refusal.MALFORMED, HelloProblem.CERT_ALONE)
    text = fields["cert"]
    if not text.isascii() or len(text) > MAX_CERT_CHARS:
        raise BadHello(Refusal.MALFORMED, HelloProblem.CERT_NOT_BASE64)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadHello(Refusal.MALFORMED, HelloProblem.CERT_NOT_BASE64) from None
    if not der:
        raise BadHello(Refusal.MALFORMED, HelloProblem.CERT_EMPTY)
    return TlsHello(der)


@dataclass(frozen=True)
class PeerRefusal:
    refusal: Refusal | None     # None: a reason this version does not know
    limit: int = 0
    detail: str = ""            # the words as sent (peer text: sanitise before showing)


def parse_refuse(words: list[str]) -> PeerRefusal:
    detail = " ".join(words)[:200]
    try:
        refusal = Refusal(words[0]) if words else None
    except ValueError:
        return PeerRefusal(None, detail=detail)
    limit = 0
    if refusal in (Refusal.FULL, Refusal.BUSY) and len(words) > 1:
        limit = maybe_ascii_number(words[1], _MAX_NUMBER_CHARS) or 0
    return PeerRefusal(refusal, limit, detail)


def got_line(stream: str | None, upto: int) -> str:
    return control_line(GOT, stream or NO_STREAM, str(upto))


def from_line(stream: str, seq: int) -> str:
    return control_line(FROM, stream, str(seq))


def new_stream() -> str:
    import os
    return os.urandom(STREAM_CHARS // 2).hex()


def parse_numbered(words: list[str]) -> tuple[str | None, int] | None:
    """The ``<stream> <n>`` of a GOT or FROM: ``(stream or None, n)``, or ``None`` if bad."""
    if len(words) != 2:
        return None
    stream, number = words
    if stream == NO_STREAM:
        stream = None
    elif len(stream) != STREAM_CHARS or not _HEX.issuperset(stream):
        return None
    value = maybe_ascii_number(number, 18)
    if value is None or value > MAX_SEQ:
        return None
    return stream, value
