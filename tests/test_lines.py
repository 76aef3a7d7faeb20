"""LineCodec: the same lines whatever way the bytes are cut."""

from __future__ import annotations

import random

import pytest

from reactor.lines import LineCodec, LineTooLong

STREAM = ("héllo\r\nworld\n\na\rb\n日本語 é\n".encode() + b"x" * 40 + b"\nafter\nhi\xff\xfe\n"
          + b"y" * 20 + b"tail\nend")


def feed_all(chunks, limit=16, errors="replace"):
    codec = LineCodec(max_line_bytes=limit, errors=errors)
    out = []
    for chunk in chunks:
        out += codec.feed(chunk)
    # How much of an over-long line was seen when it was reported depends on
    # the cut: compare the kind of event, not that count.
    return [x if isinstance(x, str) else "TOO LONG" for x in out], codec


def test_whole_input():
    lines, codec = feed_all([STREAM])
    assert lines == ["héllo", "world", "", "a\rb", "日本語 é", "TOO LONG", "after",
                     "hi\ufffd\ufffd", "TOO LONG"]
    assert codec.pending_bytes == 3
    assert codec.maybe_take_partial() == "end"
    assert codec.maybe_take_partial() is None


def test_every_split_point_and_one_byte_at_a_time():
    whole, _ = feed_all([STREAM])
    for i in range(len(STREAM) + 1):
        assert feed_all([STREAM[:i], STREAM[i:]])[0] == whole, i
    assert feed_all([bytes([b]) for b in STREAM])[0] == whole


def test_random_cuts():
    whole, _ = feed_all([STREAM])
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 10)))
        chunks = [STREAM[a:b] for a, b in zip([0] + cuts, cuts + [len(STREAM)])]
        assert feed_all(chunks)[0] == whole


def test_multibyte_character_split_across_reads():
    codec = LineCodec()
    assert codec.feed(b"h\xc3") == []
    assert codec.feed(b"\xa9llo\n") == ["héllo"]


def test_many_lines_in_one_read_keep_their_order():
    data = b"".join(b"line %d\n" % i for i in range(1000))
    assert LineCodec().feed(data) == [f"line {i}" for i in range(1000)]


def test_crlf_and_lone_cr():
    codec = LineCodec()
    assert codec.feed(b"hi\r\nalice\rbob\n\r\n") == ["hi", "alice\rbob", ""]


def test_invalid_utf8_replace_and_surrogateescape():
    bad = b"hi\xff\nx\xe2\x82\n\xc0\xaf\n\xed\xa0\x80\n"
    assert LineCodec().feed(bad) == ["hi\ufffd", "x\ufffd", "\ufffd\ufffd", "\ufffd\ufffd\ufffd"]
    assert LineCodec(errors="surrogateescape").feed(b"hi\xff\n") == ["hi\udcff"]


def test_line_at_the_limit_is_kept_one_over_is_reported():
    codec = LineCodec(max_line_bytes=10)
    assert codec.feed(b"0123456789\n") == ["0123456789"]
    out = codec.feed(b"0123456789X\nok\n")
    assert out == [LineTooLong(11), "ok"]
    assert codec.overflows == 1


def test_endless_line_is_bounded_and_reported_once():
    codec = LineCodec(max_line_bytes=4096)
    events = []
    for _ in range(1000):                     # 64 MB, never a newline
        events += codec.feed(b"A" * 65536)
        assert codec.pending_bytes <= 4096
    assert events == [LineTooLong(65536)]
    assert codec.feed(b"AAA\nnext\n") == ["next"]
    assert codec.overflows == 1


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_endless_line_in_small_chunks_is_still_one_event(chunk):
    codec = LineCodec(max_line_bytes=100)
    events = []
    data = b"B" * 1000 + b"\nafter\n"
    for i in range(0, len(data), chunk):
        events += codec.feed(data[i:i + chunk])
    assert [e if isinstance(e, str) else "TOO LONG" for e in events] == ["TOO LONG", "after"]
