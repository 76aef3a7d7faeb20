"""Certificates and contexts for the TLS tests, made with the openssl command."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

from helpers import tcp_pair  # noqa: F401 - the tests of TLS take it from here too
from reactor.protocol import Protocol


class Cert:
    def __init__(self, folder: Path) -> None:
        self.key = folder / "key.pem"
        self.cert = folder / "cert.pem"
        folder.mkdir(parents=True)
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", str(self.key)], check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", str(self.key), "-out",
                        str(self.cert), "-days", "36500", "-subj", "/CN=chat-peer",
                        "-sha256"], check=True, capture_output=True, timeout=30)
        self.der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())


def context(server_side: bool, me: Cert, trusted: Cert) -> ssl.SSLContext:
    """Mutual TLS 1.3 that trusts exactly ``trusted``'s certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(me.cert), str(me.key))
    ctx.load_verify_locations(cadata=trusted.der)
    if server_side:
        ctx.num_tickets = 0
    return ctx




class Upper(Protocol):
    """The protocol above a TLS layer: records everything it is told."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.chunks: list[int] = []
        self.events: list[str] = []
        self.exc: BaseException | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.chunks.append(len(data))

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc) -> None:
        self.events.append("lost")
        self.exc = exc

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    @property
    def made(self) -> bool:
        return "made" in self.events

    @property
    def lost(self) -> bool:
        return "lost" in self.events
