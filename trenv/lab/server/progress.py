"""Progress lines are not rows of a table: ``epoch 3/100, loss=0.2511`` printed in a loop.

The text judge counts lines of the same shape as rows of a table, and a cell may send at
most ``cell_max_table_rows`` of them, so that a loop printing a few rows at a time meets the
same limit as one print. A loop reporting its own progress prints lines of one shape too,
but they describe one process over time, not many people. A line is progress when it
continues a *series*: the same text with only its numbers changed (the template), whose
first number is a counter going up by the same step every line, and at most one other
number changing from the line before (the loss, the elapsed time). Such lines are not
counted as rows.

What this lets through: one column of numbers, paired with a counter, under a constant
label; no categories, no identifiers (those change the template), no second column. That
is bounded by the per-cell character limit and the egress meter like any chunked output.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LABEL = re.compile(r"[A-Za-z]{2,}")
# A progress line reports a few numbers (counter, total, one or two measures); more is a
# row of data however it is labelled.
MAX_NUMBERS = 4
SERIES_REMEMBERED = 32


@dataclass(frozen=True)
class _Series:
    numbers: tuple[float, ...]
    step: float | None  # how far the counter went up to this line (None: not a counter)


class ProgressSeries:
    """The progress series seen in one cell (kept across its messages)."""

    def __init__(self) -> None:
        self._series: OrderedDict[str, _Series] = OrderedDict()

    def copy(self) -> ProgressSeries:
        twin = ProgressSeries()
        twin._series = OrderedDict(self._series)
        return twin

    def continues(self, line: str) -> bool:
        """Is ``line`` the next line of a progress series (remembering it either way)?"""
        found = _NUMBER.findall(line)
        if not found or len(found) > MAX_NUMBERS:
            return False
        template = _NUMBER.sub("#", line.strip())
        if not _LABEL.search(template):
            return False  # bare numbers are a column, not a report of progress
        numbers = tuple(float(n) for n in found)
        before = self._series.pop(template, None)
        step: float | None = None
        if before is not None:
            moved = numbers[0] - before.numbers[0]
            others = sum(a != b for a, b in zip(numbers[1:], before.numbers[1:], strict=True))
            step = moved if moved > 0 and others <= 1 else None
        # Progress once the counter has gone up by the same step twice in a row: random
        # values in the first column do that rarely, a loop counter always.
        ok = step is not None and before is not None and before.step == step
        self._series[template] = _Series(numbers, step)
        while len(self._series) > SERIES_REMEMBERED:
            self._series.popitem(last=False)
        return ok

    def without_progress(self, text: str) -> str | None:
        """``text`` without its progress lines, or None when it has none."""
        lines = text.splitlines()
        kept = [line for line in lines if not self.continues(line)]
        return None if len(kept) == len(lines) else "\n".join(kept)
