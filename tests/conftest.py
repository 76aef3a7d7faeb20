from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

from forkserver import ForkServer
from helpers import ROOT, ChatProcess
from network.node import Node, NodeOptions
from network.peer_protocol import Timing
from reactor.loop import Reactor
from virtualtime import run_reactor_until, virtual_time_reactor

sys.path.insert(0, str(ROOT))

# Every chat.py the tests start keeps its identity and trusted peers here, never in the
# home of whoever runs the tests. (One home for all: like one user's many terminals.)
TEST_HOME = os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="chat-tests-")


@pytest.hookimpl(trylast=True)     # after the fixtures of an interrupted test are done
def pytest_sessionfinish(session, exitstatus):
    ForkServer.close_if_started()
    shutil.rmtree(TEST_HOME, ignore_errors=True)


@pytest.fixture
def chat():
    """Start chat.py processes: ``chat("0", "--stay")``; all are stopped at teardown."""
    started: list[ChatProcess] = []

    def start(*args: str, **kwargs) -> ChatProcess:
        proc = ChatProcess(*args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def homes(tmp_path):
    """A home folder per user: ``homes("alice")`` -> ``["--home", path]``."""
    def home(name: str) -> list:
        return ["--home", str(tmp_path / name)]
    return home


# -- nodes in-process (test_node*.py) ---------------------------------------------------------

FAST = Timing(hello_wait_s=0.3, answer_wait_s=0.3, handshake_timeout_s=1.0, raw_flush_s=0.1,
              linger_s=0.5)


class Recorder:
    """The observer interface, writing down every call."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "flush":              # once per turn: nothing was reported by it
            return lambda: None
        if name == "after_shown":        # shown at once: nothing waits for a screen here
            return lambda callback: callback()
        return lambda *args: self.calls.append((name, *args))

    def named(self, name):
        return [c for c in self.calls if c[0] == name]

    def texts(self):
        return [t for c in self.named("messages_received") for t in c[2]]


@pytest.fixture
def net(request):
    """Nodes on one reactor, on virtual time unless the test is marked ``real_time``
    (a ``DelayProxy`` delays bytes in real time)."""
    real = request.node.get_closest_marker("real_time") is not None
    reactor = Reactor() if real else virtual_time_reactor()
    nodes = []

    def node(node_id=None, **options):
        observer = Recorder()
        n = Node(reactor, observer, NodeOptions(timing=FAST, **options), node_id=node_id)
        n.listen("127.0.0.1", 0)
        n.observer = observer
        nodes.append(n)
        return n

    node.reactor = reactor
    node.until = lambda cond, timeout=10: run_reactor_until(reactor, cond, timeout)
    yield node
    for n in nodes:
        n.shutdown(lambda: None)
    run_reactor_until(reactor, lambda: not any(n._registry.busy for n in nodes), timeout=10)
    reactor.close()
