"""The line editor's state machine, fed key bytes directly (no terminal)."""

from __future__ import annotations

import pytest

from commands.terminal.lineedit import (Choices, ClearScreen, EndOfInput, Interrupt,
                                        LineEditor, LineEntered, text_width)
from commands.terminal.screen import Screen

LEFT, RIGHT, UP, DOWN = b"\x1b[D", b"\x1b[C", b"\x1b[A", b"\x1b[B"
HOME, END, DELETE = b"\x1b[H", b"\x1b[F", b"\x1b[3~"


def typed(editor, data):
    return editor.feed(data), editor.buffer, editor.cursor


def test_insert_move_and_delete():
    e = LineEditor()
    assert typed(e, b"helo") == ([], "helo", 4)
    assert typed(e, LEFT + b"l") == ([], "hello", 4)
    assert typed(e, HOME + DELETE) == ([], "ello", 0)
    assert typed(e, END + b"\x7f") == ([], "ell", 3)
    assert typed(e, b"\x01X\x05Y") == ([], "XellY", 5)       # Ctrl-A, Ctrl-E
    assert typed(e, b"\x02\x02\x0b") == ([], "Xel", 3)       # Ctrl-B twice, Ctrl-K
    assert typed(e, b"\x02\x15") == ([], "l", 0)             # Ctrl-U
    assert typed(e, b"\x06\x06\x06") == ([], "l", 1)         # Ctrl-F stops at the end
    assert typed(e, b"\r") == ([LineEntered("l")], "", 0)


def test_alternative_home_end_sequences_and_unknown_ones():
    e = LineEditor()
    e.feed(b"abc")
    for home, end in ((b"\x1bOH", b"\x1bOF"), (b"\x1b[1~", b"\x1b[4~"), (b"\x1b[7~", b"\x1b[8~")):
        e.feed(home)
        assert e.cursor == 0
        e.feed(end)
        assert e.cursor == 3
    e.feed(b"\x1b[15~\x1b[1;5C")   # F5, Ctrl-Right: ignored, nothing inserted
    assert e.buffer == "abc"


def test_ctrl_w_deletes_the_word_before_the_cursor():
    e = LineEditor()
    e.feed(b"send 1 hello world  ")
    e.feed(b"\x17")
    assert e.buffer == "send 1 hello "
    e.feed(b"\x17\x17")
    assert e.buffer == "send "


def test_split_utf8_and_split_escape_sequences():
    e = LineEditor()
    data = "日本 é".encode() + LEFT + b"X"
    for b in data:                       # one byte at a time
        e.feed(bytes([b]))
    assert e.buffer == "日本 Xé" and e.cursor == 4


def test_ctrl_c_and_ctrl_d():
    e = LineEditor()
    assert e.feed(b"abc\x03") == [] and e.buffer == ""        # clears a non-empty line
    assert e.feed(b"\x03") == [Interrupt()]
    assert e.feed(b"ab\x01\x04") == [] and e.buffer == "b"    # deletes under the cursor
    assert e.feed(b"\x04") == [] and e.buffer == ""
    assert e.feed(b"\x04") == [EndOfInput()]


def test_history_walks_and_keeps_the_draft():
    e = LineEditor()
    e.feed(b"one\rtwo\rtwo\r  \r")
    assert e.history == ["one", "two"]              # no repeats, no blank lines
    e.feed(b"draft")
    e.feed(UP)
    assert e.buffer == "two"
    e.feed(UP + UP)
    assert e.buffer == "one"
    e.feed(DOWN)
    assert e.buffer == "two"
    e.feed(DOWN)
    assert e.buffer == "draft"
    assert e.feed(b"\x10\r") == [LineEntered("two")]  # Ctrl-P


def test_tab_completion_of_names_and_a_second_tab_lists_them():
    words = {"": ["help", "myip", "myport", "send"], "send ": ["1", "12", "3"]}

    def complete(before):
        head, _, word = before.rpartition(" ")
        options = words["send " if head else ""]
        return [w for w in options if w.startswith(word)]

    e = LineEditor(complete)
    assert e.feed(b"se\t") == [] and e.buffer == "send "
    assert e.feed(b"1\t") == [] and e.buffer == "send 1"       # 1 or 12: nothing to add
    assert e.feed(b"\t") == [Choices(("1", "12"))]
    e.feed(b"\x15my\t")
    assert e.buffer == "my"
    assert e.feed(b"\t") == [Choices(("myip", "myport"))]
    e.feed(b"p\t")
    assert e.buffer == "myport "


def test_screen_scrolls_long_and_wide_lines_and_keeps_the_cursor_in_view():
    e = LineEditor()
    out = []
    screen = Screen(e, out.append, columns=lambda: 20)
    e.feed(("send 1 " + "日" * 30).encode())
    drawn = screen.render()
    visible = drawn.split("\r")[1][len("\x1b[K> "):]
    assert text_width(visible) <= 17
    assert visible.endswith("日")                           # the cursor end is shown
    column = int(drawn.rsplit("[", 1)[1][:-1])
    assert column <= 19
    e.feed(HOME)
    assert screen.render().split("\r")[1].startswith("\x1b[K> send 1 ")
    assert screen.render().endswith("\r\x1b[2C")


def test_screen_hides_the_line_around_output():
    e = LineEditor()
    out = []
    screen = Screen(e, out.append, columns=lambda: 80)
    e.feed(b"half")
    screen.refresh()
    screen.before_output()
    out.append("OUTPUT\n")
    screen.after_output()
    assert out == ["\r\x1b[K> half\r\x1b[6C", "\r\x1b[K", "OUTPUT\n", "\r\x1b[K> half\r\x1b[6C"]


# -- Alt keys, bracketed paste, Ctrl-L, Ctrl-C's hook ------------------------------------

def fed(data, whole=False, **kw):
    """(events, buffer, cursor) after feeding ``data`` one byte at a time (or at once)."""
    e = LineEditor(**kw)
    events = []
    if whole:
        events += e.feed(data)
    else:
        for b in data:
            events += e.feed(bytes([b]))
    return events, e.buffer, e.cursor


def every_way(data, **kw):
    """Whole, byte at a time, and split at every point: all must agree."""
    whole = fed(data, whole=True, **kw)
    assert fed(data, **kw) == whole
    for cut in range(1, len(data)):
        e = LineEditor(**kw)
        events = e.feed(data[:cut]) + e.feed(data[cut:])
        assert (events, e.buffer, e.cursor) == whole, cut
    return whole


def test_alt_keys_move_and_delete_by_words_readline_style():
    line = b"send 1 hello-world now"
    assert every_way(line + b"\x1bb") == ([], "send 1 hello-world now", 19)
    assert every_way(line + b"\x1bb\x1bb") == ([], "send 1 hello-world now", 13)
    assert every_way(line + b"\x01\x1bf\x1bf") == ([], "send 1 hello-world now", 6)
    assert every_way(line + b"\x01\x1bf\x1bd") == ([], "send hello-world now", 4)
    assert every_way(line + b"\x1b\x7f") == ([], "send 1 hello-world ", 19)
    assert every_way(line + b"\x1b\x7f\x1b\x7f") == ([], "send 1 hello-", 13)
    assert every_way(line + b"\x1b\x08") == ([], "send 1 hello-world ", 19)  # Alt-Ctrl-H
    assert every_way("日本 語".encode() + b"\x1bb\x1bd") == ([], "日本 ", 3)


def test_unknown_alt_keys_and_sequences_insert_nothing():
    for junk in (b"\x1bx", b"\x1bQ", b"\x1b1", b"\x1b\r", b"\x1b[15~", b"\x1b[1;5A",
                 b"\x1b[99;99;99;99;99;99;99;99Z", b"\x1bOP"):
        events, buffer, cursor = every_way(b"ab" + junk + b"c")
        assert (events, buffer) == ([], "abc"), junk
    # ESC ESC: the first is a lone Escape press; the sequence after it still works.
    assert every_way(b"ab\x1b\x1b[D") == ([], "ab", 1)
    # Ctrl-Left/Right (xterm) move by words too.
    assert every_way(b"one two\x1b[1;5D") == ([], "one two", 4)


def test_a_bracketed_paste_lands_in_the_line_and_runs_nothing():
    paste = b"\x1b[200~send 1 hi\r\nexit\nnext\tcol\rx\x1b[31mred\x03\x04\x1b[201~"
    events, buffer, cursor = every_way(b"> " + paste + b"!")
    assert events == []                                  # no Enter, no Ctrl-C, no Ctrl-D
    assert buffer == "> send 1 hi exit next col xred!" and cursor == len(buffer)
    # Pasted in the middle, wide characters kept; Enter after the paste runs the line.
    assert every_way(b"ab\x02\x1b[200~" + "日本".encode() + b"\x1b[201~\r") == \
        ([LineEntered("a日本b")], "", 0)
    # A paste that never ends keeps everything as text, an ESC[ that is not the end too.
    assert every_way(b"\x1b[200~a\x1b[20xb\x1b[2")[1] == "ab"


def test_ctrl_l_and_the_interrupt_hook():
    assert every_way(b"ab\x0c") == ([ClearScreen()], "ab", 2)
    taken = []
    e = LineEditor(on_interrupt=lambda: taken.append(1) or True)
    assert e.feed(b"abc\x03") == [] and e.buffer == "abc" and taken == [1]  # only the hook ran
    e = LineEditor(on_interrupt=lambda: False)
    assert e.feed(b"abc\x03") == [] and e.buffer == ""
    assert e.feed(b"\x03") == [Interrupt()]


# -- cost: every key linear in the line, drawing proportional to the width ----------------

WIDE_KEYS = (HOME, END, LEFT, RIGHT, b"\x7f", HOME, RIGHT, b"x", END, b"\x1bb", b"\x01",
             b"\x1bf", DELETE, b"\x0b", b"\x1b[200~" + "本".encode() * 1000 + b"\x1b[201~")


def _on_a_line_of_200000_wide_characters(each_key):
    """Every key of ``WIDE_KEYS`` on a 200,000-character line of wide characters; the
    drawn input line always fits the 80 columns. ``each_key(key, seconds)`` gets the CPU
    time of each key and its drawing."""
    import time
    e = LineEditor()
    screen = Screen(e, lambda text: None, columns=lambda: 80)
    e.feed(b"\x1b[200~" + "日".encode() * 200_000 + b"\x1b[201~")
    assert len(e.buffer) == 200_000
    for key in WIDE_KEYS:
        start = time.process_time()     # CPU time: a busy machine's preemption is no cost
        e.feed(key)
        drawn = screen.render()
        each_key(key, time.process_time() - start)
        assert text_width(drawn.split("\r")[1][len("\x1b[K"):]) <= 79
    return e


def test_a_line_of_200000_wide_characters_is_drawn_within_the_width_for_every_key():
    e = _on_a_line_of_200000_wide_characters(lambda key, seconds: None)
    # Backspace at the end took one, "x" went in after the first, the word motions
    # crossed the whole line (one word) and back, Delete and Ctrl-K at the end took
    # nothing, and the paste went in at the end.
    assert e.buffer == "日x" + "日" * 199_998 + "本" * 1000 and e.cursor == len(e.buffer)


@pytest.mark.slow   # a speed claim: CPU per key on the machine at hand
def test_a_line_of_200000_wide_characters_costs_little_per_key():
    worst = [0.0]
    _on_a_line_of_200000_wide_characters(
        lambda key, seconds: worst.__setitem__(0, max(worst[0], seconds)))
    # Linear in the line: Alt-b/Alt-f walk the whole 200,000-character word (20-40 ms of
    # CPU on a slow machine); anything quadratic would take minutes.
    assert worst[0] < 0.25, f"slowest key took {worst[0] * 1000:.1f} ms"


# -- the screen: resizing, wrapping output, Ctrl-L -----------------------------------------

def test_shrinking_clears_every_row_the_reflowed_input_line_takes():
    e = LineEditor()
    out = []
    width = [120]
    screen = Screen(e, out.append, columns=lambda: width[0])
    e.feed(b"send 1 " + b"x" * 53)                        # 62 columns with the prompt
    screen.refresh()
    width[0] = 40
    screen.resized()
    # A terminal that re-wraps puts the cursor (column 62) on the second of two rows.
    assert out[-1].startswith("\x1b[1A\r\x1b[K\x1b[B\r\x1b[K\x1b[1A\r\x1b[K> ")
    width[0] = 20
    screen.resized()                                     # the line is 39 wide: still 2 rows
    assert out[-1].startswith("\x1b[1A\r\x1b[K\x1b[B\r\x1b[K\x1b[1A\r\x1b[K> ")
    width[0] = 120
    screen.resized()                                     # growing: one row, nothing above
    assert out[-1].startswith("\r\x1b[K> send 1 ")
    e.feed(b"\x01")
    screen.refresh()                                     # the cursor on the first row ...
    width[0] = 40
    screen.resized()                                     # ... and both rows cleared
    assert out[-1].startswith("\r\x1b[K\x1b[B\r\x1b[K\x1b[1A\r\x1b[K> send 1 ")


def test_cursor_row_follows_a_reflowing_terminal():
    from commands.terminal.width import cursor_row
    assert cursor_row("x" * 60, 60, 40) == 1
    assert cursor_row("x" * 60, 10, 40) == 0
    assert cursor_row("x" * 60, 40, 40) == 1
    assert cursor_row("x" * 39 + "日", 41, 40) == 1       # the wide one wraps whole
    assert cursor_row("x" * 120, 119, 40) == 2


def test_output_rows_are_cut_to_the_width_and_continuations_marked():
    from commands.terminal.width import wrap_line
    margin = "  \u2506 "
    assert wrap_line("short", 10, margin) == ["short"]
    assert wrap_line("a" * 25, 10, margin) == ["a" * 10, margin + "a" * 6, margin + "a" * 6,
                                               margin + "a" * 3]
    assert wrap_line("\x1b[1;36mab\x1b[0m cdefghijk", 8, margin) == \
        ["\x1b[1;36mab\x1b[0m cdefg", margin + "hijk"]          # colours take no room
    assert wrap_line("a" * 20, 5, margin) == ["a" * 20]           # too narrow for a margin
    rows = wrap_line("x" * 3 + "日" * 10, 8, margin)
    assert all(text_width(r) <= 8 for r in rows) and rows[0] == "xxx日日"
    screen = Screen(LineEditor(), lambda text: None, columns=lambda: 10)
    assert screen.wrap_output(b"0123456789\nabc") == b"0123456789\nabc"
    assert screen.wrap_output(b"0123456789a") == "0123456789\n  \u2506 a".encode()
    plain = Screen(LineEditor(), lambda text: None, columns=lambda: 10, encoding="latin-1")
    assert plain.wrap_output(b"0123456789a") == b"0123456789\n  | a"


def test_ctrl_l_clears_the_screen_and_draws_the_prompt():
    e = LineEditor()
    out = []
    screen = Screen(e, out.append, columns=lambda: 80)
    e.feed(b"half")
    screen.clear_screen()
    assert out == ["\x1b[H\x1b[2J\r\x1b[K> half\r\x1b[6C"]
