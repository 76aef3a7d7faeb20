"""The line editor's state machine, fed key bytes directly (no terminal)."""

from __future__ import annotations

from commands.terminal.lineedit import LineEditor, text_width
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
    assert typed(e, b"\r") == ([("line", "l")], "", 0)


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
    assert e.feed(b"\x03") == [("interrupt",)]
    assert e.feed(b"ab\x01\x04") == [] and e.buffer == "b"    # deletes under the cursor
    assert e.feed(b"\x04") == [] and e.buffer == ""
    assert e.feed(b"\x04") == [("eof",)]


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
    assert e.feed(b"\x10\r") == [("line", "two")]  # Ctrl-P


def test_tab_completion_of_names_and_a_second_tab_lists_them():
    words = {"": ["help", "myip", "myport", "send"], "send ": ["1", "12", "3"]}

    def complete(before):
        head, _, word = before.rpartition(" ")
        options = words["send " if head else ""]
        return [w for w in options if w.startswith(word)]

    e = LineEditor(complete)
    assert e.feed(b"se\t") == [] and e.buffer == "send "
    assert e.feed(b"1\t") == [] and e.buffer == "send 1"       # 1 or 12: nothing to add
    assert e.feed(b"\t") == [("choices", ["1", "12"])]
    e.feed(b"\x15my\t")
    assert e.buffer == "my"
    assert e.feed(b"\t") == [("choices", ["myip", "myport"])]
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
