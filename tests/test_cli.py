"""The command line: argparse, exit codes, --version, and installing the package."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import CHAT, ROOT


def run(*args, **kw):
    return subprocess.run([sys.executable, CHAT, *args], capture_output=True, timeout=30,
                          stdin=subprocess.DEVNULL, **kw)


def test_help_and_version():
    out = run("--help")
    assert out.returncode == 0
    for word in ("port", "--host", "--connect-timeout", "--heartbeat", "--send-timeout",
                 "--max-peers", "--stay", "--version", "exit status"):
        assert word.encode() in out.stdout, word
    out = run("--version")
    assert out.returncode == 0 and out.stdout == b"chat.py 0.1.0\n"


@pytest.mark.parametrize("args,message", [
    (["abc"], b"invalid port 'abc'"),
    (["70000"], b"invalid port '70000'"),
    ([], b"the following arguments are required: port"),
    (["0", "--connect-timeout", "-1"], b"invalid duration '-1'"),
    (["0", "--max-peers", "0"], b"invalid number '0'"),
    (["0", "--bogus"], b"unrecognized arguments: --bogus"),
])
def test_usage_errors_exit_2_without_a_traceback(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr and b"Traceback" not in out.stderr


def test_bad_host_is_one_line():
    out = run("0", "--host", "no.such.name.invalid")
    assert out.returncode == 1
    assert out.stderr.startswith(b"chat.py: --host: unknown host;") and out.stderr.count(b"\n") == 1


@pytest.mark.timeout(300)
def test_pip_install_gives_a_working_chat_peer_command(tmp_path):
    target = tmp_path / "site"
    # As a user would: pip builds it in an isolated environment (setuptools from PyPI).
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--target", str(target), str(ROOT)],
                         capture_output=True, timeout=240, cwd=tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    script = target / "bin" / "chat-peer"
    assert script.exists()
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, str(script), "--version"], capture_output=True,
                         timeout=30, env=env, cwd=tmp_path)
    assert out.stdout == b"chat.py 0.1.0\n"
    out = subprocess.run([sys.executable, str(script), "0", "--host", "127.0.0.1"],
                         capture_output=True, timeout=30, env=env, cwd=tmp_path,
                         input=b"myport\nexit\n")
    assert out.returncode == 0 and b"listening port: " in out.stdout
