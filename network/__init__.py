"""The chat network: who we talk to and how.

``peer_protocol`` is the sans-IO protocol of one connection (handshake,
heartbeats, refusals, names), ``protocol_events`` what it reports, ``wire`` its
format and ``names`` the rule for names; ``connection`` adapts it to a
transport and the loop's timers, with the verbs the node uses; ``node`` is the
facade the commands use, over ``registry`` (where each connection is, the
ids), ``dialer`` (our connect in flight), ``admission`` and ``fanout``, with the
pure rules of ``duplicates`` and ``identities``. ``outcomes`` is the vocabulary
it reports in: Enums, dataclasses and numbers, never words.
"""

from .node import Node, NodeOptions

__all__ = ["Node", "NodeOptions"]
