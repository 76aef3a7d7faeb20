"""reactor.resolver: names resolved by a helper process while the loop keeps turning.

Real helper processes on a real Reactor; tests replace the helper's command to make
it stall, die, or write garbage. Nothing sleeps to synchronise: the loop is turned
until a condition holds, with a deadline.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time

import pytest

from reactor.loop import Reactor
from reactor.resolver import MAX_ADDRESSES, MAX_ANSWER_BYTES, Lookup, parse_answer

pytestmark = pytest.mark.timeout(20)

PORT = 4242
STALL = [sys.executable, "-I", "-S", "-c", "import time; time.sleep(10)"]


def turn_until(reactor: Reactor, condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        reactor.call_later(0.01, lambda: None)       # never sleep in select() for long
        reactor.run_once()


def gone(pid: int) -> bool:
    """Reaped: no such process any more (an unreaped zombie still answers ``kill 0``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Outcome:
    """Records the callbacks, and that they came from the loop, not from a constructor."""

    def __init__(self) -> None:
        self.calls: list = []
        self.inside_constructor = False

    def done(self, addresses) -> None:
        assert not self.inside_constructor
        self.calls.append(("done", addresses))

    def failed(self, exc) -> None:
        assert not self.inside_constructor
        self.calls.append(("failed", exc))


def start(host: str, timeout_s: float = 10.0, argv=None):
    errors: list[str] = []
    reactor = Reactor(report_error=errors.append)
    outcome = Outcome()
    outcome.inside_constructor = True
    lookup = Lookup(reactor, host, PORT, timeout_s, outcome.done, outcome.failed, argv=argv)
    outcome.inside_constructor = False
    return reactor, lookup, outcome, errors


def helper_pid(lookup: Lookup) -> int:
    return lookup._proc.pid


def finish(host: str, timeout_s: float = 10.0, argv=None):
    """Start a lookup, turn the loop until its one callback, then until its helper is reaped."""
    reactor, lookup, outcome, errors = start(host, timeout_s, argv)
    pid = helper_pid(lookup) if lookup._proc is not None else None
    assert outcome.calls == []                     # nothing from inside the constructor
    turn_until(reactor, lambda: outcome.calls)
    assert len(outcome.calls) == 1 and lookup.closed
    if pid is not None:
        turn_until(reactor, lambda: gone(pid), timeout=2.0)
    assert len(outcome.calls) == 1
    return reactor, lookup, outcome, errors


# -- through a real helper ----------------------------------------------------------------

def test_localhost_resolves_to_loopback_from_the_loop():
    reactor, lookup, outcome, errors = finish("localhost")
    kind, addresses = outcome.calls[0]
    assert kind == "done", addresses
    assert addresses and {ip for _, ip, _ in addresses} <= {"127.0.0.1", "::1"}
    for family, ip, port in addresses:
        assert family == (socket.AF_INET6 if ":" in ip else socket.AF_INET)
        assert port == PORT
    assert errors == []


def test_a_numeric_ipv4_address_comes_back_as_it_is():
    _, _, outcome, errors = finish("127.0.0.5")
    assert outcome.calls == [("done", [(socket.AF_INET, "127.0.0.5", PORT)])]
    assert errors == []


def test_an_ipv4_mapped_address_comes_back_as_ipv4():
    _, _, outcome, errors = finish("::ffff:127.0.0.9")
    assert outcome.calls == [("done", [(socket.AF_INET, "127.0.0.9", PORT)])]
    assert errors == []


def test_a_name_that_cannot_exist_fails_with_the_resolvers_error():
    _, _, outcome, errors = finish("no-such-host.invalid")
    kind, exc = outcome.calls[0]
    assert kind == "failed" and isinstance(exc, OSError)
    assert "\n" not in str(exc) and str(exc)
    if isinstance(exc, socket.gaierror):          # a machine without DNS may say otherwise
        assert exc.errno in {getattr(socket, name) for name in
                             ("EAI_NONAME", "EAI_NODATA", "EAI_AGAIN", "EAI_FAIL")
                             if hasattr(socket, name)}
    assert errors == []


def test_an_invalid_name_fails_cleanly():
    _, _, outcome, errors = finish("a..b")           # idna refuses the empty label
    kind, exc = outcome.calls[0]
    assert kind == "failed" and isinstance(exc, OSError) and "\n" not in str(exc)
    assert errors == []


def test_a_name_with_a_nul_fails_later_not_in_the_constructor():
    _, _, outcome, errors = finish("bad\0name")
    kind, exc = outcome.calls[0]
    assert kind == "failed" and isinstance(exc, OSError) and "resolver helper" in str(exc)
    assert errors == []


def test_a_helper_that_cannot_start_is_an_oserror_from_the_loop():
    _, _, outcome, errors = finish("localhost", argv=["/nonexistent/resolver-helper"])
    kind, exc = outcome.calls[0]
    assert kind == "failed" and exc.errno == errno.ENOENT
    assert "cannot start the resolver helper" in str(exc)
    assert errors == []


def test_no_callback_from_inside_the_constructor_nor_from_cancel():
    reactor, lookup, outcome, errors = start("127.0.0.5")
    assert outcome.calls == [] and not lookup.closed
    pid = helper_pid(lookup)
    lookup.cancel()
    assert outcome.calls == [] and lookup.closed
    turn_until(reactor, lambda: gone(pid), timeout=1.0)
    assert outcome.calls == [] and errors == []


# -- a stalling resolver ------------------------------------------------------------------

def test_a_stalling_helper_does_not_block_the_loop_and_cancel_kills_it_at_once():
    reactor, lookup, outcome, errors = start("stall.example", argv=STALL)
    pid = helper_pid(lookup)
    ticks = []

    def tick():
        ticks.append(reactor.time())
        reactor.call_later(0.01, tick)

    reactor.call_later(0.01, tick)
    turn_until(reactor, lambda: len(ticks) >= 20)   # about 0.2 s of a loop that keeps turning
    assert outcome.calls == [] and not gone(pid)
    lookup.cancel()
    lookup.cancel()                                  # idempotent
    assert lookup.closed
    cancelled_at = time.monotonic()
    turn_until(reactor, lambda: gone(pid), timeout=1.0)
    assert time.monotonic() - cancelled_at < 1.0
    later = len(ticks) + 10
    turn_until(reactor, lambda: len(ticks) >= later)  # and well after: still no callback
    assert outcome.calls == [] and errors == []


def test_the_timeout_kills_and_reaps_the_helper():
    reactor, lookup, outcome, errors = start("stall.example", timeout_s=0.3, argv=STALL)
    pid = helper_pid(lookup)
    began = time.monotonic()
    turn_until(reactor, lambda: outcome.calls)
    assert time.monotonic() - began < 5.0
    kind, exc = outcome.calls[0]
    assert kind == "failed" and isinstance(exc, TimeoutError)
    assert exc.errno == errno.ETIMEDOUT and "0.3 s" in str(exc)
    turn_until(reactor, lambda: gone(pid), timeout=1.0)
    assert len(outcome.calls) == 1 and errors == []


def test_cancel_after_the_answer_changes_nothing():
    reactor, lookup, outcome, errors = finish("127.0.0.5")
    lookup.cancel()
    assert outcome.calls[0][0] == "done" and len(outcome.calls) == 1


# -- helpers that misbehave ----------------------------------------------------------------

def python(code: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", code]


@pytest.mark.parametrize("code", [
    "import sys; sys.stdout.write('hello world\\n')",
    "import sys; sys.stdout.write('ok inet 127.0.0.1')",                # cut short
    "import sys; sys.stdout.buffer.write(b'ok inet \\xff 1\\n')",
    "import sys; sys.stdout.write('ok inet 127.0.0.1 1\\ngaierror -2 no\\n')",
], ids=["words", "cut-short", "binary", "mixed"])
def test_a_helper_that_writes_garbage_gives_a_clean_oserror(code):
    reactor, lookup, outcome, errors = finish("x.example", argv=python(code))
    kind, exc = outcome.calls[0]
    assert kind == "failed" and type(exc) is OSError and exc.errno == errno.EPROTO
    assert "\n" not in str(exc)
    assert errors == []


def test_a_helper_that_writes_a_mebibyte_is_stopped_and_fails_cleanly():
    code = "import sys, time; sys.stdout.write('ok inet 127.0.0.1 1\\n' * 60000); " \
           "sys.stdout.flush(); time.sleep(10)"
    reactor, lookup, outcome, errors = start("x.example", argv=python(code))
    pid = helper_pid(lookup)
    turn_until(reactor, lambda: outcome.calls)
    kind, exc = outcome.calls[0]
    assert kind == "failed" and type(exc) is OSError and "64 KiB" in str(exc)
    turn_until(reactor, lambda: gone(pid), timeout=1.0)
    assert errors == []


@pytest.mark.parametrize("code", ["raise SystemExit(3)",
                                  "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                         ids=["exits", "killed"])
def test_a_helper_that_ends_without_answering_fails(code):
    _, _, outcome, errors = finish("x.example", argv=python(code))
    kind, exc = outcome.calls[0]
    assert kind == "failed" and isinstance(exc, OSError) and "without answering" in str(exc)
    assert errors == []


def test_the_host_and_port_are_the_last_two_arguments_of_a_replaced_command():
    code = "import sys; print('ok inet', sys.argv[-2], sys.argv[-1])"
    _, _, outcome, errors = finish("127.0.0.77", argv=python(code))
    assert outcome.calls == [("done", [(socket.AF_INET, "127.0.0.77", PORT)])]


def test_many_lookups_at_once_all_answer_and_leave_no_child():
    errors: list[str] = []
    reactor = Reactor(report_error=errors.append)
    results = []
    lookups = [Lookup(reactor, f"127.0.0.{n}", PORT, 10.0, results.append, results.append)
               for n in range(1, 9)]
    pids = [lookup._proc.pid for lookup in lookups]
    turn_until(reactor, lambda: len(results) == 8)
    assert sorted(r[0][1] for r in results) == sorted(f"127.0.0.{n}" for n in range(1, 9))
    turn_until(reactor, lambda: all(gone(pid) for pid in pids), timeout=2.0)
    assert errors == []


# -- parsing the helper's answer (a pure function) ----------------------------------------

def test_parse_addresses_in_order():
    data = b"ok inet6 ::1 80\nok inet 127.0.0.1 80\n"
    assert parse_answer(data) == [(socket.AF_INET6, "::1", 80), (socket.AF_INET, "127.0.0.1", 80)]


def test_parse_keeps_an_ipv6_scope_and_canonicalises():
    assert parse_answer(b"ok inet6 fe80:0::1%eth0 80\n") == [(socket.AF_INET6, "fe80::1%eth0", 80)]
    assert parse_answer(b"ok inet6 fe80::1%3 80\n") == [(socket.AF_INET6, "fe80::1%3", 80)]


def test_parse_turns_mapped_addresses_into_ipv4_and_removes_duplicates():
    data = b"ok inet 10.0.0.5 80\nok inet6 ::ffff:10.0.0.5 80\nok inet6 ::ffff:10.0.0.6 80\n" \
           b"ok inet 10.0.0.6 80\nok inet 10.0.0.5 81\n"
    assert parse_answer(data) == [(socket.AF_INET, "10.0.0.5", 80),
                                  (socket.AF_INET, "10.0.0.6", 80),
                                  (socket.AF_INET, "10.0.0.5", 81)]


def test_parse_keeps_at_most_sixteen_addresses():
    data = b"".join(b"ok inet 10.0.0.%d 80\n" % n for n in range(1, 41))
    got = parse_answer(data)
    assert len(got) == MAX_ADDRESSES == 16
    assert got[0] == (socket.AF_INET, "10.0.0.1", 80) and got[-1][1] == "10.0.0.16"
    duplicated = b"ok inet 10.0.0.1 80\n" * 30 + b"ok inet 10.0.0.2 80\n"
    assert parse_answer(duplicated) == [(socket.AF_INET, "10.0.0.1", 80),
                                        (socket.AF_INET, "10.0.0.2", 80)]


def test_parse_errors_of_the_resolver():
    exc = pytest.raises(socket.gaierror, parse_answer, b"gaierror -2 Name or service not known\n")
    assert exc.value.errno == -2 and exc.value.strerror == "Name or service not known"
    exc = pytest.raises(OSError, parse_answer, b"oserror 22 invalid host name: label empty\n")
    assert type(exc.value) is OSError and exc.value.errno == 22
    assert "label empty" in str(exc.value)


@pytest.mark.parametrize("data", [
    b"ok inet 127.0.0.1 80",                        # no final newline: cut short
    b"ok inet 127.0.0.1\n",
    b"ok inet 127.0.0.1 80 extra\n",
    b"ok inet  127.0.0.1 80\n",
    b"ok inet 127.0.0.1 65536\n",
    b"ok inet 127.0.0.1 -1\n",
    b"ok inet 127.0.0.1 8x\n",
    b"ok inet ::1 80\n",                            # the wrong family
    b"ok inet6 127.0.0.1 80\n",
    b"ok inet 127.0.0.1%eth0 80\n",                 # a scope on IPv4
    b"ok inet6 fe80::1% 80\n",
    b"ok inet6 fe80::1%a/b 80\n",
    b"ok inet6 fe80::1%a%b 80\n",
    b"ok inet 999.0.0.1 80\n",
    b"ok inet localhost 80\n",
    b"ok unix /tmp/x 80\n",
    b"OK inet 127.0.0.1 80\n",
    b"ok inet 127.0.0.1 80\r\n",
    b"\n",
    b"ok inet 127.0.0.1 80\n\n",
    b"ok inet 127.0.0.1 80\ngaierror -2 no\n",
    b"gaierror -2 no\nok inet 127.0.0.1 80\n",
    b"gaierror x no\n",
    b"gaierror 12345678 no\n",
    b"gaierror -2 tab\there\n",
    b"ok inet 127.0.0.\xff 80\n",
    b"\x00\x01\x02\n",
    b"x" * (MAX_ANSWER_BYTES + 1),
    b"ok inet 127.0.0.1 80\n" * (MAX_ANSWER_BYTES // 20),
])
def test_parse_refuses_garbage_with_a_one_line_oserror(data):
    with pytest.raises(OSError) as caught:
        parse_answer(data)
    assert type(caught.value) is OSError and caught.value.errno == errno.EPROTO
    assert "\n" not in str(caught.value)


def test_parse_of_nothing_is_no_answer():
    with pytest.raises(OSError) as caught:
        parse_answer(b"")
    assert caught.value.errno == errno.EIO
