#!/usr/bin/env python3
"""TLS micro-benchmark: our TLSLayer against a plain StreamTransport, side by side.

    python3 tests/bench/tls_bench.py            # full sizes (about a minute)
    python3 tests/bench/tls_bench.py --quick    # small sizes
    python3 tests/bench/tls_bench.py --json out.json

Not part of the default test run. Only 127.0.0.1; every process started is
stopped by its pid. Three measurements:

  fanin       P senders each send L lines of 100 characters to one receiver
              process (our reactor, a LineCodec per connection): lines/s and the
              receiver's CPU per line (first byte to last line), plain vs TLS.
              Senders write in bulk, so TLS records are full (16 KiB); a third run
              puts K lines in each record (--record-lines, default 10: what a
              sender that flushes often produces; small records cost TLS most).
  handshakes  N mutually authenticated TLS connections made on one reactor, server
              and clients in the same loop and thread (both ends' crypto on one
              core: the product has only the server's half); contexts cached per
              peer, and made fresh for every connection.
  idle        RSS of a receiver process per idle connection at C connections,
              plain vs TLS (after C/20 warm-up connections), all opened at once,
              and for TLS also 10 at a time.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from network.identity import load_or_create_identity  # noqa: E402
from network.tlscontext import PeerContexts, peer_context  # noqa: E402
from reactor.lines import LineCodec  # noqa: E402
from reactor.listener import Listener  # noqa: E402
from reactor.loop import Reactor  # noqa: E402
from reactor.protocol import Protocol  # noqa: E402
from reactor.tls import TLSLayer  # noqa: E402
from reactor.transport import Connector, StreamTransport  # noqa: E402

LINE = b"x" * 99 + b"\n"


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)               # no SYN dropped (and retried a second later) in a burst
    sock.setblocking(False)
    return sock


class Counter(Protocol):
    def __init__(self, state: dict) -> None:
        self.state = state
        self.codec = LineCodec()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.state["made"] += 1
        if self.state["made"] in self.state["milestones"]:
            print(f"made {self.state['made']}", flush=True)

    def data_received(self, data: bytes) -> None:
        if "cpu0" not in self.state:
            self.state["cpu0"] = time.process_time()
        self.state["lines"] += len(self.codec.feed(data))
        if self.state["lines"] == self.state["expect"]:
            cpu = time.process_time() - self.state["cpu0"]
            print(f"lines {self.state['lines']} {cpu:.6f}", flush=True)


def serve(args) -> None:
    """The receiver process: ``--serve plain|tls``."""
    reactor = Reactor()
    me = load_or_create_identity(Path(args.home) / "server")
    peer = load_or_create_identity(Path(args.home) / "client")
    ctx = peer_context(me, peer.cert_der, server_side=True)
    state = {"made": 0, "lines": 0, "expect": args.expect,
             "milestones": {int(m) for m in args.milestones.split(",") if m}}

    def accept(conn, addr):
        upper = Counter(state)
        if args.serve == "tls":
            StreamTransport(reactor, conn, TLSLayer(reactor, ctx, upper, server_side=True))
        else:
            StreamTransport(reactor, conn, upper)

    listener = Listener(reactor, listening_socket(), accept, lambda exc, retry: None)
    print(f"listening {listener.port}", flush=True)
    reactor.run()


class Server:
    def __init__(self, kind: str, home: str, expect: int = 0, milestones: str = "") -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--home", home,
                                      "--expect", str(expect), "--milestones", milestones],
                                     stdout=subprocess.PIPE)
        self.port = int(self.wait("listening").split()[1])

    def wait(self, prefix: str, timeout: float = 60.0, turn=None) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if turn is not None:
                turn()
            ready, _, _ = select.select([self.proc.stdout], [], [], 0 if turn else 0.5)
            if ready:
                line = self.proc.stdout.readline().decode()
                if line.startswith(prefix):
                    return line
                if not line:
                    break
        raise RuntimeError(f"receiver: no {prefix!r}")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


# -- fan-in --------------------------------------------------------------------------------

def fanin(kind: str, cfg, home: str, record_lines: int = 0) -> dict:
    total = cfg.peers * cfg.lines
    server = Server(kind, home, expect=total)
    try:
        socks = []
        for _ in range(cfg.peers):
            sock = socket.create_connection(("127.0.0.1", server.port))
            if kind == "tls":
                me = load_or_create_identity(Path(home) / "client")
                them = load_or_create_identity(Path(home) / "server")
                sock = peer_context(me, them.cert_der, False).wrap_socket(sock)
            socks.append(sock)
        per_record = record_lines or 160              # bulk: 16 KiB records
        chunk = LINE * per_record
        payload_chunks = cfg.lines // per_record

        def send(sock):
            for _ in range(payload_chunks):
                sock.sendall(chunk)
            sock.sendall(LINE * (cfg.lines - payload_chunks * per_record))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=send, args=(s,)) for s in socks]
        for t in threads:
            t.start()
        cpu = float(server.wait("lines").split()[2])   # receiver CPU, first byte to last line
        elapsed = time.perf_counter() - t0
        for t in threads:
            t.join()
        for s in socks:
            s.close()
    finally:
        server.stop()
    # receiver_busy near 1: the receiver is the bottleneck; well below: the senders are.
    return {"lines_per_s": round(total / elapsed), "cpu_us_per_line": round(cpu / total * 1e6, 4),
            "receiver_busy": round(cpu / elapsed, 2)}


# -- handshakes ----------------------------------------------------------------------------

class Made(Protocol):
    def __init__(self, counts: dict, side: str) -> None:
        self.counts, self.side = counts, side

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.counts[self.side] += 1

    def connection_lost(self, exc) -> None:
        if exc is not None:
            self.counts["errors"] += 1


def handshakes(n: int, cached: bool, home: str) -> dict:
    reactor = Reactor()
    a = load_or_create_identity(Path(home) / "server")
    b = load_or_create_identity(Path(home) / "client")
    a_ctx, b_ctx = PeerContexts(a), PeerContexts(b)
    counts = {"server": 0, "client": 0, "errors": 0}
    layers = []

    def context(me, cache, peer, server_side):
        return cache.get(peer.cert_der, server_side) if cached else \
            peer_context(me, peer.cert_der, server_side)

    def accepted(conn, addr):
        layer = TLSLayer(reactor, context(a, a_ctx, b, True), Made(counts, "server"),
                         server_side=True)
        layers.append(StreamTransport(reactor, conn, layer))

    def connected(sock):
        layer = TLSLayer(reactor, context(b, b_ctx, a, False), Made(counts, "client"),
                         server_side=False)
        layers.append(StreamTransport(reactor, sock, layer))

    listener = Listener(reactor, listening_socket(), accepted, lambda e, r: None)
    t0 = time.perf_counter()
    for _ in range(n):
        Connector(reactor, ("127.0.0.1", listener.port), 10, connected,
                  lambda exc: counts.__setitem__("errors", counts["errors"] + 1))
    while counts["server"] + counts["errors"] < n or counts["client"] < n - counts["errors"]:
        reactor.run_once()
        if time.perf_counter() - t0 > 60:
            raise RuntimeError(f"handshakes stalled: {counts}")
    elapsed = time.perf_counter() - t0
    for t in layers:
        t.abort()
    listener.close()
    reactor.run_once()
    reactor.close()
    return {"connections": n, "seconds": round(elapsed, 3),
            "per_s": round(n / elapsed), "errors": counts["errors"]}


# -- idle connections ------------------------------------------------------------------------

def idle(kind: str, n: int, home: str, batch: int = 0) -> dict:
    """RSS per connection; ``batch``: open them so many at a time, else all at once."""
    warm = max(n // 20, 1)
    step = batch or n
    server = Server(kind, home, milestones=",".join(str(warm + i)
                                                    for i in range(0, n + 1, step)))
    reactor = Reactor()
    me = load_or_create_identity(Path(home) / "client")
    them = load_or_create_identity(Path(home) / "server")
    ctx = peer_context(me, them.cert_der, False)
    transports = []

    def connected(sock):
        upper = Protocol()
        if kind == "tls":
            transports.append(StreamTransport(reactor, sock, TLSLayer(reactor, ctx, upper,
                                                                      server_side=False)))
        else:
            transports.append(StreamTransport(reactor, sock, upper))

    def open_(count):
        for _ in range(count):
            Connector(reactor, ("127.0.0.1", server.port), 10, connected, lambda e: None)

    def turn():
        reactor.call_later(0.005, lambda: None)      # never wait in select for long
        reactor.run_once()

    try:
        open_(warm)
        server.wait(f"made {warm}\n", turn=turn)
        before = server.rss_kib()
        for done in range(step, n + 1, step):
            open_(step)
            server.wait(f"made {warm + done}\n", turn=turn)
        after = server.rss_kib()
    finally:
        for t in transports:
            t.abort()
        reactor.run_once()
        reactor.close()
        server.stop()
    return {"connections": n, "opened_at_once": step,
            "rss_kib_per_conn": round((after - before) / n, 1)}


# -- main ----------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--peers", type=int, default=20)
    p.add_argument("--lines", type=int, default=300000)
    p.add_argument("--record-lines", type=int, default=10,
                   help="lines per TLS record in the small-records run")
    p.add_argument("--handshakes", type=int, default=200)
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json")
    p.add_argument("--serve", choices=("plain", "tls"), help=argparse.SUPPRESS)
    p.add_argument("--home", help=argparse.SUPPRESS)
    p.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--milestones", default="", help=argparse.SUPPRESS)
    cfg = p.parse_args(argv)
    if cfg.serve:
        serve(cfg)
        return 0
    if cfg.quick:
        cfg.peers, cfg.lines, cfg.handshakes, cfg.idle, cfg.rounds = 4, 5000, 50, 100, 1
    results: dict = {"fanin": {}, "handshakes": {}, "idle": {}}
    with tempfile.TemporaryDirectory() as home:
        for kind, record_lines in (("plain", 0), ("tls", 0), ("tls", cfg.record_lines)):
            runs = [fanin(kind, cfg, home, record_lines) for _ in range(cfg.rounds)]
            name = kind if not record_lines else f"tls_{record_lines}_lines_per_record"
            results["fanin"][name] = sorted(runs, key=lambda r: r["lines_per_s"])[len(runs) // 2]
        results["handshakes"]["cached"] = handshakes(cfg.handshakes, True, home)
        results["handshakes"]["fresh"] = handshakes(cfg.handshakes, False, home)
        for kind in ("plain", "tls"):
            results["idle"][kind] = idle(kind, cfg.idle, home)
        # A burst of simultaneous handshakes leaves the heap at its peak; connections
        # that come a few at a time show the steady cost.
        results["idle"]["tls_10_at_a_time"] = idle("tls", cfg.idle, home, batch=10)
    plain = results["fanin"]["plain"]
    for name, run in results["fanin"].items():
        run["rate_vs_plain"] = round(run["lines_per_s"] / plain["lines_per_s"], 2)
        run["cpu_vs_plain"] = round(run["cpu_us_per_line"] / max(plain["cpu_us_per_line"],
                                                                  1e-9), 2)
    print(json.dumps(results, indent=2))
    if cfg.json:
        Path(cfg.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
