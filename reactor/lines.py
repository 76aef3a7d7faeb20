"""Sans-IO line framing: bytes in, lines out, no sockets.

TCP is a byte stream, so one ``recv`` may hold half a message, or three. The
codec frames on *bytes* (a multibyte UTF-8 character split across two reads
must not be decoded half-way), keeps the unterminated tail, and decodes each
finished line on its own with ``errors="replace"``, so invalid UTF-8 becomes
U+FFFD instead of an exception.

Every buffer has a limit. A line longer than ``max_line_bytes`` is never held
in memory: the codec reports one :class:`LineTooLong` in its place and skips
bytes until the next newline. Memory per codec is therefore bounded by
``max_line_bytes`` plus one ``feed`` chunk, whatever a peer sends.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE_BYTES = 4096


@dataclass(frozen=True)
class LineTooLong:
    """Stands in the output for a line that exceeded the bound.

    ``nbytes`` is how many bytes of it were discarded, counted up to the
    moment the codec reported it (the rest of that line is skipped silently).
    """

    nbytes: int


class LineCodec:
    """Splits a byte stream into text lines ended by ``\\n`` (``\\r\\n`` too)."""

    __slots__ = ("max_line_bytes", "errors", "_buffer", "_discarding")

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES, errors: str = "replace") -> None:
        """``errors`` is how invalid UTF-8 is decoded: ``"replace"`` gives
        U+FFFD; ``"surrogateescape"`` keeps the bytes findable (stdin uses it
        to say which byte was wrong)."""
        self.max_line_bytes = max_line_bytes
        self.errors = errors
        self._buffer = b""
        # True while skipping the rest of an over-long line.
        self._discarding = False

    def feed(self, data: bytes) -> list[str | LineTooLong]:
        """Add bytes; return every line they complete, in order.

        Lines come back as ``str`` without their terminator. An over-long line
        comes back as one :class:`LineTooLong` (never as text).
        """
        out: list[str | LineTooLong] = []
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        start = 0
        limit = self.max_line_bytes
        find = data.find
        while True:
            end = find(b"\n", start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif end - start > limit:
                out.append(LineTooLong(end - start))
            else:
                line = data[start:end]
                if line.endswith(b"\r"):
                    line = line[:-1]
                out.append(line.decode("utf-8", self.errors))
            start = end + 1
        tail = len(data) - start
        if self._discarding:
            pass
        elif tail > limit:
            out.append(LineTooLong(tail))
            self._discarding = True
        elif tail:
            self._buffer = data[start:]
        return out

    @property
    def pending_bytes(self) -> int:
        """How many bytes of an unterminated line are held."""
        return len(self._buffer)

    def maybe_take_partial(self) -> str | None:
        """Return and forget the unterminated tail, or ``None`` if there is none.

        Used for peers that send text without a newline: once they have been
        quiet for a moment, what they sent is shown as a message.
        """
        if not self._buffer:
            return None
        line = self._buffer
        self._buffer = b""
        if line.endswith(b"\r"):
            line = line[:-1]
        return line.decode("utf-8", self.errors)

    @staticmethod
    def encode(line: str) -> bytes:
        """Frame one line of text for the wire."""
        return line.encode("utf-8") + b"\n"
