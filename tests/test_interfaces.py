"""The interfaces that join the layers, checked by name and shape.

The console is the node's observer, and the node offers the verbs the commands use.
Neither side imports the other's class, so nothing but this test notices when one
side renames a method or adds a parameter the other does not know. Likewise both
transports (TCP and TLS) implement ``reactor.protocol.Transport``, and the network
calls nothing on a transport that is not in it.
"""

from __future__ import annotations

import inspect
import re

import pytest

from commands.base import NodeAPI, TrustedEntry
from commands.console import Console
from helpers import ROOT
from network.node import Node, Observer
from network.trust import TrustedPeer
from reactor.protocol import Transport
from reactor.tls import TLSLayer
from reactor.transport import StreamTransport


def methods(protocol) -> dict:
    return {name: member for name, member in vars(protocol).items()
            if callable(member) and not name.startswith("_")}


def parameters(function) -> list:
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.name != "self"]


def test_the_console_implements_the_observer_the_node_reports_to():
    wanted = methods(Observer)
    assert len(wanted) >= 10
    for name, method in wanted.items():
        implemented = getattr(Console, name, None)
        assert implemented is not None, f"Console lacks {name}"
        assert len(parameters(implemented)) == len(parameters(method)), name


def test_the_node_offers_every_verb_the_commands_use():
    wanted = methods(NodeAPI)
    assert len(wanted) >= 10
    for name, method in wanted.items():
        offered = getattr(Node, name, None)
        assert callable(offered), f"Node lacks {name}"
        assert parameters(offered)[:len(parameters(method))] == parameters(method), name
    assert isinstance(NodeAPI.port, property) and isinstance(Node.port, property)
    assert "name" in NodeAPI.__annotations__


def test_a_trusted_peer_has_the_shape_the_commands_describe():
    """The commands may not import network.trust: they describe its entries by a Protocol."""
    wanted = [name for name, member in vars(TrustedEntry).items()
              if isinstance(member, property)]
    assert sorted(wanted) == ["address", "fingerprint", "id", "name"]
    entry = TrustedPeer(b"\x01" * 32, "alice", ("10.0.0.5", 8080))
    for name in wanted:
        assert hasattr(entry, name), f"TrustedPeer lacks {name}"
    assert isinstance(entry.id, str) and isinstance(entry.fingerprint, bytes)


def test_every_address_problem_of_the_parser_has_its_name_in_the_networks_vocabulary():
    """network.node.address_problem maps reactor's problem to the outcome by name."""
    from network.node import address_problem
    from network.outcomes import AddressProblem
    from reactor.netutil import AddressError, AddressProblem as ParserProblem
    for problem in ParserProblem:
        assert address_problem(AddressError(problem)) is AddressProblem[problem.name]


def transport_members() -> set:
    members = {name for name in vars(Transport) if not name.startswith("_")}
    return members | set(Transport.__annotations__)


@pytest.mark.parametrize("cls", [StreamTransport, TLSLayer])
def test_both_transports_implement_the_transport_protocol(cls):
    wanted = transport_members()
    assert {"write", "write_eof", "can_write_eof", "closed", "peername"} <= wanted
    slots = set(getattr(cls, "__slots__", ()))
    for name in sorted(wanted):
        declared = vars(Transport).get(name)
        if callable(declared):
            offered = getattr(cls, name, None)
            assert callable(offered), f"{cls.__name__} lacks {name}()"
            assert parameters(offered) == parameters(declared), name
        else:       # a property or an attribute: on the class, in its slots, or set by
            # __init__ (TLSLayer's water marks)
            assert (hasattr(cls, name) or name in slots
                    or f"self.{name} = " in inspect.getsource(cls.__init__)), \
                f"{cls.__name__} lacks {name}"


def test_half_close_is_said_not_probed():
    assert StreamTransport.can_write_eof is True
    assert TLSLayer.can_write_eof is False


def test_the_network_calls_nothing_on_a_transport_outside_the_protocol():
    used = set()
    for path in sorted((ROOT / "network").glob("*.py")):
        used |= set(re.findall(r"\btransport\.([a-z_]+)", path.read_text()))
    assert used, "the pattern found no use at all"
    assert used <= transport_members(), sorted(used - transport_members())
