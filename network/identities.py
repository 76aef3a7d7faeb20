"""Identities on the node: the rules of trust, and how a TLS connection ended.

* **No downgrade**: a plain chat.py hello at an address where a peer we trust
  lives is refused, with the changed-identity warning.
* **--trusted-only**: every identity we do not trust is refused, plain
  clients included, and told why.
* **A changed key** at a trusted peer's address is shown, with a warning, but
  never as trusted.
* **Who we dialled for**: a connection made for one identity (its LAN
  announcement, or ``connect <name|ID>``) that proves another is refused, with
  the same warning: an announcement is a claim, and TLS is the proof. Trust is granted by a key only, never by an address or a
  name, which only ever *withhold* it.

:func:`judge` is the rule as a pure function: what the trust store says about
the address and the key goes in, a :class:`Verdict` comes out, and the node
carries it out (refuse, warn, remember where a trusted peer lives now).
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

from .outcomes import Refusal


@dataclass(frozen=True)
class Verdict:
    refusal: Refusal | None = None      # refuse it (None: it may stay)
    trusted_name: str | None = None     # our user's name for its identity
    warn_changed: bool = False          # a trusted peer's address shows another key (or none)
    remember_address: bool = False      # a trusted identity: note where it lives now


def judge(fingerprint: bytes | None, known_at_address, trusted, trusted_only: bool,
          expected: bytes | None = None) -> Verdict:
    """The trust rules for one hello.

    ``fingerprint``: the identity the connection proved (``None``: plain);
    ``known_at_address``: the trusted peer last seen at the address it claims,
    if any; ``trusted``: the trusted entry of its own identity, if any;
    ``expected``: the identity we dialled it for (an announcement said it is
    there, or our user asked for it by name or ID), if any.
    """
    if expected is not None and fingerprint != expected:
        return Verdict(Refusal.NOT_EXPECTED, warn_changed=True)  # a claim, not proven
    if fingerprint is None and known_at_address is not None:
        return Verdict(Refusal.DOWNGRADE, warn_changed=True)   # it would have used its key
    if trusted_only and trusted is None:
        return Verdict(Refusal.UNTRUSTED)
    return Verdict(trusted_name=trusted.name if trusted is not None else None,
                   warn_changed=known_at_address is not None and trusted is None,
                   remember_address=trusted is not None)


class TlsEnding(enum.Enum):
    """What a connection's end says about TLS."""

    DAMAGED = "damaged"   # a bad or cut record, a failed or stalled handshake
    CLOSED = "closed"     # it went away without TLS's goodbye, at a record boundary


def maybe_tls_ending(exc: BaseException | None) -> TlsEnding | None:
    """How TLS ended, if ``exc`` is about TLS at all (``None``: it is not)."""
    tls = sys.modules.get("reactor.tls")   # imported only once TLS was ever used
    if tls is None or exc is None:
        return None
    if type(exc) is tls.ssl.SSLEOFError:
        return TlsEnding.CLOSED
    if isinstance(exc, (tls.ssl.SSLError, tls.TLSHandshakeTimeout)):
        return TlsEnding.DAMAGED
    return None


def tls_words(exc: BaseException) -> str:
    """OpenSSL's reason (``CERTIFICATE_VERIFY_FAILED``), else the message (an ``SSLError``
    made with one message would print as a tuple), else the type's name."""
    text = getattr(exc, "reason", None)
    if not text:
        text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    return (text or type(exc).__name__)[:200]
