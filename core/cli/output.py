"""Where the CLI writes: through `rich` (colour, aligned tables) on a terminal when it is installed, plain
text otherwise — into a pipe, a log, or with NO_COLOR set. Both get the same words; rich adds colour.

A line is a list of (text, style) pieces; a style is a rich style name and plain output ignores it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

Piece = tuple[str, str | None]
Line = list[Piece]

ERROR = "bold red"
DIM = "dim"
ID = "cyan"
NAME = "bold"
OK = "green"
ROLE = "magenta"


def wants_rich(stream: TextIO) -> bool:
    """Colour when the stream is a terminal (or FORCE_COLOR says to pretend) and NO_COLOR is not set."""
    if os.environ.get("NO_COLOR"):
        return False
    if not (os.environ.get("FORCE_COLOR") or stream.isatty()):
        return False
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


class Output:
    """One command's stdout."""

    def __init__(self, stream: TextIO | None = None, rich: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.rich = wants_rich(self.stream) if rich is None else rich
        self._console: Any = None
        if self.rich:
            from rich.console import Console

            # soft_wrap: long content lines are the terminal's to wrap, not cut into columns
            self._console = Console(file=self.stream, force_terminal=True, soft_wrap=True, highlight=False)

    def line(self, pieces: Line | str = "") -> None:
        if isinstance(pieces, str):
            pieces = [(pieces, None)]
        if self._console is None:
            self.stream.write("".join(text for text, _ in pieces) + "\n")
            return
        from rich.text import Text

        text = Text()
        for piece, style in pieces:
            text.append(piece, style=style or "")
        self._console.print(text)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Piece]], footer: Sequence[str] | None = None,
              right: Sequence[int] = ()) -> None:
        """Columns aligned; `right` holds the indexes of numeric columns; `footer` is a totals row."""
        if self._console is None:
            all_rows = [list(header), *([t for t, _ in r] for r in rows), *([list(footer)] if footer else [])]
            widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]

            def fmt(cells: Sequence[str]) -> str:
                return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

            self.stream.write(fmt(header) + "\n")
            for r in rows:
                self.stream.write(fmt([t for t, _ in r]) + "\n")
            if footer:
                self.stream.write(fmt(footer) + "\n")
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(show_footer=bool(footer), box=None, header_style="bold", footer_style="bold", pad_edge=False)
        for i, h in enumerate(header):
            table.add_column(h, footer=footer[i] if footer else "", justify="right" if i in right else "left",
                             no_wrap=True)
        for r in rows:
            table.add_row(*(Text(t, style=s or "") for t, s in r))
        self._console.print(table)


def note(text: str) -> None:
    """A line for the person, not the pipe: stderr (e.g. which store a command reads)."""
    print(text, file=sys.stderr)
