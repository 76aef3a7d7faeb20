"""Reference receiver: a thread per peer, the common design.

Each connection gets a thread that reads lines with ``makefile().readline()``
(correct framing, unlike the classic ``recv(1024)``) and prints them under a
lock; the main thread reads ``send <id> <message>`` from stdin and uses
``sendall``. It exists only to measure against.
"""

from __future__ import annotations

import socket
import sys
import threading


def main(port: int) -> None:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1024)
    out = sys.stdout.buffer
    lock = threading.Lock()
    conns = {}
    out.write(b"listening on 127.0.0.1:%d\n" % srv.getsockname()[1])
    out.flush()

    def reader(conn):
        with conn, conn.makefile("rb") as f:
            for line in f:
                with lock:
                    out.write(line)
                    out.flush()

    def acceptor():
        while True:
            conn, _ = srv.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns[len(conns) + 1] = conn
            threading.Thread(target=reader, args=(conn,), daemon=True).start()

    threading.Thread(target=acceptor, daemon=True).start()
    for line in sys.stdin.buffer:
        parts = line.rstrip(b"\n").split(b" ", 2)
        if len(parts) == 3 and parts[0] == b"send" and int(parts[1]) in conns:
            try:
                conns[int(parts[1])].sendall(parts[2] + b"\n")
            except OSError:
                pass
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]))
