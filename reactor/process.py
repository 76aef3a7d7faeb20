"""The process's own file descriptors, made fit for a loop that serves thousands of sockets.

Run before the loop starts: each is a blocking system call or two, done once.
"""

from __future__ import annotations

import os
import sys

MAC_FD_CAP = 10240   # macOS refuses RLIM_INFINITY for RLIMIT_NOFILE


def ensure_standard_fds() -> None:
    """A closed fd 0/1/2 would be reused by our first socket: park /dev/null there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one, so thousands of peers fit."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if sys.platform == "darwin" and (hard == resource.RLIM_INFINITY or hard > MAC_FD_CAP):
            hard = MAC_FD_CAP
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def same_file(fd_a: int, fd_b: int) -> bool:
    """Do two fds lead to one file (a terminal, ``2>&1``)? Then they share one stream."""
    try:
        return os.path.sameopenfile(fd_a, fd_b)
    except OSError:
        return False
