"""The I/O side of chat.py: one selectors loop and what runs on it.

Everything here except ``peers``, ``wire`` and ``node`` is chat-agnostic.
"""

from .lines import LineCodec, LineTooLong
from .listener import Listener
from .loop import Reactor
from .node import Node, NodeOptions
from .stdio import StdinReader, choose_selector
from .transport import Connector, StreamTransport

__all__ = ["Connector", "LineCodec", "LineTooLong", "Listener", "Node", "NodeOptions",
           "Reactor", "StdinReader", "StreamTransport", "choose_selector"]
