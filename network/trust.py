"""The peers we trust: a small text file in home, and the TLS contexts built from it.

``<home>/trusted`` holds one trusted identity per line::

    # ID                                                              name   last address
    P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2 alice 192.168.1.5:9090

Blank lines and ``#`` comments are ignored. A line that does not parse is
reported in ``skipped`` (line number, reason) and kept as it is when the file
is written again, so nothing the user typed is lost. Every change re-reads
the file first, then writes a temporary file (0600) beside it and renames it
over the old one: a reader sees the old file or the new one, never half.

Names: 1 to 32 characters, letters and digits of any script (marks allowed
after the first character, so names in scripts that need them can be
written), ``-``, ``_`` and ``.``; normalised to NFC; unique regardless of case.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from reactor.netutil import maybe_port, normal_ip

from .identity import InvalidId, format_id, parse_id
from .outcomes import TrustError, TrustProblem, join_host_port, split_host_port

TRUST_FILE_NAME = "trusted"
MAX_NAME_CHARS = 32
_NAME_PUNCTUATION = set("-_.")
_HEADER = "# Trusted chat-peer identities: ID, name, last known address. Edit with care.\n"


@dataclass(frozen=True)
class TrustedPeer:
    fingerprint: bytes
    name: str
    address: tuple[str, int] | None = None

    @property
    def id(self) -> str:
        return format_id(self.fingerprint)


@dataclass(frozen=True)
class SkippedLine:
    number: int
    text: str
    problem: TrustProblem


def check_name(name: str) -> str:
    """The name in NFC, or ``TrustError(BAD_NAME)``."""
    name = unicodedata.normalize("NFC", name)
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise TrustError(TrustProblem.BAD_NAME, name)
    for i, c in enumerate(name):
        kind = unicodedata.category(c)
        if kind[0] == "L" or kind == "Nd" or c in _NAME_PUNCTUATION:
            continue
        if kind[0] == "M" and i > 0:
            continue
        raise TrustError(TrustProblem.BAD_NAME, name)
    return name


def parse_address(text: str) -> tuple[str, int]:
    """``"192.168.1.5:9090"`` -> ``("192.168.1.5", 9090)``, ``"[fe80::1%eth0]:9090"`` ->
    ``("fe80::1%eth0", 9090)``, or ``TrustError``."""
    host, port_text = split_host_port(text)
    port = maybe_port(port_text or "")
    try:
        if port is None:
            raise ValueError(text)
        return (normal_ip(host), port)
    except ValueError:
        raise TrustError(TrustProblem.BAD_ADDRESS, text) from None


def format_address(address: tuple[str, int]) -> str:
    return join_host_port(*address)


class TrustStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._peers: list[TrustedPeer] = []
        self._bad_lines: list[str] = []
        self.skipped: list[SkippedLine] = []
        self.unreadable: str | None = None     # why the file could not be read (no peers)
        self.reload()

    # -- reading ----------------------------------------------------------------------

    def reload(self) -> None:
        try:
            text = self.path.read_text("utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            text = ""             # no file, or no home at all (a path under a regular file)
        except OSError as exc:    # unreadable: nobody is trusted, and the user is told
            text = ""
            self.unreadable = exc.strerror or str(exc)
        peers, bad, skipped = [], [], []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                peer = _parse_line(line)
                if any(_same_name(p.name, peer.name) or p.fingerprint == peer.fingerprint
                       for p in peers):
                    raise TrustError(TrustProblem.DUPLICATE, peer.name)
            except TrustError as exc:
                skipped.append(SkippedLine(number, line, exc.problem))
                bad.append(line)
                continue
            peers.append(peer)
        self._peers, self._bad_lines, self.skipped = peers, bad, skipped

    def all(self) -> list[TrustedPeer]:
        return list(self._peers)

    def lookup_by_id(self, fp: bytes) -> TrustedPeer | None:
        return next((p for p in self._peers if p.fingerprint == fp), None)

    def lookup_by_name(self, name: str) -> TrustedPeer | None:
        name = unicodedata.normalize("NFC", name)
        return next((p for p in self._peers if _same_name(p.name, name)), None)

    def lookup_by_address(self, address: tuple[str, int]) -> TrustedPeer | None:
        return next((p for p in self._peers if p.address == tuple(address)), None)

    # -- changing -----------------------------------------------------------------------

    def trust(self, fp: bytes, name: str, address: tuple[str, int] | None = None
              ) -> TrustedPeer:
        """Trust ``fp`` as ``name`` (a new peer, or a new name/address for a known one)."""
        name = check_name(name)
        if len(fp) != 32:
            raise TrustError(TrustProblem.BAD_ID, fp.hex())
        self.reload()
        other = self.lookup_by_name(name)
        if other is not None and other.fingerprint != fp:
            raise TrustError(TrustProblem.NAME_TAKEN, name)
        known = self.lookup_by_id(fp)
        peer = TrustedPeer(fp, name, address if address is not None
                           else (known.address if known else None))
        if known is not None:
            self._peers[self._peers.index(known)] = peer
        else:
            self._peers.append(peer)
        self._save()
        return peer

    def untrust(self, name: str) -> TrustedPeer:
        self.reload()
        peer = self.lookup_by_name(name)
        if peer is None:
            raise TrustError(TrustProblem.UNKNOWN_NAME, name)
        self._peers.remove(peer)
        self._save()
        return peer

    def remember_address(self, fp: bytes, address: tuple[str, int]) -> None:
        """Note where a trusted peer was last seen (written only when it changed)."""
        known = self.lookup_by_id(fp)
        if known is None or known.address == tuple(address):
            return
        self.reload()
        known = self.lookup_by_id(fp)
        if known is not None:
            self._peers[self._peers.index(known)] = replace(known, address=tuple(address))
            self._save()

    def _save(self) -> None:
        lines = [_HEADER]
        for p in self._peers:
            fields = [p.id, p.name] + ([format_address(p.address)] if p.address else [])
            lines.append(" ".join(fields) + "\n")
        lines.extend(line + "\n" for line in self._bad_lines)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".trusted-", dir=self.path.parent)  # 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.writelines(lines)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise TrustError(TrustProblem.UNWRITABLE, f"{self.path}: {exc.strerror}") from None


def _same_name(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _parse_line(line: str) -> TrustedPeer:
    fields = line.split()
    if len(fields) not in (2, 3):
        raise TrustError(TrustProblem.MALFORMED, line)
    try:
        fp = parse_id(fields[0])
    except InvalidId:
        raise TrustError(TrustProblem.BAD_ID, fields[0]) from None
    name = check_name(fields[1])
    address = parse_address(fields[2]) if len(fields) == 3 else None
    return TrustedPeer(fp, name, address)
