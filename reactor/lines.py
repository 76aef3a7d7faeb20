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

    __slots__ = ("max_line_bytes", "errors", "overflows", "_buffer", "_discarding")

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES, errors: str = "replace") -> None:
        """``errors`` is how invalid UTF-8 is decoded: ``"replace"`` gives
        U+FFFD; ``"surrogateescape"`` keeps the bytes findable (stdin uses it
        to say which byte was wrong)."""
        self.max_line_bytes = max_line_bytes
        self.errors = errors
        self._buffer = b""
        self.overflows = 0  # how many LineTooLong it has reported so far
        # True while skipping the rest of an over-long line.
        self._discarding = False

    def feed(self, data: bytes) -> list[str | LineTooLong]:
        """Add bytes; return every line they complete, in order.

        Lines come back as ``str`` without their terminator. An over-long line
        comes back as one :class:`LineTooLong` (never as text).
        """
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        out: list[str | LineTooLong] = []
        last = data.rfind(b"\n")
        if last >= 0:
            start = 0
            if self._discarding:    # the rest of an over-long line ends here
                start = data.find(b"\n") + 1
                self._discarding = False
            if start <= last:
                out = self._split(data[start:last])
        tail = len(data) - last - 1
        if self._discarding:
            pass
        elif tail > self.max_line_bytes:
            self.overflows += 1
            out.append(LineTooLong(tail))
            self._discarding = True
        elif tail:
            self._buffer = data[last + 1:]
        return out

    def _split(self, body: bytes) -> list[str | LineTooLong]:
        """Complete lines joined by ``\n``: split and decode, in bulk when possible."""
        limit = self.max_line_bytes
        if body.isascii():
            # The common case: one decode, one split; for ASCII, characters are bytes.
            lines = body.decode("ascii").split("\n")
            if max(map(len, lines)) <= limit:
                return [line[:-1] if line.endswith("\r") else line for line in lines] \
                    if b"\r" in body else lines
        parts = body.split(b"\n")
        if max(map(len, parts)) > limit:
            self.overflows += sum(1 for p in parts if len(p) > limit)
            return [LineTooLong(len(p)) if len(p) > limit else self._decode(p) for p in parts]
        try:
            # Valid UTF-8 throughout: decoded in one call.
            lines = body.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            return [self._decode(p) for p in parts]
        if b"\r" in body:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        return lines

    def _decode(self, line: bytes) -> str:
        if line.endswith(b"\r"):
            line = line[:-1]
        return line.decode("utf-8", self.errors)

    @property
    def pending_bytes(self) -> int:
        """How many bytes of an unterminated line are held."""
        return len(self._buffer)

    def peek_partial(self, nbytes: int) -> bytes:
        """The first ``nbytes`` of the unterminated tail, left in place."""
        return self._buffer[:nbytes]

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
