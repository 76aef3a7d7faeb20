"""Identities on the node: TLS between chat.py peers, and the rules of trust.

A mixin of :class:`network.node.Node` (like ``events.py``): what the node does
once a connection offers a certificate, what a proven identity may do, and the
verbs ``myid``, ``trust`` and ``untrust`` act on.

* A connection whose hello carries a certificate switches to TLS, with a
  context that trusts exactly that certificate (``tlscontext``).
* **No downgrade**: a plain chat.py hello at an address where a peer we trust
  lives is refused, with the changed-identity warning.
* **--trusted-only**: every identity we do not trust is refused, plain
  clients included, and told why.
* **A changed key** at a trusted peer's address is shown, with a warning, but
  never as trusted. Trust is granted by a key only, never by an address or a
  name, which only ever *withhold* it.
"""

from __future__ import annotations

from dataclasses import replace

from .connection import Connection
from .outcomes import ConnectFailed, Failure, Refusal, TrustError, TrustProblem
from .protocol_events import StartTLS


class IdentityRules:
    def _start_tls(self, conn: Connection, event: StartTLS) -> None:
        if self._contexts is None:
            from .tlscontext import PeerContexts
            self._contexts = PeerContexts(self.identity)
        try:
            context = self._contexts.get(event.cert_der, event.server_side)
        except Exception as exc:      # noqa: BLE001 - an unusable certificate from outside
            self._handshake_over(conn, ConnectFailed(Failure.TLS, detail=str(exc)[:200]))
            conn.abort()
            return
        conn.start_tls(context, event.cert_der, event.server_side,
                       self.options.timing.handshake_timeout_s)

    def _our_fingerprint(self) -> bytes | None:
        return self.identity.fingerprint if self.identity else None

    def _claimed_address(self, conn: Connection, hello) -> tuple[str, int]:
        return conn.target if conn.target is not None else (conn.remote_ip, hello.port)

    def _trusted_enough(self, conn: Connection, hello) -> bool:
        """Trust rules: no downgrade, --trusted-only, and a warning for a changed key."""
        trust = self.trust
        address = self._claimed_address(conn, hello)
        shown = f"{address[0]}:{address[1]}"
        known = trust.lookup_by_address(address) if trust is not None else None
        trusted = trust.lookup_by_id(conn.fingerprint) if trust and conn.fingerprint else None
        refusal = None
        if conn.fingerprint is None and known is not None:
            refusal = Refusal.DOWNGRADE          # a peer we trust would have used its key
            self._observer.identity_changed(shown, known, None)
        elif self.options.trusted_only and trusted is None:
            refusal = Refusal.UNTRUSTED
        elif known is not None and trusted is None:
            from .identity import format_id
            self._observer.identity_changed(shown, known, format_id(conn.fingerprint))
        if refusal is None:
            conn.trusted_name = trusted.name if trusted is not None else None
            if trusted is not None:
                try:           # where it lives now: the changed-key check looks there
                    trust.remember_address(trusted.fingerprint, address)
                except TrustError:
                    pass       # only a hint: an unwritable trust file changes nothing else
            return True
        self._refuse_untrusted(conn, refusal)
        return False

    def _refuse_untrusted(self, conn: Connection, refusal: Refusal) -> None:
        if conn.target is None:
            self._observer.untrusted_refused(f"{conn.remote_ip}:{conn.transport.peername[1]}",
                                             refusal)
        self._handshake_over(conn, ConnectFailed(Failure.REFUSED_BY_US, refusal=refusal),
                             refusal, introduce=False)

    # -- the verbs ------------------------------------------------------------------------

    def my_id(self) -> str | None:
        """Our ID, written for people; ``None`` without an identity."""
        from .identity import format_id
        return format_id(self.identity.fingerprint) if self.identity else None

    def short_id(self, fingerprint: bytes) -> str:
        from .identity import short_id
        return short_id(fingerprint)

    def trusted(self) -> list:
        return self.trust.all() if self.trust is not None else []

    def trust_peer(self, peer_id: int, name: str | None):
        """Trust the identity connection ``peer_id`` proved, under ``name``."""
        info = self._table.get(peer_id)
        if info is None or info.fingerprint is None or self.trust is None:
            raise TrustError(TrustProblem.NO_IDENTITY)
        name = name or info.name          # the name it announces, if none is given
        if not name:
            raise TrustError(TrustProblem.BAD_NAME, "")
        entry = self.trust.trust(info.fingerprint, name,
                                 (info.host, info.port) if info.speaks_protocol else None)
        self._rename_trusted(info.fingerprint, entry.name)
        return entry

    def untrust(self, name: str):
        if self.trust is None:
            raise TrustError(TrustProblem.UNKNOWN_NAME, name)
        entry = self.trust.untrust(name)
        self._rename_trusted(entry.fingerprint, None)
        return entry

    def _rename_trusted(self, fingerprint: bytes, name: str | None) -> None:
        for peer_id, conn in self._by_id.items():
            if conn.fingerprint == fingerprint:
                conn.trusted_name = name
                conn.info = replace(conn.info, trusted_name=name)
                self._table.put(conn.info)


def tls_kind(exc: BaseException | None) -> str | None:
    """What a connection's end says about TLS: ``"damaged"`` (a bad or cut record, a
    failed or stalled handshake), ``"closed"`` (it went away without TLS's goodbye, at a
    record boundary: an ordinary close), or ``None`` (not about TLS at all)."""
    import sys
    tls = sys.modules.get("reactor.tls")   # imported only once TLS was ever used
    if tls is None or exc is None:
        return None
    if type(exc) is tls.ssl.SSLEOFError:
        return "closed"
    if isinstance(exc, (tls.ssl.SSLError, tls.TLSHandshakeTimeout)):
        return "damaged"
    return None


def tls_words(exc: BaseException) -> str:
    """OpenSSL's reason (``CERTIFICATE_VERIFY_FAILED``), else the message (an ``SSLError``
    made with one message would print as a tuple), else the type's name."""
    text = getattr(exc, "reason", None)
    if not text:
        text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    return (text or type(exc).__name__)[:200]
