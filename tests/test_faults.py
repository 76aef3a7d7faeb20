"""The fault suite: hostile, slow, frozen and flooding peers, and local faults.

Each test runs real chat.py processes against real loopback sockets. Figures
(memory, latency, CPU) are printed as ``FIGURE ...`` lines (``pytest -s``);
the assertions only check bounds generous enough for a busy machine, because
speed belongs to the benchmarks.
"""

from __future__ import annotations

import os
import random
import re
import resource
import signal
import socket
import struct
import threading
import time

import pytest

from helpers import (cpu_seconds, fd_count, figure, proc_status_kib, recv_line, sleeps_through,
                     wait_until)

LOCAL = ["--host", "127.0.0.1"]
FORBIDDEN = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|"
                       rb"\xe2\x80[\x8e\x8f\xaa-\xae\xa8\xa9]|\xe2\x81[\xa6-\xa9]|\xd8\x9c")


def raw_peer(port: int, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def latency_of_myport(proc, timeout: float = 10.0) -> float:
    started = time.monotonic()
    proc.type("myport")
    proc.wait_for(rf"listening port: {proc.port}\n", timeout=timeout)
    return time.monotonic() - started


# -- terminal safety -----------------------------------------------------------------------

INJECTIONS = [
    b"\x1b]0;pwned\x07", b"\x1b[2J", b"\x1b[1A\x1b[2K\r[OK] root login",
    b"\x1b]52;c;ZWNobyBwd24=\x07", b"\x1bP$q\"p\x1b\\", b"\x1b[21t",
    "\u009b2J".encode(), "\u202egnp.exe".encode(), "a\u2066b\u2069c\u061cd\u200ee\u200ff".encode(),
    b"bell\x07 bs\x08 del\x7f", b"a\x00b", "line\u2028sep\u2029".encode(), b"alice\rbob",
    b"tab\there", b"\x9b\x1b", b"hi\xff\xfe", b"x\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80",
]


def test_nothing_a_peer_sends_can_steer_the_terminal(chat):
    a = chat("0", *LOCAL)
    with raw_peer(a.port) as s:
        s.sendall(b"start\n")
        a.wait_for(r"message from peer 1 \([^)]*\): start\n")
        for i, payload in enumerate(INJECTIONS):
            s.sendall(b"<%d>" % i + payload + b"\n")
        s.sendall(b"end\n")
        a.wait_for(r": end\n")
    out = a.raw()
    assert not FORBIDDEN.search(out), FORBIDDEN.search(out)
    lines = out.decode().splitlines()
    for i in range(len(INJECTIONS)):
        shown = [line for line in lines if f": <{i}>" in line]
        assert len(shown) == 1 and shown[0].startswith("message from peer 1 ("), (i, shown)
    text = out.decode()
    assert r": <0>\x1b]0;pwned\x07" in text
    assert r": <6>\x9b2J" in text
    assert r": <7>\u202egnp.exe" in text
    assert r": <8>a\u2066b\u2069c\u061cd\u200ee\u200ff" in text
    assert r": <10>a\x00b" in text
    assert r": <11>line\u2028sep\u2029" in text
    assert r": <12>alice\rbob" in text
    assert r": <13>tab\there" in text
    assert ": <15>hi\ufffd\ufffd" in text            # invalid UTF-8 becomes U+FFFD
    assert ": <16>x\ufffd" in text


def test_unicode_that_is_just_text_is_kept(chat):
    a = chat("0", *LOCAL)
    with raw_peer(a.port) as s:
        s.sendall("café 日本 👩\u200d👩\u200d👧 non\u00a0breaking\n".encode())
        a.wait_for("café 日本 👩\u200d👩\u200d👧 non\u00a0breaking\n")


# -- bounded input -------------------------------------------------------------------------

def test_endless_line_is_discarded_with_one_notice_and_memory_stays_flat(chat):
    a = chat("0", *LOCAL)
    b = chat("0", *LOCAL)
    b.type(f"connect 127.0.0.1 {a.port}")
    a.wait_for(r"peer 1 \(")
    rss_before = proc_status_kib(a.pid, "VmRSS")
    cpu_before = cpu_seconds(a.pid)
    chunk = b"A" * 65536
    with raw_peer(a.port) as s:
        s.sendall(b"before\n")
        a.wait_for(r"message from peer 2 \([^)]*\): before\n")
        started = time.monotonic()
        for _ in range(160):            # 10 MiB without a newline
            s.sendall(chunk)
        b.type("send 1 still here")
        a.wait_for(r"message from peer 1 \([^)]*\): still here\n", timeout=10)
        figure("myport latency during the endless line (s)", round(latency_of_myport(a), 4))
        s.sendall(b"\nafter\n")
        a.wait_for(r"message from peer 2 \([^)]*\): after\n")
        elapsed = time.monotonic() - started
    notices = re.findall(r"peer 2 \([^)]*\) sent a line longer than 4096 bytes; "
                         r"it was discarded", a.text())
    assert len(notices) == 1
    growth = proc_status_kib(a.pid, "VmHWM") - rss_before
    cpu = cpu_seconds(a.pid) - cpu_before
    figure("endless line: peak RSS growth (KiB)", growth)
    figure("endless line: chat.py CPU for 10 MiB (s)", round(cpu, 3))
    figure("endless line: wall time (s)", round(elapsed, 3))
    assert growth < 4096, growth


def test_long_foreign_messages_are_shown_cut_with_a_marker(chat):
    a = chat("0", *LOCAL)
    with raw_peer(a.port) as s:
        s.sendall(b"x" * 150 + b"\n" + b"y" * 3000 + b"\n")
        a.wait_for(r": x{150}\n")
        a.wait_for(r": y{1000} \[cut: 2000 more characters\]\n")


# -- backpressure ----------------------------------------------------------------------------

@pytest.mark.slow
def test_slow_reader_gets_all_50000_messages_in_order_with_bounded_memory(chat, tmp_path):
    n = 50_000
    text = "message {:05d} " + "x" * 86          # 100 characters
    with socket.socket() as srv:
        # A modest receive window (not below the loopback MSS, which would stall
        # TCP itself): the kernel then holds ~4 MB and chat.py must hold the rest.
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        script = tmp_path / "script.txt"
        with open(script, "w") as f:
            f.write(f"connect 127.0.0.1 {srv.getsockname()[1]}\n")
            for i in range(n):
                f.write("send 1 " + text.format(i) + "\n")
        with open(script, "rb") as stdin:
            a = chat("0", *LOCAL, stdin=stdin)
        conn, _ = srv.accept()
        with conn:
            # Not reading: chat.py must hold its script, not buffer it in memory.
            a.wait_for(r"connected to peer 1 ", timeout=15)
            b = chat("0", *LOCAL)
            b.type(f"connect 127.0.0.1 {a.port}")
            a.wait_for(r"peer 2 \(", timeout=15)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:   # a stalled stretch, sampled
                b.type("send 1 meanwhile")
                a.wait_for(r"message from peer 2 \([^)]*\): meanwhile\n", timeout=5)
                b.drain()   # b's own stdout is a pipe too: keep it flowing
            a.drain()
            confirmed = a.text().count("sent to peer 1 ")
            figure("slow reader: sends confirmed while the peer was not reading", confirmed)
            assert confirmed < n      # the script is held, not read into memory
            peak_stalled = proc_status_kib(a.pid, "VmHWM")
            # Now read everything.
            buf = bytearray()
            first = recv_line(conn, buf=buf)
            assert first.startswith(b"\x01HELLO")
            for i in range(n):
                if i % 500 == 0:
                    a.drain()  # its stdout is a pipe: keep it flowing
                line = recv_line(conn, timeout=30, buf=buf)
                assert line == text.format(i).encode(), (i, line)
        assert a.wait_exit(timeout=30) == 0
    figure("slow reader: chat.py peak RSS (KiB)", peak_stalled)
    assert peak_stalled < 64 * 1024


@pytest.mark.slow   # seconds of real buffers filling; in-process on virtual time: test_node_faults
def test_a_peer_that_reads_nothing_is_dropped_after_send_timeout(chat, tmp_path):
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        script = tmp_path / "script.txt"
        script.write_text(f"connect 127.0.0.1 {srv.getsockname()[1]}\n"
                          + ("send 1 " + "z" * 100 + "\n") * 60_000)
        with open(script, "rb") as stdin:
            a = chat("0", *LOCAL, "--send-timeout", "0.5", stdin=stdin)
        conn, _ = srv.accept()
        with conn:  # never read
            a.wait_for(r"connected to peer 1")
            started = time.monotonic()
            a.wait_for(r"dropped peer 1 \([^)]*\): it stopped reading \(it read nothing "
                       r"for [\d.]+ s\)", timeout=60)
            m = a.wait_for(r"(\d+) messages to peer 1 \([^)]*\) were not sent\n")
            took = time.monotonic() - started
            figure("send timeout 0.5 s: dropped after (s)", round(took, 2))
            assert took < 10                 # --send-timeout 0.5, not the default 30 s
            unsent = int(m.group(1))
            figure("send timeout: messages reported unsent", unsent)
            a.wait_for(r"error: message to peer 1 was not sent: the connection closed first",
                       stream="err")
            a.wait_for(r"error: no connection with id 1", stream="err")
            assert a.wait_exit(timeout=60) == 0
            # What the kernel took still arrives; the rest is exactly what was reported.
            data = read_until_eof(conn)
            assert data.startswith(b"\x01HELLO ")        # our hello, then the messages
            received = data.count(b"\n") - 1
    confirmed = a.text().count("sent to peer 1 ")
    figure("send timeout: confirmed / received / reported unsent",
           (confirmed, received, unsent))
    assert unsent > 0
    assert confirmed == received + unsent
    assert "Traceback" not in a.text("err")


def read_until_eof(sock: socket.socket, timeout: float = 30) -> bytes:
    data = bytearray()
    sock.settimeout(timeout)
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return bytes(data)
        data += chunk


def _write_lines(proc, line: str, count: int) -> None:
    data = (line * 1000).encode()
    try:
        for _ in range(count // 1000):
            proc.write(data)
    except (BrokenPipeError, ValueError, OSError):
        pass


# -- fairness --------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_flood_from_several_peers_does_not_starve_commands(chat):
    a = chat("0", *LOCAL)
    line = b"flood " + b"f" * 94 + b"\n"
    socks = [raw_peer(a.port) for _ in range(4)]
    for s in socks:
        s.sendall(b"hello\n")
    for i in range(1, 5):
        a.wait_for(rf"message from peer {i} \([^)]*\): hello\n", from_start=True)

    per_peer = 60_000

    def flood(s):  # as fast as the socket takes them
        try:
            s.sendall(line * per_peer)
        except OSError:
            pass

    threads = [threading.Thread(target=flood, args=(s,), daemon=True) for s in socks]
    for t in threads:
        t.start()
    a.wait_for(r": flood f{94}\n")
    latencies = [latency_of_myport(a) for _ in range(10)]
    shown = a.text().count(": flood ")
    # Keep reading its output (a full pipe would stall it) until every line is shown.
    wait_until(lambda: a.text().count(": flood ") == 4 * per_peer, timeout=60,
               interval=0.1, message="every flood line shown")
    for t in threads:
        t.join(timeout=10)
    for s in socks:
        s.close()
    figure("myport latency during a 4-peer flood, worst of 10 (s)", round(max(latencies), 4))
    figure("flood lines shown when the 10th command was answered", f"{shown} of {4 * per_peer}")
    assert max(latencies) < 3.0
    assert shown < 4 * per_peer  # the commands were answered during the flood


# -- dead peers ------------------------------------------------------------------------------

def test_a_frozen_peer_is_dropped_by_heartbeat_and_a_quiet_raw_peer_is_not(chat):
    a = chat("0", *LOCAL, "--heartbeat", "0.2")
    b = chat("0", *LOCAL, "--heartbeat", "0.2")
    b.type(f"connect 127.0.0.1 {a.port}")
    a.wait_for(r"peer 1 \(")
    raw = raw_peer(a.port)
    raw.sendall(b"i am quiet\n")
    a.wait_for(r"peer 2 \(")
    try:
        os.kill(b.pid, signal.SIGSTOP)
        started = time.monotonic()
        # The deadline (15 s) is far below what the default heartbeat would take (3 x 15 s):
        # it is --heartbeat 0.2 that drops it.
        m = a.wait_for(rf"dropped peer 1 \(127\.0\.0\.1:{b.port}\): it stopped answering "
                       r"\(no sign of life for ([\d.]+) s\)", timeout=15)
        figure("frozen peer (heartbeat 0.2 s) dropped after (s)",
               round(time.monotonic() - started, 2))
        assert float(m.group(1)) >= 0.6              # never before 3 silent heartbeats of 0.2 s
        a.type("list")
        a.wait_for(r"\n +2  - +127\.0\.0\.1:\d+ +it connected, not chat\.py +plain\n")
        assert "dropped peer 2" not in a.text()
    finally:
        os.kill(b.pid, signal.SIGCONT)
        raw.close()


def test_half_close_is_noticed_and_does_not_spin(chat):
    a = chat("0", *LOCAL)
    with raw_peer(a.port) as s:
        s.sendall(b"bye soon\n")
        a.wait_for(r"peer 1 \(")
        s.shutdown(socket.SHUT_WR)
        a.wait_for(r"peer 1 \([^)]*\) closed the connection\n")
        before = cpu_seconds(a.pid)
        # It goes back to sleep in select and stays there: a loop spinning on the closed
        # socket would never be seen asleep, one woken by it every few ms never for 0.3 s.
        wait_until(lambda: sleeps_through(a.pid, 0.3), message="chat.py to sleep for 0.3 s")
        used = cpu_seconds(a.pid) - before
    figure("CPU after a half-close, until seen asleep for 0.3 s (s)", used)
    assert a.text().count("closed the connection") == 1


def test_reset_drops_only_that_peer(chat):
    a = chat("0", *LOCAL)
    b = chat("0", *LOCAL)
    b.type(f"connect 127.0.0.1 {a.port}")
    a.wait_for(r"peer 1 \(")
    s = raw_peer(a.port)
    s.sendall(b"x\n")
    a.wait_for(r"peer 2 \(")
    a.type("send 2 " + "unread " * 10)
    a.wait_for(r"sent to peer 2")
    reset(s)
    a.wait_for(r"(lost the connection to peer 2 \([^)]*\): connection reset by peer|"
               r"peer 2 \([^)]*\) closed the connection)\n")   # not a heartbeat's 45 s
    b.type("send 1 fine")
    a.wait_for(r"message from peer 1 \([^)]*\): fine\n")


# -- connection limits -------------------------------------------------------------------------

def test_connection_burst_beyond_max_peers(chat):
    a = chat("0", *LOCAL, "--max-peers", "5", "--max-per-address", "0")
    baseline = fd_count(a.pid)
    kept = []
    for i in range(5):
        s = raw_peer(a.port)
        s.sendall(b"keep %d\n" % i)
        kept.append(s)
        a.wait_for(rf"message from peer {i + 1} \([^)]*\): keep {i}\n", from_start=True)
    burst = []
    for _ in range(300):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", a.port))
        burst.append(s)
    a.wait_for(r"refused a connection from 127\.0\.0\.1:\d+: already at the limit of 5 "
               r"connections")
    latency = latency_of_myport(a)
    for s in burst:
        s.close()
    for s in kept:
        s.close()
    wait_until(lambda: fd_count(a.pid) <= baseline, timeout=10, message="fds back to baseline")
    refusal_lines = [line for line in a.text().splitlines() if line.startswith("refused")]
    figure("refusal notice lines for 300 attempts", len(refusal_lines))
    figure("myport latency after the burst (s)", round(latency, 4))
    assert len(refusal_lines) < 20
    assert "peer 6 (" not in a.text()


@pytest.mark.slow
def test_emfile_on_accept_backs_off_instead_of_spinning(chat):
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))

    a = chat("0", *LOCAL, "--max-peers", "500", "--max-per-address", "0", preexec_fn=low_limit)
    socks = []
    try:
        for _ in range(40):
            s = socket.socket()
            s.connect(("127.0.0.1", a.port))
            socks.append(s)
        a.wait_for(r"cannot accept new connections for now \(too many open files\); "
                   r"trying again in 1 s")
        before = cpu_seconds(a.pid)
        time.sleep(1)  # a measurement window: a busy accept loop would burn it all
        used = cpu_seconds(a.pid) - before
        figure("CPU over 1 s while out of file descriptors (s)", used)
        assert used < 0.3
        assert latency_of_myport(a) < 3
        accepted = a.text().count("connected to you")
        for s in socks[:20]:
            s.close()
        # The freed descriptors let the connections still queued in the kernel in.
        wait_until(lambda: a.text().count("connected to you") > accepted, timeout=10,
                   message="accepting to resume")
        assert "Traceback" not in a.text("err")
    finally:
        for s in socks:
            s.close()


# -- local faults ------------------------------------------------------------------------------

def stalled_peer(chat, *args):
    """chat.py sending to a raw peer that reads nothing, until its own buffer holds the rest."""
    a = chat("0", *LOCAL, *args)
    s = raw_peer(a.port, rcvbuf=4096)
    s.sendall(b"x\n")
    a.wait_for(r"peer 1 \(")
    writer = threading.Thread(target=_write_lines, args=(a, "send 1 " + "q" * 90 + "\n",
                                                         100_000), daemon=True)
    writer.start()
    wait_until(_stalled(a), timeout=30, interval=0.3,
               message="the kernel's buffers and then ours to fill")
    return a, s


def test_sigterm_while_a_peer_is_not_reading_still_exits_promptly(chat):
    a, s = stalled_peer(chat, "--flush-timeout", "0.5")   # the grace period, from 2 s
    started = time.monotonic()
    a.signal(signal.SIGTERM)
    # The peer never reads: the exit does not wait for it (the deadline), it gives up on
    # it after the grace (how long that is, exactly: test_session.py, on a fake clock).
    assert a.wait_exit(timeout=10) == 143
    figure("SIGTERM exit with a stalled peer (s)", round(time.monotonic() - started, 2))
    out = a.text()
    assert out.index("exiting: closing 1 connection") < out.index(" were not sent\n")
    # Every confirmed message either reached the peer or is counted, exactly.
    received = read_until_eof(s).count(b"\n")
    s.close()
    unsent = int(re.search(r"\n(\d+) messages to peer 1 \([^)]*\) were not sent\n",
                           a.text()).group(1))
    confirmed = a.text().count("sent to peer 1 ")
    figure("SIGTERM: confirmed / received / reported unsent", (confirmed, received, unsent))
    assert unsent > 0 and confirmed == received + unsent
    assert "Traceback" not in a.text("err")


def _stalled(proc):
    """A condition: confirmations have stopped growing (the peer reads nothing)."""
    seen = [-1]

    def check() -> bool:
        proc.drain()
        count = proc.text().count("sent to peer 1 ")
        stalled, seen[0] = count == seen[0] and count > 1000, count
        return stalled
    return check


# -- fuzzing -----------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_seeded_fuzz_from_many_peers(chat):
    seed = int(os.environ.get("CHAT_FUZZ_SEED", "20261124"))
    rng = random.Random(seed)
    a = chat("0", *LOCAL, "--max-peers", "1000")
    for round_ in range(40):
        socks = [raw_peer(a.port) for _ in range(rng.randint(1, 6))]
        for _ in range(rng.randint(5, 40)):
            s = rng.choice(socks)
            size = rng.choice([1, 2, 3, 7, 64, 500, 5000])
            data = rng.randbytes(size)
            if rng.random() < 0.2:
                data += b"\n"
            try:
                s.sendall(data)
            except OSError:
                pass
        for s in socks:
            if rng.random() < 0.5:
                reset(s)
            else:
                s.close()
        if round_ % 10 == 0:
            latency_of_myport(a)         # still answering (it fails at its deadline if not)
    figure("myport latency after the fuzz (s)", round(latency_of_myport(a), 4))
    a.type("list")
    a.wait_for(r"(no connections|id  name +address)")
    assert not FORBIDDEN.search(a.raw()), "a control byte reached stdout"
    assert "Traceback" not in a.text("err") and "internal error" not in a.text("err")
    assert a.proc.poll() is None
