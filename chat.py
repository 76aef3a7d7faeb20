#!/usr/bin/env python3
"""chat.py: a terminal peer-to-peer chat over TCP.

This file is the composition root: it reads the command line, builds the reactor,
the node, the console and the command registry in dependency order, runs the loop
and turns the outcome into an exit status. The logic lives in ``reactor/``
(generic I/O), ``network/`` (the chat network) and ``commands/`` (the user's side).

Exit status (the README has the table): 0 after ``exit`` or the end of input; 1
when it cannot start, stdout went away or an internal error; 2 for a usage error;
128 + N after stopping signal N. Every start-up error is one line on stderr in
argparse's format, ``<program>: error: <what was wrong and what to do>``, with the
name it was started by (``chat.py``, ``chat-peer``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import os
import signal
import sys

__version__ = "0.1.0"

from commands import words
from commands.session import EXIT_FAILURE, EXIT_SIGINT, signal_status

DEFAULT_PROG = "chat.py"
# Unwritten output (stdout not read fast enough): above the high-water mark we stop
# reading peers, above the cap we stop running commands; both resume at the low mark.
OUTPUT_HIGH_WATER_BYTES = 256 * 1024
OUTPUT_LOW_WATER_BYTES = 64 * 1024
OUTPUT_CAP_BYTES = 1024 * 1024
STDOUT_PIPE_BYTES = 256 * 1024   # asked of a piped stdout (Linux gives pipes 64 KiB)
EXIT_MARGIN_S = 0.5              # past --flush-timeout: time to report, then stop
# Each ends the program the graceful way, with status 128 + its number. (SIGPIPE
# stays ignored, as Python sets it: a closed pipe is an EPIPE error instead.)
STOPPING_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def _port(text: str) -> int:
    from reactor.netutil import maybe_port
    port = maybe_port(text, allow_zero=True)
    if port is None:
        raise argparse.ArgumentTypeError(words.invalid_port(text))
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(words.invalid_duration(text))
    return value


def _whole_number(least: int):
    def whole_number(text: str) -> int:
        from reactor.netutil import maybe_ascii_number
        value = maybe_ascii_number(text, 18)
        if value is None or value < least:
            raise argparse.ArgumentTypeError(words.invalid_number(text, least))
        return value
    return whole_number


def program_name() -> str:
    """The name we were started by: ``chat.py``, or ``chat-peer`` once installed."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and name not in ("-c", "-m", "__main__.py") else DEFAULT_PROG


def _host(text: str) -> str:
    """--host: an address, or a name looked up now (before the loop, so it may block)."""
    from network.node import address_problem
    from network.outcomes import AddressProblem
    from reactor.netutil import AddressError, maybe_numeric_host, normal_ip
    try:
        host = maybe_numeric_host(text)
    except AddressError as exc:
        raise argparse.ArgumentTypeError(
            words.invalid_address(text, address_problem(exc))) from None
    if host is not None:
        return host
    import socket
    try:
        found = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        found = []
    if not found:
        raise argparse.ArgumentTypeError(
            words.invalid_address(text, AddressProblem.UNKNOWN_HOST))
    return normal_ip(found[0][4][0])


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # argparse echoes what was typed ("unrecognized arguments: ..."): made safe to show.
        from commands.sanitize import sanitize
        super().error(sanitize(message))


def _name(text: str) -> str | None:
    """--name: a name by the rule every peer checks (the empty string: no name)."""
    if text == "":
        return None
    from network.names import BadName, check_name
    try:
        return check_name(text)
    except BadName as exc:
        from network.outcomes import Declined, Refused
        raise argparse.ArgumentTypeError(
            words.bad_name(text, Refused(Declined.BAD_NAME, problem=exc.problem,
                                         detail=exc.char)))


def _default_name() -> str | None:
    """The login name, if it is a valid name; else none."""
    import getpass
    from network.names import maybe_name
    try:
        return maybe_name(getpass.getuser())
    except Exception:  # noqa: BLE001 - no login name to be had (KeyError, OSError ...)
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(
        prog=program_name(),
        description="A peer-to-peer chat over TCP. Every peer listens on a port and can "
                    "connect to others; type commands on stdin (type \"help\" once running). "
                    "A script can be piped in: the commands run in order and the end of "
                    "input works like \"exit\".",
        epilog="exit status: 0 after exit or end of input; 1 if it cannot start or stdout "
               "closes; 2 for a usage error; 3 after exit or end of input when messages "
               "were not delivered (each said on stderr); 128+N after signal N: 129 SIGHUP, 130 Ctrl-C "
               "(SIGINT), 131 SIGQUIT, 138 SIGUSR1, 140 SIGUSR2, 143 SIGTERM.")
    parser.add_argument("port", type=_port,
                        help="the TCP port to listen on (0 picks a free one and prints it)")
    parser.add_argument("--host", default=None, type=_host,
                        help="the address (IPv4 or IPv6) or host name to listen on "
                             "(default: every address, IPv4 and IPv6)")
    parser.add_argument("--connect-timeout", type=_seconds, default=5.0, metavar="S",
                        help="give up on a connect after S seconds (default: 5)")
    parser.add_argument("--heartbeat", type=_seconds, default=15.0, metavar="S",
                        help="chat.py peers exchange a heartbeat every S seconds and drop a "
                             "peer that is silent for 3*S (default: 15)")
    parser.add_argument("--send-timeout", type=_seconds, default=30.0, metavar="S",
                        help="drop a peer that reads nothing of what we send for S seconds "
                             "(default: 30)")
    parser.add_argument("--flush-timeout", type=_seconds, default=2.0, metavar="S",
                        help="on exit or terminate, wait at most S seconds for queued "
                             "messages and output to leave (default: 2)")
    parser.add_argument("--max-peers", type=_whole_number(1), default=100, metavar="N",
                        help="refuse connections beyond N at once (default: 100)")
    parser.add_argument("--max-per-address", type=_whole_number(0), default=10, metavar="N",
                        help="refuse incoming connections from one IP address beyond N "
                             "(default: 10; 0 for no limit)")
    parser.add_argument("--home", metavar="DIR",
                        help="where this user's identity and trusted peers are kept (default: "
                             "$XDG_CONFIG_HOME/chat-peer, else ~/.config/chat-peer)")
    parser.add_argument("--trusted-only", action="store_true",
                        help="refuse every connection, in and out, that is not an identity "
                             "you trust (plain clients included)")
    parser.add_argument("--name", type=_name, default=False, metavar="NAME",
                        help="the name chat.py peers see (default: your login name; "
                             "--name '' for none)")
    parser.add_argument("--no-history", action="store_true",
                        help="keep nothing on disk: no history, and the outbox of messages "
                             "not yet delivered lives in memory only (lost at exit)")
    parser.add_argument("--history-limit", type=_whole_number(1), default=10_000, metavar="N",
                        help="keep about N messages in the history, the oldest go first "
                             "(default: 10000; at most 2*N are on disk)")
    parser.add_argument("--no-reconnect", action="store_true",
                        help="do not reconnect by ourselves to trusted peers (on start and "
                             "when a connection drops)")
    parser.add_argument("--no-announce", action="store_true",
                        help="do not announce this peer on the local network (UDP, every 30 s)")
    parser.add_argument("--no-discovery", action="store_true",
                        help="do not listen for other peers' announcements (\"nearby\" stays "
                             "empty)")
    parser.add_argument("--timestamps", action="store_true",
                        help="start every event and message line with the time [HH:MM:SS]")
    parser.add_argument("--no-color", action="store_true",
                        help="no colours at a terminal (NO_COLOR=1 and TERM=dumb do the same)")
    parser.add_argument("--stay", action="store_true",
                        help="keep running after the end of input, until Ctrl-C or SIGTERM "
                             "(for a peer started in the background; at a terminal, "
                             "Ctrl-D still exits)")
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def node_options(args: argparse.Namespace):
    """The node's part of the command line (a test checks that every option arrives)."""
    from network import NodeOptions
    return NodeOptions(connect_timeout_s=args.connect_timeout, heartbeat_s=args.heartbeat,
                       send_timeout_s=args.send_timeout, flush_timeout_s=args.flush_timeout,
                       max_peers=args.max_peers, max_per_address=args.max_per_address,
                       trusted_only=args.trusted_only,
                       name=_default_name() if args.name is False else args.name,
                       reconnect=not args.no_reconnect, announce=not args.no_announce,
                       discover=not args.no_discovery)


def _fail(message: str) -> int:
    from reactor.loop import write_stderr
    write_stderr(f"{program_name()}: error: {message}")
    return EXIT_FAILURE


def _delivery(home: Path | None, args: argparse.Namespace, observer, later):
    """The conversations' store and the history: in ``home`` (ours alone, by its lock),
    else in memory. Opening is blocking, so it happens before the loop."""
    from network.delivery import Delivery
    from network.store import DB_NAME, HISTORY_NAME, History, Store, lock_home
    # A second chat.py on the same home (one user's other terminal) keeps both in memory
    # (two writers of one conversation's numbers would reuse them); the README says so.
    on_disk = home is not None and not args.no_history and home.is_dir() \
        and lock_home(home) is not None
    store = Store(home / DB_NAME if on_disk else None, observer.store_problem)
    history = History(home / HISTORY_NAME if on_disk else None, args.history_limit,
                      observer.store_problem)
    return Delivery(store, history, later, observer.delivered)


def _identity_and_trust(home_text: str | None):
    """Our identity (made on first start) and trust store; ``(None, store)`` without one.

    Blocking (it may run the openssl command once), so it happens before the loop.
    Without an identity the program says so in one line and runs with plain
    connections; nothing else changes.
    """
    from network.identity import load_or_create_identity
    from network.outcomes import IdentityUnavailable
    from network.trust import TRUST_FILE_NAME, TrustStore
    home = _home(home_text)
    identity = None
    try:
        identity = load_or_create_identity(home)
    except IdentityUnavailable as exc:
        _warn(words.identity_unavailable(exc))
    trust = TrustStore(home / TRUST_FILE_NAME)
    if trust.unreadable is not None:
        _warn(words.trust_file_unreadable(trust.path, trust.unreadable))
    for skipped in trust.skipped:
        _warn(words.trust_line_skipped(trust.path, skipped.number, skipped.problem))
    return identity, trust


def _home(home_text: str | None) -> Path:
    from network.identity import default_home
    return Path(home_text).expanduser() if home_text else default_home()


def _warn(message: str) -> None:
    from reactor.loop import write_stderr
    write_stderr(f"{program_name()}: note: {message}")


def run(args: argparse.Namespace) -> int:
    from commands import CommandRunner, Console, default_registry
    from commands.completion import make_completer
    from commands.session import KeyInput, LineInput, Session, cancel_pending_connect
    from commands.terminal.jobs import JobControl
    from network import Node
    from reactor import LineCodec, OutputStream, Reactor, StdinReader, choose_selector
    from reactor.process import raise_fd_limit, same_file
    from commands.terminal.lineedit import LineEditor
    from commands.terminal.screen import Screen, Terminal

    host = args.host
    raise_fd_limit()
    selector, stdin_pollable = choose_selector(0)
    reactor = Reactor(selector)
    stdout = OutputStream(reactor, 1, pipe_bytes=STDOUT_PIPE_BYTES)
    stderr = stdout if same_file(1, 2) else OutputStream(reactor, 2)
    streams = (stdout,) if stderr is stdout else (stdout, stderr)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    # TERM=dumb (or none) cannot move a cursor: treat it like a pipe, plain lines.
    interactive = (os.isatty(0) and os.isatty(1)
                   and os.environ.get("TERM", "") not in ("", "dumb"))
    color = interactive and not args.no_color and not os.environ.get("NO_COLOR")
    registry = default_registry()
    screen = terminal = editor = None
    if interactive:
        # At a terminal we own the input line, so messages never land inside it. Tab
        # asks the node, built below (it needs the console, which needs this screen).
        editor = LineEditor(make_completer(registry, lambda: node.peers()),
                            on_interrupt=lambda: cancel_pending_connect(node, console))
        screen = Screen(editor, _writer(stdout, encoding), encoding=encoding)
        terminal = Terminal(0)
    console = Console(stdout, stderr, encoding=encoding, color=color, screen=screen,
                      timestamps=args.timestamps)
    identity, trust = _identity_and_trust(args.home)
    # The node's end of turn stores what arrived, shows it, then acknowledges it; the
    # console's own flush comes after (what the commands said this turn).
    from network.discovery import lan_endpoint_factory
    node = Node(reactor, console, node_options(args), identity=identity, trust=trust,
                delivery=_delivery(_home(args.home), args, console,
                                   lambda *call: node.later(*call)),
                endpoint_factory=lan_endpoint_factory(reactor))
    reactor.add_after_turn(console.flush)
    try:
        node.listen(host, args.port)
    except OSError as exc:
        console.close()
        reactor.close()
        return _fail(words.cannot_listen(exc, host, args.port))
    console.listening(node.listening_host, node.port)
    stdout.add_water_marks(OUTPUT_HIGH_WATER_BYTES, OUTPUT_LOW_WATER_BYTES,
                           node.pause_reading, node.resume_reading)

    # --stay is for a peer whose input ends on its own; at a terminal Ctrl-D is the
    # user asking to leave, so it exits as it would without --stay.
    # The node is done within the flush timeout; the margin lets it say what was not
    # delivered before the loop stops whatever peers or stdout do.
    session = Session(node, console, reactor.stop, args.stay and not interactive,
                      reactor.call_later, grace_s=args.flush_timeout + EXIT_MARGIN_S)
    runner = CommandRunner(registry, reactor.call_soon, session.end_of_input, node, console,
                           request_exit=session.shutdown)
    for stream in streams:
        stream.add_water_marks(OUTPUT_CAP_BYTES, OUTPUT_LOW_WATER_BYTES, runner.pause,
                               runner.resume)
    stdout.when_lost(session.output_lost)
    if screen is not None:
        reactor.add_signal_handler(signal.SIGWINCH, lambda _: screen.resized())
    jobs = JobControl(terminal, screen, streams)
    if interactive:
        source = KeyInput(editor, screen, console, runner,
                          interrupt=lambda: session.shutdown(EXIT_SIGINT), suspend=jobs.suspend)
    else:
        source = LineInput(LineCodec(errors="surrogateescape"), runner)
    stdin = StdinReader(reactor, 0, stdin_pollable, on_data=source.data_received,
                        on_eof=source.eof_received)
    # The queue and stdin are built after the session (they call its methods); it is
    # told what to stop when the exit begins, and the queue when to stop reading.
    runner.set_input_flow(pause=stdin.pause_reading, resume=stdin.resume_reading)
    session.when_exiting(runner.stop)
    session.when_exiting(stdin.close)
    for name in STOPPING_SIGNALS:
        reactor.add_signal_handler(getattr(signal, name),
                                   lambda signum: session.shutdown(signal_status(signum)))
    reactor.add_signal_handler(signal.SIGTSTP, lambda _: jobs.suspend())
    reactor.add_signal_handler(signal.SIGCONT, lambda _: jobs.resume())
    try:
        if terminal is not None:
            terminal.enter()
        console.flush()   # say where we listen now, not after the loop's first sleep
        reactor.run()
    finally:
        console.flush()
        if screen is not None:
            screen.close()
        if terminal is not None:
            terminal.restore()
        node.delivery.close()     # the last turn's changes, if the loop stopped first
        console.close()   # one last try, never a wait; says what could not be written
        reactor.close()
    return session.status


def _writer(stream, encoding: str):
    """The screen's own drawing (prompt, input line): straight to stdout, as it comes."""
    def write(text: str) -> None:
        if not stream.closed:
            stream.write(text.encode(encoding, "backslashreplace"))
    return write


def main(argv: list[str] | None = None) -> int:
    if os.name == "nt":
        return _fail(words.NO_WINDOWS)
    args = parse_args(argv)
    from reactor.process import ensure_standard_fds
    ensure_standard_fds()
    try:
        status = run(args)
    except KeyboardInterrupt:
        status = EXIT_SIGINT
    except Exception as exc:  # noqa: BLE001 - never show a user a traceback
        status = _fail(words.internal_error(exc))
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
