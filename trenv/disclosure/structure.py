"""The additive structure of a table with subtotals: each axis a tree of its rows.

A table by ``index=[province, municipality]`` with subtotals has a row per municipality
(a *leaf*), after each province's municipalities a subtotal row for the province, and the
grand total last: the classic table with margins is the special case of a tree one level
deep. Every internal row is the sum of its children, in every column, and likewise for the
columns; these are the linear facts that secondary suppression must protect against and that
the LP audit and controlled rounding work on, so they are built in one place from either the
data (``tree_axis``) or an output record's labels and levels (``record_axes``).

Hand-written: tau-ARGUS and R's sdcTable hold hierarchies the same way (code lists with
levels), but neither is a Python library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trenv.disclosure.record import OutputRecord
from trenv.disclosure.suppression import Relation

Labels = tuple[Any, ...]


@dataclass(frozen=True)
class Axis:
    """The nodes of one axis in display order (children before their subtotal, the grand
    total last). ``level[i]``: how many of the axis' variables node ``i`` fixes (the leaves
    all of them, the grand total none); ``parent[i]``: the node it adds up into (-1 for the
    grand total); ``ancestor[l, j]``: the node at level ``l`` above leaf ``j`` (leaves
    numbered in display order)."""

    labels: list[Labels]
    level: np.ndarray
    parent: np.ndarray
    ancestor: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def depth(self) -> int:
        """Levels below the grand total (the number of the axis' variables)."""
        return self.ancestor.shape[0] - 1

    @property
    def leaves(self) -> np.ndarray:
        """Node index of every leaf, in order."""
        return self.ancestor[-1]

    def children(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for node, up in enumerate(self.parent.tolist()):
            if up >= 0:
                out.setdefault(up, []).append(node)
        return out


def flat_axis(labels: Sequence[Any], margins_name: str) -> Axis:
    """A one-level axis: ``labels`` as leaves, then their total (the classic margin)."""
    n = len(labels)
    return Axis(
        labels=[(lab,) for lab in labels] + [(margins_name,)],
        level=np.array([1] * n + [0], dtype=np.int64),
        parent=np.array([n] * n + [-1], dtype=np.int64),
        ancestor=np.vstack([np.full(n, n), np.arange(n)]).astype(np.int64),
    )


def tree_axis(leaves: Sequence[Labels], margins_name: str) -> Axis:
    """The axis of ``leaves`` (label tuples of equal length, in an order that keeps the
    leaves of every prefix together) with a subtotal after every run of leaves sharing a
    prefix; ``ValueError`` when they are not together."""
    k = len(leaves[0]) if leaves else 1
    labels: list[Labels] = []
    level: list[int] = []
    node_of: dict[Labels, int] = {}

    def emit(prefix: Labels) -> None:
        if prefix in node_of:
            raise ValueError(f"the leaves under {list(prefix)} are not together")
        node_of[prefix] = len(labels)
        pad = (margins_name,) + ("",) * (k - len(prefix) - 1) if len(prefix) < k else ()
        labels.append(prefix + pad)
        level.append(len(prefix))

    previous: Labels | None = None
    for leaf in leaves:
        if previous is not None:
            same = next((d for d in range(k) if leaf[d] != previous[d]), k)
            for length in range(k - 1, same, -1):  # the subtotals the new leaf leaves behind
                emit(previous[:length])
        emit(tuple(leaf))
        previous = tuple(leaf)
    if previous is not None:
        for length in range(k - 1, 0, -1):
            emit(previous[:length])
    emit(())
    parent = np.array(
        [-1 if lv == 0 else node_of[_prefix(labels[i], lv - 1)] for i, lv in enumerate(level)],
        dtype=np.int64,
    )
    ancestor = np.array(
        [[node_of[tuple(leaf)[:lv]] for leaf in leaves] for lv in range(k + 1)], dtype=np.int64
    ).reshape(k + 1, len(leaves))
    return Axis(labels, np.array(level, dtype=np.int64), parent, ancestor)


def _prefix(labels: Labels, length: int) -> Labels:
    return tuple(labels[:length])


def relations(rows: Axis, cols: Axis, *, row_sums: bool = True) -> list[Relation]:
    """Every additive fact of the ``len(rows) x len(cols)`` table (flat index
    ``i * len(cols) + j``): each internal row node is the sum of its children in every
    column, and each internal column node the sum of its children in every row.
    ``row_sums=False`` leaves out the facts along the rows (a one-way table, whose single
    column's "total" is not published)."""
    width = len(cols)
    out: list[Relation] = []
    for total, parts in rows.children().items():
        kids = np.asarray(parts, dtype=np.int64)
        for j in range(width):
            out.append(Relation(kids * width + j, total * width + j))
    if row_sums:
        for total, parts in cols.children().items():
            kids = np.asarray(parts, dtype=np.int64)
            for i in range(len(rows)):
                out.append(Relation(i * width + kids, i * width + total))
    return out


def aggregate(leaf_values: np.ndarray, rows: Axis, cols: Axis) -> np.ndarray:
    """The whole ``len(rows) x len(cols)`` grid of sums from the leaf x leaf values."""
    up_rows = _summing(rows)
    up_cols = _summing(cols)
    return up_rows @ leaf_values @ up_cols.T


def _summing(axis: Axis) -> np.ndarray:
    """(nodes x leaves) 0/1 matrix: which leaves each node adds up."""
    out = np.zeros((len(axis), axis.ancestor.shape[1]))
    for lv in range(axis.ancestor.shape[0]):
        out[axis.ancestor[lv], np.arange(axis.ancestor.shape[1])] = 1.0
    return out


@dataclass(frozen=True)
class RecordAxes:
    """The axes of a record with subtotals, and where each grid position's cell is in the
    record (-1: not in it)."""

    rows: Axis
    cols: Axis
    index: np.ndarray


def record_axes(record: OutputRecord) -> RecordAxes | str:
    """The axes of ``record``'s table with subtotals, rebuilt from its labels and levels, or
    why they are not a complete tree (a record no genuine table produces)."""
    cells = record.cells
    k, m = max(len(record.index), 1), max(len(record.columns), 1)
    rows = _axis_of(cells.row, cells.row_level, cells.row_margin, k)
    if record.columns:
        cols = _axis_of(cells.column, cells.column_level, cells.column_margin, m)
    else:  # a one-way table: one column, whose total is never published
        named = list(dict.fromkeys(tuple(c) for c in cells.column))
        if len(named) != 1:
            return f"a one-way table with {len(named)} columns"
        total = rows.labels[-1][0] if isinstance(rows, Axis) else ""
        cols = flat_axis([named[0][0]], str(total))
    if isinstance(rows, str):
        return f"rows: {rows}"
    if isinstance(cols, str):
        return f"columns: {cols}"
    row_at = {lab: i for i, lab in enumerate(rows.labels)}
    col_at = {lab: j for j, lab in enumerate(cols.labels)}
    index = np.full((len(rows), len(cols)), -1, dtype=np.int64)
    for i in range(len(cells)):
        ri, ci = row_at[tuple(cells.row[i])], col_at[tuple(cells.column[i])]
        if index[ri, ci] >= 0:
            return f"the record lists cell {cells.row[i]}/{cells.column[i]} twice"
        index[ri, ci] = i
    return RecordAxes(rows, cols, index)


def _axis_of(
    labels: list[list[str]], levels: list[int] | None, margin: list[bool], k: int
) -> Axis | str:
    nodes: dict[Labels, int] = {}
    for lab, lv, is_margin in zip(
        labels, levels if levels is not None else [None] * len(labels), margin, strict=True
    ):
        key = tuple(lab)
        depth = 0 if is_margin else (k if lv is None else int(lv))
        if depth != nodes.setdefault(key, depth):
            return f"{list(key)} is given two levels"
        if not 0 <= depth <= k or (depth == 0) != is_margin:
            return f"{list(key)} has level {depth} of {k}"
    leaves = [key for key, lv in nodes.items() if lv == k]
    totals = [key for key, lv in nodes.items() if lv == 0]
    if len(totals) != 1:
        return "no single grand total"
    try:  # the record lists the leaves in display order, as check_table laid them out
        expected = tree_axis(leaves, totals[0][0])
    except ValueError as exc:
        return str(exc)
    if set(expected.labels) != set(nodes):
        odd = sorted(set(expected.labels) ^ set(nodes))[:3]
        return f"the subtotals do not form a complete tree ({[list(x) for x in odd]})"
    return expected
