"""The two interfaces that join the user side and the network, checked by name and shape.

The console is the node's observer, and the node offers the verbs the commands use.
Neither side imports the other's class, so nothing but this test notices when one
side renames a method or adds a parameter the other does not know.
"""

from __future__ import annotations

import inspect

from commands.base import NodeAPI, TrustedEntry
from commands.console import Console
from network.node import Node, Observer
from network.trust import TrustedPeer


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
