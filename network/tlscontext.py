"""TLS contexts for one peer: our certificate, and trust in exactly the one it announced.

Peers have self-signed certificates and no host names. The ``ssl`` module
cannot accept an unknown self-signed certificate through a verify callback
(Python has none), so each peer gets a context whose *only* trust anchor is
the certificate that peer announced in its plaintext hello: OpenSSL then
checks that the peer holds that certificate's key, and refuses any other.

After the handshake, ``peer_matches`` compares the hash of the certificate
actually presented with the one expected (in constant time). It is needed:
the announced certificate may sign others (it is its own CA), so the chain
check alone would also let through a second certificate made with the same
key; the hash check pins the exact leaf.

Contexts are cached per (side, peer certificate): making one costs about
0.6 ms (mostly reading and parsing our key), a handshake about the same, and
a peer that reconnects or a burst of connections should pay it once.
"""

from __future__ import annotations

import collections
import hmac
import ssl

from .identity import Identity, fingerprint

CONTEXT_CACHE_SIZE = 128


class UnusableCertificate(Exception):
    """The certificate a peer announced cannot be parsed or loaded."""


def certificate_from_pem(pem: str) -> bytes:
    """DER of a PEM certificate a peer announced, or ``UnusableCertificate``."""
    try:
        return ssl.PEM_cert_to_DER_cert(pem)
    except ValueError:
        raise UnusableCertificate("not a PEM certificate") from None


def peer_context(identity: Identity, peer_cert_der: bytes, server_side: bool
                 ) -> ssl.SSLContext:
    """A TLS 1.3 context with our certificate that trusts only ``peer_cert_der``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False           # no host names: the pinned certificate is the check
    ctx.verify_mode = ssl.CERT_REQUIRED  # on the server side too: the client must prove itself
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    try:
        ctx.load_verify_locations(cadata=peer_cert_der)
    except (ssl.SSLError, ValueError, TypeError) as exc:
        raise UnusableCertificate(str(exc)) from None
    if server_side:
        ctx.num_tickets = 0              # no resumption: every connection proves who it is
    return ctx


class PeerContexts:
    """``peer_context`` with a bounded cache (least recently used goes first)."""

    def __init__(self, identity: Identity, size: int = CONTEXT_CACHE_SIZE) -> None:
        self.identity = identity
        self.size = size
        self._cache: collections.OrderedDict = collections.OrderedDict()

    def get(self, peer_cert_der: bytes, server_side: bool) -> ssl.SSLContext:
        key = (server_side, fingerprint(peer_cert_der))
        ctx = self._cache.get(key)
        if ctx is None:
            ctx = peer_context(self.identity, peer_cert_der, server_side)
            self._cache[key] = ctx
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return ctx

    def __len__(self) -> int:
        return len(self._cache)


def peer_matches(peer_cert_der: bytes | None, expected_fingerprint: bytes) -> bool:
    """Whether the certificate presented in the handshake is exactly the expected one."""
    if not peer_cert_der:
        return False
    return hmac.compare_digest(fingerprint(peer_cert_der), expected_fingerprint)
