"""The process's standard fds and open-files limit, set up before the loop (reactor.process)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

from helpers import ROOT
from reactor.process import MAC_FD_CAP, same_file

CHILD = """
import json, os, resource, socket, sys
os.close(1); os.close(2)                   # started with stdout and stderr closed
from reactor.process import ensure_standard_fds, raise_fd_limit
ensure_standard_fds()
sock = socket.socket()
null = os.stat(os.devnull).st_rdev
raise_fd_limit()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
result = {"parked": [os.fstat(fd).st_rdev == null for fd in (1, 2)],
          "socket_fd": sock.fileno(), "soft": soft, "hard": hard}
os.write(int(sys.argv[1]), json.dumps(result).encode())
"""


def test_closed_standard_fds_get_dev_null_and_the_fd_limit_is_raised():
    r, w = os.pipe()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lower = min(soft, 256)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(w)], pass_fds=[w], cwd=str(ROOT),
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=30,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                (lower, hard)))
    os.close(w)
    with os.fdopen(r) as f:
        result = json.load(f)
    assert proc.returncode == 0
    assert result["parked"] == [True, True]
    assert result["socket_fd"] > 2                 # not a standard fd in disguise
    expected = min(hard, MAC_FD_CAP) if sys.platform == "darwin" else hard
    assert result["soft"] == expected


def test_same_file_is_one_open_file_not_one_kind():
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    dup = os.dup(w1)
    try:
        assert same_file(w1, dup)
        assert not same_file(w1, w2)
        assert not same_file(w1, 9999)              # not open: not the same
    finally:
        for fd in (r1, w1, r2, w2, dup):
            os.close(fd)
