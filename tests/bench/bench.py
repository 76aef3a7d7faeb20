#!/usr/bin/env python3
"""Benchmarks: chat.py against reference receivers, side by side in one run.

    python3 tests/bench/bench.py            # the full suite (a few minutes)
    python3 tests/bench/bench.py --quick    # small sizes, one round
    python3 tests/bench/bench.py --scenarios fanin,latency --impls chat,floor --json out.json

Every scenario runs each implementation in turn, round after round (A B C A B C ...),
so a noisy neighbour hurts all of them alike; the table gives medians and the ratio to
the baseline (the minimal selectors loop, "floor"). Only 127.0.0.1 is used, and every
process started is stopped by pid.

Scenarios:
  fanin    P sockets each send L lines of 100 characters with unique tokens; time until
           every token is on the receiver's stdout (a file); messages/s, receiver CPU per
           message, peak RSS, and integrity (lost, merged, split, duplicated, reordered).
  latency  sequential round trips, inbound (socket -> stdout) and outbound (send on stdin
           -> socket), p50/p99; a reply (a line arrives, is seen on stdout, and
           "send 1" answers it: socket to socket through the user); and pairs of quick
           lines that expose Nagle/delayed-ACK stalls (round trips >= 20 ms are counted).
  scale    N idle peers connected (1, 5,000 and 20,000 by default): RSS per connection,
           time to accept them, inbound latency with them present. 20,000 needs 20,000
           file descriptors here and more in the receiver: the bench raises its own limit
           (the hard one too, where it may) and the receivers inherit it; where the hard
           limit is 20,000 and stays, use --scale-sizes 1,5000,19900.
  burst    M sends piped into stdin while the target peer reads nothing for a second:
           all must arrive in order; peak RSS; a second peer's messages' latency meanwhile.
  fanout   P plain sockets connected to the receiver, M "send all" lines piped into its
           stdin; one of the sockets reads nothing for the first second (a small receive
           buffer). Delivered messages/s to the others, how long the slow one takes once
           it reads, peak RSS, and on every socket: lost, reordered, corrupted.
  startup  time from exec to the listening line.
  stall    the fan-in's flood (1 M messages by default) into chat.py run under
           tests/bench/turns.py, which times every loop turn from the moment select
           returns: the worst turn (the longest the loop could not answer anyone, the
           history's write and SQLite's commit included), turns of 20 ms or more, and
           the worst end-of-turn save. chat.py implementations only ("before" too).

The fan-in runs chat.py with its history on (the default) and "chat-nohist" with
--no-history, beside the references.

After the tables, "goals" sets chat.py's figures beside the targets (ratios to the
floor, and KiB per idle connection at the largest scale size).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# chat.py keeps an identity in its home: the bench's lives in a temporary folder, never in
# the home of whoever runs it.
if "CHAT_BENCH_HOME" not in os.environ:
    import atexit
    import shutil
    os.environ["CHAT_BENCH_HOME"] = os.environ["XDG_CONFIG_HOME"] = \
        tempfile.mkdtemp(prefix="chat-bench-")
    atexit.register(shutil.rmtree, os.environ["CHAT_BENCH_HOME"], True)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
IMPLS = {
    "chat": [PY, str(ROOT / "chat.py"), "0", "--host", "127.0.0.1", "--stay",
             "--max-peers", "20000", "--max-per-address", "0"],
    # The same with nothing on disk: no history, no outbox (fan-in: what the history costs).
    "chat-nohist": [PY, str(ROOT / "chat.py"), "0", "--host", "127.0.0.1", "--stay",
                    "--max-peers", "20000", "--max-per-address", "0", "--no-history"],
    "floor": [PY, str(HERE / "refs" / "floor.py"), "0"],
    "asyncio": [PY, str(HERE / "refs" / "asyncio_streams.py"), "0"],
    "threads": [PY, str(HERE / "refs" / "threaded.py"), "0"],
}
BASELINE = "floor"
LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
TOKEN = re.compile(rb"p(\d{3})-(\d{6}) (x*)")


# -- processes --------------------------------------------------------------------------------

def proc_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Receiver:
    """One implementation under test, listening on a free loopback port."""

    def __init__(self, impl: str, stdout_path: str | None = None) -> None:
        self.started = time.perf_counter()
        self.out_file = open(stdout_path, "wb") if stdout_path else None
        self.proc = subprocess.Popen(IMPLS[impl], stdin=subprocess.PIPE,
                                     stdout=self.out_file or subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        self.buf = bytearray()
        deadline = time.monotonic() + 15
        while True:
            if stdout_path:
                with open(stdout_path, "rb") as f:
                    m = LISTENING.search(f.read(4096))
            else:
                self.pump(0.01)
                m = LISTENING.search(self.buf)
            if m:
                break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{impl} did not start")
            if stdout_path:
                time.sleep(0.005)
        self.listening_after = time.perf_counter() - self.started
        self.port = int(m.group(1))
        if not stdout_path:
            os.set_blocking(self.proc.stdout.fileno(), False)

    def pump(self, timeout: float) -> None:
        fd = self.proc.stdout.fileno()
        if select.select([fd], [], [], timeout)[0]:
            try:
                while True:
                    data = os.read(fd, 1 << 20)
                    if not data:
                        break
                    self.buf += data
                    if len(data) < 1 << 20:
                        break
            except BlockingIOError:
                pass

    def wait_output(self, needle: bytes, start: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(needle, start)
            if i >= 0:
                return i + len(needle)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {needle!r} from the receiver")
            self.pump(0.05)

    def send_stdin(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout, self.out_file):
            if f:
                try:
                    f.close()
                except OSError:
                    pass


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_line(sock: socket.socket, buf: bytearray, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        i = buf.find(b"\n")
        if i >= 0:
            line = bytes(buf[:i])
            del buf[:i + 1]
            return line
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed")
        buf += data


def establish(rx: Receiver, socks: list[socket.socket]) -> None:
    """Make each socket a known peer (ids 1, 2, ... in this order)."""
    for i, s in enumerate(socks):
        s.sendall(b"hello-%d\n" % i)
        rx.wait_output(b"hello-%d" % i, 0)


# -- scenarios --------------------------------------------------------------------------------

def fanin(impl: str, cfg) -> dict:
    peers, lines = cfg.fanin_peers, cfg.fanin_lines
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out")
        rx = Receiver(impl, path)
        try:
            socks = [connect(rx.port) for _ in range(peers)]
            elapsed, cpu = timed_flood(rx, path, [s.sendall for s in socks],
                                       fanin_payloads(peers, lines), peers * lines, cfg.timeout)
            hwm = proc_kib(rx.pid, "VmHWM")
            for s in socks:
                s.close()
        finally:
            rx.stop()
        integrity = check_integrity(Path(path).read_bytes(), peers, lines)
    total = peers * lines
    return {"msgs_per_s": total / elapsed, "cpu_us_per_msg": cpu / total * 1e6,
            "peak_rss_mib": hwm / 1024, **integrity}


def timed_flood(rx: Receiver, path: str, sends: list, payloads: list, total: int,
                timeout: float) -> tuple[float, float]:
    """Each ``sends[i](payloads[i])`` in a thread of its own, all at once: the seconds until
    ``total`` lines are in the receiver's output file, and the receiver's CPU seconds."""
    cpu0, t0 = cpu_s(rx.pid), time.perf_counter()
    threads = [threading.Thread(target=send, args=(data,)) for send, data in zip(sends, payloads)]
    for t in threads:
        t.start()
    wait_lines(path, total, timeout)
    elapsed, cpu = time.perf_counter() - t0, cpu_s(rx.pid) - cpu0
    for t in threads:
        t.join(timeout=30)
    return elapsed, cpu


def fanin_payloads(peers: int, lines: int) -> list[bytes]:
    """Per peer, ``lines`` lines of 100 characters, each naming its peer and number."""
    return [b"".join(b"p%03d-%06d " % (i, j) + b"x" * 89 + b"\n" for j in range(lines))
            for i in range(peers)]


def wait_lines(path: str, total: int, timeout: float) -> None:
    """Until ``total`` fan-in lines are in the receiver's output file (or the timeout)."""
    seen, offset, last = 0, 0, b""
    deadline = time.monotonic() + timeout
    with open(path, "rb") as f:
        while seen < total and time.monotonic() < deadline:
            f.seek(offset)
            data = f.read()
            if not data:
                time.sleep(0.002)   # polling a file: nothing to wait on
                continue
            offset += len(data)
            seen += data.count(b"x\n") + (last == b"x" and data[:1] == b"\n")
            last = data[-1:]


def check_integrity(data: bytes, peers: int, lines: int) -> dict:
    last = [-1] * peers
    seen = [bytearray(lines) for _ in range(peers)]
    merged = split = duplicated = reordered = 0
    for line in data.split(b"\n"):
        tokens = TOKEN.findall(line)
        if len(tokens) > 1:
            merged += 1
        for peer, seq, pad in tokens:
            p, j = int(peer), int(seq)
            if len(pad) != 89 or not line.endswith(pad):
                split += 1
            if seen[p][j]:
                duplicated += 1
            seen[p][j] = 1
            if j < last[p]:
                reordered += 1
            last[p] = max(last[p], j)
    lost = sum(lines - sum(s) for s in seen)
    return {"lost": lost, "merged": merged, "split": split, "duplicated": duplicated,
            "reordered": reordered}


def latency(impl: str, cfg) -> dict:
    rx = Receiver(impl)
    try:
        sock = connect(rx.port)
        establish(rx, [sock])
        buf = bytearray()
        inbound, outbound, reply, pair_in, pair_out = [], [], [], [], []
        pos = len(rx.buf)
        for i in range(cfg.latency_rounds):
            t = time.perf_counter()
            sock.send(b"in-%06d\n" % i)
            pos = rx.wait_output(b"in-%06d" % i, pos)
            inbound.append(time.perf_counter() - t)

            t = time.perf_counter()
            rx.send_stdin(b"send 1 out-%06d\n" % i)
            assert read_line(sock, buf) == b"out-%06d" % i
            outbound.append(time.perf_counter() - t)

            t = time.perf_counter()
            sock.send(b"ask-%06d\n" % i)
            pos = rx.wait_output(b"ask-%06d" % i, pos)
            rx.send_stdin(b"send 1 re-%06d\n" % i)
            assert read_line(sock, buf) == b"re-%06d" % i
            reply.append(time.perf_counter() - t)

            t = time.perf_counter()
            sock.send(b"qa-%06d\n" % i)
            sock.send(b"qb-%06d\n" % i)
            pos = rx.wait_output(b"qb-%06d" % i, pos)
            pair_in.append(time.perf_counter() - t)

            t = time.perf_counter()
            rx.send_stdin(b"send 1 qc-%06d\nsend 1 qd-%06d\n" % (i, i))
            assert read_line(sock, buf) == b"qc-%06d" % i
            assert read_line(sock, buf) == b"qd-%06d" % i
            pair_out.append(time.perf_counter() - t)
            rx.pump(0)
        sock.close()
    finally:
        rx.stop()
    us = 1e6
    return {"in_p50_us": pct(inbound, .5) * us, "in_p99_us": pct(inbound, .99) * us,
            "out_p50_us": pct(outbound, .5) * us, "out_p99_us": pct(outbound, .99) * us,
            "reply_p50_us": pct(reply, .5) * us, "reply_p99_us": pct(reply, .99) * us,
            "stalls_20ms": sum(1 for v in inbound + outbound + reply + pair_in + pair_out
                               if v >= 0.020)}


def scale(impl: str, cfg) -> dict:
    result = {}
    for n in cfg.scale_sizes:
        rx = Receiver(impl)
        socks = []
        try:
            rss0 = proc_kib(rx.pid, "VmRSS")
            t0 = time.perf_counter()
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", rx.port))
                s.sendall(b"idle-%06d\n" % i)
                socks.append(s)
                if i % 100 == 99:
                    rx.pump(0)
            rx.wait_output(b"idle-%06d" % (n - 1), 0, timeout=cfg.timeout)
            # every peer has spoken once: count them all
            deadline = time.monotonic() + cfg.timeout
            while rx.buf.count(b"idle-") < n and time.monotonic() < deadline:
                rx.pump(0.05)
            accept_s = time.perf_counter() - t0
            rss1 = proc_kib(rx.pid, "VmRSS")
            probe = socks[0]
            lat = []
            pos = len(rx.buf)
            for i in range(cfg.latency_rounds // 2):
                t = time.perf_counter()
                probe.send(b"probe-%06d\n" % i)
                pos = rx.wait_output(b"probe-%06d" % i, pos)
                lat.append(time.perf_counter() - t)
        finally:
            for s in socks:
                s.close()
            rx.stop()
        result[f"kib_per_conn_{n}"] = (rss1 - rss0) / n
        result[f"accept_s_{n}"] = accept_s
        result[f"in_p50_us_{n}"] = pct(lat, .5) * 1e6
    return result


def burst(impl: str, cfg) -> dict:
    n = cfg.burst_sends
    rx = Receiver(impl)
    arrivals: dict[int, float] = {}
    stop = threading.Event()
    try:
        target, second = connect(rx.port), connect(rx.port)
        target.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        establish(rx, [target, second])
        start_pos = len(rx.buf)

        def watch():   # drains the receiver's stdout, timestamps the second peer's lines
            pos = start_pos
            while not stop.is_set():
                rx.pump(0.01)
                for m in re.finditer(rb"second-(\d+)", rx.buf[pos:]):
                    arrivals.setdefault(int(m.group(1)), time.perf_counter())
                pos = max(pos, len(rx.buf) - 32)

        def feed():
            block = []
            for j in range(n):
                block.append(b"send 1 burst-%06d " % j + b"y" * 80 + b"\n")
                if len(block) == 1000:
                    rx.send_stdin(b"".join(block))
                    block = []
            if block:
                rx.send_stdin(b"".join(block))

        watcher = threading.Thread(target=watch, daemon=True)
        feeder = threading.Thread(target=feed, daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        feeder.start()
        sent_at = {}
        k = 0
        chunks = []
        newlines = 0
        deadline = time.monotonic() + cfg.timeout
        # Keep this loop light (recv and bytes.count run in C): a busy harness thread
        # would hold the GIL and delay the watcher's timestamps.
        while newlines < n and time.monotonic() < deadline:
            if k < 1000 and time.perf_counter() - t0 >= k * 0.02:
                sent_at[k] = time.perf_counter()
                second.send(b"second-%d\n" % k)
                k += 1
            if time.perf_counter() - t0 < 1.0:
                time.sleep(0.005)   # the target reads nothing for the first second
                continue
            target.settimeout(0.02)
            try:
                data = target.recv(1 << 20)
            except socket.timeout:
                continue
            chunks.append(data)
            newlines += data.count(b"\n")
        elapsed = time.perf_counter() - t0
        lines = [line for line in b"".join(chunks).split(b"\n") if line.startswith(b"burst-")]
        got = len(lines)
        in_order = all(int(line[6:12]) == j for j, line in enumerate(lines))
        hwm = proc_kib(rx.pid, "VmHWM")
        end = time.monotonic() + 2
        while len(arrivals) < k and time.monotonic() < end:
            time.sleep(0.01)
        stop.set()
        watcher.join(timeout=5)
        lat = [arrivals[i] - sent_at[i] for i in sent_at if i in arrivals]
    finally:
        stop.set()
        rx.stop()
    return {"delivered": got, "in_order": in_order and got == n, "seconds": elapsed,
            "peak_rss_mib": hwm / 1024, "second_p50_ms": pct(lat, .5) * 1e3 if lat else -1,
            "second_max_ms": max(lat) * 1e3 if lat else -1,
            "second_lost": k - len(lat)}


def startup(impl: str, cfg) -> dict:
    times = []
    for _ in range(cfg.startup_runs):
        rx = Receiver(impl)
        times.append(rx.listening_after)
        rx.stop()
    return {"listening_ms": statistics.median(times) * 1e3}


def fanout(impl: str, cfg) -> dict:
    """``send all`` to P sockets; socket 0 reads nothing for ``cfg.fanout_stall_s``."""
    import selectors
    peers, n, stall = cfg.fanout_peers, cfg.fanout_sends, cfg.fanout_stall_s
    lines = [b"send all f-%06d " % j + b"z" * 80 for j in range(n)]
    expected = b"".join(line[9:] + b"\n" for line in lines)
    with tempfile.TemporaryDirectory() as tmp:
        rx = Receiver(impl, os.path.join(tmp, "out"))
        socks = []
        try:
            for i in range(peers):
                s = socket.socket()
                if i == 0:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", rx.port))
                s.sendall(b"hello-%d\n" % i)
                socks.append(s)
            deadline = time.monotonic() + cfg.timeout
            while time.monotonic() < deadline:     # every socket is a known peer
                with open(os.path.join(tmp, "out"), "rb") as f:
                    if f.read().count(b"hello-") >= peers:
                        break
                time.sleep(0.01)                    # polling a file: nothing to wait on
            got = [bytearray() for _ in socks]
            done_at = [0.0] * peers
            sel = selectors.DefaultSelector()
            for i, s in enumerate(socks[1:], 1):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
            cpu0 = cpu_s(rx.pid)
            t0 = time.perf_counter()
            feeder = threading.Thread(target=rx.send_stdin, args=(b"\n".join(lines) + b"\n",))
            feeder.start()
            slow_registered = False
            left = peers
            while left and time.monotonic() < deadline:
                if not slow_registered and time.perf_counter() - t0 >= stall:
                    socks[0].setblocking(False)
                    sel.register(socks[0], selectors.EVENT_READ, 0)
                    slow_registered = True
                for key, _ in sel.select(0.01):
                    i = key.data
                    data = key.fileobj.recv(1 << 20)
                    got[i] += data
                    if not data or len(got[i]) >= len(expected):
                        done_at[i] = time.perf_counter() - t0
                        sel.unregister(key.fileobj)
                        left -= 1
            hwm = proc_kib(rx.pid, "VmHWM")
            cpu = cpu_s(rx.pid) - cpu0
            feeder.join(timeout=30)
        finally:
            for s in socks:
                s.close()
            rx.stop()
    fast = done_at[1:]
    bad = [i for i in range(peers) if bytes(got[i]) != expected]
    lost = sum(max(0, n - got[i].count(b"\n")) for i in range(peers))
    return {"msgs_per_s": (peers - 1) * n / max(fast) if all(fast) else 0.0,
            "fast_done_s": max(fast) if all(fast) else -1,
            "slow_done_after_stall_s": done_at[0] - stall if done_at[0] else -1,
            "peak_rss_mib": hwm / 1024, "lost": lost, "peers_not_exact": len(bad),
            "cpu_ms": cpu * 1e3}


def stall(impl: str, cfg) -> dict:
    """The fan-in, with ``impl``'s loop turns timed (tests/bench/turns.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "turns.json")
        IMPLS["timed"] = [PY, str(HERE / "turns.py"), report, *IMPLS[impl][1:]]
        result = fanin("timed", cfg)
        stats = json.loads(Path(report).read_text())
    return {"msgs_per_s": result["msgs_per_s"], "lost": result["lost"],
            "worst_turn_ms": stats["worst_turn_ms"], "turns_over_20ms": stats["turns_over_20ms"],
            "worst_save_ms": stats["worst_save_ms"]}


SCENARIOS = {"stall": stall, "fanin": fanin, "fanout": fanout, "latency": latency, "scale": scale,
             "burst": burst, "startup": startup}
FANOUT_IMPLS = ("chat", "floor")      # the others do not speak "send all"


# -- running and reporting ---------------------------------------------------------------------

def raise_fd_limit(need: int) -> None:
    """Room for ``need`` sockets here and in the receivers (which inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            hard = need                  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return
        except (ValueError, OSError):
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            print(f"# open files limited to {hard} (raising it needs root's "
                  f"CAP_SYS_RESOURCE): keep scale sizes below it, e.g. --scale-sizes "
                  f"1,5000,{hard - 100}", file=sys.stderr)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(cfg) -> dict:
    raise_fd_limit(max(cfg.scale_sizes) + 1024)
    results: dict = {}
    for scenario in cfg.scenarios:
        results[scenario] = {impl: [] for impl in cfg.impls}
        for rnd in range(cfg.rounds):
            for impl in cfg.impls:
                if scenario == "fanout" and impl not in FANOUT_IMPLS:
                    continue
                if scenario == "stall" and not impl.startswith("chat") and impl != "before":
                    continue
                if scenario == "scale" and impl == "threads" and max(cfg.scale_sizes) > 2000 \
                        and not cfg.threads_scale:
                    continue
                print(f"# {scenario} round {rnd + 1}/{cfg.rounds}: {impl}", file=sys.stderr,
                      flush=True)
                try:
                    results[scenario][impl].append(SCENARIOS[scenario](impl, cfg))
                except Exception as exc:  # noqa: BLE001 - a failing run is a result too
                    results[scenario][impl].append({"error": f"{type(exc).__name__}: {exc}"})
    return results


def medians(runs: list[dict]) -> dict:
    keys = {k for r in runs for k in r if k != "error"}
    out = {}
    for k in sorted(keys):
        vals = [r[k] for r in runs if k in r]
        if all(isinstance(v, bool) for v in vals):
            out[k] = all(vals)
        elif all(isinstance(v, (int, float)) for v in vals):
            out[k] = statistics.median(vals)
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        out["errors"] = errors
    return out


def table(results: dict, baseline: str) -> str:
    lines = []
    for scenario, by_impl in results.items():
        med = {impl: medians(runs) for impl, runs in by_impl.items() if runs}
        keys = sorted({k for m in med.values() for k in m if k != "errors"})
        impls = list(med)
        lines.append(f"\n{scenario}  (median of rounds; ratio = value / {baseline})")
        header = f"  {'metric':<22}" + "".join(f"{i:>22}" for i in impls)
        lines.append(header)
        for k in keys:
            row = f"  {k:<22}"
            base = med.get(baseline, {}).get(k)
            for impl in impls:
                v = med[impl].get(k)
                if v is None:
                    cell = "-"
                elif isinstance(v, bool):
                    cell = "yes" if v else "NO"
                else:
                    cell = f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.3f}"
                    if base and impl != baseline and isinstance(base, (int, float)) and base:
                        cell += f" ({v / base:.2f}x)"
                row += f"{cell:>22}"
            lines.append(row)
        for impl in impls:
            for e in med[impl].get("errors", []):
                lines.append(f"  ! {impl}: {e}")
    return "\n".join(lines)


# figure: (scenario, metric, goal as a ratio to the floor or, for "kib", in KiB; True if
# higher is better)
GOALS = [
    ("fan-in msg/s", "fanin", "msgs_per_s", 1.0, True),
    ("CPU per message", "fanin", "cpu_us_per_msg", 1.0, False),
    ("latency peer -> stdout, p50", "latency", "in_p50_us", 1.2, False),
    ("latency stdin -> peer, p50", "latency", "out_p50_us", 1.2, False),
    ("reply round trip p50", "latency", "reply_p50_us", 1.3, False),
    ("RSS per idle connection", "scale", "kib_per_conn_{n}", "kib 2.0", False),
]


def goals(results: dict, cfg) -> str:
    """chat.py's figures against the targets, one line each."""
    lines = ["\ngoals  (chat.py with history and acknowledgements on; ratio to the floor)"]
    for label, scenario, metric, goal, higher in GOALS:
        runs = results.get(scenario, {})
        if scenario == "scale":
            metric = metric.format(n=max(cfg.scale_sizes))
            label += f" ({max(cfg.scale_sizes):,})"
        chat = medians(runs.get("chat", [])).get(metric)
        floor = medians(runs.get(BASELINE, [])).get(metric)
        if chat is None:
            continue
        if isinstance(goal, str):                      # an absolute figure
            limit = float(goal.split()[1])
            figure, met = f"{chat:.2f} KiB", chat <= limit
            goal_text = f"<= {limit:g} KiB"
        elif floor:
            ratio = chat / floor
            figure, met = f"{ratio:.2f}x", ratio >= goal if higher else ratio <= goal
            goal_text = f"{'>=' if higher else '<='} {goal:g}x"
        else:
            continue
        lines.append(f"  {label:<36} {figure:>10}   goal {goal_text:<11} "
                     f"{'met' if met else 'NOT met'}")
    for impl in ("asyncio", "chat-nohist"):
        a = medians(results.get("fanin", {}).get(impl, [])).get("msgs_per_s")
        f = medians(results.get("fanin", {}).get(BASELINE, [])).get("msgs_per_s")
        if a and f:
            lines.append(f"  {'fan-in msg/s, ' + impl:<36} {a / f:>9.2f}x   (reference)")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one round")
    p.add_argument("--impls", default="chat,floor,asyncio,threads")
    p.add_argument("--scenarios", default="startup,fanin,latency,scale,burst")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--json", help="also write the raw results here")
    p.add_argument("--fanin-peers", type=int, default=50)
    p.add_argument("--fanin-lines", type=int, default=20000)
    p.add_argument("--latency-rounds", type=int, default=400)
    p.add_argument("--scale-sizes", default="1,5000,20000")
    p.add_argument("--burst-sends", type=int, default=100000)
    p.add_argument("--startup-runs", type=int, default=5)
    p.add_argument("--fanout-peers", type=int, default=100)
    p.add_argument("--fanout-sends", type=int, default=2000)
    p.add_argument("--fanout-stall-s", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--before", metavar="DIR",
                   help="also run the chat.py in DIR (an older checkout) as impl \"before\"")
    p.add_argument("--threads-scale", action="store_true",
                   help="also run thread-per-peer at 5,000 peers (5,000 threads)")
    cfg = p.parse_args(argv)
    if cfg.quick:
        cfg.fanin_peers, cfg.fanin_lines = 10, 2000
        cfg.latency_rounds, cfg.scale_sizes = 100, "1,200"
        cfg.burst_sends, cfg.startup_runs = 10000, 3
        cfg.fanout_peers, cfg.fanout_sends = 20, 500
    cfg.rounds = cfg.rounds or (1 if cfg.quick else 3)
    cfg.impls = cfg.impls.split(",")
    if cfg.before:
        IMPLS["before"] = [PY, str(Path(cfg.before) / "chat.py"), *IMPLS["chat"][2:]]
        cfg.impls.append("before")
    cfg.scenarios = cfg.scenarios.split(",")
    cfg.scale_sizes = [int(x) for x in cfg.scale_sizes.split(",")]
    return cfg


def main(argv=None) -> int:
    cfg = parse_args(argv)
    results = run(cfg)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"{os.uname().sysname} {os.uname().release}")
    print(table(results, BASELINE if BASELINE in cfg.impls else cfg.impls[0]))
    print(goals(results, cfg))
    if cfg.json:
        Path(cfg.json).write_text(json.dumps(
            {"config": {k: v for k, v in vars(cfg).items()}, "results": results,
             "medians": {s: {i: medians(r) for i, r in by.items() if r}
                         for s, by in results.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
