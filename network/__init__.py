"""The chat network: who we talk to and how.

The peer table and its ids, the wire format, the node that owns the
listening socket and every connection and offers the verbs the commands use
(connect, terminate, send, shutdown). It builds on ``reactor`` and reports
what happens to an observer as structured outcomes; it never prints.
"""

from .node import Node, NodeOptions

__all__ = ["Node", "NodeOptions"]
