"""End to end: two and three chat.py processes on loopback, driven through pipes."""

from __future__ import annotations

import re


def test_two_peers_connect_send_list_terminate(chat):
    a = chat("0", "--host", "127.0.0.1")
    b = chat("0", "--host", "127.0.0.1")
    b.type(f"connect 127.0.0.1 {a.port}")
    b.wait_for(rf"connected to peer 1 \(127\.0\.0\.1:{a.port}\)")
    a.wait_for(rf"peer 1 \(127\.0\.0\.1:{b.port}\) connected to you")
    b.type("send 1 hello   there")
    b.wait_for(rf"sent to peer 1 \(127\.0\.0\.1:{a.port}\): hello   there")
    a.wait_for(rf"message from peer 1 \(127\.0\.0\.1:{b.port}\): hello   there\n")
    a.type("send 1 back at you")
    b.wait_for(rf"message from peer 1 \(127\.0\.0\.1:{a.port}\): back at you\n")
    a.type("list")
    a.wait_for(rf"\n +1  - +127\.0\.0\.1:{b.port} +it connected +\S.*\n")
    b.type("terminate 1")
    b.wait_for(rf"closed the connection to peer 1 \(127\.0\.0\.1:{a.port}\)")
    a.wait_for(rf"peer 1 \(127\.0\.0\.1:{b.port}\) closed the connection")
    a.type("list", "send 1 anyone?")
    a.wait_for(r"no connections")
    a.wait_for(r"error: no connection with id 1", stream="err")


import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import CHAT, BlackHole, figure, free_port, popen_chat, recv_line, run_chat

LOCAL = ["--host", "127.0.0.1"]


def connect(src, dst, expect_id: int = 1):
    src.type(f"connect 127.0.0.1 {dst.port}")
    src.wait_for(rf"connected to peer {expect_id} \(127\.0\.0\.1:{dst.port}\)")


def test_three_peers_ids_are_stable_and_never_reused(chat):
    a, b, c = chat("0", *LOCAL), chat("0", *LOCAL), chat("0", *LOCAL)
    connect(b, a)
    a.wait_for(rf"peer 1 \(127\.0\.0\.1:{b.port}\) connected to you")
    connect(c, a)
    a.wait_for(rf"peer 2 \(127\.0\.0\.1:{c.port}\) connected to you")
    connect(c, b, expect_id=2)
    b.wait_for(rf"peer 2 \(127\.0\.0\.1:{c.port}\) connected to you")
    c.type("send 1 to a", "send 2 to b")
    a.wait_for(rf"message from peer 2 \(127\.0\.0\.1:{c.port}\): to a\n")
    b.wait_for(rf"message from peer 2 \(127\.0\.0\.1:{c.port}\): to b\n")
    a.type("list")
    a.wait_for(rf"\n +1  - +127\.0\.0\.1:{b.port} +it connected +\S.*\n +2  - +127\.0\.0\.1:{c.port} +"
               rf"it connected +\S.*\n")
    # b leaves: everyone who knew it says so; c stays peer 2 at a.
    b.type("exit")
    assert b.wait_exit() == 0
    a.wait_for(rf"peer 1 \(127\.0\.0\.1:{b.port}\) left\n")
    c.wait_for(rf"peer 2 \(127\.0\.0\.1:{b.port}\) left\n")
    a.type("send 2 still two", "send 1 gone")
    c.wait_for(rf"message from peer 1 \(127\.0\.0\.1:{a.port}\): still two\n")
    a.wait_for(r"error: no connection with id 1;", stream="err")
    # A new connection gets a new id: 3, not 1.
    d = chat("0", *LOCAL)
    connect(d, a)
    a.wait_for(rf"peer 3 \(127\.0\.0\.1:{d.port}\) connected to you")


def test_help_myip_myport(chat):
    from reactor.netutil import my_ipv4
    a = chat("0", *LOCAL)
    a.type("help")
    for name in ("help", "myip", "myport", "connect <ip> <port>", "list", "terminate <id>",
                 "send <id> <message>", "exit"):
        a.wait_for(rf"\n  {name} +\S", from_start=True)
    a.type("help send")
    a.wait_for(r"usage: send <id> <message>\n  send a message to <id>, a name")
    a.type("myport", "myip")
    a.wait_for(rf"listening port: {a.port}\n")
    a.wait_for(rf"IP address: {re.escape(my_ipv4())}\n")
    a.type("HELP connect")
    a.wait_for(r"usage: connect <ip> <port>")


def test_every_mistake_is_one_error_line_and_the_program_goes_on(chat):
    a = chat("0", *LOCAL)
    b = chat("0", *LOCAL)
    connect(b, a)
    mistakes = {
        "sned 1 hi": r'unknown command "sned"; did you mean "send"\?',
        "send": r'"send" needs more arguments; usage: send <id> <message>',
        "send 1": r"empty message; usage: send <id> <message>",
        "send 1     ": r"empty message; usage: send <id> <message>",
        "send x hi": r'no connection with id or name "x"',
        "send -1 hi": r'no connection with id or name "-1"',
        "send 7 hi": r'no connection with id 7; type "list"',
        "terminate": r'"terminate" needs more arguments; usage: terminate <id>',
        "terminate 9": r"no connection with id 9",
        "list all": r'"list" takes no arguments; usage: list',
        "connect 127.0.0.1": r'"connect" needs more arguments; usage: connect <ip> <port>',
        "send 1 " + "x" * 101: r"message is 101 characters long; the limit is 100",
        "send 1 " + "é" * 101: r"message is 101 characters long; the limit is 100",
        "send 1 bell\x07": r"messages cannot contain control characters \(found \\x07\)",
    }
    for line, pattern in mistakes.items():
        b.type(line)
        b.wait_for(r"error: " + pattern + r"[^\n]*\n", stream="err")
    b.type("myport")
    b.wait_for(rf"listening port: {b.port}")
    err_lines = b.text("err").splitlines()
    assert len(err_lines) == len(mistakes), err_lines
    assert all(line.startswith("error: ") for line in err_lines)
    assert "Traceback" not in b.text("err")
    # Nothing of the refused messages reached the peer.
    b.type("send 1 " + "é" * 100, "send 1 日本語 counts three")
    a.wait_for(r"message from peer 1 \([^)]*\): " + "é" * 100 + "\n")
    a.wait_for(r"message from peer 1 \([^)]*\): 日本語 counts three\n")
    assert "x" * 101 not in a.text() and "bell" not in a.text()


def test_connect_errors_each_say_what_went_wrong(chat):
    a = chat("0", *LOCAL)
    b = chat("0", *LOCAL)
    closed_port = free_port()
    cases = [
        (f"connect 127.0.0.1 {closed_port}",
         rf"could not connect to 127\.0\.0\.1:{closed_port}: connection refused"),
        ("connect 999.1.1.1 80", r"cannot connect to 999\.1\.1\.1:80: not a valid IPv4 address"),
        ("connect 127.0.0.1 70000", r'"70000" is not a port; a port is a number from 1 to 65535'),
        ("connect 127.0.0.1 abc", r'"abc" is not a port'),
        ("connect no-such-host.invalid 80", r"could not connect to no-such-host\.invalid:80: "
                                            r"cannot find that name"),
        ("connect [::1] 80", r"could not connect to \[::1\]:80: connection refused"),
        (f"connect 127.0.0.1 {a.port}", rf"cannot connect to 127\.0\.0\.1:{a.port}: "
                                        r"that is this peer itself"),
        (f"connect localhost {a.port}", rf"cannot connect to localhost:{a.port}: "
                                        r"that is this peer itself"),
        (f"connect 127.0.0.2 {a.port}", r"cannot connect to 127\.0\.0\.2:\d+: "
                                        r"that is this peer itself"),
    ]
    for line, pattern in cases:
        a.type(line)
        a.wait_for(r"error: " + pattern, stream="err")
    # Duplicates, in both directions.
    a.type(f"connect localhost {b.port}")
    a.wait_for(rf"connected to peer 1 \(127\.0\.0\.1:{b.port}\)")
    b.wait_for(rf"peer 1 \(127\.0\.0\.1:{a.port}\) connected to you")
    a.type(f"connect 127.0.0.1 {b.port}")
    a.wait_for(rf"already connected to 127\.0\.0\.1:{b.port} as peer 1\n")
    b.type(f"connect 127.0.0.1 {a.port}")
    b.wait_for(rf"already connected to 127\.0\.0\.1:{a.port} as peer 1\n")
    for p in (a, b):
        p.type("list")
        p.wait_for(r"\n +1  - +127\.0\.0\.1:\d+ +\w+ connected +\S.*\n(?! +2 )")
    assert "Traceback" not in a.text("err") + b.text("err")


def test_connect_timeout_holds_the_queue_while_messages_keep_arriving(chat):
    hole = BlackHole()
    try:
        a = chat("0", *LOCAL, "--connect-timeout", "0.5")
        b = chat("0", *LOCAL)
        connect(b, a)
        started = time.monotonic()
        a.type(f"connect 127.0.0.1 {hole.port}", "name")
        a.wait_for(rf"connecting to 127\.0\.0\.1:{hole.port} as peer 2 \.\.\.\n")
        # The connect is still pending when b's message, sent after it began, is shown:
        # the loop serves peers meanwhile, and the line behind it has not run.
        b.type("send 1 while you wait")
        a.wait_for(r"message from peer 1 \([^)]*\): while you wait")
        assert "have no name" not in a.text()[a.text().index("connecting"):]
        # It ends by --connect-timeout's 0.5 s, not the default 5 s, as the error says ...
        a.wait_for(rf"error: could not connect to 127\.0\.0\.1:{hole.port}: timed out "
                   r"\(no answer after 0\.5 s\)", stream="err")
        # ... and only then does the line held behind it run.
        a.wait_for(r"you have no name")
        figure("connect to a black hole, --connect-timeout 0.5: failed after (s)",
               round(time.monotonic() - started, 2))
    finally:
        hole.close()


def test_a_raw_socket_is_a_full_peer_both_ways(chat):
    a = chat("0", *LOCAL)
    with socket.create_connection(("127.0.0.1", a.port), timeout=5) as raw:
        raw.sendall(b"hi from nc\r\n")
        src_port = raw.getsockname()[1]
        a.wait_for(rf"peer 1 \(127\.0\.0\.1:{src_port}\) connected to you \(a plain TCP client")
        a.wait_for(rf"message from peer 1 \(127\.0\.0\.1:{src_port}\): hi from nc\n")
        a.type("send 1 hello  nc")
        buf = bytearray()
        assert recv_line(raw, buf=buf) == b"hello  nc"  # no hello, no control line first
        # Text without a newline shows up once the client has been quiet for a moment.
        raw.sendall("half a line é".encode())
        a.wait_for(r"message from peer 1 \([^)]*\): half a line é\n", timeout=5)
        a.type("list")
        a.wait_for(rf" 1  - +127\.0\.0\.1:{src_port} +it connected, not chat\.py")
    a.wait_for(rf"peer 1 \(127\.0\.0\.1:{src_port}\) closed the connection")


@pytest.mark.slow   # a second of hello wait; in-process on virtual time: test_node_faults
def test_connecting_to_a_raw_listener(chat):
    a = chat("0", *LOCAL)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        a.type(f"connect 127.0.0.1 {port}", "send 1 plain text")
        conn, _ = srv.accept()
        with conn:
            buf = bytearray()
            knock = recv_line(conn, buf=buf)
            # One short line, then nothing until it answers (its certificate waits for
            # an answer that shows chat.py): a plain program shows one junk line at most.
            assert knock == b"\x01HELLO chat/2 knock=1" and len(knock) + 1 <= 40
            a.wait_for(rf"connected to peer 1 \(127\.0\.0\.1:{port}\) \(it is not chat\.py")
            assert recv_line(conn, buf=buf) == b"plain text" and not buf
            conn.sendall(b"reply\n")
            a.wait_for(r"message from peer 1 \([^)]*\): reply\n")


def _receiver(chat):
    return chat("0", *LOCAL, "--stay", stdin=subprocess.DEVNULL)


def test_piped_script_delivers_and_exits(chat):
    a = _receiver(chat)
    script = f"connect 127.0.0.1 {a.port}\nsend 1 hi from a script\nexit\n"
    out = subprocess.run([sys.executable, CHAT, "0", *LOCAL, "--name="], input=script.encode(),
                         capture_output=True, timeout=20)
    assert out.returncode == 0, out
    assert b"sent to peer 1" in out.stdout and out.stderr == b""
    a.wait_for(r"message from peer 1 \([^)]*\): hi from a script\n")
    a.wait_for(r"peer 1 \([^)]*\) left\n")


def test_script_from_a_file_and_end_of_input_is_exit(chat, tmp_path):
    a = _receiver(chat)
    script = tmp_path / "demo.txt"
    script.write_text(f"connect 127.0.0.1 {a.port}\nsend 1 one\nsend 1 two\nsend 1 no newline")
    with open(script, "rb") as f:
        out = run_chat("0", *LOCAL, "--name=", stdin=f)
    assert out.returncode == 0, out
    a.wait_for(r"\): one\n[^\n]*\): two\n[^\n]*\): no newline\n")
    assert b"exiting: closing 1 connection" in out.stdout


def test_dev_null_stdin_exits_at_once(chat):
    out = run_chat("0", *LOCAL, "--name=")
    assert out.returncode == 0 and out.stdout.endswith(b"exiting\n") and out.stderr == b""


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_shut_down_gracefully(chat, signum, status):
    a = _receiver(chat)
    b = _receiver(chat)
    b.type = None  # stdin is /dev/null: nothing to type
    with socket.create_connection(("127.0.0.1", a.port), timeout=5):
        pass
    s = chat("0", *LOCAL)
    connect(s, a, expect_id=1)
    s.type("send 1 last words")
    a.wait_for(r"last words")
    s.signal(signum)
    assert s.wait_exit() == status
    a.wait_for(r"peer \d \([^)]*\) left\n")
    assert "Traceback" not in s.text("err")


def test_stay_keeps_running_until_sigterm(chat):
    a = _receiver(chat)
    a.wait_for(r"end of input; still running because of --stay")
    b = chat("0", *LOCAL)
    connect(b, a)
    b.type("send 1 are you there")
    a.wait_for(r"are you there")
    a.signal(signal.SIGTERM)
    assert a.wait_exit() == 143
    b.wait_for(r"peer 1 \([^)]*\) left\n")


def test_one_thread_while_serving_several_peers(chat):
    a = chat("0", *LOCAL)
    peers = [chat("0", *LOCAL) for _ in range(3)]
    for i, p in enumerate(peers, 1):
        connect(p, a)
        a.wait_for(rf"peer {i} \(")
        p.type(f"send 1 ping {i}")
    for i in range(1, 4):
        a.wait_for(rf"message from peer {i} \([^)]*\): ping {i}\n", from_start=True)
    with socket.create_connection(("127.0.0.1", a.port)) as raw:
        raw.sendall(b"raw\n")
        a.wait_for(r": raw\n")
        assert os.listdir(f"/proc/{a.pid}/task") == [str(a.pid)]


def test_port_in_use_and_usage_errors():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run_chat(str(port))
    assert out.returncode == 1
    assert out.stderr.decode() == (f"chat.py: error: port {port} is already in use; pick another "
                                   f"port, or 0 for any free one\n")
    for bad in ("abc", "70000", "-5"):
        out = run_chat(bad)
        assert out.returncode == 2
        assert b"invalid port" in out.stderr and b"Traceback" not in out.stderr
    out = run_chat()
    assert out.returncode == 2 and b"usage:" in out.stderr


def test_restart_on_the_same_port_right_after_exit(chat):
    port = free_port()
    a = chat(str(port), *LOCAL)
    b = chat("0", *LOCAL)
    connect(b, a)
    b.type("send 1 x")
    a.wait_for(r": x\n")
    a.type("exit")
    assert a.wait_exit() == 0
    again = chat(str(port), *LOCAL)
    assert again.port == port


def test_narrow_stdout_encoding_and_invalid_stdin_bytes(chat):
    a = chat("0", *LOCAL, env={"PYTHONIOENCODING": "ascii"})
    b = chat("0", *LOCAL)
    connect(b, a)
    b.type("send 1 café 日本")
    a.wait_for(r"message from peer 1 \([^)]*\): caf\\xe9 \\u65e5\\u672c\n")
    b.write(b"send 1 bad \xff byte\n")
    b.wait_for(r"error: input is not valid UTF-8 \(byte 0xff\); the line was ignored",
               stream="err")
    b.type("send 1 after")
    a.wait_for(r": after\n")
    assert "Traceback" not in a.text("err") + b.text("err")


def test_a_peer_that_dies_is_noticed_at_once(chat):
    a = chat("0", *LOCAL)
    b = chat("0", *LOCAL)
    connect(b, a)
    a.wait_for(r"peer 1 \(")
    b.proc.kill()
    # By its end of the connection, not by a heartbeat (that would take 3 x 15 s).
    # (Reset, when it died with our acknowledgement unread: the kernel answers RST.)
    a.wait_for(rf"peer 1 \(127\.0\.0\.1:{b.port}\)(?: closed the connection|: connection reset)")
    a.type("send 1 hello?")
    a.wait_for(r"error: no connection with id 1", stream="err")


def test_stdout_closed_ends_quietly():
    # Like "chat.py 0 | head -1": the first line is read, then the reader goes away.
    proc = popen_chat(["0", "--host", "127.0.0.1"])
    try:
        first = proc.stdout.readline()
        assert first.startswith(b"listening on")
        port = int(first.split(b":")[1].split(b";")[0])
        proc.stdout.close()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"now there is output to write\n")
            assert proc.wait(timeout=10) == 1
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stderr.close()
