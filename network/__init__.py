"""The chat network: who we talk to and how.

``peer_protocol`` is the sans-IO protocol of one connection (handshake,
heartbeats, refusals, names), ``protocol_events`` what it reports, ``wire`` its
format and ``names`` the rule for names; ``connection`` adapts it to a
transport and the loop's timers; ``node`` (with ``events``, ``admission``,
``attempt``, ``fanout`` and ``peers``) owns the listening socket, the peer table and its
ids, and the verbs the commands use. ``outcomes`` is the vocabulary it
reports in: Enums and numbers, never words.
"""

from .node import Node, NodeOptions

__all__ = ["Node", "NodeOptions"]
