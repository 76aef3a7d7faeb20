"""Reference receiver: the minimal single-threaded selectors loop (the "floor").

One bounded recv per event, split on newlines, one os.write of all the output
of a wakeup. Speaks the same line protocol as chat.py and takes
``send <id> <message>`` on stdin (ids in connection order from 1), and
``send all <message>`` (the fan-out reference: every message read in one
wakeup is joined once and offered to each socket with one ``send``; what a
socket does not take waits for its write readiness). No limits, no
sanitising: it exists only to measure against.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys

EV_R, EV_W = selectors.EVENT_READ, selectors.EVENT_WRITE


def main(port: int) -> None:
    sel = selectors.DefaultSelector()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1024)
    srv.setblocking(False)
    sel.register(srv, EV_R, "accept")
    sel.register(0, EV_R, "stdin")
    os.write(1, b"listening on 127.0.0.1:%d\n" % srv.getsockname()[1])
    tails, outq, ids = {}, {}, {}
    stdin_tail = b""
    next_id = 1
    while True:
        out = []
        fanout = []
        for key, mask in sel.select():
            what = key.data
            if what == "accept":
                try:
                    while True:
                        c, _ = srv.accept()
                        c.setblocking(False)
                        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        tails[c], outq[c] = b"", bytearray()
                        ids[next_id] = c
                        next_id += 1
                        sel.register(c, EV_R, "peer")
                except BlockingIOError:
                    pass
            elif what == "stdin":
                data = os.read(0, 65536)
                if not data:
                    sel.unregister(0)
                    continue
                *lines, stdin_tail = (stdin_tail + data).split(b"\n")
                for line in lines:
                    parts = line.split(b" ", 2)
                    if len(parts) == 3 and parts[0] == b"send" and parts[1] == b"all":
                        fanout.append(parts[2])
                    elif len(parts) == 3 and parts[0] == b"send" and int(parts[1]) in ids:
                        c = ids[int(parts[1])]
                        if c.fileno() < 0:
                            continue
                        outq[c] += parts[2] + b"\n"
                        sel.modify(c, EV_R | EV_W, "peer")
            else:
                c = key.fileobj
                if mask & EV_W and outq[c]:
                    try:
                        n = c.send(outq[c])
                        del outq[c][:n]
                    except BlockingIOError:
                        pass
                    if not outq[c]:
                        sel.modify(c, EV_R, "peer")
                if mask & EV_R:
                    try:
                        data = c.recv(65536)
                    except (BlockingIOError, ConnectionError):
                        continue
                    if not data:
                        sel.unregister(c)
                        c.close()
                        continue
                    *lines, tails[c] = (tails[c] + data).split(b"\n")
                    out.extend(lines)
        if fanout:
            data = b"\n".join(fanout) + b"\n"
            for c in ids.values():
                if c.fileno() < 0:
                    continue
                waiting = bool(outq[c])
                outq[c] += data
                if waiting:
                    continue            # it waits for write readiness already
                try:
                    del outq[c][:c.send(outq[c])]
                except (BlockingIOError, ConnectionError):
                    pass
                if outq[c]:
                    sel.modify(c, EV_R | EV_W, "peer")
        if out:
            os.write(1, b"\n".join(out) + b"\n")


if __name__ == "__main__":
    main(int(sys.argv[1]))
