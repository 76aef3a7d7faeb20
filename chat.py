#!/usr/bin/env python3
"""chat.py: a terminal peer-to-peer chat over TCP.

This file is the composition root: it reads the command line, builds the
reactor, the node, the console and the command registry, wires them together,
runs the loop and turns the outcome into an exit status. The logic lives in
``reactor/`` (the I/O side) and ``commands/`` (the user side).

Exit status: 0 after ``exit`` or the end of input; 1 when the program cannot
start (port in use ...) or stdout went away; 2 for a usage error; 130 after
SIGINT (Ctrl-C) and 143 after SIGTERM, as shells report signal deaths.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys

__version__ = "0.1.0"

from commands.session import EXIT_FAILURE, EXIT_SIGINT, EXIT_SIGTERM

PROG = "chat.py"
MAC_FD_CAP = 10240   # macOS refuses RLIM_INFINITY for RLIMIT_NOFILE


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(
            f"invalid port {text!r}: use a number from 1 to 65535 (0 picks a free port)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use a number of "
                                         f"seconds greater than 0")
    return value


def _count_or_zero(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: use a whole number >= 0")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: use a whole number >= 1")
    return int(text)


def _name(text: str) -> str | None:
    """--name: a name by the rule every peer checks (the empty string: no name)."""
    if text == "":
        return None
    from network.names import BadName, check_name
    try:
        return check_name(text)
    except BadName as exc:
        from commands.words import bad_name
        from network.outcomes import Refusal, Refused
        raise argparse.ArgumentTypeError(
            bad_name(text, Refused(Refusal.BAD_NAME, problem=exc.problem, detail=exc.char)))


def _default_name() -> str | None:
    """The login name, if it is a valid name; else none."""
    import getpass
    from network.names import maybe_name
    try:
        return maybe_name(getpass.getuser())
    except Exception:  # noqa: BLE001 - no login name to be had (KeyError, OSError ...)
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A peer-to-peer chat over TCP. Every peer listens on a port and can "
                    "connect to others; type commands on stdin (type \"help\" once running). "
                    "A script can be piped in: the commands run in order and the end of "
                    "input works like \"exit\".",
        epilog="exit status: 0 after exit or end of input; 1 if it cannot start or stdout "
               "closes; 2 for a usage error; 130 after Ctrl-C (SIGINT); 143 after SIGTERM.")
    parser.add_argument("port", type=_port,
                        help="the TCP port to listen on (0 picks a free one and prints it)")
    parser.add_argument("--host", default="0.0.0.0",
                        help="the IPv4 address to listen on (default: all interfaces)")
    parser.add_argument("--connect-timeout", type=_seconds, default=5.0, metavar="S",
                        help="give up on a connect after S seconds (default: 5)")
    parser.add_argument("--heartbeat", type=_seconds, default=15.0, metavar="S",
                        help="chat.py peers exchange a heartbeat every S seconds and drop a "
                             "peer that is silent for 3*S (default: 15)")
    parser.add_argument("--send-timeout", type=_seconds, default=30.0, metavar="S",
                        help="drop a peer that reads nothing of what we send for S seconds "
                             "(default: 30)")
    parser.add_argument("--max-peers", type=_count, default=100, metavar="N",
                        help="refuse connections beyond N at once (default: 100)")
    parser.add_argument("--max-per-address", type=_count_or_zero, default=10, metavar="N",
                        help="refuse incoming connections from one IP address beyond N "
                             "(default: 10; 0 for no limit)")
    parser.add_argument("--name", type=_name, default=False, metavar="NAME",
                        help="the name chat.py peers see (default: your login name; "
                             "--name '' for none)")
    parser.add_argument("--timestamps", action="store_true",
                        help="start every event and message line with the time [HH:MM:SS]")
    parser.add_argument("--no-color", action="store_true",
                        help="no colours at a terminal (NO_COLOR=1 and TERM=dumb do the same)")
    parser.add_argument("--stay", action="store_true",
                        help="keep running after the end of input, until Ctrl-C or SIGTERM "
                             "(for a peer started in the background)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    try:
        os.write(2, f"{PROG}: {message}\n".encode("utf-8", "backslashreplace"))
    except OSError:
        pass
    return EXIT_FAILURE


def _ensure_standard_fds() -> None:
    """A closed fd 0/1/2 would be reused by our first socket: park /dev/null there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)


def _raise_fd_limit() -> None:
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


def _listen_error(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} is already in use; pick another port, or 0 for any free one")
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} (ports below 1024 need root)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: no interface of this machine has that address"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def run(args: argparse.Namespace) -> int:
    from commands import CommandRunner, Console, Context, default_registry
    from commands.completion import make_completer
    from commands.session import KeyInput, LineInput, Session
    from network import Node, NodeOptions
    from reactor import LineCodec, Reactor, StdinReader, choose_selector
    from commands.terminal.lineedit import LineEditor
    from commands.words import address_problem
    from reactor.netutil import AddressError, resolve_ipv4
    from commands.terminal.screen import Screen, Terminal

    try:
        host = resolve_ipv4(args.host)
    except AddressError as exc:
        return _fail(f"--host: {address_problem(exc.problem.value)}")
    _raise_fd_limit()
    selector, stdin_pollable = choose_selector(0)
    reactor = Reactor(selector)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    interactive = os.isatty(0) and os.isatty(1)
    color = (interactive and not args.no_color and not os.environ.get("NO_COLOR")
             and os.environ.get("TERM") != "dumb")
    console = Console(encoding=encoding, color=color, timestamps=args.timestamps)
    reactor.add_after_turn(console.flush)
    options = NodeOptions(connect_timeout_s=args.connect_timeout, heartbeat_s=args.heartbeat,
                          send_timeout_s=args.send_timeout, max_peers=args.max_peers,
                          max_per_address=args.max_per_address,
                          name=_default_name() if args.name is False else args.name)
    node = Node(reactor, console, options)
    try:
        node.listen(host, args.port)
    except OSError as exc:
        reactor.close()
        return _fail(_listen_error(exc, host, args.port))
    console.listening(host, node.port)

    registry = default_registry()
    session = Session(node, console, reactor.stop, args.stay)
    runner = CommandRunner(registry, reactor.call_soon, session.end_of_input)
    screen = terminal = None
    if interactive:
        # At a terminal we own the input line, so messages never land inside it.
        editor = LineEditor(make_completer(registry, node))
        screen = Screen(editor, console.write_raw)
        console.screen = screen
        source = KeyInput(editor, screen, console, runner,
                          interrupt=lambda: session.shutdown(EXIT_SIGINT))
        reactor.add_signal_handler(signal.SIGWINCH, lambda _: screen.refresh())
    else:
        source = LineInput(LineCodec(errors="surrogateescape"), runner)
    stdin = StdinReader(reactor, 0, stdin_pollable, on_data=source.data_received,
                        on_eof=source.eof_received)
    runner.set_input_flow(pause=stdin.pause_reading, resume=stdin.resume_reading)
    runner.context = Context(node=node, console=console, registry=registry, hold=runner.hold,
                             request_exit=session.shutdown)
    session.runner, session.stdin = runner, stdin
    console.on_output_closed = lambda: session.shutdown(EXIT_FAILURE)
    reactor.add_signal_handler(signal.SIGINT, lambda _: session.shutdown(EXIT_SIGINT))
    reactor.add_signal_handler(signal.SIGTERM, lambda _: session.shutdown(EXIT_SIGTERM))
    try:
        if interactive:
            terminal = Terminal(0)
            terminal.enter()
        console.flush()   # say where we listen now, not after the loop's first sleep
        reactor.run()
    finally:
        console.flush()
        if screen is not None:
            screen.close()
        if terminal is not None:
            terminal.restore()
        reactor.close()
    return session.status


def main(argv: list[str] | None = None) -> int:
    if os.name == "nt":
        return _fail("Windows is not supported (select() there works on sockets only, "
                     "not on the console); use WSL")
    args = parse_args(argv)
    _ensure_standard_fds()
    try:
        status = run(args)
    except KeyboardInterrupt:
        status = EXIT_SIGINT
    except Exception as exc:  # noqa: BLE001 - never show a user a traceback
        status = _fail(f"internal error: {type(exc).__name__}: {exc}")
    if status == EXIT_FAILURE:
        # stdout may be a closed pipe: keep Python's exit-time flush quiet.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
        except OSError:
            pass
    return status


if __name__ == "__main__":
    sys.exit(main())
