"""The chat wire protocol, beyond plain lines (see README, "Wire protocol").

A message is its UTF-8 text and ``\\n``: nothing else, so ``nc`` is a full
peer. Our own peers also exchange *control lines*, which start with
``CONTROL_MARK`` (U+0001, a control character the console refuses in typed
messages, so a user can never forge one):

    \\x01HELLO chat/1 port=<listening port> node=<random hex id>
    \\x01REFUSE <reason words>          answer to a hello we will not accept
    \\x01PING                           heartbeat; any received line proves life
    \\x01BYE                            "I am exiting" (sent before closing)

Unknown control verbs and unknown ``key=value`` fields are ignored, so a
later version can add them without breaking this one.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTROL_MARK = "\x01"
PROTOCOL = "chat/1"

HELLO = "HELLO"
REFUSE = "REFUSE"
PING = "PING"
BYE = "BYE"


@dataclass(frozen=True)
class Hello:
    port: int
    node_id: str
    version: str = PROTOCOL


def is_control(line: str) -> bool:
    return line.startswith(CONTROL_MARK)


def control_line(verb: str, *words: str) -> str:
    return CONTROL_MARK + " ".join((verb,) + words)


def hello_line(port: int, node_id: str) -> str:
    return control_line(HELLO, PROTOCOL, f"port={port}", f"node={node_id}")


def split_control(line: str) -> tuple[str, list[str]]:
    """``"\\x01VERB a b"`` -> ``("VERB", ["a", "b"])``; call only if :func:`is_control`."""
    words = line[len(CONTROL_MARK):].split()
    if not words:
        return "", []
    return words[0].upper(), words[1:]


def maybe_parse_hello(words: list[str]) -> Hello | None:
    """The fields of a HELLO, or ``None`` if they are unusable."""
    if not words or not words[0].startswith("chat/"):
        return None
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    try:
        port = int(fields.get("port", ""))
    except ValueError:
        return None
    node_id = fields.get("node", "")
    if not (0 < port < 65536) or not node_id or len(node_id) > 64 or not node_id.isalnum():
        return None
    return Hello(port, node_id, words[0])
