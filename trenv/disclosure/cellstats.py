"""Per-cell statistics in one vectorised pass: what every rule needs, nothing row-level.

Only three statistics depend on who the rows are about: the number of distinct
contributors, the largest contributions (per contributor) and the sum of absolute
contributions. They are computed from *items*, one per (cell, contributor): the rows are
collapsed by a single sort of one combined int64 key (contributor major, cell minor) and
the run boundaries of the sorted keys; no hashing and no Python loop over cells. The
row-level statistics (rows, negatives, missing values, min/max) need no collapse at all:
they are ``bincount``/``ufunc.at`` reductions over the rows, and a margin's are reduced
from its cells (integer sums and min/max are exact in any order).

Margins are aggregated from the same items, never from the raw rows: because the items
are ordered by (contributor, row, column), the (row margin, contributor) pairs and the
(grand total, contributor) pairs are already contiguous runs, and the (column margin,
contributor) pairs need one stable sort of a nearly sorted key. This is what replaces
ACRO's one pandas query per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Stats = dict[str, np.ndarray]


@dataclass(frozen=True)
class Items:
    """Per-(group, contributor) aggregates: what the contributor-level statistics need."""

    group: np.ndarray  # int64 group id per item
    contrib: np.ndarray  # int64 contributor id per item
    total: np.ndarray  # float64 sum of the contributor's values in the group
    rows: np.ndarray  # int64 rows with a value

    def take(self, order: np.ndarray) -> Items:
        return Items(self.group[order], self.contrib[order], self.total[order], self.rows[order])


def _empty() -> Items:
    i = np.zeros(0, dtype=np.int64)
    return Items(i, i, np.zeros(0, dtype=np.float64), i)


def _runs(sorted_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index of every run of equal values in a sorted (non-empty) array, and the
    run number of every position (for ``bincount``, which is one pass in C)."""
    change = sorted_key[1:] != sorted_key[:-1]
    codes = np.empty(len(sorted_key), dtype=np.int64)
    codes[0] = 0
    np.cumsum(change, out=codes[1:])
    starts = np.concatenate((np.zeros(1, dtype=np.int64), np.flatnonzero(change) + 1))
    return starts, codes


def _stable_order(key: np.ndarray) -> np.ndarray:
    """``argsort(key, kind="stable")`` for non-negative int64 keys.

    When the key and the row number fit in 63 bits together, the row number is packed
    below the key and the packed values are sorted without the indirection of an argsort
    (about twice as fast); the row numbers make every packed value distinct, so the
    result is exactly the stable order.
    """
    n = len(key)
    shift = max(int(n - 1).bit_length(), 1)
    if int(key.max()).bit_length() + shift <= 63:
        packed = (key << np.int64(shift)) | np.arange(n, dtype=np.int64)
        packed.sort()
        return packed & np.int64((1 << shift) - 1)
    return np.argsort(key, kind="stable")


def items_from_rows(
    cell: np.ndarray,
    contrib: np.ndarray,
    n_contrib: int,
    n_cells: int,
    values: np.ndarray | None,
) -> Items:
    """Collapse rows to one item per (cell, contributor), ordered by (contributor, cell)."""
    if len(cell) == 0:
        return _empty()
    n_g = np.int64(max(n_cells, 1))
    key = contrib.astype(np.int64) * n_g + cell.astype(np.int64)
    if values is None:
        # Counts need no row payload: sorting the keys alone is enough.
        skey = np.sort(key)
        starts, _ = _runs(skey)
        ukey = skey[starts]
        rows = np.diff(np.append(starts, len(skey)))
        return Items(ukey % n_g, ukey // n_g, rows.astype(np.float64), rows)
    order = _stable_order(key)
    skey = key[order]
    v = values[order]
    starts, codes = _runs(skey)
    ukey = skey[starts]
    present = ~np.isnan(v)
    # Rows with a value per item: differences of the running count at the run ends.
    seen = np.cumsum(present, dtype=np.int64)[np.append(starts[1:], len(v)) - 1]
    return Items(
        group=ukey % n_g,
        contrib=ukey // n_g,
        # Sequential per item, in row order (the sort is stable).
        total=np.bincount(codes, weights=np.where(present, v, 0.0), minlength=len(starts)),
        rows=np.diff(seen, prepend=np.int64(0)),
    )


def _collapse_sorted(items: Items, key: np.ndarray, group: np.ndarray) -> Items:
    """Merge items whose ``key`` is equal; ``key`` is sorted, ``group`` a function of it."""
    if len(key) == 0:
        return _empty()
    starts, codes = _runs(key)
    n = len(starts)
    return Items(
        group=group[starts],
        contrib=items.contrib[starts],
        total=np.bincount(codes, weights=items.total, minlength=n),
        rows=np.bincount(codes, weights=items.rows, minlength=n).astype(np.int64),
    )


def margin_items(items: Items, n_rows: int, n_cols: int) -> tuple[Items, Items, Items]:
    """(row margin, column margin, grand total) items, one per (margin cell, contributor).

    ``items`` must come from ``items_from_rows`` (ordered by contributor, then cell =
    row * n_cols + column).
    """
    c = np.int64(max(n_cols, 1))
    row = items.group // c
    col = items.group % c
    # (contributor, row) is non-decreasing in item order: the runs are already there.
    by_row = _collapse_sorted(items, items.contrib * np.int64(max(n_rows, 1)) + row, row)
    # (contributor, column) is sorted within each contributor's few items only: a stable
    # sort of a nearly sorted key (cheap) brings equal pairs together.
    col_key = items.contrib * c + col
    order = np.argsort(col_key, kind="stable")
    by_col = _collapse_sorted(items.take(order), col_key[order], col[order])
    # Every contributor's items are contiguous.
    everyone = _collapse_sorted(items, items.contrib, np.zeros_like(items.contrib))
    return by_row, by_col, everyone


def row_stats(cell: np.ndarray, values: np.ndarray | None, n_cells: int) -> Stats:
    """rows, negatives, missing, vmin, vmax per cell straight from the rows."""
    n = max(n_cells, 0)
    if values is None:
        rows = np.bincount(cell, minlength=n).astype(np.int64)
        ones = np.where(rows > 0, 1.0, np.nan)  # every row counts 1
        zeros = np.zeros(n, dtype=np.int64)
        return {
            "rows": rows,
            "negatives": zeros,
            "missing": zeros.copy(),
            "vmin": ones,
            "vmax": ones.copy(),
        }
    present = ~np.isnan(values)
    vmin = np.full(n, np.inf)
    vmax = np.full(n, -np.inf)
    np.minimum.at(vmin, cell, np.where(present, values, np.inf))
    np.maximum.at(vmax, cell, np.where(present, values, -np.inf))
    return {
        "rows": np.bincount(cell, weights=present, minlength=n).astype(np.int64),
        "negatives": np.bincount(cell, weights=values < 0, minlength=n).astype(np.int64),
        "missing": np.bincount(cell, weights=~present, minlength=n).astype(np.int64),
        "vmin": np.where(np.isfinite(vmin), vmin, np.nan),
        "vmax": np.where(np.isfinite(vmax), vmax, np.nan),
    }


def margin_row_stats(inner: Stats, n_rows: int, n_cols: int) -> tuple[Stats, Stats, Stats]:
    """The row-level statistics of the row margin, column margin and grand total, reduced
    from the cells' (counts add up, min/max of min/max; NaN marks an empty cell)."""
    out: tuple[Stats, Stats, Stats] = ({}, {}, {})
    for key, arr in inner.items():
        grid = arr.reshape(n_rows, n_cols)
        if key in ("vmin", "vmax"):
            op = np.fmin if key == "vmin" else np.fmax  # skips NaN (empty cells)
            # NaN is the identity of fmin/fmax, so empty tables reduce too.
            parts = [
                op.reduce(grid, axis=1, initial=np.nan),
                op.reduce(grid, axis=0, initial=np.nan),
                op.reduce(grid.ravel(), initial=np.nan),
            ]
        else:
            parts = [grid.sum(axis=1), grid.sum(axis=0), grid.sum()]
        for target, part in zip(out, parts, strict=True):
            target[key] = np.atleast_1d(np.asarray(part, dtype=arr.dtype))
    return out


def _top_contributions(group: np.ndarray, mag: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """The k largest magnitudes (>= 0) per group, largest first (0 when absent).

    Each round takes the largest value left in every group and how many items hold it,
    fills that many slots and retires those items: at most k linear passes, no sort.
    """
    out = np.zeros((n_groups, k), dtype=np.float64)
    left = mag.astype(np.float64, copy=True)
    filled = np.zeros(n_groups, dtype=np.int64)
    slots = np.arange(k)
    for _ in range(k):
        best = np.full(n_groups, -1.0)
        np.maximum.at(best, group, left)
        at_best = left == best[group]
        at_best &= left >= 0
        count = np.bincount(group[at_best], minlength=n_groups)
        take = (slots[None, :] >= filled[:, None]) & (slots[None, :] < (filled + count)[:, None])
        out[take] = np.broadcast_to(best[:, None], out.shape)[take]
        filled += count
        if (filled >= k).all() or not count.any():
            break
        left[at_best] = -1.0
    # An infinite contribution takes its slot but is not reported as a number.
    out[~np.isfinite(out)] = 0.0
    return out


def group_stats(items: Items, n_groups: int, top_k: int, rowwise: Stats) -> Stats:
    """Statistics per group id in ``range(n_groups)``: the row-level ones as given, the
    contributor-level ones from the group's items."""
    g = items.group
    stats = dict(rowwise)
    stats["contributors"] = np.bincount(g, weights=items.rows > 0, minlength=n_groups).astype(
        np.int64
    )
    stats["sum"] = np.bincount(g, weights=items.total, minlength=n_groups)
    # Dominance is judged on absolute contributions: with negative values a signed total
    # can be near zero while one contributor is huge (a hole in ratio-of-sum checks).
    mag = np.abs(items.total)
    has = items.rows > 0
    top = _top_contributions(g[has], mag[has], n_groups, top_k)
    for j in range(top_k):
        stats[f"top{j + 1}"] = top[:, j]
    stats["abs_sum"] = np.bincount(g, weights=mag, minlength=n_groups)
    return stats
