"""The rooms one message crosses: which of our classes (and modules' functions) run for
one ``send 1 hi`` typed on stdin until its bytes leave, and for one line received until
it is written to stdout.

    python3 tests/bench/rooms.py

Two real chat.py processes on loopback: A runs under a profile hook that notes, per
loop turn, every function of ours that was called (by class, or by module for plain
functions); the driver notes when it wrote to A's stdin and when the other side
showed the line, and takes the turns of A that woke up in between. Not a benchmark (the hook makes
everything slow); a map of the path, to compare before and after a refactor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("reactor", "network", "commands")


def probe(out_path: str, argv: list[str]) -> int:
    """Run chat.main under a hook that records the rooms of every loop turn."""
    sys.path.insert(0, str(ROOT))
    turns: list = []
    current: set | None = None
    start = 0.0
    root = str(ROOT) + os.sep

    def room_of(code) -> str | None:
        path = code.co_filename
        if not path.startswith(root):
            return None
        rel = path[len(root):]
        top = rel.split(os.sep)[0]
        if top not in PACKAGES and rel != "chat.py":
            return None
        module = rel[:-3].replace(os.sep, ".")
        qual = getattr(code, "co_qualname", code.co_name)
        head = qual.split(".")[0]
        if "." in qual and head != "<locals>" and head[:1].isupper():
            return f"{module}.{head}"
        return module

    def hook(frame, event, arg):
        nonlocal current, start
        if event != "call":
            if event == "return" and current is not None:
                name = frame.f_code.co_name
                if name == "select" and frame.f_code.co_filename.endswith("selectors.py"):
                    start = time.monotonic()      # the turn's work begins when select returns
                elif name == "run_once":
                    turns.append((start, sorted(current)))
                    current = None
            return
        code = frame.f_code
        if code.co_name == "run_once" and code.co_filename.endswith(os.path.join("reactor", "loop.py")):
            current, start = set(), time.monotonic()
            return
        if current is not None:
            room = room_of(code)
            if room is not None:
                current.add(room)

    import chat
    sys.setprofile(hook)
    try:
        status = chat.main(argv)
    finally:
        sys.setprofile(None)
        Path(out_path).write_text(json.dumps(turns))
    return status


def _wait_line(proc, needle: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if needle in line:
            return time.monotonic()
    raise SystemExit(f"did not see {needle!r}")


def drive() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    home = tempfile.mkdtemp()
    out = os.path.join(home, "turns.json")
    b = subprocess.Popen([sys.executable, str(ROOT / "chat.py"), "0", "--host", "127.0.0.1", "--home", os.path.join(home, "b")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    a = subprocess.Popen([sys.executable, __file__, "--probe", out, "0", "--host", "127.0.0.1", "--home",
                          os.path.join(home, "a")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = b.stdout.readline()
        port = line.split(";")[0].rsplit(":", 1)[1]
        _wait_line(a, "listening")
        a.stdin.write(f"connect 127.0.0.1 {port}\n")
        a.stdin.flush()
        _wait_line(a, "connected")
        _wait_line(b, "connected")
        time.sleep(0.3)    # let the handshakes' turns pass (a map, not a test)
        t_send = time.monotonic()
        a.stdin.write("send 1 hi\n")
        a.stdin.flush()
        t_sent = _wait_line(b, "hi")
        time.sleep(0.2)
        t_recv = time.monotonic()
        b.stdin.write("send 1 yo\n")
        b.stdin.flush()
        t_shown = _wait_line(a, "yo")
        a.stdin.write("exit\n")
        a.stdin.flush()
        a.wait(10)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    turns = json.loads(Path(out).read_text())
    windows = {"send 1 hi (stdin -> socket)": (t_send, t_sent),
               "a received line (socket -> stdout)": (t_recv, t_shown)}
    for title, (begin, end) in windows.items():
        rooms = sorted({room for start, names in turns if begin <= start <= end
                        for room in names})
        classes = [r for r in rooms if r.split(".")[-1][:1].isupper()]
        print(f"{title}: {len(rooms)} rooms ({len(classes)} classes)")
        for room in rooms:
            print(f"    {room}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--probe":
        sys.exit(probe(sys.argv[2], sys.argv[3:]))
    drive()
