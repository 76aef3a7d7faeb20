"""What the console says for each thing the node reports: every way a connection ends,
every way one begins, every connect failure. Exact lines, in-process.

(The end-to-end tests see some of these sentences through real processes; this is
where each one is pinned down.)
"""

from __future__ import annotations

import errno

import pytest

from commands.console import Console
from helpers import MemorySink
from network.outcomes import CloseReason, ConnectFailed, Direction, Failure, Lost, Refusal
from network.outcomes import PeerInfo

BOB = PeerInfo(1, "127.0.0.1", 9090, Direction.OUTGOING, True, name="bob")
NC = PeerInfo(2, "10.0.0.9", 40000, Direction.INCOMING, False)


def said(call):
    """(stdout, stderr) of a console after ``call(console)``."""
    written = []
    console = Console(MemorySink(1, written), MemorySink(2, written))
    call(console)
    console.flush()
    return tuple(b"".join(d for fd, d in written if fd == stream).decode() for stream in (1, 2))


def out(call):
    stdout, stderr = said(call)
    assert stderr == ""
    return stdout.splitlines()


@pytest.mark.parametrize("lost,lines", [
    (Lost(CloseReason.CLOSED), ["peer 1 bob (127.0.0.1:9090) closed the connection"]),
    (Lost(CloseReason.LEFT), ["peer 1 bob (127.0.0.1:9090) left"]),
    (Lost(CloseReason.RESET, errno=errno.ECONNRESET, unsent=1),
     ["lost the connection to peer 1 bob (127.0.0.1:9090): connection reset by peer",
      "1 message to peer 1 bob (127.0.0.1:9090) was not sent"]),
    (Lost(CloseReason.TIMED_OUT, silent_s=45.04),
     ["dropped peer 1 bob (127.0.0.1:9090): it stopped answering (no sign of life for "
      "45.0 s)"]),
    (Lost(CloseReason.STALLED, silent_s=30.5, unsent=649),
     ["dropped peer 1 bob (127.0.0.1:9090): it stopped reading (it read nothing for 30.5 s)",
      "649 messages to peer 1 bob (127.0.0.1:9090) were not sent"]),
    (Lost(CloseReason.EVICTED, silent_s=301.0),
     ["dropped peer 1 bob (127.0.0.1:9090) to make room for a new connection (it had been "
      "silent for 5 min)"]),
    (Lost(CloseReason.REFUSED, detail="bad\x1b[2J"),
     [r"peer 1 bob (127.0.0.1:9090) refused the connection (bad\x1b[2J)"]),
    (Lost(CloseReason.DAMAGED, detail="DECRYPTION_FAILED\x07"),
     [r"dropped peer 1 bob (127.0.0.1:9090): its encrypted stream was damaged or cut "
      r"(DECRYPTION_FAILED\x07); nothing of the damaged part was shown"]),
    (Lost(CloseReason.TERMINATED, unsent=3),
     ["3 messages to peer 1 bob (127.0.0.1:9090) were not sent"]),
    (Lost(CloseReason.EXITING), []),
])
def test_every_way_a_connection_ends_is_one_line_and_unsent_messages_are_counted(lost, lines):
    assert out(lambda c: c.peer_lost(BOB, lost)) == lines


def test_how_a_connection_begins_says_who_is_not_chat_py():
    assert out(lambda c: c.peer_connected(BOB)) == ["connected to peer 1 bob (127.0.0.1:9090)"]
    plain_out = PeerInfo(1, "127.0.0.1", 7000, Direction.OUTGOING, False)
    assert out(lambda c: c.peer_connected(plain_out)) == [
        "connected to peer 1 (127.0.0.1:7000) (it is not chat.py: it gets your messages as "
        "plain lines)"]
    assert out(lambda c: c.peer_connected(NC)) == [
        "peer 2 (10.0.0.9:40000) connected to you (a plain TCP client, not chat.py; the port "
        "is its own)"]


@pytest.mark.parametrize("failed,words", [
    (ConnectFailed(Failure.TIMED_OUT, timeout_s=5.0), "timed out (no answer after 5 s)"),
    (ConnectFailed(Failure.REFUSED_BY_PEER, refusal=Refusal.FULL, limit=11),
     "that peer is full (11 connections)"),
])
def test_connect_failures_are_one_error_line(failed, words):
    assert said(lambda c: c.connect_failed("127.0.0.1", 9, failed)) == (
        "", f"error: could not connect to 127.0.0.1:9: {words}\n")


def test_refusals_of_incoming_connections_name_the_limit():
    assert out(lambda c: c.incoming_refused("127.0.0.2:5000", Refusal.BUSY, 1, 10)) == [
        "refused a connection from 127.0.0.2:5000: that address already has 10 connections "
        "(see --max-per-address)"]


def test_a_tls_failure_is_told_in_openssls_words_or_its_message_never_a_tuple():
    import ssl

    from network.identities import tls_words
    from reactor.tls import TLSHandshakeTimeout, TLSTruncated
    assert tls_words(ssl.SSLEOFError("the stream ended without close_notify")) == \
        "the stream ended without close_notify"
    assert tls_words(TLSTruncated("cut in a record")) == "cut in a record"
    assert tls_words(TLSHandshakeTimeout("not finished after 5 s")) == "not finished after 5 s"
    real = ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    real.reason = "CERTIFICATE_VERIFY_FAILED"
    assert tls_words(real) == "CERTIFICATE_VERIFY_FAILED"
    failed = ConnectFailed(Failure.TLS, detail=tls_words(ssl.SSLEOFError("the stream ended")))
    assert said(lambda c: c.connect_failed("127.0.0.1", 9, failed)) == (
        "", "error: could not connect to 127.0.0.1:9: the encrypted handshake failed "
            "(the stream ended)\n")


def test_every_hello_fault_has_words_and_its_field_is_made_safe():
    from commands import words
    from network.outcomes import HelloFault, HelloProblem
    for problem in HelloProblem:
        assert words.hello_fault(HelloFault(problem, "port", 7))
    assert words.hello_fault(HelloFault(HelloProblem.TWICE, "\x1b[2J")) == r"\x1b[2J appears twice"
    assert words.hello_fault(HelloFault(HelloProblem.OUT_OF_RANGE, "port", 0)) == \
        "port 0 is out of range"


def test_delivery_acknowledges_only_what_stdout_has_taken():
    """``after_shown``: at once when the output is written, else once a lagging reader has
    taken it (a message acknowledged but still in our buffer would be lost to a kill)."""
    import os
    from reactor import OutputStream, Reactor
    from commands import Console
    reactor = Reactor()
    read_end, write_end = os.pipe()
    try:
        stream = OutputStream(reactor, write_end)
        console = Console(stream, stream)
        shown = []
        console.after_shown(lambda: shown.append("now"))
        assert shown == ["now"]                          # nothing waiting: at once
        for _ in range(200):                             # far more than the pipe holds
            console.info("x" * 1000)
        console.flush()
        assert stream.get_buffer_size() > 0
        console.after_shown(lambda: shown.append("later"))
        for _ in range(5):
            reactor.call_soon(lambda: None)
            reactor.run_once()
        assert shown == ["now"]                          # the reader lags: it waits
        deadline = 200
        while shown == ["now"] and deadline:
            os.read(read_end, 1 << 16)
            reactor.call_soon(lambda: None)
            reactor.run_once()
            deadline -= 1
        assert shown == ["now", "later"]
    finally:
        os.close(read_end)
        stream.close()
        reactor.close()
