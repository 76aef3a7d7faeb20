"""Two connections to the same peer: which one stays. A pure rule.

When A connects to B while B connects to A, each side holds two connections
to the same node. Both keep the one *initiated by the lower instance id* (the
rule BitTorrent and Syncthing use), so both keep the same one, and the other
is *retired* by the node: it says ``BYE duplicate``, half-closes, and what it
still brings is shown under the kept connection's id. A side that hears
``BYE duplicate`` before it has seen the other connection keeps the place
(the id) for it.

The same peer twice from the same side (it connected to us twice, or we
dialled an address that turned out to be a peer we have), or a late hello
that duplicates a peer already shown: the one we have stays.
"""

from __future__ import annotations

import enum

from .outcomes import Direction


class Keep(enum.Enum):
    NEW = "new"              # one each way: the rule keeps the new one, the other is retired
    OTHER = "other"          # one each way: the rule keeps the other one, the new is retired
    EXISTING = "existing"    # the one we have stays; the new one is not a peer of its own


def which_stays(new: Direction, other: Direction, new_is_shown: bool,
                our_node_id: str, their_node_id: str) -> Keep:
    """Of two connections between us and one peer (``new`` just said hello), which stays.

    ``new_is_shown``: the new one is already listed (a plain connection whose late
    hello turns out to be a peer we have).
    """
    if new is other or new_is_shown:
        return Keep.EXISTING
    keep_outgoing = our_node_id < their_node_id
    return Keep.NEW if (new is Direction.OUTGOING) == keep_outgoing else Keep.OTHER
