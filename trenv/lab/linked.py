"""``tre.linked_tables(t1, t2, ...)``: tables of the same data, protected together.

Each table from ``tre.crosstab`` or ``tre.pivot_table`` is protected on its own; tables made
from the same data share cells (a margin, a total) and facts, and together can give away a
cell each one hides (``trenv.disclosure.linked``). Call this on all the tables of one data
frame that you mean to release, before saving them: it extends their suppression patterns
so that every hidden cell stays protected given all of them.
"""

from __future__ import annotations

import numpy as np

from trenv.disclosure import DisclosureInputError
from trenv.disclosure.linked import protect_linked
from trenv.disclosure.table import _label_lists
from trenv.lab.outputs import Output


def linked_tables(*outputs: Output) -> list[Output]:
    """Protect ``outputs`` jointly, in place: their ``result`` tables and records get the
    joint pattern (the separately protected versions must not be released). Returns them."""
    for k, out in enumerate(outputs, start=1):
        if not isinstance(out, Output) or out.record.kind != "table":
            raise DisclosureInputError(
                f"argument {k} is not a table from tre.crosstab or tre.pivot_table"
            )
        if out.record.files:
            raise DisclosureInputError(
                f"table {k} was already saved ({', '.join(out.record.files)}): link the tables "
                "before saving them, then save the linked ones under new names"
            )
    records = protect_linked([out.record for out in outputs])
    for out, record in zip(outputs, records, strict=True):
        _hide_in_result(out, record)
        out.record = record
    return list(outputs)


def _hide_in_result(out: Output, record: object) -> None:
    """Blank the result's cells the joint record hides (found by their labels)."""
    frame = out.result
    rows = {tuple(lab): i for i, lab in enumerate(_label_lists(frame.index))}
    cols = {tuple(lab): j for j, lab in enumerate(_label_lists(frame.columns))}
    hidden = np.zeros(frame.shape, dtype=bool)
    cells = record.cells  # type: ignore[attr-defined]
    for row, column, published in zip(cells.row, cells.column, cells.published, strict=True):
        if published is None:
            hidden[rows[tuple(row)], cols[tuple(column)]] = True
    # ``mask`` keeps the columns' types (an integer count column stays one, blanks empty).
    out.result = frame.mask(hidden)
