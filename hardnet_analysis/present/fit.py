"""Tables that fit the terminal: at any width the key column is shown whole; other text columns
are abbreviated from the middle (``condense…converted``) and, where that is not enough, the least
important columns are left out, with a note saying which and where to find them.

A `FitTable` is a rich renderable: it is laid out when printed, for the console's width
(``COLUMNS`` or the terminal's), so the same table reads at 80 columns and at 200.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box as boxes
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table

#: Narrowest a middle-abbreviated column gets: enough to tell ``hardnet68ds`` from ``hardnet68``.
MIN_SHORT = 9
ELLIPSIS = "…"


@dataclass(frozen=True)
class Col:
    """A column: header, alignment, `drop` (0: never left out; columns with larger numbers are
    left out first) and whether its cells may be abbreviated from the middle (`shorten`)."""

    header: str
    justify: Literal["left", "right"] = "left"
    drop: int = 0
    shorten: bool = False


def abbreviate(text: str, width: int) -> str:
    """`text` cut to `width` characters from the middle: ``hardn…verted``."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + ELLIPSIS + (text[-tail:] if tail else "")


@dataclass
class FitTable:
    """Rows of strings under `columns`, printed to fit the console's width (see the module
    docstring). `sections` are row indexes a rule is drawn above."""

    title: str
    columns: Sequence[Col]
    rows: list[Sequence[str]] = field(default_factory=list)
    caption: str | None = None
    box: boxes.Box = boxes.HEAVY_HEAD
    sections: set[int] = field(default_factory=set)

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def add_section(self) -> None:
        """A rule above the next row."""
        self.sections.add(len(self.rows))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.fitted(console, options.max_width)

    def fitted(self, console: Console, width: int) -> Table:
        """The rich Table for `width` columns: every column whole if it fits, else shortened
        columns, else the least important left out (named in the caption) and, of those, the
        more important put back where they fit after all."""
        droppable = sorted((c for c in self.columns if c.drop), key=lambda c: -c.drop)
        for n in range(len(droppable) + 1):
            dropped = droppable[:n]
            if self._shortened(console, width, dropped) is None:
                continue
            for column in reversed(droppable[:n]):
                fewer = [c for c in dropped if c != column]
                if self._shortened(console, width, fewer) is not None:
                    dropped = fewer
            table = self._shortened(console, width, dropped)
            assert table is not None  # it fitted with these columns a moment ago
            return self._noted(table, dropped)
        shown = [c for c in self.columns if not c.drop]
        return self._noted(self._table(shown, self._widths(shown)), droppable)

    def _natural(self, column: Col) -> int:
        index = list(self.columns).index(column)
        return max([len(column.header), *(len(row[index]) for row in self.rows)])

    def _widths(self, shown: Sequence[Col]) -> dict[str, int]:
        return {c.header: self._natural(c) for c in shown}

    def _shortened(self, console: Console, width: int, dropped: Sequence[Col]) -> Table | None:
        """The table without the `dropped` columns within `width`, shortening the abbreviable
        ones (as far as `MIN_SHORT` or their header); None where that is not enough."""
        shown = [c for c in self.columns if c not in dropped]
        widths = self._widths(shown)
        excess = _measure(console, self._table(shown, widths)) - width
        for column in sorted((c for c in shown if c.shorten), key=lambda c: -c.drop):
            floor = max(MIN_SHORT, len(column.header))
            cut = min(max(excess, 0), max(0, widths[column.header] - floor))
            widths[column.header] -= cut
            excess -= cut
        table = self._table(shown, widths)
        return table if _measure(console, table) <= width else None

    def _table(self, shown: Sequence[Col], widths: dict[str, int]) -> Table:
        table = Table(title=self.title, caption=self.caption, box=self.box)
        for c in shown:
            table.add_column(c.header, justify=c.justify, no_wrap=True)
        indexes = [list(self.columns).index(c) for c in shown]
        for number, row in enumerate(self.rows):
            if number in self.sections:
                table.add_section()
            cells = (
                abbreviate(row[i], widths[c.header]) for i, c in zip(indexes, shown, strict=True)
            )
            table.add_row(*cells)
        return table

    def _noted(self, table: Table, dropped: Sequence[Col]) -> Table:
        if not dropped:
            return table
        names = ", ".join(c.header for c in dropped)
        note = f"not shown at this width: {names} (widen the terminal, or --format csv)"
        table.caption = f"{self.caption}\n{note}" if self.caption else note
        return table


def _measure(console: Console, table: Table) -> int:
    """Columns `table` takes laid out without limit."""
    wide = console.options.update_width(10_000)
    return Measurement.get(console, wide, table).maximum
