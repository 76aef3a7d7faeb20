"""Who we are: a key and a self-signed certificate made once, and the ID people read.

The identity lives in ``<home>/identity/`` (``key.pem``, ``cert.pem``, mode
0600, the folder 0700). It is made by the ``openssl`` command, once, at
start-up and before the loop runs (so a blocking subprocess is fine here).

Made atomically: the files are generated in a fresh temporary folder inside
home, then that folder is renamed to ``identity``. ``rename`` of a folder onto
an existing non-empty one fails, so when two peers start at the same moment
with the same home exactly one rename wins and the other loads the winner's
identity; no one ever sees half of one.

The ID is the SHA-256 of the certificate (DER), written the way Syncthing
writes device IDs: base32 without padding (52 characters), one check character
after every 13 (Syncthing's variant of Luhn mod 32), in 8 groups of 7 joined by
dashes. The short form is the first group. Parsing forgives case, spaces,
dashes and the look-alikes 0/1/8 for O/I/B, and rejects a typo in the rest
through the check characters.

Failures are outcomes, not words: ``IdentityUnavailable(problem, detail)``;
the user side says them (and the program runs with plain connections).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .outcomes import IdentityProblem, IdentityUnavailable

APP_DIR_NAME = "chat-peer"
IDENTITY_DIR_NAME = "identity"
KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
OPENSSL_TIMEOUT_S = 30.0
CERT_DAYS = 36500

# Our own request config, so the certificate is the same whatever the
# system's openssl.cnf says (OpenSSL 3 adds CA:TRUE by default, LibreSSL's
# default config may add nothing, which makes a version 1 certificate that a
# strict verifier refuses as a trust anchor). Only long-standing v3 extension
# names, which LibreSSL's ``req -config`` reads too.
REQ_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = chat-peer
[ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Identity:
    folder: Path
    cert_der: bytes
    fingerprint: bytes           # SHA-256 of cert_der

    @property
    def key_path(self) -> Path:
        return self.folder / KEY_FILE

    @property
    def cert_path(self) -> Path:
        return self.folder / CERT_FILE

    @property
    def cert_pem(self) -> str:
        return ssl.DER_cert_to_PEM_cert(self.cert_der)

    @property
    def id(self) -> str:
        return format_id(self.fingerprint)

    @property
    def short_id(self) -> str:
        return short_id(self.fingerprint)


def default_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CONFIG_HOME/chat-peer``, else ``~/.config/chat-peer``."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):      # the XDG spec says to ignore a relative one
        return Path(xdg) / APP_DIR_NAME
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".config" / APP_DIR_NAME


def load_or_create_identity(home: Path, environ: Mapping[str, str] | None = None) -> Identity:
    """Our identity in ``home``, made first if there is none (blocking: call before the loop)."""
    home = Path(home)
    folder = home / IDENTITY_DIR_NAME
    found = maybe_load_identity(folder)
    if found is not None:
        return found
    env = dict(os.environ if environ is None else environ)
    openssl = shutil.which("openssl", path=env.get("PATH", os.defpath))
    if openssl is None:
        raise IdentityUnavailable(IdentityProblem.OPENSSL_MISSING, "openssl")
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".identity-", dir=home))   # mode 0700
    except OSError as exc:
        raise IdentityUnavailable(IdentityProblem.HOME_UNWRITABLE,
                                  f"{home}: {exc.strerror or exc}") from None
    try:
        _generate(openssl, scratch, env)
        try:
            os.rename(scratch, folder)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise IdentityUnavailable(IdentityProblem.HOME_UNWRITABLE,
                                          f"{folder}: {exc.strerror}") from None
            # Another peer made one at the same moment: theirs is ours.
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    found = maybe_load_identity(folder)
    if found is None:
        raise IdentityUnavailable(IdentityProblem.DAMAGED, str(folder))
    return found


def maybe_load_identity(folder: Path) -> Identity | None:
    """The identity in ``folder``; ``None`` if there is none; raises if it is damaged."""
    if not folder.exists():
        return None
    try:
        pem = (folder / CERT_FILE).read_text("ascii")
        der = ssl.PEM_cert_to_DER_cert(pem)
        # Key and certificate must belong together: let OpenSSL check.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(folder / CERT_FILE,
                                                                 folder / KEY_FILE)
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise IdentityUnavailable(IdentityProblem.DAMAGED, f"{folder}: {exc}") from None
    return Identity(folder, der, fingerprint(der))


def _generate(openssl: str, folder: Path, env: dict) -> None:
    key, cert, config = folder / KEY_FILE, folder / CERT_FILE, folder / "req.cnf"
    config.write_text(REQ_CONFIG)
    _run(env, openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    _run(env, openssl, "req", "-new", "-x509", "-config", str(config), "-key", str(key),
         "-out", str(cert), "-days", str(CERT_DAYS), "-sha256")
    config.unlink()
    os.chmod(key, 0o600)
    os.chmod(cert, 0o600)


def _run(env: dict, *argv: str) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL,
                       env=env, timeout=OPENSSL_TIMEOUT_S)
    except FileNotFoundError:
        raise IdentityUnavailable(IdentityProblem.OPENSSL_MISSING, argv[0]) from None
    except subprocess.TimeoutExpired:
        raise IdentityUnavailable(IdentityProblem.OPENSSL_FAILED,
                                  f"openssl {argv[1]}: no answer after {OPENSSL_TIMEOUT_S:g} s"
                                  ) from None
    except subprocess.CalledProcessError as exc:
        words = exc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise IdentityUnavailable(IdentityProblem.OPENSSL_FAILED,
                                  f"openssl {argv[1]}: {words[-1] if words else exc.returncode}"
                                  ) from None


# -- IDs ---------------------------------------------------------------------------

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CHECKED_CHARS = 13          # one check character after each 13
_GROUP_CHARS = 7
_TYPOS = str.maketrans({"0": "O", "1": "I", "8": "B", "-": None, " ": None})


class InvalidId(Exception):
    """Text that is not a well-formed ID (wrong length, alphabet or check character)."""


def fingerprint(cert_der: bytes) -> bytes:
    return hashlib.sha256(cert_der).digest()


def check_char(chars: str) -> str:
    """Syncthing's Luhn mod 32 check character (factors 1, 2, 1 ... from the left)."""
    factor, total = 1, 0
    for c in chars:
        addend = factor * ID_ALPHABET.index(c)
        factor = 3 - factor
        total += addend // 32 + addend % 32
    return ID_ALPHABET[(32 - total % 32) % 32]


def format_id(fp: bytes) -> str:
    """The full ID of a 32-byte fingerprint: 8 groups of 7, dashes between."""
    plain = base64.b32encode(fp).decode("ascii").rstrip("=")
    checked = "".join(part + check_char(part) for part in
                      (plain[i:i + _CHECKED_CHARS] for i in range(0, len(plain), _CHECKED_CHARS)))
    return "-".join(checked[i:i + _GROUP_CHARS] for i in range(0, len(checked), _GROUP_CHARS))


def short_id(fp: bytes) -> str:
    return format_id(fp)[:_GROUP_CHARS]


def parse_id(text: str) -> bytes:
    """The fingerprint an ID stands for, or ``InvalidId``."""
    chars = text.strip().upper().translate(_TYPOS)
    if len(chars) != 56 or any(c not in ID_ALPHABET for c in chars):
        raise InvalidId(text)
    plain = ""
    for i in range(0, 56, _CHECKED_CHARS + 1):
        part, check = chars[i:i + _CHECKED_CHARS], chars[i + _CHECKED_CHARS]
        if check_char(part) != check:
            raise InvalidId(text)
        plain += part
    fp = base64.b32decode(plain + "====")
    if len(fp) != 32 or format_id(fp).replace("-", "") != chars:
        raise InvalidId(text)       # trailing bits that base32 would drop
    return fp
