#!/usr/bin/env python3
"""chat.py with identities: encrypted against plain, side by side in one run.

    python3 tests/bench/secure_bench.py            # 3 rounds
    python3 tests/bench/secure_bench.py --quick    # small sizes, one round

Scenarios (each round runs the plain and the encrypted variants in turn):
  fanin      P peers each send L lines of 100 characters to one chat.py: plain clients
             (raw sockets) against chat.py peers over TLS (the wire's certificate hello,
             TLS 1.3, the full hello inside), and the same with delivery (delivery=1 in
             both hellos: the receiver numbers, dedupes, keys its history and sends a GOT
             per turn; the senders say GOT and FROM as chat.py does, and never read the
             acknowledgements); messages/s, receiver CPU per message, integrity (lost,
             merged, reordered: every line carries its peer and number).
  handshake  200 encrypted connections opened at once (8 client threads); time until
             chat.py has shown every one, and a `myport` answered meanwhile.
  idle       1,000 idle encrypted connections: chat.py's RSS growth per connection.
  startup    exec to the listening line: an existing identity against none at all.

Only 127.0.0.1 is used; every process started is stopped by pid; the identities live
in a temporary folder, never in the home of whoever runs it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
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
                   wait_lines)
import bench  # noqa: E402
from peerkit import WirePeer, make_identity  # noqa: E402
from network import wire  # noqa: E402

CHAT = [sys.executable, str(ROOT / "chat.py"), "0", "--host", "127.0.0.1", "--stay",
        "--max-peers", "20000", "--max-per-address", "0"]


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
            payloads = fanin_payloads(peers, lines)
            cpu0, t0 = cpu_s(rx.pid), time.perf_counter()
            threads = [threading.Thread(target=f, args=(p,)) for f, p in zip(send, payloads)]
            for t in threads:
                t.start()
            wait_lines(path, peers * lines, cfg.timeout)
            elapsed, cpu = time.perf_counter() - t0, cpu_s(rx.pid) - cpu0
            for t in threads:
                t.join(timeout=30)
        finally:
            rx.stop()
        integrity = check_integrity(Path(path).read_bytes(), peers, lines)
    total = peers * lines
    return {"msgs_per_s": total / elapsed, "cpu_us_per_msg": cpu / total * 1e6, **integrity}


def handshakes(cfg, home: Path, client) -> dict:
    rx = receiver(home)
    try:
        start = time.perf_counter()

        def one(_):
            c = WirePeer.connect(rx.port, client)
            c.hello(port=1)
            c.their_hello()
            return c
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            future = pool.map(one, range(cfg.handshakes))
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
            c = WirePeer.connect(rx.port, client)
            c.hello(port=1)
            c.their_hello()
            conns.append(c)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=3)
    cfg = p.parse_args(argv)
    cfg.peers, cfg.lines = (10, 2000) if cfg.quick else (50, 20000)
    cfg.handshakes, cfg.idle = (50, 100) if cfg.quick else (200, 1000)
    cfg.startup_runs, cfg.timeout = (3 if cfg.quick else 11), 120
    rounds = 1 if cfg.quick else cfg.rounds
    if shutil.which("openssl") is None:
        print("needs the openssl command", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="secure-bench-"))
    try:
        home, client = tmp / "server", make_identity(tmp / "client" / "identity-home")
        make_identity(home)
        modes = ("plain", "encrypted", "acks")
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
        for name, result in (("handshake", handshakes(cfg, home, client)),
                             ("idle", idle(cfg, home, client)),
                             ("startup", startup(cfg, home, tmp))):
            print(name + ": " + ", ".join(f"{k} {v:,.2f}" if isinstance(v, float)
                                          else f"{k} {v}" for k, v in result.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
