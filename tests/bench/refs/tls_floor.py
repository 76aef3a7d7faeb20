"""Reference receiver with TLS: floor.py plus what accepting chat.py's encrypted peers takes.

    python3 tests/bench/refs/tls_floor.py PORT HOME     (PORT 0: any free port)

The loop is floor.py's (one selectors loop, one bounded recv per event, split on
newlines, one os.write of all the output of a wakeup; ``listening on
127.0.0.1:PORT`` first). In front of the lines, chat.py's opening as its
listening side speaks it (network/wire.py; tests/peerkit.py is the other side):

  1. the connecting peer knocks (``\\x01HELLO chat/2 knock=1``); we answer with
     our certificate line (the identity in HOME, made by openssl if missing);
  2. it sends its certificate line; we start TLS 1.3 as the TLS *client* (the
     side that connected is the TLS server), with a context that trusts only
     the certificate it announced (``network.tlscontext.peer_context``, cached
     per certificate as chat.py does), and once the handshake is done we check
     that the certificate presented is exactly that one (``peer_matches``);
  3. inside TLS we send our full hello (delivery off) once; the peer's hello
     makes it ``peer N (tls) connected`` on stdout (N in hello order from 1:
     the bench waits for ``peer N (``, which chat.py prints too);
  4. every later line is written to stdout raw; control lines are dropped.

TLS is ``ssl.SSLObject`` on two ``MemoryBIO``s (as chat.py's reactor/tls.py and
asyncio do): after each recv the SSL object is read until it wants more, since
records already inside it never make the socket readable again.

Skipped: peers that do not knock (a chat.py from before the knock) or have no
identity (plain text), delivery (GOT/FROM), names, heartbeats, refusals,
limits, sanitising, stdin commands, flow control of our few writes, and every
error report (a connection that breaks a rule is closed). It exists only to
measure against.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))      # the repo root

from network import wire  # noqa: E402
from network.identity import fingerprint, load_or_create_identity  # noqa: E402
from network.tlscontext import UnusableCertificate, peer_context, peer_matches  # noqa: E402

EV_R = selectors.EVENT_READ
KNOCK = wire.knock_line().encode()


class Peer:
    __slots__ = ("sock", "tail", "knocked", "tls", "incoming", "outgoing", "expected",
                 "open", "shown")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tail = b""
        self.knocked = False        # its knock came, our certificate line went
        self.tls = None             # the SSLObject, once its certificate line came
        self.incoming = self.outgoing = None
        self.expected = b""         # fingerprint of the certificate it announced
        self.open = False           # handshake done, our hello sent
        self.shown = False          # its hello came


def main(port: int, home: str) -> None:
    me = load_or_create_identity(Path(home))
    our_cert_line = wire.tls_hello_line(me.cert_der).encode() + b"\n"
    contexts: dict[bytes, ssl.SSLContext] = {}

    sel = selectors.DefaultSelector()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1024)
    srv.setblocking(False)
    sel.register(srv, EV_R, None)
    port = srv.getsockname()[1]
    our_hello = wire.hello_line(wire.Hello(port, os.urandom(8).hex(), 15000)).encode() + b"\n"
    os.write(1, b"listening on 127.0.0.1:%d\n" % port)
    shown = 0

    def start_tls(peer: Peer, line: bytes) -> None:
        verb, words = wire.split_control(line.decode("ascii"))
        announced = wire.parse_hello(words) if verb == wire.HELLO else None
        if not isinstance(announced, wire.TlsHello):
            raise ValueError("not a certificate line")
        ctx = contexts.get(announced.cert_der)
        if ctx is None:
            ctx = contexts[announced.cert_der] = peer_context(me, announced.cert_der, False)
        peer.incoming, peer.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        peer.tls = ctx.wrap_bio(peer.incoming, peer.outgoing, server_side=False)
        peer.expected = fingerprint(announced.cert_der)

    def plaintext(peer: Peer, data: bytes) -> tuple[bytes, bool]:
        """What ``data`` (ciphertext) decrypts to, and whether the peer closed TLS."""
        obj = peer.tls
        peer.incoming.write(data)
        chunks, closed = [], False
        try:
            if not peer.open:
                obj.do_handshake()
                if not peer_matches(obj.getpeercert(True), peer.expected):
                    raise ssl.SSLError("not the certificate it announced")
                obj.write(our_hello)
                peer.open = True
            while True:
                chunk = obj.read(65536)
                if not chunk:           # its close_notify
                    closed = True
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        out = peer.outgoing.read()
        if out:
            peer.sock.sendall(out)      # a few KiB, handshake and hello: the buffer takes it
        return b"".join(chunks), closed

    while True:
        out = []
        for key, _ in sel.select():
            if key.data is None:
                try:
                    while True:
                        c, _ = srv.accept()
                        c.setblocking(False)
                        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        sel.register(c, EV_R, Peer(c))
                except BlockingIOError:
                    pass
                continue
            peer = key.data
            try:
                data = peer.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            closed = not data
            try:
                if data and peer.tls is None:           # the opening, in clear
                    *lines, peer.tail = (peer.tail + data).split(b"\n")
                    data = b""
                    for i, line in enumerate(lines):
                        if not peer.knocked:
                            if line != KNOCK:
                                raise ValueError("no knock")
                            peer.sock.sendall(our_cert_line)
                            peer.knocked = True
                        else:
                            start_tls(peer, line)
                            # (nothing should follow: it waits for our ClientHello)
                            data = b"\n".join(lines[i + 1:] + [peer.tail])
                            peer.tail = b""
                            break
                if peer.tls is not None and (data or not peer.open):
                    data, closed_tls = plaintext(peer, data)
                    closed = closed or closed_tls
                    *lines, peer.tail = (peer.tail + data).split(b"\n")
                    for line in lines:
                        if not line.startswith(b"\x01"):
                            out.append(line)
                        elif not peer.shown and line.startswith(b"\x01HELLO "):
                            peer.shown = True
                            shown += 1
                            out.append(b"peer %d (tls) connected" % shown)
            except (ValueError, ssl.SSLError, wire.BadHello, UnusableCertificate, OSError):
                closed = True
            if closed:
                sel.unregister(peer.sock)
                peer.sock.close()
        if out:
            os.write(1, b"\n".join(out) + b"\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
