#!/usr/bin/env python3
"""chat.py with identities: encrypted against plain, and against a TLS reference receiver.

    python3 tests/bench/secure_bench.py                      # everything, 3 rounds
    python3 tests/bench/secure_bench.py --quick              # small sizes, one round
    python3 tests/bench/secure_bench.py --scenarios vsref    # only chat.py vs the reference
    python3 tests/bench/secure_bench.py --scenarios vsref --parts fanin,latency --rounds 1

Scenarios (``--scenarios``, default all):
  fanin      P peers each send L lines of 100 characters to one chat.py: plain clients
             (raw sockets) against chat.py peers over TLS (the wire's certificate hello,
             TLS 1.3, the full hello inside), and the same with delivery (delivery=1 in
             both hellos: the receiver numbers, dedupes, keys its history and sends a GOT
             per turn; the senders say GOT and FROM as chat.py does, and never read the
             acknowledgements); messages/s, receiver CPU per message, integrity (lost,
             merged, reordered: every line carries its peer and number). Each round runs
             the plain and the encrypted variants in turn.
  handshake  200 encrypted connections opened at once (8 client threads); time until
             chat.py has shown every one, and a `myport` answered meanwhile.
  idle       1,000 idle encrypted connections: chat.py's RSS growth per connection.
  startup    exec to the listening line: an existing identity against none at all.
  vsref      chat.py encrypted ("chat-tls": identities, history on, delivery on) side by
             side with the minimal encrypted receiver tests/bench/refs/tls_floor.py
             ("tls-floor": floor.py's loop plus the opening and TLS, nothing else), in
             turn within each round (A B A B ...); one table of medians and the ratio
             chat/reference. Its parts (``--parts``, default all):
               fanin      P senders (--peers, 50) each stream L lines (--lines, 20,000)
                          of 100 characters: msg/s, receiver CPU us per message, how busy
                          the receiver was (CPU s / wall s), integrity. Every sender's
                          opening (knock, certificates, TLS, hellos, and GOT/FROM when the
                          receiver offers delivery) is done first and its whole payload
                          encrypted ahead (ssl.SSLObject on MemoryBIOs): the timed part is
                          only sendall of ciphertext, so the bench's own cryptography does
                          not compete with the receiver for the cores.
               latency    one encrypted sender, sequential round trips (--latency-rounds,
                          400): one line sent, timed until it is on the receiver's stdout;
                          p50 and p99 in us.
               handshake  --handshakes (200) encrypted connections opened at once by 8
                          client threads, each through its hellos: wall seconds until the
                          receiver has shown them all, and the receiver's CPU seconds.
               idle       --idle (1,000) idle encrypted connections: RSS growth per
                          connection in KiB.

Only 127.0.0.1 is used; every process started is stopped by pid; the identities live
in a temporary folder, never in the home of whoever runs it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import resource
import selectors
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]

from bench import (Receiver, check_integrity, cpu_s, fanin_payloads, proc_kib,  # noqa: E402
                   timed_flood)
import bench  # noqa: E402
from peerkit import WirePeer, make_identity, read_line  # noqa: E402
from network import wire  # noqa: E402
from network.tlscontext import peer_context  # noqa: E402

CHAT = [sys.executable, str(ROOT / "chat.py"), "0", "--host", "127.0.0.1", "--stay",
        "--max-peers", "20000", "--max-per-address", "0"]
TLS_FLOOR = [sys.executable, str(HERE / "refs" / "tls_floor.py"), "0"]
VSREF = ("chat-tls", "tls-floor")              # chat.py first: ratios are chat / reference
VSREF_PARTS = ("fanin", "latency", "handshake", "idle")


def receiver(home: Path, env: dict | None = None, out: str | None = None) -> Receiver:
    bench.IMPLS["chat-secure"] = CHAT + ["--home", str(home)]
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return Receiver("chat-secure", out)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def fanin(mode: str, cfg, home: Path, client) -> dict:
    """``mode``: plain, encrypted, or acks (encrypted, with delivery)."""
    peers, lines = cfg.peers, cfg.lines
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out")
        rx = receiver(home, out=path)
        try:
            if mode != "plain":
                acks = mode == "acks"
                conns = [WirePeer.connect(rx.port, client) for _ in range(peers)]
                for c in conns:
                    c.hello(port=1, delivery=acks)
                    c.their_hello()
                    if acks:               # as chat.py does: GOT first, FROM on theirs
                        c.send_line(wire.got_line(None, 0))
                        assert c.read_line().startswith(b"\x01GOT ")
                        c.send_line(wire.from_line(wire.new_stream(), 1))
                send = [c.tls.sendall for c in conns]
            else:
                socks = [bench.connect(rx.port) for _ in range(peers)]
                send = [s.sendall for s in socks]
            elapsed, cpu = timed_flood(rx, path, send, fanin_payloads(peers, lines),
                                       peers * lines, cfg.timeout)
        finally:
            rx.stop()
        integrity = check_integrity(Path(path).read_bytes(), peers, lines)
    total = peers * lines
    return {"msgs_per_s": total / elapsed, "cpu_us_per_msg": cpu / total * 1e6, **integrity}


def handshakes(cfg, home: Path, client) -> dict:
    rx = receiver(home)
    try:
        start = time.perf_counter()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            future = pool.map(lambda _: WirePeer.greeted(rx.port, client),
                              range(cfg.handshakes))
            time.sleep(0.05)                       # mid-way through: is the loop answering?
            asked = time.perf_counter()
            rx.send_stdin(b"myport\n")
            rx.wait_output(b"listening port:", 0, timeout=30)
            answered_ms = (time.perf_counter() - asked) * 1e3
            conns = list(future)
        rx.wait_output(b"peer %d (" % cfg.handshakes, 0, timeout=60)
        elapsed = time.perf_counter() - start
        for c in conns:
            c.close()
    finally:
        rx.stop()
    return {"connections": cfg.handshakes, "seconds": elapsed, "myport_ms_meanwhile": answered_ms}


def idle(cfg, home: Path, client) -> dict:
    rx = receiver(home)
    try:
        before = proc_kib(rx.pid, "VmRSS")
        conns = []
        for _ in range(cfg.idle):
            conns.append(WirePeer.greeted(rx.port, client))
        rx.wait_output(b"peer %d (" % cfg.idle, 0, timeout=60)
        after = proc_kib(rx.pid, "VmRSS")
        for c in conns:
            c.close()
    finally:
        rx.stop()
    return {"connections": cfg.idle, "kib_per_connection": (after - before) / cfg.idle}


def startup(cfg, home: Path, tmp: Path) -> dict:
    no_openssl = tmp / "bin"
    no_openssl.mkdir(exist_ok=True)
    if not (no_openssl / "python3").exists():
        (no_openssl / "python3").symlink_to(sys.executable)
    with_id, without = [], []
    for i in range(cfg.startup_runs):
        rx = receiver(home)
        with_id.append(rx.listening_after)
        rx.stop()
        rx = receiver(tmp / f"none-{i}", env={"PATH": str(no_openssl)})
        without.append(rx.listening_after)
        rx.stop()
    a, b = statistics.median(with_id) * 1e3, statistics.median(without) * 1e3
    return {"with_identity_ms": a, "without_ms": b, "ratio": a / b}


# -- chat.py encrypted against the TLS reference (vsref) -------------------------------------

class BioPeer:
    """The connecting side of chat.py's opening, TLS on ``ssl.SSLObject`` over two
    ``MemoryBIO``s and a blocking socket: what ``peerkit.WirePeer`` does, but the
    encryption is separate from the sending, so a payload can be encrypted ahead
    (:meth:`seal`) and its ciphertext sent later at no cryptographic cost."""

    contexts: dict = {}          # (our fingerprint, their certificate) -> context

    def __init__(self, port: int, identity) -> None:
        self.sock = sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(wire.knock_line().encode() + b"\n")
        theirs = read_line(sock)           # a byte at a time: no TLS byte can follow it
        cert = wire.parse_hello(wire.split_control(theirs.decode("ascii"))[1])
        assert isinstance(cert, wire.TlsHello), theirs
        sock.sendall(wire.tls_hello_line(identity.cert_der).encode() + b"\n")
        key = (identity.fingerprint, cert.cert_der)
        context = self.contexts.get(key)
        if context is None:                # the side that connected is the TLS server
            context = self.contexts[key] = peer_context(identity, cert.cert_der, True)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.buffer = bytearray()
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self._receive()
        self.flush()

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed during the opening")
        self.incoming.write(data)

    def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def send_line(self, line: str | bytes) -> None:
        self.tls.write((line.encode() if isinstance(line, str) else line) + b"\n")
        self.flush()

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._receive()
                continue
            if not chunk:
                raise ConnectionError(f"closed after {bytes(self.buffer)!r}")
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return line

    def open(self, delivery: bool = True) -> wire.Hello:
        """The hellos, and GOT/FROM when both offer delivery (as the fan-in's acks mode)."""
        self.send_line(wire.hello_line(wire.Hello(1, os.urandom(8).hex(), 15000,
                                                  delivery=delivery)))
        theirs = wire.parse_hello(wire.split_control(self.read_line().decode())[1])
        assert isinstance(theirs, wire.Hello), theirs
        if delivery and theirs.delivery:   # as chat.py does: GOT first, FROM on theirs
            self.send_line(wire.got_line(None, 0))
            while not self.read_line().startswith(b"\x01GOT "):
                pass
            self.send_line(wire.from_line(wire.new_stream(), 1))
        return theirs

    def seal(self, payload: bytes) -> bytes:
        """``payload`` encrypted (records of 16 KiB), to be sent later on ``self.sock``."""
        self.tls.write(payload)
        return self.outgoing.read()

    def close(self) -> None:
        self.sock.close()


def drain(socks: list, stop: threading.Event) -> None:
    """Read and drop what the receiver sends (its GOTs) until ``stop``: never read, they
    could fill the socket buffers and stall the receiver's writes, and so its reads."""
    sel = selectors.DefaultSelector()
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
    while not stop.is_set() and sel.get_map():
        for key, _ in sel.select(0.05):
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
    sel.close()


def vs_fanin(impl: str, cfg, client) -> dict:
    peers, lines = cfg.peers, cfg.lines
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out")
        rx = Receiver(impl, path)
        conns: list[BioPeer] = []
        stop, drainer = threading.Event(), None
        try:
            for _ in range(peers):
                conns.append(BioPeer(rx.port, client))
                conns[-1].open()
            sealed = [c.seal(p) for c, p in zip(conns, fanin_payloads(peers, lines))]
            for c in conns:
                c.sock.settimeout(None)    # a timeout would bound the whole sendall
            drainer = threading.Thread(target=drain, args=([c.sock for c in conns], stop))
            drainer.start()
            elapsed, cpu = timed_flood(rx, path, [c.sock.sendall for c in conns], sealed,
                                       peers * lines, cfg.timeout)
        finally:
            stop.set()
            if drainer is not None:
                drainer.join(timeout=10)
            for c in conns:
                c.close()
            rx.stop()
        integrity = check_integrity(Path(path).read_bytes(), peers, lines)
    total = peers * lines
    return {"msgs_per_s": total / elapsed, "cpu_us_per_msg": cpu / total * 1e6,
            "receiver_busy": cpu / elapsed, **integrity}


def vs_latency(impl: str, cfg, client) -> dict:
    rx = Receiver(impl)
    try:
        c = BioPeer(rx.port, client)
        c.open()
        times, pos = [], rx.wait_output(b"peer 1 (", 0)
        for i in range(cfg.latency_rounds):
            t = time.perf_counter()
            c.send_line(b"in-%06d" % i)
            pos = rx.wait_output(b"in-%06d" % i, pos)
            times.append(time.perf_counter() - t)
        c.close()
    finally:
        rx.stop()
    return {"p50_us": bench.pct(times, .5) * 1e6, "p99_us": bench.pct(times, .99) * 1e6}


def vs_handshakes(impl: str, cfg, client) -> dict:
    rx = Receiver(impl)
    conns = []
    try:
        cpu0, start = cpu_s(rx.pid), time.perf_counter()

        def one(_):
            c = BioPeer(rx.port, client)
            c.open()
            return c
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(one, i) for i in range(cfg.handshakes)]
            while not all(f.done() for f in futures):
                rx.pump(0.02)              # keep its stdout flowing (a pipe holds 64 KiB)
            conns = [f.result() for f in futures]
        rx.wait_output(b"peer %d (" % cfg.handshakes, 0, timeout=60)
        elapsed, cpu = time.perf_counter() - start, cpu_s(rx.pid) - cpu0
    finally:
        for c in conns:
            c.close()
        rx.stop()
    return {"seconds": elapsed, "receiver_cpu_s": cpu}


def vs_idle(impl: str, cfg, client) -> dict:
    rx = Receiver(impl)
    conns = []
    try:
        before = proc_kib(rx.pid, "VmRSS")
        for i in range(cfg.idle):
            conns.append(BioPeer(rx.port, client))
            conns[-1].open()
            if i % 100 == 99:
                rx.pump(0)
        rx.wait_output(b"peer %d (" % cfg.idle, 0, timeout=60)
        after = proc_kib(rx.pid, "VmRSS")
    finally:
        for c in conns:
            c.close()
        rx.stop()
    return {"kib_per_connection": (after - before) / cfg.idle}


VS_RUNS = {"fanin": vs_fanin, "latency": vs_latency, "handshake": vs_handshakes,
           "idle": vs_idle}


def vsref(cfg, rounds: int, home: Path, ref_home: Path, client) -> None:
    bench.IMPLS["chat-tls"] = CHAT + ["--home", str(home)]
    bench.IMPLS["tls-floor"] = TLS_FLOOR + [str(ref_home)]
    runs = {part: {impl: [] for impl in VSREF} for part in cfg.parts}
    for r in range(rounds):
        for part in cfg.parts:
            for impl in VSREF:
                print(f"# vsref round {r + 1}/{rounds}: {part} {impl}", file=sys.stderr,
                      flush=True)
                try:
                    runs[part][impl].append(VS_RUNS[part](impl, cfg, client))
                except Exception as exc:  # noqa: BLE001 - a failing run is a result too
                    runs[part][impl].append({"error": f"{type(exc).__name__}: {exc}"})
    print(f"\nchat.py encrypted (identities, history, delivery) vs the TLS reference "
          f"(median of {rounds} round{'s' * (rounds > 1)}; {os.cpu_count()} cores)")
    print(f"  {'metric':<28}{VSREF[0]:>14}{VSREF[1]:>14}{'chat/ref':>10}")
    for part in cfg.parts:
        med = {impl: bench.medians(runs[part][impl]) for impl in VSREF}
        keys = [k for k in runs[part][VSREF[0]][0] if k != "error"] or \
            [k for k in runs[part][VSREF[1]][0] if k != "error"]
        for k in keys:
            a, b = (med[impl].get(k) for impl in VSREF)
            cells = ["-" if v is None else f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.3f}"
                     for v in (a, b)]
            ratio = f"{a / b:.2f}x" if a is not None and b else "-"
            print(f"  {part + ' ' + k:<28}{cells[0]:>14}{cells[1]:>14}{ratio:>10}")
        for impl in VSREF:
            for e in med[impl].get("errors", []):
                print(f"  ! {part} {impl}: {e}")


def secure(cfg, rounds: int, home: Path, client, tmp: Path) -> None:
    """The first scenarios: plain against encrypted against encrypted with acks."""
    modes = ("plain", "encrypted", "acks")
    if "fanin" in cfg.scenarios:
        runs: dict = {mode: [] for mode in modes}
        for r in range(rounds):
            print(f"# round {r + 1}/{rounds}", file=sys.stderr, flush=True)
            for mode in modes:
                runs[mode].append(fanin(mode, cfg, home, client))
        med = {mode: {k: statistics.median(x[k] for x in runs[mode]) for k in runs[mode][0]}
               for mode in modes}
        print("fanin (medians)          plain       encrypted  enc. + acks   enc./plain"
              "  acks/enc.")
        for k in med["plain"]:
            p, e, a = (med[mode][k] for mode in modes)
            print(f"  {k:<18} {p:>12,.3f}  {e:>12,.3f}  {a:>12,.3f}  "
                  f"{e / p if p else float('nan'):>9.2f}x  {a / e if e else float('nan'):>8.2f}x")
    for name, run in (("handshake", lambda: handshakes(cfg, home, client)),
                      ("idle", lambda: idle(cfg, home, client)),
                      ("startup", lambda: startup(cfg, home, tmp))):
        if name in cfg.scenarios:
            result = run()
            print(name + ": " + ", ".join(f"{k} {v:,.2f}" if isinstance(v, float)
                                          else f"{k} {v}" for k, v in result.items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scenarios", default="fanin,handshake,idle,startup,vsref",
                   help="any of fanin,handshake,idle,startup (chat.py plain/encrypted/acks) "
                        "and vsref (chat.py encrypted vs tests/bench/refs/tls_floor.py)")
    p.add_argument("--parts", default=",".join(VSREF_PARTS),
                   help="what vsref measures: any of " + ",".join(VSREF_PARTS))
    p.add_argument("--peers", type=int, help="fan-in senders (50; quick 10)")
    p.add_argument("--lines", type=int, help="lines per fan-in sender (20,000; quick 2,000)")
    p.add_argument("--latency-rounds", type=int, help="vsref round trips (400; quick 100)")
    p.add_argument("--handshakes", type=int, help="connections at once (200; quick 50)")
    p.add_argument("--idle", type=int, help="idle connections (1,000; quick 100)")
    p.add_argument("--timeout", type=float, default=120.0)
    cfg = p.parse_args(argv)
    cfg.scenarios = cfg.scenarios.split(",")
    cfg.parts = cfg.parts.split(",")
    known = {"fanin", "handshake", "idle", "startup", "vsref"}
    if not known.issuperset(cfg.scenarios) or not set(VSREF_PARTS).issuperset(cfg.parts):
        p.error(f"scenarios: {','.join(sorted(known))}; parts: {','.join(VSREF_PARTS)}")
    for name, full, quick in (("peers", 50, 10), ("lines", 20000, 2000),
                              ("latency_rounds", 400, 100), ("handshakes", 200, 50),
                              ("idle", 1000, 100)):
        if getattr(cfg, name) is None:
            setattr(cfg, name, quick if cfg.quick else full)
    cfg.startup_runs = 3 if cfg.quick else 11
    rounds = 1 if cfg.quick else cfg.rounds
    if shutil.which("openssl") is None:
        print("needs the openssl command", file=sys.stderr)
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # the receivers inherit it
    tmp = Path(tempfile.mkdtemp(prefix="secure-bench-"))
    try:
        home, client = tmp / "server", make_identity(tmp / "client" / "identity-home")
        make_identity(home)
        if set(cfg.scenarios) - {"vsref"}:
            secure(cfg, rounds, home, client, tmp)
        if "vsref" in cfg.scenarios:
            make_identity(tmp / "reference")
            vsref(cfg, rounds, home, tmp / "reference", client)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
