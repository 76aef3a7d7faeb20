"""What survives a restart: the delivery state in SQLite, the history in an append-only log.

Both live in ``--home`` (files 0600) and are written once per loop turn
(:meth:`Store.save`, :meth:`History.save`): what changed during the turn is
kept in memory and goes to disk in one transaction, or one ``write``. The
program's own state is in memory (``network.delivery``); these objects only
persist it, so a disk that fails costs one warning and chat.py goes on in
memory, never a traceback and never a message on screen.

* :class:`Store` (``chat.db``, SQLite in WAL mode, ``synchronous=NORMAL``):
  each conversation's streams and numbers, and the outbox (every message not
  yet acknowledged). A commit in WAL mode is in the operating system's hands
  once ``COMMIT`` returns, so ``kill -9`` loses nothing committed; a power cut
  may forget the last turns (the WAL is synced at checkpoints only), which
  costs at worst a message typed in the last instant or one shown twice,
  never a broken file. ``FULL`` would sync every turn: one ``fsync`` per turn
  under a flood. A file that is not a database is moved aside with one
  warning and a new one is started.
* :class:`History` (``history.log``, and ``history.log.1`` before it): one
  line per message shown or sent, and one per later change of a message's
  state; a log, because one ``write`` per turn keeps up with the fan-in that
  a row per message in SQLite could not (about 0.33 M rows/s against more than
  2 M messages/s). When the log has ``limit`` entries it becomes
  ``history.log.1`` (the one before is deleted), so at most ``2 * limit``
  entries are on disk and the oldest go first.

One home may be used by several chat.py at once (one user's terminals): the
first takes an exclusive lock (``chat.lock``) and keeps the files; the others
keep theirs in memory (the README says so; a line at each start would be noise
for the user who runs several on purpose).
"""

from __future__ import annotations

import collections
import os
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .outcomes import Record

DB_NAME = "chat.db"
LOCK_NAME = "chat.lock"
HISTORY_NAME = "history.log"
DEFAULT_HISTORY_LIMIT = 10_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conversation (peer BLOB PRIMARY KEY, out_stream TEXT NOT NULL,"
    " next_seq INTEGER NOT NULL, in_stream TEXT, in_upto INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS outbox (peer BLOB NOT NULL, seq INTEGER NOT NULL,"
    " at REAL NOT NULL, text TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (peer, seq))",
)


def lock_home(home: Path) -> int | None:
    """Take this home's lock (held until the process ends); ``None``: another has it."""
    import fcntl
    try:
        fd = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


@dataclass
class SavedConversation:
    out_stream: str
    next_seq: int
    in_stream: str | None
    in_upto: int
    outbox: list = field(default_factory=list)    # (seq, at, text, key), oldest first


class Store:
    """The delivery state on disk (``path`` ``None``: nothing on disk at all)."""

    def __init__(self, path: Path | None, warn: Callable[[str, str], None]) -> None:
        self._warn = warn                   # warn(problem, detail): once per problem
        self._db: sqlite3.Connection | None = None
        self._conversations: dict[bytes, tuple] = {}   # changed this turn
        self._queued: list[tuple] = []                  # (peer, seq, at, text, key)
        self._acked: dict[bytes, int] = {}              # peer -> delivered up to
        self._moved: list[tuple] = []                   # (peer, seq) renumbered
        self.path = path
        if path is not None:
            self._db = self._open(path)

    @property
    def on_disk(self) -> bool:
        return self._db is not None

    def _open(self, path: Path) -> sqlite3.Connection | None:
        for attempt in (1, 2):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
                db = sqlite3.connect(path, isolation_level=None, timeout=0,
                                     check_same_thread=False)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=NORMAL")
                    if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                        raise sqlite3.DatabaseError("quick_check failed")
                    for statement in _SCHEMA:
                        db.execute(statement)
                except sqlite3.DatabaseError:
                    db.close()
                    raise
                return db
            except sqlite3.DatabaseError as exc:
                if attempt == 2 or isinstance(exc, sqlite3.OperationalError) \
                        and not _corrupt(exc):
                    self._warn("unusable", f"{path}: {exc}")
                    return None
                aside = self._move_aside(path)
                self._warn("corrupt", f"{path} -> {aside}")
            except OSError as exc:
                self._warn("unusable", f"{path}: {exc.strerror or exc}")
                return None
        return None

    @staticmethod
    def _move_aside(path: Path) -> Path:
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            try:
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            except OSError:
                pass
        return aside

    def load(self) -> dict[bytes, SavedConversation]:
        """Every conversation kept, with its outbox."""
        if self._db is None:
            return {}
        try:
            saved = {bytes(peer): SavedConversation(out, seq, ins, upto)
                     for peer, out, seq, ins, upto in self._db.execute(
                         "SELECT peer, out_stream, next_seq, in_stream, in_upto"
                         " FROM conversation")}
            for peer, seq, at, text, key in self._db.execute(
                    "SELECT peer, seq, at, text, key FROM outbox ORDER BY peer, seq"):
                conv = saved.get(bytes(peer))
                if conv is not None:
                    conv.outbox.append((seq, at, text, key))
            return saved
        except sqlite3.Error as exc:
            self._failed(exc)
            return {}

    # -- what changed this turn -------------------------------------------------------

    def conversation(self, peer: bytes, out_stream: str, next_seq: int,
                     in_stream: str | None, in_upto: int) -> None:
        if self._db is not None:
            self._conversations[peer] = (peer, out_stream, next_seq, in_stream, in_upto)

    def queued(self, peer: bytes, seq: int, at: float, text: str, key: str) -> None:
        """A message for the outbox (``key``: its name in the history, for good)."""
        if self._db is not None:
            self._queued.append((peer, seq, at, text, key))

    def renumbered(self, peer: bytes, seq: int) -> None:
        """An outbox message moves from number ``seq`` (its row goes; ``queued`` adds it
        again under the new number)."""
        if self._db is None:
            return
        pending = [row for row in self._queued if row[0] == peer and row[1] == seq]
        if pending:                 # not on disk yet: it never will be under that number
            self._queued.remove(pending[0])
        else:
            self._moved.append((peer, seq))

    def delivered(self, peer: bytes, upto: int) -> None:
        if self._db is not None:
            self._acked[peer] = max(upto, self._acked.get(peer, 0))

    def save(self) -> None:
        """One transaction for the turn (nothing to do: nothing happens)."""
        if self._db is None or not (self._conversations or self._queued or self._acked):
            return
        moved, self._moved = self._moved, []
        conversations, self._conversations = self._conversations, {}
        queued, self._queued = self._queued, []
        acked, self._acked = self._acked, {}
        db = self._db
        try:
            db.execute("BEGIN")
            if moved:
                db.executemany("DELETE FROM outbox WHERE peer = ? AND seq = ?", moved)
            if conversations:
                db.executemany("INSERT OR REPLACE INTO conversation VALUES (?, ?, ?, ?, ?)",
                               conversations.values())
            if queued:
                db.executemany("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?, ?)",
                               queued)
            if acked:
                db.executemany("DELETE FROM outbox WHERE peer = ? AND seq <= ?",
                               acked.items())
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        """The disk said no (full, read-only, gone): one warning, memory from now on."""
        self._warn("unwritable", f"{self.path}: {exc}")
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._db = None

    def close(self) -> None:
        self.save()
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None


def _corrupt(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "not a database" in text or "malformed" in text or "quick_check" in text


# -- history -------------------------------------------------------------------------------

IN, OUT, STATE = "<", ">", "="
NEXT_KEY = "+"          # an incoming line's key: the one before it, plus one (same batch)


class History:
    """Every message shown or sent, newest last; ``path`` ``None``: this run only, in memory."""

    def __init__(self, path: Path | None, limit: int, warn: Callable[[str, str], None]) -> None:
        self.path = path
        self.limit = max(1, limit)
        self._warn = warn
        # Entries as chunks of lines joined by "\n" (a batch of messages is one string,
        # made by one join), each with its count of lines: the newest 2 * limit or so.
        self._recent: collections.deque = collections.deque()
        self._recent_lines = 0
        self._pending: list[str] = []        # chunks this turn added
        self._pending_lines = 0
        self._fd: int | None = None
        self._count = 0                      # entries in the current log file
        if path is not None:
            self._load_and_open(path)

    @property
    def on_disk(self) -> bool:
        return self._fd is not None

    def _load_and_open(self, path: Path) -> None:
        older = path.with_name(path.name + ".1")
        for part in (older, path):
            try:
                with open(part, "rb") as f:
                    lines = f.read().decode("utf-8", "surrogateescape").split("\n")
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._warn("history", f"{part}: {exc.strerror or exc}")
                continue
            lines = [line for line in lines if line]
            if part == path:
                self._count = len(lines)
            if lines:
                self._remember("\n".join(lines), len(lines))
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o600)
        except OSError as exc:
            self._warn("history", f"{path}: {exc.strerror or exc}")

    # -- writing (the hot path: one call per batch of lines) -----------------------------

    def incoming(self, fingerprint: bytes | None, name: str | None, address: str,
                 texts: list[str], stream: str | None = None, seq: int = 0) -> None:
        head = f"{time.time():.3f}\t{IN}\t{fingerprint.hex() if fingerprint else '-'}\t" \
               f"{name or '-'}\t{address}\t"
        # One join for the batch. Numbered, the first carries its key and the rest say
        # "the next one" (formatting a number per message costs more than all the rest).
        if seq:
            first = f"{head}{stream}:{seq}\t\t"
            head += NEXT_KEY + "\t\t"
        else:
            head += "\t\t"
            first = head
        self._pending.append(first + ("\n" + head).join(texts))
        self._pending_lines += len(texts)

    def outgoing(self, fingerprint: bytes | None, name: str | None, address: str, text: str,
                 state: str, key: str = "", at: float | None = None) -> None:
        self._pending.append(
            f"{time.time() if at is None else at:.3f}\t{OUT}\t"
            f"{fingerprint.hex() if fingerprint else '-'}\t{name or '-'}\t{address}\t"
            f"{key}\t{state}\t{text}")
        self._pending_lines += 1

    def changed(self, fingerprint: bytes, keys: list[str], state: str) -> None:
        """Numbered messages of ours have a new state (delivered, failed)."""
        if not keys:
            return
        head = f"{time.time():.3f}\t{STATE}\t{fingerprint.hex()}\t-\t-\t"
        self._pending.append("\n".join([f"{head}{key}\t{state}\t" for key in keys]))
        self._pending_lines += len(keys)

    def save(self) -> None:
        """What the turn added: to memory, and in one write to the log."""
        if not self._pending:
            return
        chunk = "\n".join(self._pending)
        count, self._pending, self._pending_lines = self._pending_lines, [], 0
        self._remember(chunk, count)
        if self._fd is None:
            return
        try:
            if self._count + count > self.limit:
                self._rotate()
                if count > self.limit:          # a turn of more than the limit: its newest
                    chunk, count = "\n".join(chunk.split("\n")[-self.limit:]), self.limit
            os.write(self._fd, (chunk + "\n").encode("utf-8", "surrogateescape"))
            self._count += count
        except OSError as exc:
            self._warn("history", f"{self.path}: {exc.strerror or exc}")
            self._close_file()

    def _remember(self, chunk: str, count: int) -> None:
        recent = self._recent
        recent.append((chunk, count))
        self._recent_lines += count
        while self._recent_lines - recent[0][1] >= 2 * self.limit:
            self._recent_lines -= recent.popleft()[1]

    def _rotate(self) -> None:
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           0o600)
        self._count = 0

    def _close_file(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def close(self) -> None:
        self.save()
        self._close_file()

    # -- reading ------------------------------------------------------------------------

    def last(self, count: int, match: Callable[[Record], bool] | None = None) -> list[Record]:
        """The last ``count`` messages (that ``match``), oldest first, with their states now."""
        states: dict[tuple, str] = {}
        seen: set = set()
        records: list[Record] = []
        before = None           # the key of the line before, if numbered and incoming
        lines = [line for chunk, _ in self._recent for line in chunk.split("\n")]
        lines += [line for chunk in self._pending for line in chunk.split("\n")]
        for line in lines:
            record = _parse(line)
            if record is not None and record.direction == IN and record.key:
                record, before = _with_key(record, before)
            else:
                before = None
            if record is None:
                continue
            if record.direction == STATE:
                states[(record.fingerprint, record.key)] = record.state
                continue
            if record.key:
                ident = (record.direction, record.fingerprint, record.key)
                if ident in seen:
                    continue            # stored twice across a crash: it is one message
                seen.add(ident)
            records.append(record)
        out = []
        for record in reversed(records):
            if record.direction == OUT and record.key:
                state = states.get((record.fingerprint, record.key))
                if state is not None:
                    record = Record(record.at, record.direction, record.fingerprint,
                                    record.name, record.address, record.key, state, record.text)
            if match is None or match(record):
                out.append(record)
                if len(out) >= count:
                    break
        out.reverse()
        return out


def _with_key(record: Record, before: tuple | None) -> tuple[Record, tuple | None]:
    """An incoming record with its full key (a ``NEXT_KEY`` follows the line before),
    and the key as ``(stream, n)`` for the line after."""
    if record.key == NEXT_KEY:
        if before is None:       # its batch's first line went with an older file
            return replace(record, key=""), None
        before = (before[0], before[1] + 1)
        return replace(record, key=f"{before[0]}:{before[1]}"), before
    stream, _, number = record.key.partition(":")
    return record, (stream, int(number)) if number.isdigit() else None


def _parse(line: str) -> Record | None:
    fields = line.split("\t", 7)
    if len(fields) != 8:
        return None
    at, direction, fp, name, address, key, state, text = fields
    try:
        when = float(at)
        fingerprint = None if fp == "-" else bytes.fromhex(fp)
    except ValueError:
        return None
    if direction not in (IN, OUT, STATE):
        return None
    return Record(when, direction, fingerprint, None if name == "-" else name, address, key,
                  state, text)
