#!/usr/bin/env python3
"""chat.py with its loop turns timed: the worst stall, for the bench's ``stall`` scenario.

    python3 tests/bench/turns.py REPORT.json path/to/chat.py chat.py-arguments...

Runs ``chat.main`` with two hooks: the selector's ``select`` notes when a turn's work
begins (it returned), and the end of ``Reactor.run_once`` when it ends; the delivery
state's end-of-turn save (SQLite commit and history write) is timed too, where the
chat.py given has one (an older checkout may not). The report is
rewritten whenever a new worst turn is seen and every 2,000 turns, so a receiver
stopped with SIGKILL has already said it. A profile, not the product: never imported
by chat.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

STALL_MS = 20.0


def main() -> None:
    report_path, program, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    sys.path.insert(0, str(Path(program).resolve().parent))
    from reactor.loop import Reactor
    import chat
    try:
        from network.delivery import Delivery
    except ImportError:
        Delivery = None

    perf = time.perf_counter
    stats = {"turns": 0, "worst_turn_ms": 0.0, "turns_over_20ms": 0, "worst_save_ms": 0.0}
    began = [perf()]

    def write() -> None:
        tmp = report_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(stats, f)
        os.replace(tmp, report_path)

    run_once = Reactor.run_once

    def timed_run_once(self) -> None:
        selector = self.selector
        if not getattr(selector, "_timed", False):
            select = selector.select

            def timed_select(timeout=None):
                events = select(timeout)
                began[0] = perf()
                return events
            selector.select, selector._timed = timed_select, True
        run_once(self)
        took = (perf() - began[0]) * 1e3
        stats["turns"] += 1
        new_worst = took > stats["worst_turn_ms"]
        if new_worst:
            stats["worst_turn_ms"] = took
        if took >= STALL_MS:
            stats["turns_over_20ms"] += 1
        if new_worst or stats["turns"] % 2000 == 0:
            write()

    def timed_save(self) -> None:
        t0 = perf()
        save(self)
        stats["worst_save_ms"] = max(stats["worst_save_ms"], (perf() - t0) * 1e3)

    Reactor.run_once = timed_run_once
    if Delivery is not None:
        save = Delivery.save
        Delivery.save = timed_save
    sys.argv = [program, *argv]
    try:
        sys.exit(chat.main())
    finally:
        write()


if __name__ == "__main__":
    main()
