from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

from helpers import ROOT, ChatProcess

sys.path.insert(0, str(ROOT))

# Every chat.py the tests start keeps its identity and trusted peers here, never in the
# home of whoever runs the tests. (One home for all: like one user's many terminals.)
TEST_HOME = os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="chat-tests-")


def pytest_sessionfinish(session, exitstatus):
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
