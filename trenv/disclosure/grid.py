"""The ``(R+1) x (C+1)`` table (margins last) behind an output record's cell list.

The record lists the published positions only: a table without margins has no margin
cells in it. Rules on a table's shape (class disclosure, shares), the consistency of
margins and the LP audit need the whole grid back, so the inner cells are placed by their
labels (in order of first appearance, as ``check_table`` wrote them) and absent margins
are rebuilt from their cells where the statistic adds up (rows, negatives, missing values;
contributor-level statistics of an absent margin are unknown and left at zero: nothing is
published there to check).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trenv.disclosure.record import OutputRecord
from trenv.disclosure.structure import Axis, aggregate, record_axes
from trenv.disclosure.structure import relations as tree_relations
from trenv.disclosure.suppression import Relation, one_way_relations, table_relations

ADDITIVE_STATS = ("rows", "negatives", "missing")


@dataclass(frozen=True)
class Grid:
    r: int  # inner rows
    c: int  # inner columns (1 for a one-way table)
    index: np.ndarray  # (r+1, c+1): position of the record cell, -1 if not in the record
    # A table with subtotals: its row and column trees (subtotal rows and columns are
    # among the "inner" ones; each sums its children, not everything before the margin).
    axes: tuple[Axis, Axis] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.r + 1, self.c + 1

    @property
    def present(self) -> np.ndarray:
        return self.index >= 0

    def spread(self, flat: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """A per-cell array of the record laid out on the grid (``fill`` where absent)."""
        out = np.full(self.shape, fill, dtype=np.result_type(flat, type(fill)))
        out[self.present] = flat[self.index[self.present]]
        return out

    def relations(self, two_way: bool) -> list[Relation]:
        """The table's additive facts over flat grid positions (``i * (c + 1) + j``): its
        subtotals' and margins' sums; a one-way table (``two_way`` False) has only the
        column's (its column margin is never published)."""
        if self.axes is not None:
            return tree_relations(*self.axes, row_sums=two_way)
        if two_way:
            return table_relations(self.r, self.c)
        return one_way_relations(self.r, self.c)

    def with_margins(self, flat: np.ndarray) -> np.ndarray:
        """Like ``spread``, with absent margins summed from their inner cells."""
        grid = self.spread(flat)
        r, c = self.r, self.c
        absent = ~self.present
        if self.axes is not None:
            rows, cols = self.axes
            full = aggregate(grid[np.ix_(rows.leaves, cols.leaves)], rows, cols)
            return np.where(absent, full, grid)
        inner = grid[:r, :c]
        grid[:r, c] = np.where(absent[:r, c], inner.sum(axis=1), grid[:r, c])
        grid[r, :c] = np.where(absent[r, :c], inner.sum(axis=0), grid[r, :c])
        if absent[r, c]:
            grid[r, c] = inner.sum()
        return grid


def table_grid(record: OutputRecord) -> Grid | str:
    """The grid of ``record``'s cells, or why the cell list is not one table."""
    if record.subtotals:
        found = record_axes(record)
        if isinstance(found, str):
            return found
        leaves = found.index[np.ix_(found.rows.leaves, found.cols.leaves)]
        if (leaves < 0).any():
            return f"the record lacks {int((leaves < 0).sum())} cell(s) of its table"
        r, c = found.index.shape
        return Grid(r - 1, c - 1, found.index, axes=(found.rows, found.cols))
    cells = record.cells
    rows = list(
        dict.fromkeys(tuple(r) for r, m in zip(cells.row, cells.row_margin, strict=True) if not m)
    )
    cols = list(
        dict.fromkeys(
            tuple(c) for c, m in zip(cells.column, cells.column_margin, strict=True) if not m
        )
    )
    r, c = len(rows), len(cols)
    row_at = {key: k for k, key in enumerate(rows)}
    col_at = {key: k for k, key in enumerate(cols)}
    index = np.full((r + 1, c + 1), -1, dtype=np.int64)
    for i in range(len(cells)):
        ri = r if cells.row_margin[i] else row_at[tuple(cells.row[i])]
        ci = c if cells.column_margin[i] else col_at[tuple(cells.column[i])]
        if index[ri, ci] >= 0:
            return f"the record lists cell {cells.row[i]}/{cells.column[i]} twice"
        index[ri, ci] = i
    missing = int((index[:r, :c] < 0).sum())
    if missing:
        # check_table records every inner cell, published or not.
        return f"the record lacks {missing} inner cell(s) of its {r} x {c} table"
    return Grid(r, c, index)
