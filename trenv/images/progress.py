"""The progress protocol between image builds and whoever shows them (the CLI's Rich bar)."""

from __future__ import annotations

from collections.abc import Callable

# Called as progress(stage, completed, total): ``stage`` is a short human-readable name that
# stays the same while one step runs, so a caller can keep one progress bar per stage.
ProgressCallback = Callable[[str, int, int], None]


def no_progress(stage: str, completed: int, total: int) -> None:
    """The default callback: report nothing."""
