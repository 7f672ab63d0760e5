"""Tables with subtotals at every level of nested classifications, protected as one table.

Offence codes and regions are hierarchies (municipality within province, offence within
category). A table by ``index=["province", "municipality"]`` with ``subtotals=True`` has a
row per municipality that occurs, a subtotal row per province after its municipalities and
the grand total; likewise for the columns. Every subtotal is a sum of its children, so a
municipality hidden alone in its province could be recovered from the province subtotal
even when the grand margins protect it: the whole hierarchy is one set of linear facts
(:mod:`trenv.disclosure.structure`), and secondary suppression and the LP audit work on all
of them at once, as tau-ARGUS does for a hierarchical table.

Every statistic of a subtotal is computed from its people, not from its children's numbers
(a person in two municipalities of one province counts once in the province), with the same
per-(cell, contributor) items as the flat table (:mod:`trenv.disclosure.cellstats`): each
level pair (row level x column level) regroups the items once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import cellstats
from trenv.disclosure import statistic as stat_mod
from trenv.disclosure.cellstats import Items
from trenv.disclosure.controlled import ROUNDING_REPLACES
from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.policy import Policy
from trenv.disclosure.rounding import round_base, round_midpoint6
from trenv.disclosure.rules import (
    Context,
    flag_texts,
    is_position,
    primary_suppressions,
    run_rules,
)
from trenv.disclosure.structure import Axis, aggregate, flat_axis, relations, tree_axis
from trenv.disclosure.suppression import AuditResult
from trenv.disclosure.table import (
    ADDITIVE,
    MAX_CELLS,
    TableCheck,
    _label_lists,
    _normalise,
    _ravel,
    _record,
    _without_rounding,
    is_whole,
    protect,
    protected_by_rounding,
    rounded_counts,
)

Stats = dict[str, np.ndarray]


def axis_leaves(
    codes: list[np.ndarray], levels: list[pd.Index], n_rows: int
) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Each row's leaf and the leaves' labels, in code order. One variable: every level is a
    leaf (as in a flat table); several: the combinations that occur, since a municipality
    under every province would be a table of impossible cells."""
    if len(codes) == 1:
        return codes[0].astype(np.int64), [(lab,) for lab in levels[0]]
    sizes = [len(lv) for lv in levels]
    key = _ravel(codes, sizes, n_rows)
    present, leaf = np.unique(key, return_inverse=True)
    parts = np.unravel_index(present, sizes)
    labels = [
        tuple(levels[v][int(parts[v][j])] for v in range(len(levels))) for j in range(len(present))
    ]
    return leaf.astype(np.int64), labels


def _regroup(items: Items, target: np.ndarray, n_contrib: int) -> Items:
    """The items merged by (new group, contributor): ``target`` maps each old group."""
    assert items.contrib is not None
    group = target[items.group]
    key = group * np.int64(max(n_contrib, 1)) + items.contrib
    uniq, inverse = np.unique(key, return_inverse=True)
    has = None
    if items.has is not None:
        has = np.bincount(inverse, weights=items.has, minlength=len(uniq)) > 0
    return Items(
        group=uniq // np.int64(max(n_contrib, 1)),
        contrib=uniq % np.int64(max(n_contrib, 1)),
        total=np.bincount(inverse, weights=items.total, minlength=len(uniq)),
        has=has,
    )


def _rowwise(leaf: Stats, target: np.ndarray, n_groups: int) -> Stats:
    """Row-level statistics of the new groups from the leaf cells' (sums, min of mins, ...)."""
    out: Stats = {}
    for key, arr in leaf.items():
        if key in ("vmin", "vmax"):
            agg = np.full(n_groups, np.nan)
            (np.fmin if key == "vmin" else np.fmax).at(agg, target, arr)
            out[key] = agg
        else:
            out[key] = np.bincount(target, weights=arr, minlength=n_groups).astype(arr.dtype)
    return out


def check_subtotals(
    *,
    codes: list[np.ndarray],
    levels: list[pd.Index],
    index: list[str],
    columns: list[str],
    values: str | None,
    values_column: pd.Series | None,
    vals: np.ndarray | None,
    contrib: np.ndarray,
    n_contrib: int,
    contributor: str | None,
    stat: str,
    pol: Policy,
    margins: bool,
    margins_name: str,
    norm: str | None,
    structural_zeros: Iterable[tuple[Any, Any]],
    value_name: str | None,
) -> TableCheck:
    """``check_table`` for a table with subtotals (its inputs already encoded)."""
    if not margins:
        raise DisclosureInputError(
            "subtotals=True needs margins=True: the grand total is the top of the hierarchy"
        )
    n = len(contrib)
    k = len(index)
    row_leaf, row_leaves = axis_leaves(codes[:k], levels[:k], n)
    rows = tree_axis(row_leaves, margins_name) if row_leaves else flat_axis([], margins_name)
    if columns:
        col_leaf, col_leaves = axis_leaves(codes[k:], levels[k:], n)
        cols = tree_axis(col_leaves, margins_name) if col_leaves else flat_axis([], margins_name)
    else:
        col_leaf = np.zeros(n, dtype=np.int64)
        cols = flat_axis([value_name or values or stat], margins_name)
    n_lr, n_lc = rows.ancestor.shape[1], cols.ancestor.shape[1]
    big_r, big_c = len(rows), len(cols)
    if big_r * big_c > MAX_CELLS:
        raise DisclosureInputError(
            f"the table would have {big_r * big_c:,} cells (limit {MAX_CELLS:,}); "
            "use fewer or coarser variables"
        )
    cell = row_leaf * np.int64(n_lc) + col_leaf
    n_leaf_cells = n_lr * n_lc
    top_k = max(pol.dominance.n, 2)
    items = cellstats.items_from_rows(cell, contrib, n_contrib, n_leaf_cells, vals)
    leaf_rowwise = cellstats.row_stats(cell, vals, n_leaf_cells)
    stats, value = _statistics(
        rows, cols, cell, items, leaf_rowwise, contrib, n_contrib, vals, stat, pol, top_k
    )

    # --- rules
    published = np.ones((big_r, big_c), dtype=bool)
    if not columns:
        published[:, -1] = False  # a one-way table has no column margin
    row_labels = _axis_index(rows, index)
    col_labels = (
        _axis_index(cols, columns)
        if columns
        else pd.Index([value_name or values or stat, margins_name])
    )
    structural = _structural(structural_zeros, rows, cols, columns)
    ctx = Context(statistic=stat, normalize=norm, structural_zeros=structural)
    results = run_rules(stats, pol, ctx)

    # --- mitigation
    shown, rounding, no_rounding = _rounded(value, rows, cols, stat, pol)
    protected = protected_by_rounding(results, stats["rows"], pol, rounding)
    primary = primary_suppressions(results, published, protected, ROUNDING_REPLACES)
    suppressed = primary.copy()
    audit_result: AuditResult | None = None
    if stat in ADDITIVE and pol.secondary.enabled:
        facts = relations(rows, cols, row_sums=bool(columns))
        supp_flat, audit_result = protect(shown, primary, facts, stats, pol, stat)
        suppressed = supp_flat.reshape(big_r, big_c)
    suppressed &= published
    safe_values = np.where(suppressed, np.nan, shown)
    if norm is not None:
        safe_values = _normalise(safe_values, shown, norm, big_r - 1, big_c - 1)

    # --- labelled frames and the record
    def frame_of(arr: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(arr, index=row_labels, columns=col_labels)
        return df if columns else df.iloc[:, :1]

    flag_text = flag_texts(results, (big_r, big_c))
    whole = is_whole(stat, norm, values_column, vals, value)
    table = frame_of(value)
    safe = frame_of(safe_values)
    if whole:  # counts and sums of whole numbers stay integers (Int64, suppressed <NA>)
        table = table.astype(np.int64 if stat == "count" else "Int64")
        safe = safe.astype("Int64")
    record = _record(
        stats, value, safe_values, suppressed, primary, published, results, audit_result,
        row_labels, col_labels, pol, big_r - 1, big_c - 1, protected=protected,
        rounded=shown if rounding == "controlled" else None, whole=whole,
        statistic=stat, values=values, index=index, columns=columns, contributor=contributor,
        margins=True, normalize=norm, rounding=rounding, subtotals=True,
        structural_zeros=[
            [_label_lists(row_labels)[i], _label_lists(col_labels)[j]]
            for i, j in zip(*np.nonzero(structural), strict=True)
        ],
    )  # fmt: skip
    if no_rounding:
        record = _without_rounding(record, no_rounding)
    at = np.flatnonzero(published.ravel())
    ri, ci = np.divmod(at, big_c)
    cells = record.cells.model_copy(
        update={
            "row_level": rows.level[ri].tolist(),
            "column_level": cols.level[ci].tolist() if columns else None,
        }
    )
    return TableCheck(
        table=table,
        safe=safe,
        suppressed=frame_of(suppressed).astype(bool),
        flags=frame_of(flag_text),
        results=results,
        audit=audit_result,
        record=record.model_copy(update={"cells": cells}),
        policy=pol,
    )


def _statistics(
    rows: Axis,
    cols: Axis,
    cell: np.ndarray,
    items: Items,
    leaf_rowwise: Stats,
    contrib: np.ndarray,
    n_contrib: int,
    vals: np.ndarray | None,
    stat: str,
    pol: Policy,
    top_k: int,
) -> tuple[Stats, np.ndarray]:
    """Every statistic of every grid position, one level pair at a time."""
    big_r, big_c = len(rows), len(cols)
    n_groups = big_r * big_c
    n_lc = cols.ancestor.shape[1]
    leaf_cells = np.arange(rows.ancestor.shape[1] * n_lc)
    lr_of, lc_of = np.divmod(leaf_cells, n_lc)
    stats: Stats = {}
    value = np.full(n_groups, np.nan)
    near = np.zeros(n_groups, dtype=np.int64)
    for row_level in range(rows.ancestor.shape[0]):
        for col_level in range(cols.ancestor.shape[0]):
            target = rows.ancestor[row_level][lr_of] * big_c + cols.ancestor[col_level][lc_of]
            here = np.flatnonzero(
                (rows.level[:, None] == row_level) & (cols.level[None, :] == col_level)
            )
            part = cellstats.group_stats(
                _regroup(items, target, n_contrib),
                n_groups,
                top_k,
                _rowwise(leaf_rowwise, target, n_groups),
            )
            for key, arr in part.items():
                stats.setdefault(key, np.zeros(n_groups, dtype=arr.dtype))[here] = arr[here]
            if stat not in stat_mod.FROM_SUMS:
                assert vals is not None
                group = target[cell]
                got = stat_mod.positional(group, vals, n_groups, stat)
                value[here] = got[here]
                if is_position(stat):
                    span = np.nan_to_num(part["vmax"] - part["vmin"]) * pol.extremes.tolerance
                    fill = np.nan_to_num(got, nan=np.inf)
                    hits = stat_mod.near_contributors(
                        group, contrib, n_contrib, vals, fill, span, n_groups
                    )
                    near[here] = hits[here]
    grid = {key: arr.reshape(big_r, big_c) for key, arr in stats.items()}
    if stat in stat_mod.FROM_SUMS:
        out = stat_mod.from_sums(grid, stat)
    else:
        out = value.reshape(big_r, big_c)
    if is_position(stat):
        grid["near"] = near.reshape(big_r, big_c)
    return grid, out


def _rounded(
    value: np.ndarray, rows: Axis, cols: Axis, stat: str, pol: Policy
) -> tuple[np.ndarray, str, str]:
    """``table.rounded_counts`` for the hierarchy: base and midpoint-6 round the leaves and
    every subtotal and total is the sum of its rounded leaves (rounding with consistent
    totals); controlled rounding rounds every cell of every level so that all of the
    hierarchy's sums hold."""

    def at_leaves(grid: np.ndarray, method: str, base: int) -> np.ndarray:
        leaves = grid[np.ix_(rows.leaves, cols.leaves)]
        rounded = round_midpoint6(leaves) if method == "midpoint6" else round_base(leaves, base)
        return aggregate(rounded, rows, cols)

    return rounded_counts(value, stat, pol, relations(rows, cols), at_leaves)


def _axis_index(axis: Axis, names: Sequence[str]) -> pd.Index:
    if len(names) == 1:
        return pd.Index([lab[0] for lab in axis.labels], name=names[0])
    return pd.MultiIndex.from_tuples(axis.labels, names=list(names))


def _structural(
    zeros: Iterable[tuple[Any, Any]], rows: Axis, cols: Axis, columns: list[str]
) -> np.ndarray:
    out = np.zeros((len(rows), len(cols)), dtype=bool)
    row_at = {_key(lab): i for i, lab in enumerate(rows.labels)}
    col_at = {_key(lab): j for j, lab in enumerate(cols.labels)}
    for rk, ck in zeros:
        i, j = row_at.get(_key(rk)), col_at.get(_key(ck)) if columns else 0
        if i is None or j is None:
            raise DisclosureInputError(
                f"structural zero ({rk!r}, {ck!r}) is not a cell of this table"
            )
        out[i, j] = True
    return out


def _key(label: Any) -> tuple[Any, ...]:
    """A label as the axis holds it: a tuple (one element for a single variable)."""
    return tuple(label) if isinstance(label, tuple) else (label,)
