from __future__ import annotations

import sys

import pytest

from helpers import ROOT, ChatProcess

sys.path.insert(0, str(ROOT))


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
