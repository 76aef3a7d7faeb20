"""The benchmark harness itself still works (tiny sizes; speed is not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ROOT


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bench_harness_runs_and_sees_perfect_integrity(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "bench.py"),
                          "--impls", "chat,floor", "--scenarios", "fanin,latency,burst,fanout",
                          "--rounds", "1", "--fanin-peers", "3", "--fanin-lines", "300",
                          "--latency-rounds", "20", "--burst-sends", "2000",
                          "--fanout-peers", "5", "--fanout-sends", "200",
                          "--fanout-stall-s", "0.2",
                          "--json", str(out)], capture_output=True, timeout=110)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert b"fanin" in run.stdout and b"msgs_per_s" in run.stdout
    medians = json.loads(out.read_text())["medians"]
    for impl in ("chat", "floor"):
        fanin = medians["fanin"][impl]
        assert "errors" not in fanin, fanin
        assert all(fanin[k] == 0 for k in ("lost", "merged", "split", "duplicated",
                                            "reordered")), fanin
        assert medians["latency"][impl]["in_p50_us"] > 0
        burst = medians["burst"][impl]
        assert burst["in_order"] is True and burst["delivered"] == 2000, burst
        fanout = medians["fanout"][impl]
        assert "errors" not in fanout and fanout["msgs_per_s"] > 0, fanout
        assert fanout["lost"] == 0 and fanout["peers_not_exact"] == 0, fanout
