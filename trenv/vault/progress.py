"""Rich progress bars for the vault's long steps.

The vault functions take an optional ``progress(step, done, total)`` callable and never print;
the CLI passes ``bar.update`` from this context manager to show them (``total`` 0 means the
total is unknown, e.g. rows while a CSV is still being read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

ProgressHook = Callable[[str, int, int], None]


@contextmanager
def rich_progress(
    console: Console | None = None, *, enabled: bool = True
) -> Iterator[ProgressHook]:
    """Yield a progress hook that draws one bar per step name."""
    if not enabled:
        yield lambda step, done, total: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def hook(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total or None)
            bar.update(tasks[step], completed=done, total=total or None)

        yield hook
