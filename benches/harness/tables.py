"""Tables as the suites print them and the docs show them: Markdown, one line per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def fmt(value: float | None, spec: str = ".2f") -> str:
    """A figure formatted with `spec`, or "n/a" when it is missing.

    >>> fmt(1.234), fmt(None), fmt(2.0, ".0f")
    ('1.23', 'n/a', '2')
    """
    return "n/a" if value is None else format(value, spec)


def markdown_table(
    header: Sequence[str], align: str, rows: Iterable[Sequence[object]]
) -> list[str]:
    """The lines of a Markdown table; `align` has one letter per column, l or r; a cell is
    printed as `str()` prints it.

    >>> print("\\n".join(markdown_table(["row", "posts/s"], "lr", [["pool", 12.5]])))
    | row | posts/s |
    | --- | ---: |
    | pool | 12.5 |
    """
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one of l/r per column, got {align!r}")
    lines = [line(header), line("---" if a == "l" else "---:" for a in align)]
    lines += [line(row) for row in rows]
    return lines


def line(cells: Iterable[object]) -> str:
    """One row of a Markdown table.

    >>> line(["a", 1, None])
    '| a | 1 | None |'
    """
    return "| " + " | ".join(str(cell) for cell in cells) + " |"
