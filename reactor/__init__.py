"""The I/O side of chat.py: one selectors loop and what runs on it.

Nothing here knows about chat: any line-based network program could reuse it.
"""

from .lines import LineCodec, LineTooLong
from .listener import Listener
from .loop import Reactor
from .output import OutputStream
from .stdio import StdinReader, choose_selector
from .transport import Connector, StreamTransport

__all__ = ["Connector", "LineCodec", "LineTooLong", "Listener", "OutputStream",
           "Reactor", "StdinReader", "StreamTransport", "choose_selector"]
