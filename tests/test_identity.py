"""Identities, IDs, the trust store and the per-peer TLS contexts."""

from __future__ import annotations

import base64
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT
from network.identity import (IDENTITY_DIR_NAME, IdentityProblem, IdentityUnavailable,
                              InvalidId, check_char, default_home, fingerprint, format_id,
                              load_or_create_identity, parse_id, short_id)
from network.tlscontext import (PeerContexts, UnusableCertificate, certificate_from_pem,
                                peer_context, peer_matches)
from network.trust import (TrustError, TrustProblem, TrustStore, check_name,
                           parse_address)

SYNCTHING_ID = "P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2"
SYNCTHING_FP = base64.b32decode("P56IOI7MZJNU2IQGDREYDM2MGTMGL3BXNPQ6W5BTBBZ4TJXZWICQ====")


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    root = tmp_path_factory.mktemp("people")
    return {name: load_or_create_identity(root / name) for name in ("alice", "bob", "eve")}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- identity -----------------------------------------------------------------------------

def test_identity_is_made_once_with_private_modes_and_is_stable(tmp_path):
    home = tmp_path / "config" / "chat-peer"
    first = load_or_create_identity(home)
    assert mode(home) == 0o700 and mode(first.folder) == 0o700
    assert mode(first.key_path) == 0o600 and mode(first.cert_path) == 0o600
    assert sorted(os.listdir(home)) == [IDENTITY_DIR_NAME]           # no scratch left
    assert sorted(os.listdir(first.folder)) == ["cert.pem", "key.pem"]
    again = load_or_create_identity(home)
    assert again == first and again.id == first.id
    assert first.fingerprint == fingerprint(first.cert_der) and len(first.fingerprint) == 32
    assert ssl.PEM_cert_to_DER_cert(first.cert_pem) == first.cert_der
    text = subprocess.run(["openssl", "x509", "-in", str(first.cert_path), "-noout", "-text"],
                          capture_output=True, text=True, check=True, timeout=30).stdout
    assert "prime256v1" in text and "ecdsa-with-SHA256" in text
    assert "CA:TRUE" in text and "CN = chat-peer" in text


RACE = """
import os, sys
sys.path.insert(0, {root!r})
import network.identity as identity
real_rename = os.rename
def rename(a, b):
    try:
        real_rename(a, b)
    except OSError:
        print("lost", flush=True)
        raise
    print("won", flush=True)
identity.os.rename = rename
print("ready", flush=True)
sys.stdin.readline()                         # the start gate
print(identity.load_or_create_identity({home!r}).id, flush=True)
"""


def test_peers_starting_together_with_one_home_end_with_one_identity(tmp_path):
    home = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", RACE.format(root=str(ROOT),
                                                                 home=str(home))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    for p in procs:
        assert p.stdout.readline() == "ready\n"
    for p in procs:                           # all waiting: open the gate at once
        p.stdin.write("go\n")
    for p in procs:
        p.stdin.flush()
    outputs = [p.communicate(timeout=30)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    ids = {out[-1] for out in outputs}
    assert len(ids) == 1
    assert ids == {load_or_create_identity(home).id}
    verdicts = [v for out in outputs for v in out[:-1]]
    assert verdicts.count("won") == 1
    assert verdicts.count("lost") >= 1        # the race really happened
    assert sorted(os.listdir(home)) == [IDENTITY_DIR_NAME]


def test_without_openssl_the_reason_is_given(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(IdentityUnavailable) as info:
        load_or_create_identity(tmp_path / "home", environ={"PATH": str(empty)})
    assert info.value.problem is IdentityProblem.OPENSSL_MISSING
    assert not (tmp_path / "home").exists()


def test_an_existing_identity_needs_no_openssl(tmp_path):
    made = load_or_create_identity(tmp_path / "home")
    assert load_or_create_identity(tmp_path / "home", environ={"PATH": ""}) == made


def test_an_openssl_that_fails_is_reported_with_its_words(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "openssl").write_text("#!/bin/sh\necho 'unknown curve prime256v1' >&2\nexit 1\n")
    (fake / "openssl").chmod(0o755)
    with pytest.raises(IdentityUnavailable) as info:
        load_or_create_identity(tmp_path / "home", environ={"PATH": str(fake)})
    assert info.value.problem is IdentityProblem.OPENSSL_FAILED
    assert "unknown curve prime256v1" in info.value.detail
    assert os.listdir(tmp_path / "home") == []            # the scratch folder is gone


def test_a_home_that_cannot_be_written_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(IdentityUnavailable) as info:
        load_or_create_identity(blocker / "chat-peer")
    assert info.value.problem is IdentityProblem.HOME_UNWRITABLE
    assert str(blocker) in info.value.detail
    if os.geteuid() != 0:                     # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(IdentityUnavailable) as info:
            load_or_create_identity(locked)
        assert info.value.problem is IdentityProblem.HOME_UNWRITABLE


def test_a_damaged_identity_is_reported_not_replaced(tmp_path):
    made = load_or_create_identity(tmp_path / "home")
    made.cert_path.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    with pytest.raises(IdentityUnavailable) as info:
        load_or_create_identity(tmp_path / "home")
    assert info.value.problem is IdentityProblem.DAMAGED
    assert made.key_path.exists()


def test_default_home_follows_xdg():
    assert default_home({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path("/x/cfg/chat-peer")
    assert default_home({"HOME": "/h"}) == Path("/h/.config/chat-peer")
    assert default_home({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path("/h/.config/chat-peer")
    assert default_home({"XDG_CONFIG_HOME": "", "HOME": "/h"}) == Path("/h/.config/chat-peer")


# -- IDs ----------------------------------------------------------------------------------

def test_ids_are_written_the_way_syncthing_writes_device_ids():
    assert format_id(SYNCTHING_FP) == SYNCTHING_ID
    assert short_id(SYNCTHING_FP) == "P56IOI7"
    assert parse_id(SYNCTHING_ID) == SYNCTHING_FP
    for typed in (SYNCTHING_ID.lower(), SYNCTHING_ID.replace("-", " "),
                  SYNCTHING_ID.replace("-", ""), "P561017MZJNU2YIQGDREYDM2MGTIMGL3BXNPQ6W5BMT88"
                  "Z4TJXZWICQ2", f"  {SYNCTHING_ID}\n"):
        assert parse_id(typed) == SYNCTHING_FP


def test_every_single_character_typo_is_caught():
    plain = SYNCTHING_ID.replace("-", "")
    for i, c in enumerate(plain):
        for other in ("A", "Q", "7"):
            if other != c:
                with pytest.raises(InvalidId):
                    parse_id(plain[:i] + other + plain[i + 1:])
    for bad in ("", "P56IOI7", SYNCTHING_ID + "A", SYNCTHING_ID.replace("P", "!")):
        with pytest.raises(InvalidId):
            parse_id(bad)


def test_check_character_matches_syncthing_for_known_groups():
    groups = SYNCTHING_ID.replace("-", "")
    for i in range(0, 56, 14):
        assert check_char(groups[i:i + 13]) == groups[i + 13]


def test_ids_round_trip_for_many_fingerprints():
    for n in range(200):
        fp = fingerprint(n.to_bytes(4, "big"))
        text = format_id(fp)
        assert len(text) == 63 and text.count("-") == 7
        assert parse_id(text) == fp


# -- trust store --------------------------------------------------------------------------

def test_trust_store_round_trip_lookups_and_untrust(tmp_path, people):
    path = tmp_path / "trusted"
    store = TrustStore(path)
    assert store.all() == [] and store.skipped == []
    a = store.trust(people["alice"].fingerprint, "alice", ("192.168.1.5", 9090))
    b = store.trust(people["bob"].fingerprint, "Bøb.李-2_x")
    assert mode(path) == 0o600
    again = TrustStore(path)
    assert again.all() == [a, b]
    assert again.lookup_by_id(people["bob"].fingerprint) == b
    assert again.lookup_by_name("ALICE") == a                # names are unique by case
    assert again.lookup_by_address(("192.168.1.5", 9090)) == a
    assert again.lookup_by_address(("192.168.1.5", 9091)) is None
    with pytest.raises(TrustError) as info:
        again.trust(people["eve"].fingerprint, "Alice")
    assert info.value.problem is TrustProblem.NAME_TAKEN
    renamed = again.trust(people["alice"].fingerprint, "alicia")   # same ID: a new name
    assert renamed.address == ("192.168.1.5", 9090)
    again.remember_address(people["alice"].fingerprint, ("10.0.0.7", 4000))
    assert TrustStore(path).lookup_by_name("alicia").address == ("10.0.0.7", 4000)
    assert again.untrust("alicia").fingerprint == people["alice"].fingerprint
    with pytest.raises(TrustError) as info:
        again.untrust("alicia")
    assert info.value.problem is TrustProblem.UNKNOWN_NAME
    assert [p.name for p in TrustStore(path).all()] == ["Bøb.李-2_x"]


def test_trust_store_writes_atomically_and_sees_other_writers(tmp_path, people):
    path = tmp_path / "trusted"
    one, two = TrustStore(path), TrustStore(path)
    one.trust(people["alice"].fingerprint, "alice")
    inode = os.stat(path).st_ino
    two.trust(people["bob"].fingerprint, "bob")             # re-reads first: alice stays
    assert os.stat(path).st_ino != inode                    # replaced, not rewritten in place
    assert [p.name for p in TrustStore(path).all()] == ["alice", "bob"]
    assert sorted(os.listdir(tmp_path)) == ["trusted"]       # no temporary file left


def test_corrupted_lines_are_skipped_reported_and_kept(tmp_path, people):
    path = tmp_path / "trusted"
    good = f"{people['alice'].id} alice 127.0.0.1:9000"
    typo = people["bob"].id[:-1] + ("A" if people["bob"].id[-1] != "A" else "B")
    path.write_text("\n".join([
        "# comment", "", good, f"{typo} bob", "just-one-field",
        f"{people['eve'].id} eve 300.1.1.1:9", f"{people['eve'].id} bad/name",
        f"{people['eve'].id} ALICE", "\x00\xff garbage",
    ]) + "\n")
    store = TrustStore(path)
    assert [p.name for p in store.all()] == ["alice"]
    assert [(s.number, s.problem) for s in store.skipped] == [
        (4, TrustProblem.BAD_ID), (5, TrustProblem.MALFORMED), (6, TrustProblem.BAD_ADDRESS),
        (7, TrustProblem.BAD_NAME), (8, TrustProblem.DUPLICATE), (9, TrustProblem.BAD_ID)]
    store.trust(people["eve"].fingerprint, "eve")
    text = path.read_text()
    assert f"{typo} bob" in text and "just-one-field" in text   # the user's lines survive
    assert [p.name for p in TrustStore(path).all()] == ["alice", "eve"]


@pytest.mark.parametrize("name", ["alice", "Zoë", "李小龙", "हिन्दी", "a.b-c_d", "x" * 32,
                                  "Ελένη", "9"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 33, "a b", "a:b", "a\u202eb", "smile\U0001F600",
                                  "\u0301a", "tab\t", "a/b", "a\nb"])
def test_bad_names(name):
    with pytest.raises(TrustError) as info:
        check_name(name)
    assert info.value.problem is TrustProblem.BAD_NAME


def test_names_are_normalised_to_nfc():
    assert check_name("Zoe\u0308") == "Zo\u00eb"


def test_addresses():
    assert parse_address("192.168.1.5:9090") == ("192.168.1.5", 9090)
    for bad in ("192.168.1.5", "192.168.1.5:0", "192.168.1.5:65536", "host:80", ":80",
                "1.2.3.4:x"):
        with pytest.raises(TrustError):
            parse_address(bad)


# -- per-peer TLS contexts ------------------------------------------------------------------

def handshake(client_ctx, server_ctx):
    """Drive both ends in memory; return (client error, server error)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    errors = {"client": None, "server": None}
    done = set()
    for _ in range(6):
        for name, end in (("client", client), ("server", server)):
            if name in done or errors[name]:
                continue
            try:
                end.do_handshake()
                done.add(name)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                errors[name] = exc
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    if not errors["client"]:
        try:
            client.read(1)                   # TLS 1.3: the server's verdict comes after
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            errors["client"] = exc
    if not errors["client"] and not errors["server"]:
        assert peer_matches(client.getpeercert(True), fingerprint(server_ctx.test_der))
        assert peer_matches(server.getpeercert(True), fingerprint(client_ctx.test_der))
    return errors["client"], errors["server"]


def ctx(people, me, peer, server_side):
    made = peer_context(people[me], people[peer].cert_der, server_side)
    made.test_der = people[me].cert_der
    return made


def test_a_context_accepts_the_announced_certificate_and_refuses_another(people):
    assert handshake(ctx(people, "alice", "bob", False),
                     ctx(people, "bob", "alice", True)) == (None, None)
    # eve answers where bob was announced: the client refuses her
    c_err, _ = handshake(ctx(people, "alice", "bob", False), ctx(people, "eve", "alice", True))
    assert isinstance(c_err, ssl.SSLCertVerificationError)
    # eve connects to bob, who expected alice: the server refuses her
    c_err, s_err = handshake(ctx(people, "eve", "bob", False), ctx(people, "bob", "alice", True))
    assert isinstance(s_err, ssl.SSLCertVerificationError) and isinstance(c_err, ssl.SSLError)


def test_our_certificates_pass_a_strict_verifier_too(people):
    # Python 3.13's default contexts verify with X509_STRICT; ours must pass it.
    client, server = ctx(people, "alice", "bob", False), ctx(people, "bob", "alice", True)
    for made in (client, server):
        made.verify_flags |= ssl.VERIFY_X509_STRICT
    assert handshake(client, server) == (None, None)


def test_contexts_are_tls13_and_cached_per_peer_and_side(people):
    made = peer_context(people["alice"], people["bob"].cert_der, True)
    assert made.minimum_version is ssl.TLSVersion.TLSv1_3
    assert made.verify_mode is ssl.CERT_REQUIRED and not made.check_hostname
    cache = PeerContexts(people["alice"], size=2)
    first = cache.get(people["bob"].cert_der, False)
    assert cache.get(people["bob"].cert_der, False) is first
    assert cache.get(people["bob"].cert_der, True) is not first
    cache.get(people["eve"].cert_der, False)               # bob's client context goes
    assert len(cache) == 2 and cache.get(people["bob"].cert_der, False) is not first


def test_unusable_announced_certificates_and_matching():
    with pytest.raises(UnusableCertificate):
        certificate_from_pem("hello")
    assert not peer_matches(None, b"\0" * 32)
    assert not peer_matches(b"der", fingerprint(b"other"))
    assert peer_matches(b"der", fingerprint(b"der"))


def test_a_garbage_announced_certificate_is_unusable(people):
    with pytest.raises(UnusableCertificate):
        peer_context(people["alice"], b"\x30\x03garbage", False)


def test_a_trust_file_under_a_regular_file_is_none_and_an_unreadable_one_is_said(tmp_path):
    (tmp_path / "file").write_text("x")
    missing = TrustStore(tmp_path / "file" / "home" / "trusted")
    assert missing.all() == [] and missing.unreadable is None        # no home: nobody yet
    (tmp_path / "trusted").mkdir()                                     # not a file
    unreadable = TrustStore(tmp_path / "trusted")
    assert unreadable.all() == [] and unreadable.unreadable
