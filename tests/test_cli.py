"""The command line: argparse, exit codes, --version, and installing the package."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from helpers import CHAT, ROOT, run_chat


def run(*args):
    return run_chat(*args)


def test_help_and_version():
    out = run("--help")
    assert out.returncode == 0
    for word in ("port", "--host", "--connect-timeout", "--heartbeat", "--send-timeout",
                 "--flush-timeout", "--max-peers", "--stay", "--version", "exit status"):
        assert word.encode() in out.stdout, word
    assert out.stdout.startswith(b"usage: chat.py ")
    for flag in ("--version", "-V"):
        out = run(flag)
        assert out.returncode == 0 and out.stdout == b"chat.py 0.1.0\n", flag


def test_every_option_reaches_the_node_and_the_defaults_are_the_documented_ones():
    import chat
    from network import NodeOptions
    defaults = chat.node_options(chat.parse_args(["0", "--name="]))
    assert defaults == NodeOptions(connect_timeout_s=5.0, heartbeat_s=15.0, send_timeout_s=30.0,
                                   flush_timeout_s=2.0, max_peers=100, max_per_address=10,
                                   trusted_only=False, name=None)
    given = chat.node_options(chat.parse_args([
        "0", "--connect-timeout", "1.5", "--heartbeat", "2.5", "--send-timeout", "3.5",
        "--flush-timeout", "4.5", "--max-peers", "6", "--max-per-address", "0",
        "--trusted-only", "--name", "carol"]))
    assert given == NodeOptions(connect_timeout_s=1.5, heartbeat_s=2.5, send_timeout_s=3.5,
                                flush_timeout_s=4.5, max_peers=6, max_per_address=0,
                                trusted_only=True, name="carol")


def test_the_program_names_itself_as_it_was_started(tmp_path):
    # ./chat.py is executable (git mode 100755) and runs through its #! line.
    assert os.access(CHAT, os.X_OK)
    mode = subprocess.run(["git", "ls-files", "-s", "chat.py"], capture_output=True,
                          text=True, cwd=str(ROOT)).stdout
    if mode:   # a git checkout (an unpacked sdist has no index to ask)
        assert mode.startswith("100755 "), mode
    out = subprocess.run(["./chat.py", "-V"], capture_output=True, timeout=30, cwd=str(ROOT))
    assert out.stdout == b"chat.py 0.1.0\n"
    # Under another name (as the installed chat-peer script is), it says that name.
    link = tmp_path / "chat-peer"
    link.symlink_to(CHAT)
    out = subprocess.run([sys.executable, str(link), "0", "--bogus"], capture_output=True,
                         timeout=30)
    assert out.returncode == 2
    assert out.stderr.startswith(b"usage: chat-peer ")
    assert b"\nchat-peer: error: unrecognized arguments: --bogus\n" in out.stderr


@pytest.mark.parametrize("args,message", [
    (["abc"], b"invalid port 'abc'"),
    (["70000"], b"invalid port '70000'"),
    ([], b"the following arguments are required: port"),
    (["0", "--connect-timeout", "-1"], b"invalid duration '-1'"),
    (["0", "--max-peers", "0"], b"invalid number '0'"),
    (["0", "--max-per-address", "\u00b2"], b"invalid number '\xc2\xb2'"),   # a digit, not ASCII
    (["0", "--bogus"], b"unrecognized arguments: --bogus"),
    (["0", "--host", "fe80::1::2"], b"argument --host: invalid address 'fe80::1::2': not an IP address"),
    (["0", "--host", "nonsense"], b"argument --host: invalid address 'nonsense': unknown host"),
    (["0", "--host", "no.such.name.invalid"], b"argument --host: invalid address 'no.such.name.invalid'"),
    (["0", "--host", "300.1.1.1"], b"argument --host: invalid address '300.1.1.1': not a valid IPv4 address"),
])
def test_usage_errors_exit_2_with_one_error_line(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert b"Traceback" not in out.stderr and out.stdout == b""
    lines = out.stderr.decode().splitlines()
    assert lines[0].startswith("usage: chat.py ")          # the usage, then one error line
    assert lines[-1].startswith("chat.py: error: ") and message.decode() in lines[-1], lines
    assert sum("error" in line for line in lines) == 1


def test_cannot_start_is_one_error_line_with_status_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run(str(port), "--host", "127.0.0.1")
    assert out.returncode == 1
    assert out.stderr == (f"chat.py: error: port {port} is already in use; pick another "
                          f"port, or 0 for any free one\n").encode()
    out = run("0", "--host", "192.0.2.1")        # an address no interface here has
    assert out.returncode == 1
    assert out.stderr == (b"chat.py: error: cannot listen on 192.0.2.1: no interface of "
                          b"this machine has that address\n")


def test_a_home_under_a_regular_file_starts_without_an_identity_in_one_note(tmp_path):
    (tmp_path / "file").write_text("not a folder\n")
    home = tmp_path / "file" / "home"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]
        out = run_chat("0", "--host", "127.0.0.1", "--home", str(home),
                       input=f"connect 127.0.0.1 {port}\nsend 1 in the clear\nexit\n".encode())
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(10)
            heard = b""
            while chunk := peer.recv(4096):
                heard += chunk
    assert out.returncode == 0, out.stderr
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chat.py: note: no identity ("), lines
    assert "Not a directory" in lines[0] and "not be encrypted" in lines[0]
    assert b"in the clear\n" in heard and b"cert=" not in heard     # plain, as without openssl


def test_escapes_typed_on_the_command_line_are_not_echoed_raw():
    out = run("0", "--bogus\x1b]0;PWNED\x07\x1b[2J")
    assert out.returncode == 2
    assert b"\x1b" not in out.stderr and b"\x07" not in out.stderr
    assert b"--bogus\\x1b]0;PWNED\\x07\\x1b[2J" in out.stderr


@pytest.mark.slow
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
    assert out.stdout == b"chat-peer 0.1.0\n"
    out = subprocess.run([sys.executable, str(script), "--bogus"], capture_output=True,
                         timeout=30, env=env, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith(b"usage: chat-peer ")
    out = subprocess.run([sys.executable, str(script), "0", "--host", "127.0.0.1"],
                         capture_output=True, timeout=30, env=env, cwd=tmp_path,
                         input=b"myport\nexit\n")
    assert out.returncode == 0 and b"listening port: " in out.stdout


def test_errors_never_echo_raw_escapes_from_stdin():
    script = (b"x\x1b]0;PWNED\x07\x1b[2J\n"
              b"help \x1b[31mred\n"
              b"send \xe2\x80\xae1 hi\n"            # U+202E, a bidi override
              b"connect \x1b[2J 80\n"
              b"exit\n")
    out = run_chat("0", "--host", "127.0.0.1", input=script)
    assert out.returncode == 0
    errors = out.stderr.decode().splitlines()
    assert errors == [
        r'error: unknown command "x\x1b]0;PWNED\x07\x1b[2J"; type "help" to see the commands',
        r'error: unknown command "\x1b[31mred"; type "help" to see the commands',
        r'error: no connection with id or name "\u202e1"; type "list" to see the connections',
        r"error: cannot connect to \x1b[2J:80: not an IP address or host name",
    ], errors
    for raw in (b"\x1b", b"\x07", "\u202e".encode()):
        assert raw not in out.stderr and raw not in out.stdout


def readme_test_command() -> str:
    """The one line the README gives for running the tests."""
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()
             if line.startswith("    ") and "-m pytest" in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_ci_runs_the_readme_test_command_verbatim():
    command = readme_test_command()
    assert command.startswith("python3 -m venv .venv && ")
    assert command.endswith(" && .venv/bin/python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci
    assert ".venv/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_readme_test_command_works_in_a_fresh_venv(tmp_path):
    # Everything but the last step (running this suite again): a venv made by the
    # python3 a user has, and pytest importable from it once the install step ran.
    command = readme_test_command()
    command = command.replace(".venv/bin/python -m pytest",
                              ".venv/bin/python -c 'import pytest, pytest_timeout'")
    out = subprocess.run(["bash", "-c", command], capture_output=True, timeout=280,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    # The venv's own interpreter (not python3's site-packages) has them.
    probe = subprocess.run([str(tmp_path / ".venv" / "bin" / "python"), "-c",
                            "import sys, pytest; print(sys.prefix != sys.base_prefix, "
                            "pytest.__file__.startswith(sys.prefix))"],
                           capture_output=True, text=True, timeout=30)
    assert probe.stdout.split() == ["True", "True"], probe
