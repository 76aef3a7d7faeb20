"""End to end: two and three chat.py processes on loopback, driven through pipes."""

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
    a.wait_for(rf"\n +1  127\.0\.0\.1 +{b.port}  it connected\n")
    b.type("terminate 1")
    b.wait_for(rf"closed the connection to peer 1 \(127\.0\.0\.1:{a.port}\)")
    a.wait_for(rf"peer 1 \(127\.0\.0\.1:{b.port}\) closed the connection")
    a.type("list", "send 1 anyone?")
    a.wait_for(r"no connections")
    a.wait_for(r"error: no connection with id 1", stream="err")
