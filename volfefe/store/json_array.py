"""Stream the elements of a top-level JSON array from a file, holding one element at a time.

```
file ──read 1 MiB at a time──> window of text (starts where the next element starts)
        raw_decode(window) ok?  yield (line, element), drop it from the window
        incomplete?             read more (up to MAX_ELEMENT characters for one element)
        broken?                 yield (line, Broken(reason)) and stop: the next start is unknown
```
Line and column numbers in messages are the file's, however much has been dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

CHUNK = 1 << 20  # characters read at a time
_SPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class Broken:
    """Why reading stopped (or why the file is not an array)."""

    reason: str


class _Window:
    """The unread part of the file, with the file line and column where it starts."""

    def __init__(self, f: TextIO, chunk: int) -> None:
        self._f = f
        self._chunk = chunk
        self.text = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # of text[0]
        self._column = 0  # of text[0], 0-based

    def more(self) -> bool:
        """Read more text (as much again as is held, at least CHUNK); False at the end."""
        chunk = self._f.read(max(self._chunk, len(self.text) - self.pos))
        self.text += chunk
        self.eof = not chunk
        return bool(chunk)

    def skip_space(self) -> str:
        """Move past whitespace and return the next character ('' at the end of the file)."""
        while True:
            match = _SPACE.match(self.text, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.text) or not self.more():
                return self.text[self.pos : self.pos + 1]

    def line_at(self, pos: int) -> int:
        """The file line of position `pos` of the window."""
        return self._line + self.text.count("\n", 0, pos)

    def column_at(self, pos: int) -> int:
        """The file column (1-based) of position `pos` of the window."""
        start = self.text.rfind("\n", 0, pos)
        return pos - start if start >= 0 else self._column + pos + 1

    def drop_read(self) -> None:
        """Forget the text before `pos`."""
        cut = self.pos
        newline = self.text.rfind("\n", 0, cut)
        if newline >= 0:
            self._line += self.text.count("\n", 0, cut)
            self._column = cut - newline - 1
        else:
            self._column += cut
        self.text, self.pos = self.text[cut:], 0


def read_json_array(
    path: Path, parse_int: Callable[[str], object], max_element: int, chunk: int = CHUNK
) -> Iterator[tuple[int, object]]:
    """Each element of the top-level array in `path` with the line where it starts, or a
    `Broken` (with its line) where reading had to stop.

    >>> list(read_json_array(Path("posts.json"), int, 1 << 24))  # doctest: +SKIP
    [(2, {'source': 'x', 'external_id': '1'}), (3, Broken(reason="invalid JSON: ..."))]
    """
    decoder = json.JSONDecoder(parse_int=parse_int)
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        w = _Window(f, chunk)
        if w.skip_space() != "[":
            yield w.line_at(w.pos), Broken("expected a JSON array of objects")
            return
        w.pos += 1
        while (next_char := w.skip_space()) != "]":
            if not next_char:
                yield w.line_at(w.pos), Broken("the array is not closed; the rest was not read")
                return
            w.drop_read()
            line = w.line_at(0)
            while True:
                try:
                    value, end = decoder.raw_decode(w.text, 0)
                except json.JSONDecodeError as err:
                    if not w.eof and len(w.text) <= max_element and w.more():
                        continue  # the element may go on in the part not read yet
                    if not w.eof:
                        yield (
                            line,
                            Broken(
                                f"an element is longer than {max_element:,} characters; "
                                "the rest was not read"
                            ),
                        )
                        return
                    where = w.line_at(err.pos)
                    reason = f"{err.msg} (column {w.column_at(err.pos)})"
                    yield where, Broken(f"invalid JSON: {reason}; the rest was not read")
                    return
                except RecursionError:
                    yield line, Broken("invalid JSON: nested too deeply; the rest was not read")
                    return
                if end == len(w.text) and not w.eof and w.more():
                    continue  # a number or literal at the end of the window may go on
                break
            yield line, value
            w.pos = end
            next_char = w.skip_space()
            if next_char == ",":
                w.pos += 1
            elif not next_char:
                yield w.line_at(w.pos), Broken("the array is not closed; the rest was not read")
                return
            elif next_char != "]":
                yield (
                    w.line_at(w.pos),
                    Broken("expected ',' or ']' after an element; the rest was not read"),
                )
                return
        w.pos += 1
        if w.skip_space():
            yield w.line_at(w.pos), Broken("unexpected text after the JSON array")
