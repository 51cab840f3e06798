"""Post text shown on a terminal: escape sequences and control characters are neutralised."""

from __future__ import annotations

import pytest

from volfefe.cli.terminal import for_terminal


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, émojis 🚀 and ünïcode", "plain text, émojis 🚀 and ünïcode"),
        ("red \x1b[31malert\x1b[0m", "red \\x1b[31malert\\x1b[0m"),
        ("\x1b]0;owned title\x07", "\\x1b]0;owned title\\x07"),  # OSC: window title
        (
            "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
            "\\x1b]8;;http://evil\\x1b\\link\\x1b]8;;\\x1b\\",
        ),
        ("safe\rfake line", "safe\\rfake line"),
        ("one-byte CSI \x9b31m", "one-byte CSI \\x9b31m"),
        ("bidi \u202egnp.exe", "bidi \\u202egnp.exe"),
        ("del\x7f bell\x07 nul\x00", "del\\x7f bell\\x07 nul\\x00"),
    ],
)
def test_control_and_escape_sequences_become_visible(text: str, shown: str) -> None:
    assert for_terminal(text) == shown


def test_newlines_are_kept_for_show_and_escaped_for_one_line_output() -> None:
    assert for_terminal("a\n\tb") == "a\n\tb"
    assert for_terminal("a\n\tb", keep_newlines=False) == "a\\n\\tb"


def test_nothing_unsafe_survives_any_code_point() -> None:
    every = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c < 0xE000)
    out = for_terminal(every, keep_newlines=False)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
    assert not any(c in out for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
