"""Text from posts made safe for a terminal: control and escape sequences become visible.

A post can carry ESC sequences (colours, cursor moves, OSC 8 links, window-title writes),
carriage returns that overwrite a line, or bidi overrides that reorder what is shown. Every
place the CLI prints post text or an error message built from it goes through `for_terminal`.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), and the bidi
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def for_terminal(text: str, *, keep_newlines: bool = True) -> str:
    """`text` with each unsafe character shown as an escape (`\\x1b`, `\\u202e`).

    >>> for_terminal("buy \\x1b[31mnow\\x1b[0m\\r!")
    'buy \\\\x1b[31mnow\\\\x1b[0m\\\\r!'
    >>> for_terminal("a\\nb", keep_newlines=False)
    'a\\\\nb'
    """
    if not keep_newlines:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
