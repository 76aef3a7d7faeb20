"""network.delivery and network.store in-process: numbers, acknowledgements, the outbox,
what survives a restart, and the history's bounds. No sockets: a connection is a fake
that records what the conversation asks of it."""

from __future__ import annotations

import os
import sqlite3

from network.delivery import Delivery
from network.outcomes import PeerInfo, Direction, Posted
from network.store import History, Store

ALICE = bytes(range(32))


class FakeConn:
    """What Delivery asks of a connection: send, acknowledge, number_from."""

    class _Transport:
        closed = False

    def __init__(self) -> None:
        self.transport = self._Transport()
        self.sent: list[str] = []
        self.dones: list = []
        self.acks: list[tuple] = []
        self.numbered: list[tuple] = []

    def send(self, text: str, done) -> None:
        self.sent.append(text)
        self.dones.append(done)

    def acknowledge(self, stream, upto: int) -> None:
        self.acks.append((stream, upto))

    def number_from(self, stream: str, seq: int) -> None:
        self.numbered.append((stream, seq))


INFO = PeerInfo(1, "127.0.0.1", 9000, Direction.OUTGOING, True, "ab" * 8, None, ALICE, "alice")


class Calls:
    def __init__(self) -> None:
        self.later: list = []
        self.delivered: list = []
        self.warnings: list = []

    def delivery(self, home=None, limit: int = 1000) -> Delivery:
        store = Store(home / "chat.db" if home else None, self.warn)
        history = History(home / "history.log" if home else None, limit, self.warn)
        return Delivery(store, history, lambda cb, *a: self.later.append((cb, a)),
                        lambda whom, texts: self.delivered.append(texts))

    def warn(self, problem: str, detail: str) -> None:
        self.warnings.append(problem)


def connected(delivery: Delivery, conv, got=("-", 0)) -> FakeConn:
    conn = FakeConn()
    delivery.attach(conv, conn, INFO)
    delivery.got(conv, conn, *got)
    turn(delivery)
    return conn


def turn(delivery: Delivery) -> None:
    """The end of a loop turn, as the node does it: stored, then written; the log last."""
    delivery.save()
    delivery.release()
    delivery.history.save()


def test_numbers_go_on_across_connections_and_an_ack_covers_everything_before_it():
    calls = Calls()
    d = calls.delivery()
    conv = d.conversation(ALICE)
    first = connected(d, conv)
    assert first.numbered == [(conv.out_stream, 1)]
    for text in ("one", "two", "three"):
        assert d.send(conv, text, lambda posted: None) is None
    assert first.sent == []                                  # not before they are stored
    turn(d)
    assert first.sent == ["one", "two", "three"]
    d.got(conv, first, conv.out_stream, 2)                  # cumulative: one and two
    assert [out.text for out in conv.outbox] == ["three"]
    # The connection drops: three stays queued, and the next one resends it as number 3.
    undelivered = d.detach(conv, first, INFO)
    assert (undelivered.count, undelivered.queued) == (1, True)
    second = connected(d, conv, got=(conv.out_stream, 2))
    assert second.numbered == [(conv.out_stream, 3)] and second.sent == ["three"]
    d.got(conv, second, conv.out_stream, 3)
    assert not conv.outbox
    assert calls.delivered == [["three"]]                    # it had waited: worth a line


def test_a_resent_number_is_shown_once():
    d = Calls().delivery()
    conv = d.conversation(ALICE)
    conn = connected(d, conv)
    d.numbering(conv, "f" * 16)
    assert d.received(conv, conn, 1, ["a", "b", "c"]) == ["a", "b", "c"]
    assert d.received(conv, conn, 2, ["b", "c", "d"]) == ["d"]        # 2 and 3 seen
    assert d.received(conv, conn, 1, ["a"]) == []
    d.acknowledge(d.take_shown())
    assert conn.acks[-1] == ("f" * 16, 4)                    # one GOT for the turn
    d.numbering(conv, "e" * 16)                              # a stream it made anew
    assert d.received(conv, conn, 1, ["new"]) == ["new"]


def test_a_message_sent_after_a_restart_is_acknowledged(tmp_path):
    calls = Calls()
    d = calls.delivery(tmp_path)
    conv = d.conversation(ALICE)
    conn = connected(d, conv)
    d.send(conv, "before", lambda posted: None)
    d.got(conv, conn, conv.out_stream, 1)
    d.save()
    d.close()
    d = calls.delivery(tmp_path)                             # the next run
    conv = d.known(ALICE)
    assert conv.next_seq == 2
    # The other side knows no stream of ours (it lost its store, or it is another
    # terminal of that identity): its first GOT says so, and then acknowledges "after".
    conn = connected(d, conv, got=(None, 0))
    d.send(conv, "after", lambda posted: None)
    turn(d)
    assert conn.sent == ["after"]
    d.got(conv, conn, conv.out_stream, 2)
    assert not conv.outbox and conv.next_seq == 3
    # ... and the same when it knows ours.
    d.detach(conv, conn, INFO)
    conn = connected(d, conv, got=(conv.out_stream, 2))
    d.send(conv, "again", lambda posted: None)
    d.got(conv, conn, conv.out_stream, 3)
    assert not conv.outbox


def test_numbers_a_killed_run_used_but_never_stored_are_not_used_twice(tmp_path):
    calls = Calls()
    d = calls.delivery(tmp_path)
    conv = d.conversation(ALICE)
    d.send(conv, "stored", lambda posted: None)              # queued: nobody connected
    d.save()
    d.close()                                                # (numbers 2..5 went out unstored)
    d = calls.delivery(tmp_path)
    conv = d.known(ALICE)
    d.send(conv, "typed after the restart", lambda posted: None)   # number 2, for now
    conn = connected(d, conv, got=(conv.out_stream, 5))
    # It has 1..5: "stored" is acknowledged, the new message becomes number 6.
    assert [(out.seq, out.text) for out in conv.outbox] == [(6, "typed after the restart")]
    assert conn.numbered == [(conv.out_stream, 6)]
    assert conn.sent == ["typed after the restart"]
    d.save()
    d.close()
    conv = calls.delivery(tmp_path).known(ALICE)
    assert [(out.seq, out.text) for out in conv.outbox] == [(6, "typed after the restart")]
    assert conv.next_seq == 7


def test_without_an_identity_what_was_not_acknowledged_is_lost_and_said():
    calls = Calls()
    d = calls.delivery()
    conv = d.conversation(None)
    conn = connected(d, conv)
    posted = []
    d.send(conv, "x", posted.append)
    undelivered = d.detach(conv, conn, INFO)
    assert (undelivered.count, undelivered.queued) == (1, False)
    for callback, args in calls.later:
        callback(*args)
    assert posted == [Posted.LOST]
    assert not d.waiting()


def test_the_outbox_survives_a_restart_in_order(tmp_path):
    calls = Calls()
    d = calls.delivery(tmp_path)
    conv = d.conversation(ALICE)
    for n in range(5):
        d.send(conv, f"m{n}", lambda posted: None)
    d.save()
    d.close()
    assert oct(os.stat(tmp_path / "chat.db").st_mode & 0o777) == "0o600"
    d = calls.delivery(tmp_path)
    conv = d.known(ALICE)
    conn = connected(d, conv, got=(conv.out_stream, 2))     # it had m0 and m1
    assert conn.sent == ["m2", "m3", "m4"]
    assert calls.warnings == []


def test_a_file_that_is_not_a_database_is_moved_aside_once(tmp_path):
    (tmp_path / "chat.db").write_bytes(b"garbage" * 1000)
    calls = Calls()
    d = calls.delivery(tmp_path)
    assert calls.warnings == ["corrupt"]
    assert d.store.on_disk
    assert any(name.startswith("chat.db.broken-") for name in os.listdir(tmp_path))


def test_the_history_keeps_at_most_twice_its_limit_on_disk_and_knows_states(tmp_path):
    calls = Calls()
    d = calls.delivery(tmp_path, limit=10)
    conv = d.conversation(ALICE)
    conn = connected(d, conv)
    for n in range(25):
        d.send(conv, f"m{n:02d}", lambda posted: None)
        turn(d)                                              # a turn each
    d.got(conv, conn, conv.out_stream, 24)                   # all but the last delivered
    d.save()
    d.close()
    on_disk = sum(len(open(tmp_path / name).read().splitlines())
                  for name in os.listdir(tmp_path) if name.startswith("history.log"))
    assert on_disk <= 20
    history = History(tmp_path / "history.log", 10, calls.warn)
    last = history.last(3)
    assert [(r.text, r.state) for r in last] == [("m22", "delivered"), ("m23", "delivered"),
                                                 ("m24", "sent")]


def test_an_incoming_batch_logged_twice_across_a_crash_is_one_in_the_history(tmp_path):
    calls = Calls()
    history = History(tmp_path / "history.log", 100, calls.warn)
    stream = "a" * 16
    history.incoming(ALICE, "alice", "127.0.0.1:9000", ["one", "two", "three"], stream, 1)
    history.save()
    # The run was killed after the log and before the store: the resend is logged again,
    # partly overlapping, in another batch.
    history.incoming(ALICE, "alice", "127.0.0.1:9000", ["two", "three", "four"], stream, 2)
    history.save()
    history.close()
    again = History(tmp_path / "history.log", 100, calls.warn)
    assert [(r.text, r.key) for r in again.last(10)] == [
        ("one", f"{stream}:1"), ("two", f"{stream}:2"), ("three", f"{stream}:3"),
        ("four", f"{stream}:4")]
    # A line whose batch began in a file since deleted has no key, and still shows.
    (tmp_path / "history.log").write_text(
        "1.000\t<\t-\t-\t127.0.0.1:9000\t+\t\torphan\n")
    assert [(r.text, r.key) for r in History(tmp_path / "history.log", 100,
                                             calls.warn).last(5)] == [("orphan", "")]


def test_a_number_leaves_only_once_it_is_on_disk(tmp_path):
    calls = Calls()
    d = calls.delivery(tmp_path)
    conv = d.conversation(ALICE)
    conn = connected(d, conv)
    d.send(conv, "kept first", lambda posted: None)
    db = sqlite3.connect(tmp_path / "chat.db")
    assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,) and conn.sent == []
    d.save()
    assert db.execute("SELECT seq, text FROM outbox").fetchall() == [(1, "kept first")]
    d.release()
    assert conn.sent == ["kept first"]


def test_a_renumbered_message_leaves_no_row_under_its_old_number(tmp_path):
    calls = Calls()
    d = calls.delivery(tmp_path)
    conv = d.conversation(ALICE)
    turn(d)
    d.close()
    d = calls.delivery(tmp_path)                             # next_seq 1, unconfirmed
    conv = d.known(ALICE)
    d.send(conv, "typed", lambda posted: None)               # number 1, for now
    connected(d, conv, got=(conv.out_stream, 5))             # it has 1..5 of a dead run
    d.close()                                                # exit before the ack
    db = sqlite3.connect(tmp_path / "chat.db")
    assert db.execute("SELECT seq, text FROM outbox").fetchall() == [(6, "typed")]


def test_only_what_stdout_has_taken_counts_as_seen_after_a_restart(tmp_path):
    """Killed with messages still in its output buffer, a receiver must get them again:
    the number it stores (and says in GOT) is the one the console has written."""
    calls = Calls()
    d = calls.delivery(tmp_path)
    conv = d.conversation(ALICE)
    conn = connected(d, conv)
    d.numbering(conv, "f" * 16)
    d.received(conv, conn, 1, ["a", "b"])
    shown = d.take_shown()                  # the console flushed a and b ...
    d.received(conv, conn, 3, ["c"])        # ... c arrived after that flush
    d.acknowledge(shown)                    # stdout took a and b
    assert conn.acks[-1] == ("f" * 16, 2)
    d.save()
    d.close()                               # killed: c never reached stdout
    d = calls.delivery(tmp_path)
    conv = d.known(ALICE)
    assert (conv.in_stream, conv.in_upto) == ("f" * 16, 2)
    again = connected(d, conv)
    assert again.acks[0] == ("f" * 16, 2)   # its first GOT asks for c again
    assert d.received(conv, again, 3, ["c"]) == ["c"]


def test_a_resend_of_what_was_all_shown_is_acknowledged_again():
    d = Calls().delivery()
    conv = d.conversation(ALICE)
    conn = connected(d, conv)
    d.numbering(conv, "f" * 16)
    d.received(conv, conn, 1, ["a", "b"])
    d.acknowledge(d.take_shown())
    conn.acks.clear()
    assert d.received(conv, conn, 1, ["a", "b"]) == []      # its GOT was lost: it resends
    d.acknowledge(d.take_shown())
    assert conn.acks == [("f" * 16, 2)]
