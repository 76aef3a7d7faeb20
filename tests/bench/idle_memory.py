#!/usr/bin/env python3
"""What one idle connection costs chat.py, measured with ``tracemalloc``.

    python3 tests/bench/idle_memory.py                  # 20,000 plain, 2,000 encrypted
    python3 tests/bench/idle_memory.py --plain 2000 --encrypted 200 --top 10

chat.py runs under this file's ``--serve`` mode: ``chat.main`` with ``tracemalloc``
on; each SIGPROF writes a snapshot. The driver takes one before the clients come and
one once every client has spoken (plain clients say one line; encrypted ones are
chat.py peers as ``tests/peerkit.WirePeer`` speaks it: the knock, the certificates,
TLS 1.3, the full hello). The report is the Python heap per connection and the
allocation sites that grew, by line, besides the RSS growth (which adds the kernel's
socket and the allocator's slack; ``bench.py``'s ``scale`` scenario compares that
one with the references).

20,000 connections need 20,000 file descriptors in chat.py and as many in this driver:
the driver raises its own limit (as root it may raise the hard one) before it starts
chat.py, which lifts its soft limit to the hard one itself (``reactor.process``). One
loopback address has 28,000 ephemeral ports (32768-60999), enough for one run.

Only 127.0.0.1; chat.py is stopped by its pid; identities live in a temporary folder.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def serve(report: str, argv: list[str]) -> None:
    """chat.main with tracemalloc; SIGPROF appends a snapshot's figures to ``report``."""
    import tracemalloc
    sys.path.insert(0, str(ROOT))
    import chat
    tracemalloc.start(1)
    snapshots: list = []

    def dump(signum, frame) -> None:
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        snapshots.append(snap)
        lines = [f"traced {sum(s.size for s in snap.statistics('filename'))}"]
        if len(snapshots) > 1:
            for stat in snap.compare_to(snapshots[0], "lineno")[:40]:
                frame = stat.traceback[0]
                name = os.path.relpath(frame.filename, ROOT) if frame.filename.startswith(
                    str(ROOT)) else frame.filename
                lines.append(f"site {stat.size_diff} {stat.count_diff} {name}:{frame.lineno}")
        with open(report + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(report + ".tmp", report)

    signal.signal(signal.SIGPROF, dump)
    sys.argv = [str(ROOT / "chat.py"), *argv]
    sys.exit(chat.main())


class Traced:
    """chat.py under ``serve``, its stdout in a file."""

    def __init__(self, tmp: Path, home: Path, connections: int) -> None:
        self.report = str(tmp / "report")
        self.out_path = tmp / "out"
        self.out = open(self.out_path, "wb")
        need = connections + 64
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < need:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))  # CAP_SYS_RESOURCE
                hard = need
            except (ValueError, OSError):
                print(f"# open files limited to {hard}: ask for fewer connections",
                      file=sys.stderr)
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", self.report, "0", "--host", "127.0.0.1",
             "--stay", "--no-announce", "--max-peers", str(connections + 10),
             "--max-per-address", "0", "--home", str(home)],
            stdin=subprocess.PIPE, stdout=self.out, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            m = re.search(rb"listening on \S+:(\d+)", self.out_path.read_bytes())
            if m:
                self.port = int(m.group(1))
                break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chat.py did not start")
            time.sleep(0.02)        # polling a file: nothing to wait on

    def count(self, pattern: bytes) -> int:
        return len(re.findall(pattern, self.out_path.read_bytes()))

    def wait_count(self, pattern: bytes, n: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.count(pattern) < n:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{self.count(pattern)} of {n} {pattern!r}")
            time.sleep(0.1)

    def snapshot(self) -> tuple[int, list[str]]:
        if os.path.exists(self.report):
            os.remove(self.report)
        os.kill(self.proc.pid, signal.SIGPROF)
        deadline = time.monotonic() + 120
        while not os.path.exists(self.report):
            if time.monotonic() > deadline:
                raise RuntimeError("no snapshot")
            time.sleep(0.05)
        lines = Path(self.report).read_text().splitlines()
        return int(lines[0].split()[1]), lines[1:]

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.out.close()


def measure(kind: str, n: int, tmp: Path, top: int) -> dict:
    home = tmp / f"{kind}-home"
    (tmp / kind).mkdir()
    rx = Traced(tmp / kind, home, n)
    clients: list = []
    try:
        base, _ = rx.snapshot()
        rss0 = rx.rss_kib()
        if kind == "plain":
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", rx.port))
                s.sendall(b"idle-%06d\n" % i)
                clients.append(s)
            rx.wait_count(rb"idle-\d{6}", n)
        else:
            sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
            from peerkit import WirePeer, make_identity
            identity = make_identity(tmp / "client-identity")
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                clients = list(pool.map(lambda _: WirePeer.greeted(rx.port, identity),
                                        range(n)))
            rx.wait_count(rb"peer \d+ \(", n)
        time.sleep(1.0)       # let a last turn settle (its buffers freed): a measurement
        after, sites = rx.snapshot()
        rss1 = rx.rss_kib()
    finally:
        for c in clients:
            c.close()
        rx.stop()
    return {"kind": kind, "connections": n, "heap_bytes_per_conn": (after - base) / n,
            "rss_kib_per_conn": (rss1 - rss0) / n, "sites": sites[:top]}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        serve(argv[1], argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--plain", type=int, default=20000)
    p.add_argument("--encrypted", type=int, default=2000)
    p.add_argument("--top", type=int, default=15, help="allocation sites to show")
    cfg = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="idle-memory-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp)
    try:
        results = []
        if cfg.plain:
            results.append(measure("plain", cfg.plain, tmp, cfg.top))
        if cfg.encrypted and shutil.which("openssl"):
            results.append(measure("encrypted", cfg.encrypted, tmp, cfg.top))
        for r in results:
            print(f"{r['kind']}: {r['connections']:,} idle connections: "
                  f"{r['heap_bytes_per_conn']:,.0f} bytes of Python heap each (tracemalloc), "
                  f"RSS {r['rss_kib_per_conn']:.2f} KiB each")
            for line in r["sites"]:
                _, size, count, where = line.split(" ", 3)
                print(f"  {int(size) / r['connections']:8.1f} B/conn  "
                      f"{int(count) / r['connections']:6.2f} blocks/conn  {where}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
