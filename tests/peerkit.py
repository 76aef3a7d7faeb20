"""Speaking chat.py's wire from a test, as any identity: the attacker's toolbox.

Blocking sockets and threads: this is the test's side of the network, not the
program under test. A :class:`WirePeer` does what a chat.py peer does (the
certificate hello, TLS, the full hello) but lets the test choose every field,
so it can pretend to be someone else, and read what the other side says.
"""

from __future__ import annotations

import base64
import os
import socket
import threading

from network import wire
from network.identity import Identity, load_or_create_identity
from network.tlscontext import peer_context


def make_identity(folder) -> Identity:
    return load_or_create_identity(folder)


def read_line(sock) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed after {bytes(data)!r}")
        data += chunk
    return bytes(data[:-1])


class WirePeer:
    """One connection that speaks our protocol with TLS, as ``identity``."""

    def __init__(self, sock: socket.socket, identity: Identity, accepting: bool,
                 knock: bool = True) -> None:
        """``accepting``: the other side connected to us. ``knock=False`` opens as a
        chat.py from before the knock did (the certificate first; it is the TLS client)."""
        self.identity = identity
        sock.settimeout(10)
        ours = wire.tls_hello_line(identity.cert_der).encode() + b"\n"
        if accepting:
            first = read_line(sock)
            knocked = first == wire.knock_line().encode()
            if knocked:
                sock.sendall(ours)
                first = read_line(sock)
            theirs, server_side = first, not knocked
        else:
            sock.sendall(wire.knock_line().encode() + b"\n" if knock else ours)
            theirs, server_side = read_line(sock), knock
        assert theirs.startswith(b"\x01HELLO chat/2 cert="), theirs
        self.peer_cert = base64.b64decode(theirs.split(b"cert=", 1)[1])
        if accepting and server_side or not accepting and knock:
            sock.sendall(ours)
        context = peer_context(identity, self.peer_cert, server_side)
        self.tls = context.wrap_socket(sock, server_side=server_side)
        self.buffer = bytearray()

    @classmethod
    def connect(cls, port: int, identity: Identity, knock: bool = True) -> "WirePeer":
        return cls(socket.create_connection(("127.0.0.1", port), timeout=10), identity, False,
                   knock)

    @classmethod
    def greeted(cls, port: int, identity: Identity) -> "WirePeer":
        """Connected, both hellos said: an established chat.py peer (delivery off)."""
        peer = cls.connect(port, identity)
        peer.hello(port=1)
        peer.their_hello()
        return peer

    def send_line(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.tls.sendall(data + b"\n")

    def hello(self, port: int, node_id: str | None = None, heartbeat_ms: int = 15000,
              delivery: bool = False) -> str:
        node_id = node_id or os.urandom(8).hex()
        self.send_line(wire.hello_line(wire.Hello(port, node_id, heartbeat_ms,
                                                  delivery=delivery)))
        return node_id

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.tls.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {bytes(self.buffer)!r}")
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return line

    def their_hello(self) -> wire.Hello:
        line = self.read_line().decode()
        return wire.parse_hello(wire.split_control(line)[1])

    def close(self) -> None:
        try:
            self.tls.close()
        except OSError:
            pass


class ManInTheMiddle:
    """Listens on ``port``; each connection is relayed to ``target`` through two TLS
    sessions of its own (``identity``'s certificate on both sides), in clear between."""

    def __init__(self, port: int, target_port: int, identity: Identity) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(8)
        self.target_port = target_port
        self.identity = identity
        self.seen = bytearray()          # the plaintext it read: what a MITM learns
        self.peers: list[WirePeer] = []
        self.errors: list[str] = []      # why a connection could not be relayed
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                inside = WirePeer(client, self.identity, accepting=True)
                outside = WirePeer.connect(self.target_port, self.identity)
            except (OSError, AssertionError, ConnectionError) as exc:
                self.errors.append(repr(exc))
                client.close()
                continue
            self.peers += [inside, outside]
            for src, dst in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: WirePeer, dst: WirePeer) -> None:
        try:
            while True:
                data = src.tls.recv(65536)
                if not data:
                    break
                self.seen += data
                dst.tls.sendall(data)
        except OSError:
            pass
        dst.close()

    def close(self) -> None:
        self.listener.close()
        for peer in self.peers:
            peer.close()
