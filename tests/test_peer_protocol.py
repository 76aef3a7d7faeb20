"""The peer protocol, in-process on a fake clock: every state, every transition, every split.

Like the codec's tests (h11's pattern): each input is fed whole, then cut at
every split point, then one byte at a time, and must give the same events.
"""

from __future__ import annotations

import pytest

from network import wire
from network.outcomes import Direction, Refusal
from network.peer_protocol import PeerProtocol, Timing
from network.protocol_events import (BadHello, BecamePlain, CloseNow, Goodbye, HandshakeTimedOut,
                                     HelloReceived, LineDiscarded, Messages, NameChanged,
                                     PeerRefused,
                                     PeerSilent, StartTLS, State)

OURS = wire.Hello(9090, "0123456789abcdef", 15000)
THEIRS = wire.Hello(8080, "fedcba9876543210", 2000)
HELLO = (wire.hello_line(THEIRS) + "\n").encode()
OUR_HELLO = (wire.hello_line(OURS) + "\n").encode()
T = Timing()


def incoming(now=0.0, **kw):
    return PeerProtocol(Direction.INCOMING, OURS, now, **kw)


def outgoing(now=0.0, **kw):
    return PeerProtocol(Direction.OUTGOING, OURS, now, **kw)


def merged(events):
    """Consecutive Messages joined: how text is batched is not behaviour."""
    out = []
    for event in events:
        if type(event) is Messages and out and type(out[-1]) is Messages:
            out[-1] = Messages(out[-1].texts + event.texts)
        else:
            out.append(event)
    return out


def feed_split(make, data: bytes, answer=None):
    """Feed ``data`` whole, at every split point and byte by byte; return the one result.

    ``answer(proto, event)`` is called on each HelloReceived (the node's part).
    """
    def run(chunks):
        proto = make()
        events = []
        for chunk in chunks:
            for event in proto.receive_data(chunk, 0.5):
                events.append(event)
                if type(event) is HelloReceived and answer is not None:
                    events.extend(answer(proto, event))
        return proto, merged(events)

    whole_proto, whole = run([data])
    for cut in range(1, len(data)):
        assert run([data[:cut], data[cut:]])[1] == whole, cut
    assert run([data[i:i + 1] for i in range(len(data))])[1] == whole
    return whole_proto, whole


def accept(proto, event):
    return proto.accept_peer(0.5)


# -- the handshake, both ways ------------------------------------------------------------

KNOCK = (wire.knock_line() + "\n").encode()


def test_an_outgoing_connection_knocks_with_one_short_line_and_answers_the_hello():
    proto = outgoing()
    assert proto.data_to_send() == KNOCK and len(KNOCK) <= 40   # all a plain listener sees
    assert proto.state is State.HANDSHAKE
    proto, events = feed_split(outgoing, HELLO + b"hi\n", accept)
    assert events == [HelloReceived(THEIRS), Messages(["hi"])]
    assert proto.state is State.PEER and proto.theirs == THEIRS
    assert proto.data_to_send() == KNOCK + OUR_HELLO     # once, before the node decided


@pytest.mark.parametrize("cert", [None, b"ours"])
def test_a_knock_is_answered_at_once_and_then_only_a_hello_may_follow(cert):
    proto, events = feed_split(lambda: incoming(cert_der=cert), KNOCK)
    assert events == [] and proto.state is State.HANDSHAKE
    opening = wire.tls_hello_line(cert) if cert else wire.knock_line()
    assert proto.data_to_send() == (opening + "\n").encode()
    # it has shown it is chat.py: silence never makes it plain, text is a broken handshake
    assert proto.next_deadline() == T.handshake_timeout_s
    assert proto.tick(T.hello_wait_s + 0.1) == []
    assert proto.tick(T.handshake_timeout_s) == [HandshakeTimedOut()]
    proto = incoming(cert_der=cert)
    proto.receive_data(KNOCK, 0.1)
    events = proto.receive_data(b"just text\n", 0.2)
    assert [type(e) for e in events] == [BadHello] and proto.state is State.FINISHING
    proto = incoming(cert_der=cert)
    proto.receive_data(KNOCK, 0.1)
    proto.data_to_send()
    assert proto.receive_data(HELLO, 0.2) == [HelloReceived(THEIRS)]
    assert proto.data_to_send() == b""             # its full hello waits for the node
    proto.accept_peer(0.3)
    assert proto.data_to_send() == OUR_HELLO


def test_a_knock_is_for_the_first_line_only():
    out = outgoing()
    out.data_to_send()
    assert out.receive_data(KNOCK, 0.1) == []       # it knocks back: no identity, go on
    assert out.data_to_send() == OUR_HELLO
    assert out.next_deadline() == T.handshake_timeout_s   # now only its hello may come
    assert [type(e) for e in out.receive_data(KNOCK, 0.2)] == [BadHello]
    inc = incoming()
    inc.receive_data(KNOCK, 0.1)
    assert [type(e) for e in inc.receive_data(KNOCK, 0.2)] == [BadHello]


def test_an_incoming_hello_is_answered_once_accepted_and_lines_behind_it_wait():
    proto = incoming()
    assert proto.data_to_send() == b""
    events = proto.receive_data(HELLO + b"first\nsecond\n", 0.2)
    assert events == [HelloReceived(THEIRS)]
    assert proto.deciding                          # the adapter stops reading meanwhile
    assert proto.data_to_send() == b""             # nothing until the node decides
    assert proto.accept_peer(0.3) == [Messages(["first", "second"])]
    assert proto.data_to_send() == OUR_HELLO
    assert not proto.deciding and proto.state is State.PEER


def test_answer_now_decide_later():
    proto = incoming()
    proto.receive_data(HELLO + b"early\n", 0.1)
    proto.answer_hello(0.1)
    assert proto.data_to_send() == OUR_HELLO
    assert proto.next_deadline() is None           # the node decides; no timer of ours
    assert proto.accept_peer(0.4) == [Messages(["early"])]
    assert proto.data_to_send() == b""             # answered once only


def test_refusals_follow_our_hello_so_the_other_side_knows_who_refused():
    proto = incoming()
    proto.receive_data(HELLO + b"discarded\n", 0.1)
    assert proto.refuse(Refusal.DUPLICATE, 0.2) == []
    assert proto.data_to_send() == OUR_HELLO + b"\x01REFUSE duplicate\n"
    assert proto.state is State.FINISHING
    assert proto.receive_data(b"more text\n", 0.3) == []     # a refused peer is not shown


def test_refused_at_the_door():
    proto = PeerProtocol.refusing(Refusal.FULL, 100, OURS, 0.0)
    assert proto.data_to_send() == b"\x01REFUSE full 100\n"
    assert proto.state is State.FINISHING
    assert proto.next_deadline() == T.linger_s
    assert proto.tick(1.0) == []
    assert proto.tick(T.linger_s) == [CloseNow()]


def test_a_refusal_answer_is_reported_with_its_reason():
    _, events = feed_split(outgoing, b"\x01REFUSE full 100\n")
    assert events == [PeerRefused(wire.PeerRefusal(Refusal.FULL, 100, "full 100"))]
    proto, events = feed_split(outgoing, HELLO + b"\x01REFUSE duplicate\n", accept)
    assert events == [HelloReceived(THEIRS),
                      PeerRefused(wire.PeerRefusal(Refusal.DUPLICATE, 0, "duplicate"))]
    assert proto.state is State.FINISHING


# -- what is not a hello --------------------------------------------------------------------

def test_a_plain_first_line_makes_a_plain_client_and_is_a_message():
    proto, events = feed_split(incoming, b"hello there\n\x01HELLO chat/2 later\n")
    assert events == [BecamePlain(), Messages(["hello there", "\x01HELLO chat/2 later"])]
    assert proto.state is State.PLAIN and not proto.speaks_protocol


def test_silence_makes_a_plain_client_after_the_hello_wait():
    proto = incoming(now=10.0)
    assert proto.next_deadline() == 10.0 + T.hello_wait_s
    assert proto.tick(10.5) == []
    assert proto.tick(11.0) == [BecamePlain()]
    assert proto.state is State.PLAIN
    assert proto.data_to_send() == b""           # a plain client never gets control lines
    assert proto.next_deadline() is None


def test_a_plain_clients_unterminated_text_is_shown_after_a_quiet_moment():
    proto = incoming()
    proto.tick(1.0)
    assert proto.receive_data(b"partial", 2.0) == []
    assert proto.next_deadline() == 2.0 + T.raw_flush_s
    assert proto.receive_data(b" text", 2.3) == []           # still typing
    assert proto.tick(2.5) == []
    assert proto.tick(2.8) == [Messages(["partial text"])]
    assert proto.next_deadline() is None


def test_a_client_that_speaks_and_hangs_up_at_once_is_shown():
    proto = incoming()
    assert proto.receive_data(b"hi", 0.01) == []
    assert proto.receive_eof(0.02) == [BecamePlain(), Messages(["hi"])]
    proto = incoming()
    assert proto.receive_data(b"one\ntwo", 0.01) == [BecamePlain(), Messages(["one"])]
    assert proto.receive_eof(0.02) == [Messages(["two"])]
    proto = incoming()
    assert proto.receive_eof(0.02) == []                     # said nothing: nothing to show


def test_a_servers_banner_without_newline_is_shown_before_the_close():
    proto = outgoing()
    assert proto.receive_data(b"220 welcome", 0.1) == []
    assert proto.receive_eof(0.2) == [BecamePlain(), Messages(["220 welcome"])]


def test_an_endless_first_line_is_a_plain_client_with_a_notice():
    proto = incoming(max_line_bytes=64)
    events = proto.receive_data(b"x" * 100, 0.1)
    assert events == [BecamePlain(), LineDiscarded(100, 64)]
    assert proto.receive_data(b"yyy\nok\n", 0.2) == [Messages(["ok"])]


# -- slow links: timing never decides what a chat.py peer is --------------------------------

def test_a_late_hello_upgrades_a_plain_connection():
    proto = incoming()
    assert proto.tick(1.0) == [BecamePlain()]
    events = proto.receive_data(HELLO + b"after\n", 1.3)
    assert events == [HelloReceived(THEIRS)]
    assert proto.accept_peer(1.3) == [Messages(["after"])]
    assert proto.data_to_send() == OUR_HELLO
    assert proto.state is State.PEER


def test_a_connection_we_dialled_waits_longer_for_an_answer_than_one_that_came_to_us():
    # Our hello must cross the link and be answered: a slow link is not a plain listener.
    proto = outgoing()
    proto.data_to_send()
    assert proto.tick(T.hello_wait_s) == []
    assert proto.next_deadline() == T.answer_wait_s
    assert proto.tick(T.answer_wait_s) == [BecamePlain()]


def test_our_hello_answered_late_upgrades_too():
    proto = outgoing()
    proto.data_to_send()
    assert proto.tick(T.answer_wait_s) == [BecamePlain()]
    _, events = feed_split(lambda: _plain_outgoing(), HELLO + b"\x01PING\nhi\n", accept)
    assert events == [HelloReceived(THEIRS), Messages(["hi"])]


def _plain_outgoing():
    proto = outgoing()
    proto.data_to_send()
    proto.tick(1.0)
    return proto


def test_a_hello_after_other_text_is_only_text():
    proto = incoming()
    proto.tick(1.0)
    assert proto.receive_data(b"hi\n" + HELLO, 1.2) == [Messages(["hi", HELLO[:-1].decode()])]
    assert proto.state is State.PLAIN


def test_a_hello_begun_gets_the_handshake_timeout_not_the_hello_wait():
    proto = incoming()
    assert proto.receive_data(HELLO[:10], 0.5) == []
    assert proto.next_deadline() == T.handshake_timeout_s
    assert proto.tick(1.0) == []                  # not plain: a hello is on its way
    assert proto.receive_data(HELLO[10:20], 3.0) == []
    assert proto.tick(T.handshake_timeout_s) == [HandshakeTimedOut()]
    assert proto.state is State.FINISHING


# -- bad hellos -----------------------------------------------------------------------------

@pytest.mark.parametrize("line,refusal,reply", [
    (b"\x01HELLO chat/2 port=\xd9\xa8\xd9\xa0 node=fedcba9876543210 heartbeat=2000\n",
     Refusal.MALFORMED, b"\x01REFUSE malformed\n"),
    (b"\x01HELLO chat/1 port=8080 node=fedcba98\n", Refusal.VERSION,
     b"\x01REFUSE version chat/2\n"),
    (b"\x01HELLO chat/2 port=8080 port=8081 node=fedcba9876543210 heartbeat=2000\n",
     Refusal.MALFORMED, b"\x01REFUSE malformed\n"),
])
def test_a_malformed_hello_is_refused_with_one_event(line, refusal, reply):
    proto, events = feed_split(incoming, line + b"after\n")
    assert [type(e) for e in events] == [BadHello]
    assert events[0].refusal is refusal
    assert proto.data_to_send() == reply
    assert proto.state is State.FINISHING


# -- open: messages, control lines, heartbeats --------------------------------------------

def peer(now=0.0, theirs=THEIRS, direction=Direction.INCOMING):
    proto = PeerProtocol(direction, OURS, now)
    proto.receive_data((wire.hello_line(theirs) + "\n").encode(), now)
    proto.accept_peer(now)
    proto.data_to_send()
    return proto


def test_control_lines_are_never_messages_between_peers():
    _, events = feed_split(lambda: peer(), b"a\n\x01PING\n\x01NEWVERB x\nb\n\n\x01BYE\n")
    assert events == [Messages(["a", "b"]), Goodbye()]


def test_heartbeats_are_agreed_we_speak_by_ours_and_judge_by_theirs():
    proto = peer(now=100.0)                        # ours 15 s, theirs 2 s
    assert proto.next_deadline() == pytest.approx(100.0 + 3 * 2.0)
    assert proto.tick(105.9) == []
    assert proto.tick(106.0) == [PeerSilent(pytest.approx(6.0))]
    slow = peer(now=0.0, theirs=wire.Hello(1, "1" * 16, 60000))
    assert slow.tick(15.0) == []
    assert slow.data_to_send() == b"\x01PING\n"    # we speak every 15 s (ours)
    assert slow.tick(29.9) == [] and slow.data_to_send() == b""
    assert slow.tick(179.0) == []                  # judged by its 60 s: 3 periods = 180 s
    assert slow.tick(180.0) == [PeerSilent(pytest.approx(180.0))]


def test_anything_received_proves_life_and_anything_sent_postpones_the_ping():
    proto = peer(now=0.0, theirs=wire.Hello(1, "1" * 16, 10000))     # judged after 30 s
    proto.receive_data(b"\x01PING\n", 25.0)
    assert proto.tick(54.9) == []
    assert proto.data_to_send() == b"\x01PING\n"        # 15 s of our silence: a ping
    assert proto.send_message("hello", 60.0) == b"hello\n"
    assert proto.next_deadline() == pytest.approx(55.0)   # its silence limit comes first
    assert proto.tick(55.0) == [PeerSilent(pytest.approx(30.0))]


def test_while_we_do_not_read_silence_proves_nothing():
    proto = peer(now=0.0)
    proto.reading_paused(True, 1.0)
    assert proto.tick(50.0) == []                  # theirs is 2 s: would be dead long ago
    assert proto.data_to_send() == b"\x01PING\n"   # and we keep speaking
    proto.reading_paused(False, 50.0)
    assert proto.tick(55.9) == []
    assert proto.tick(56.0) == [PeerSilent(pytest.approx(6.0))]


def test_bye_and_nothing_after_finishing():
    proto = peer()
    proto.send_bye(1.0)
    assert proto.data_to_send() == b"\x01BYE\n"
    proto.finish(2.0)                              # a duplicate giving way says so
    assert proto.data_to_send() == b"\x01BYE duplicate\n"
    assert proto.send_message("late", 2.0) == b""
    proto.send_bye(2.0)
    assert proto.data_to_send() == b""


def test_a_duplicate_giving_way_is_not_a_goodbye():
    _, events = feed_split(lambda: peer(), b"\x01BYE duplicate\n\x01BYE\n")
    assert events == [Goodbye(duplicate=True), Goodbye()]


def test_a_retired_duplicate_still_shows_what_it_brings():
    proto = peer()
    assert proto.finish(1.0) == []
    assert proto.receive_data(b"last words\n\x01BYE\n", 1.1) == [Messages(["last words"])]
    assert proto.tick(1.0 + T.linger_s) == [CloseNow()]


def test_a_plain_client_gets_no_heartbeats_and_is_never_judged():
    proto = incoming()
    proto.tick(1.0)
    assert proto.tick(10_000.0) == []
    assert proto.data_to_send() == b""
    assert proto.send_message("to nc", 10_000.0) == b"to nc\n"


# -- identities: the certificate hello, TLS, the full hello inside -------------------------

CERT = b"\x30\x82 our certificate"
THEIR_CERT = b"\x30\x82 their certificate"
TLS_HELLO = (wire.tls_hello_line(THEIR_CERT) + "\n").encode()


def test_with_identities_on_both_sides_the_hellos_lead_to_tls():
    # The certificate leaves only after the other side has shown it speaks chat.py,
    # and the side that sent its certificate second is the TLS server.
    out = outgoing(cert_der=CERT)
    assert out.data_to_send() == KNOCK
    inc = incoming(cert_der=CERT)
    assert inc.receive_data(KNOCK, 0.1) == []
    assert inc.data_to_send() == (wire.tls_hello_line(CERT) + "\n").encode()
    assert out.receive_data(TLS_HELLO, 0.1) == [StartTLS(THEIR_CERT, server_side=True)]
    assert out.data_to_send() == (wire.tls_hello_line(CERT) + "\n").encode()
    assert out.state is State.SECURING and out.next_deadline() is None  # TLS times itself
    assert inc.receive_data(TLS_HELLO, 0.2) == [StartTLS(THEIR_CERT, server_side=False)]
    assert inc.data_to_send() == b"" and inc.state is State.SECURING


def test_a_chat_py_from_before_the_knock_opens_with_its_certificate_and_is_the_tls_client():
    inc = incoming(cert_der=CERT)
    assert inc.receive_data(TLS_HELLO, 0.1) == [StartTLS(THEIR_CERT, server_side=True)]
    assert inc.data_to_send() == (wire.tls_hello_line(CERT) + "\n").encode()


def test_an_identity_meets_none_each_way_and_they_go_on_in_plain_text():
    out = outgoing(cert_der=CERT)                   # it has none: it knocks back
    out.data_to_send()
    assert out.receive_data(KNOCK, 0.1) == []
    assert out.data_to_send() == OUR_HELLO
    assert out.receive_data(HELLO, 0.2) == [HelloReceived(THEIRS)]
    out = outgoing()                                # we have none: it opened with a cert
    out.data_to_send()
    assert out.receive_data(TLS_HELLO, 0.1) == []
    assert out.data_to_send() == OUR_HELLO
    assert out.receive_data(HELLO, 0.2) == [HelloReceived(THEIRS)]
    assert out.data_to_send() == b""


def test_inside_tls_the_connecting_side_speaks_first_and_the_other_answers_once_agreed():
    out, inc = outgoing(cert_der=CERT), incoming(cert_der=CERT)
    out.receive_data(TLS_HELLO, 0.1)
    inc.receive_data(TLS_HELLO, 0.1)
    out.data_to_send(), inc.data_to_send()
    out.secured_now(0.2)
    inc.secured_now(0.2)
    assert out.secured and out.state is State.HANDSHAKE
    assert out.data_to_send() == OUR_HELLO and inc.data_to_send() == b""
    assert inc.next_deadline() == 0.2 + T.handshake_timeout_s    # no plain fallback now
    assert inc.receive_data(HELLO, 0.3) == [HelloReceived(THEIRS)]
    assert inc.data_to_send() == b""                            # deciding
    inc.accept_peer(0.3)
    assert inc.data_to_send() == OUR_HELLO


def test_a_refusal_about_who_it_is_tells_it_nothing_of_us():
    inc = incoming(cert_der=CERT)
    inc.receive_data(TLS_HELLO, 0.1)
    inc.data_to_send()
    inc.secured_now(0.2)
    inc.receive_data(HELLO, 0.3)
    inc.refuse(Refusal.UNTRUSTED, 0.3, introduce=False)
    assert inc.data_to_send() == b"\x01REFUSE untrusted\n"


@pytest.mark.parametrize("first", [b"just text\n", TLS_HELLO])
def test_inside_tls_only_a_full_hello_may_come_first(first):
    out = outgoing(cert_der=CERT)
    out.receive_data(TLS_HELLO, 0.1)
    out.data_to_send()
    out.secured_now(0.2)
    out.data_to_send()
    events = out.receive_data(first, 0.3)
    assert [type(e) for e in events] == [BadHello] and events[0].refusal is Refusal.MALFORMED
    assert out.state is State.FINISHING


def test_without_an_identity_a_certificate_is_answered_with_the_full_hello_in_plain_text():
    inc = incoming()                                    # no identity of ours
    assert inc.receive_data(TLS_HELLO, 0.1) == []
    assert inc.data_to_send() == OUR_HELLO
    assert inc.next_deadline() == T.handshake_timeout_s  # its full hello must follow
    assert inc.receive_data(HELLO, 0.2) == [HelloReceived(THEIRS)]
    inc.accept_peer(0.2)
    assert inc.data_to_send() == b"" and not inc.secured


def test_offering_tls_to_a_peer_without_an_identity_goes_on_in_plain_text():
    out = outgoing(cert_der=CERT)
    out.data_to_send()
    assert out.receive_data(HELLO, 0.1) == [HelloReceived(THEIRS)]
    assert out.data_to_send() == OUR_HELLO             # it needs our full hello too
    assert out.accept_peer(0.1) == [] and out.state is State.PEER and not out.secured


def test_inside_tls_an_endless_first_line_is_a_bad_hello_not_a_plain_client():
    out = PeerProtocol(Direction.OUTGOING, OURS, 0.0, max_line_bytes=64, cert_der=CERT)
    out.secured_now(0.2)                      # (the certificate hellos, then TLS: done)
    out.data_to_send()
    events = out.receive_data(b"y" * 100, 0.3)
    assert [type(e) for e in events] == [BadHello] and out.state is State.FINISHING
# -- names ------------------------------------------------------------------------------------

def test_a_rename_reaches_a_chat_peer_as_one_name_line():
    proto = peer()
    proto.send_name("alicia", 3.0)
    assert proto.data_to_send() == "\x01NAME alicia\n".encode()
    assert proto.last_sent == 3.0
    proto.send_name("alicia", 4.0)                  # no change: nothing to say
    assert proto.data_to_send() == b""


def test_a_plain_client_never_hears_of_names():
    proto = incoming()
    proto.tick(1.0)                                 # silent: plain
    proto.send_name("alicia", 2.0)
    assert proto.data_to_send() == b""


def test_a_name_set_before_our_hello_goes_in_it_and_after_it_follows_the_accept():
    proto = incoming()
    proto.send_name("early", 0.1)                   # our hello is not sent yet
    proto.receive_data(HELLO, 0.2)
    proto.accept_peer(0.3)
    assert proto.data_to_send() == (wire.hello_line(
        wire.Hello(OURS.port, OURS.node_id, OURS.heartbeat_ms, name="early")) + "\n").encode()
    out = outgoing()                                # our hello answers theirs: it has it
    out.send_name("late", 0.1)
    out.receive_data(HELLO, 0.2)
    out.accept_peer(0.3)
    assert out.data_to_send() == KNOCK + (wire.hello_line(
        wire.Hello(OURS.port, OURS.node_id, OURS.heartbeat_ms, name="late")) + "\n").encode()
    out = outgoing()                                # renamed while the node decides
    out.receive_data(HELLO, 0.2)
    out.send_name("late", 0.25)
    out.accept_peer(0.3)
    assert out.data_to_send() == KNOCK + OUR_HELLO + "\x01NAME late\n".encode()


@pytest.mark.parametrize("line,event", [
    ("\x01NAME alicia\n", NameChanged("alicia")),
    ("\x01NAME 日本.太郎\n", NameChanged("日本.太郎")),
    ("\x01NAME\n", NameChanged(None)),
    ("\x01NAME alice bob\n", NameChanged(None, "alice bob")),
    ("\x01NAME \x1b[2Jevil\n", NameChanged(None, "\x1b[2Jevil")),
    ("\x01NAME " + "n" * 33 + "\n", NameChanged(None, "n" * 33)),
])
def test_a_name_line_is_an_event_checked_like_our_own_names(line, event):
    _, events = feed_split(lambda: peer(), b"before\n" + line.encode() + b"after\n")
    assert events == [Messages(["before"]), event, Messages(["after"])]


def test_a_name_in_the_hello_and_a_bad_one_arrive_with_the_hello():
    named = wire.Hello(8080, "fedcba9876543210", 2000, name="bob")
    _, events = feed_split(incoming, (wire.hello_line(named) + "\n").encode(), accept)
    assert events == [HelloReceived(named)]
    data = HELLO[:-1] + " name=b\x1bb\n".encode()
    _, events = feed_split(incoming, data, accept)
    assert events[0].hello.name is None and events[0].hello.bad_name == "b\x1bb"


def test_a_name_line_from_a_plain_client_is_just_text():
    proto = incoming()
    proto.tick(1.0)
    assert proto.receive_data(b"x\n\x01NAME mallory\n", 1.5) == \
        [Messages(["x", "\x01NAME mallory"])]


def test_a_knock_after_the_silence_made_it_plain_is_still_answered():
    proto = incoming(cert_der=b"ours")
    assert proto.tick(T.hello_wait_s) == [BecamePlain()]      # a slow link
    assert proto.receive_data(KNOCK, T.hello_wait_s + 0.1) == []
    assert proto.state is State.HANDSHAKE                     # the upgrade follows
    assert proto.data_to_send() == (wire.tls_hello_line(b"ours") + "\n").encode()
    assert proto.receive_data(TLS_HELLO, 2.0) == [StartTLS(THEIR_CERT, server_side=False)]
