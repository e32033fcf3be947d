"""Rich progress bars and console shared by the CLI commands."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# off a terminal (a pipe, a CI log) rich would wrap tables at 80 columns
console = Console(width=None if sys.stdout.isatty() else 150)


@contextmanager
def task(description: str, total: int) -> Iterator[callable]:
    """A progress bar; yields `advance(n=1, **fields)` for the caller's loop."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task_id = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str = "") -> None:
            progress.update(task_id, advance=n, info=info)

        yield advance
