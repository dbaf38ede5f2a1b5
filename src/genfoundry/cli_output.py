"""How the CLI prints for a person and for a pipe: tables whose ids are never cut, progress as plain lines where no
terminal redraws a bar, and the one-line error a command ends with."""

from __future__ import annotations

import sys
import time
from collections.abc import Collection
from typing import TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

ID_COLUMNS = frozenset({"id", "user", "owner", "base"})  # values other commands take: printed whole
PROGRESS_LINE_EVERY_S = 10.0
_err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print `message` as an error on stderr (verbatim, never read as markup); raise what this returns (exit 1)."""
    _err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def print_table(table: Table, *, console: Console | None = None, ids: Collection[str] = ID_COLUMNS) -> None:
    """Print `table` with the columns named in `ids` never wrapped or cut. On a terminal the other columns give
    way; into a pipe or a file the table is as wide as its content, so every cell is whole and copyable."""
    for column in table.columns:
        if str(column.header) in ids:
            column.no_wrap = True
            column.min_width = max((len(str(cell)) for cell in column.cells), default=0) or None
    target = console or Console()
    if not target.is_terminal:
        target = Console(file=target.file, width=1_000_000, color_system=None)
    target.print(table)


class ProgressLines:
    """Where stdout is not a terminal (a log file, CI) a progress bar does not redraw: this prints a plain line
    for the first report, then at most one every `every_s` seconds and whenever `total` is reached."""

    def __init__(self, label: str, *, every_s: float = PROGRESS_LINE_EVERY_S, stream: TextIO | None = None) -> None:
        self.label = label
        self.every_s = every_s
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self._last_at: float | None = None
        self._last_step: int | None = None

    def report(self, step: int, total: int | None, detail: str = "") -> None:
        now = time.monotonic()
        done = total is not None and step >= total
        due = self._last_at is None or now - self._last_at >= self.every_s
        if step == self._last_step or not (due or done):
            return
        self._last_at, self._last_step = now, step
        of = f"/{total}" if total else ""
        print(f"{self.label}: {step}{of}{'  ' + detail if detail else ''}", file=self.stream, flush=True)
