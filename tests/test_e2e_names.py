"""End to end: names, send all, timestamps and the words people try first, on real processes."""

import re
import socket
import subprocess

from helpers import recv_line, run_chat

LOCAL = ["--host", "127.0.0.1"]
NODE = "00000000000000aa"


def test_names_both_ways_renames_addressing_and_send_all(chat):
    a = chat("0", *LOCAL, "--name", "alice")
    b = chat("0", *LOCAL, "--name", "bob")
    c = chat("0", *LOCAL, "--name", "BOB")
    b.type(f"connect 127.0.0.1:{a.port}")
    b.wait_for(rf"connected to peer 1 alice \(127\.0\.0\.1:{a.port}\)\n")
    a.wait_for(rf"peer 1 bob \(127\.0\.0\.1:{b.port}\) connected to you\n")
    a.type("send bob hi bob")
    b.wait_for(rf"message from peer 1 alice \(127\.0\.0\.1:{a.port}\): hi bob\n")
    b.type("send alice hi alice")
    a.wait_for(rf"message from peer 1 bob \(127\.0\.0\.1:{b.port}\): hi alice\n")
    # A rename reaches the peer; the old name no longer finds it, the new one does.
    b.type("name bobby")
    b.wait_for(r"you are now known as bobby \(told 1 chat\.py peer\)\n")
    a.wait_for(rf"peer 1 bob \(127\.0\.0\.1:{b.port}\) is now known as bobby\n")
    # Two connections under one name (names are compared without case): use an id.
    c.type(f"connect 127.0.0.1 {a.port}")
    a.wait_for(rf"peer 2 BOB \(127\.0\.0\.1:{c.port}\) connected to you\n")
    b.type("name bob")
    a.wait_for(r"is now known as bob\n")
    a.type("send bob hi?")
    a.wait_for(r'error: "bob" names 2 connections \(ids 1, 2\); use an id\n', stream="err")
    a.type(f"send 127.0.0.1:{c.port} by address")
    c.wait_for(rf"message from peer 1 alice \(127\.0\.0\.1:{a.port}\): by address\n")
    # A plain client is the third: it gets the message and no control line, ever.
    with socket.create_connection(("127.0.0.1", a.port)) as raw:
        raw.sendall(b"i am nc\n")
        a.wait_for(r"message from peer 3 \(127\.0\.0\.1:\d+\): i am nc\n")
        a.type("list")
        a.wait_for(rf"id  name  address +connection +trust\n 1  bob +127\.0\.0\.1:"
                   rf"{b.port} +it connected +encrypted \w+\n 2  BOB +127\.0\.0\.1:{c.port} +"
                   rf"it connected +encrypted \w+\n"
                   rf" 3  - +127\.0\.0\.1:\d+ +it connected, not chat\.py +plain\n")
        a.type("name alicia", "send all to everyone")
        a.wait_for(r"you are now known as alicia \(told 2 chat\.py peers\)\n")
        a.wait_for(r"sent to 3 connections: to everyone\n")
        assert recv_line(raw) == b"to everyone"
        for p in (b, c):
            p.wait_for(rf"peer 1 alice \(127\.0\.0\.1:{a.port}\) is now known as alicia\n")
            p.wait_for(rf"message from peer 1 alicia \(127\.0\.0\.1:{a.port}\): to everyone\n")
        raw.close()
    a.wait_for(r"peer 3 \(127\.0\.0\.1:\d+\) closed the connection\n")
    assert a.text("err").count("error:") == 1


def test_bad_names_are_refused_locally_and_from_the_network(chat):
    a = chat("0", *LOCAL, "--name", "alice")
    for bad in ("al ice", "x" * 33, "\x1b[31mred"):
        a.type(f"name {bad}")
        a.wait_for(r"cannot be a name: [^\n]*; a name is 1 to 32 letters or digits", stream="err")
    assert "\x1b" not in a.text("err")
    with socket.create_connection(("127.0.0.1", a.port)) as s:
        s.sendall(f"\x01HELLO chat/2 port=5555 node={NODE} heartbeat=60000 name=ev\x1b[2Jil\n"
                  .encode())
        assert recv_line(s).startswith(b"\x01HELLO chat/2 ")
        a.wait_for(r"peer 1 \(127\.0\.0\.1:5555\) connected to you\n")
        a.wait_for(r'peer 1 \(127\.0\.0\.1:5555\) announced "ev\\x1b\[2Jil" as its name; '
                   r"that is not a name, so it is shown without one\n")
        s.sendall(b"\x01NAME two words\n\x01NAME " + b"n" * 33 + b"\n\x01NAME good\nhi\n")
        a.wait_for(r'announced "two words" as its name')
        a.wait_for(rf'announced "{"n" * 33}" as its name')
        a.wait_for(r"peer 1 \(127\.0\.0\.1:5555\) is now known as good\n")
        a.wait_for(r"message from peer 1 good \(127\.0\.0\.1:5555\): hi\n")
    assert a.text().count("announced") == 3 and "\x1b" not in a.text()
    out = run_chat("0", "--name", "a:b")
    assert out.returncode == 2 and b'"a:b" cannot be a name: it contains ":"' in out.stderr


def _script(text, **env):
    return run_chat("0", *LOCAL, input=text.encode(), env=env)


def test_timestamps_login_name_quit_question_connect_colon_and_comments(chat):
    a = chat("0", *LOCAL, "--stay", "--timestamps", stdin=subprocess.DEVNULL)
    script = (f"# say hello to a\n\n   # indented comment\nconnect 127.0.0.1:{a.port}\n?\n"
              f"send 1 hi from carol\nquit\nsend 1 never\n")
    out = _script(script, LOGNAME="carol")
    assert out.returncode == 0 and out.stderr == b"", out
    assert b"\n  exit (quit) " in out.stdout and b"never" not in out.stdout
    stamp = r"\[\d\d:\d\d:\d\d\] "
    a.wait_for(rf"(?m)^{stamp}peer 1 carol \(127\.0\.0\.1:\d+\) connected to you\n")
    a.wait_for(rf"(?m)^{stamp}message from peer 1 carol \(127\.0\.0\.1:\d+\): hi from carol\n")
    a.wait_for(rf"(?m)^{stamp}peer 1 carol \(127\.0\.0\.1:\d+\) left\n")
    # A login name that is not a name: no name at all.
    out = _script(f"connect 127.0.0.1 {a.port}\nsend 1 nameless\n", LOGNAME="no body")
    assert out.returncode == 0 and out.stderr == b"", out
    a.wait_for(rf"(?m)^{stamp}message from peer 2 \(127\.0\.0\.1:\d+\): nameless\n")
    assert not re.search(r"\n(?!\[\d\d:\d\d:\d\d\] )(peer|message)", a.text())
