"""Per-cell statistics in one vectorised pass: what every rule needs, nothing row-level.

The rows are first collapsed to one item per (cell, contributor) by a single sort of one
combined int64 key (contributor major, cell minor) and the run boundaries of the sorted
keys; no hashing and no Python loop over cells. Everything else (distinct contributors,
sums, the largest contributions per contributor, negatives, missing values, min/max) is a
``bincount``, a ``reduceat`` over those runs or an unbuffered ``ufunc.at`` reduction.

Margins are aggregated from the same items, never from the raw rows: because the items
are ordered by (contributor, row, column), the (row margin, contributor) pairs and the
(grand total, contributor) pairs are already contiguous runs, and the (column margin,
contributor) pairs need one stable sort of a nearly sorted key. This is what replaces
ACRO's one pandas query per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Items:
    """Per-(group, contributor) aggregates; the unit every statistic is derived from."""

    group: np.ndarray  # int64 group id per item
    contrib: np.ndarray  # int64 contributor id per item
    total: np.ndarray  # float64 sum of the contributor's values in the group
    rows: np.ndarray  # int64 rows with a value
    negatives: np.ndarray  # int64 rows with a negative value
    missing: np.ndarray  # int64 rows with a missing value
    vmin: np.ndarray  # float64 smallest row value (+inf if none)
    vmax: np.ndarray  # float64 largest row value (-inf if none)
    # Counting rows (no values column): every row counts 1, so total == rows, there are no
    # negatives or missing values and vmin == vmax == 1; those arrays are then not read.
    plain: bool = False

    def take(self, order: np.ndarray) -> Items:
        if self.plain:
            return _plain(self.group[order], self.contrib[order], self.rows[order])
        return Items(
            group=self.group[order],
            contrib=self.contrib[order],
            total=self.total[order],
            rows=self.rows[order],
            negatives=self.negatives[order],
            missing=self.missing[order],
            vmin=self.vmin[order],
            vmax=self.vmax[order],
        )


def _plain(group: np.ndarray, contrib: np.ndarray, rows: np.ndarray) -> Items:
    zeros = np.zeros(len(rows), dtype=np.int64)
    ones = np.ones(len(rows))
    return Items(group, contrib, rows.astype(np.float64), rows, zeros, zeros, ones, ones, True)


def _empty() -> Items:
    i = np.zeros(0, dtype=np.int64)
    f = np.zeros(0, dtype=np.float64)
    return Items(i, i, f, i, i, i, f, f)


def _run_starts(sorted_key: np.ndarray) -> np.ndarray:
    """Start index of every run of equal values in a sorted (non-empty) array."""
    change = np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1
    return np.concatenate((np.zeros(1, dtype=np.int64), change.astype(np.int64)))


def _run_codes(starts: np.ndarray, n: int) -> np.ndarray:
    """Run number of every position (0, 0, 1, 1, 1, 2, ...) from the run starts."""
    flag = np.zeros(n, dtype=np.int64)
    flag[starts[1:]] = 1
    return np.cumsum(flag)


def _sum_runs(weights: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Float sums per run, accumulated in order (like ``bincount``, no pairwise regrouping)."""
    return np.bincount(_run_codes(starts, len(weights)), weights=weights, minlength=len(starts))


def items_from_rows(
    cell: np.ndarray,
    contrib: np.ndarray,
    n_contrib: int,
    n_cells: int,
    values: np.ndarray | None,
) -> Items:
    """Collapse rows to one item per (cell, contributor), ordered by (contributor, cell).

    Within an item the rows keep their original order (stable sort), so a contributor's
    total in a cell is summed exactly as a sequential pass over the rows would.
    """
    if len(cell) == 0:
        return _empty()
    n_g = np.int64(max(n_cells, 1))
    key = contrib.astype(np.int64) * n_g + cell.astype(np.int64)
    if values is None:
        # Counts need no row payload: sorting the keys alone is enough.
        skey = np.sort(key)
        starts = _run_starts(skey)
        ukey = skey[starts]
        rows = np.diff(np.append(starts, len(skey)))
        return _plain(ukey % n_g, ukey // n_g, rows)
    order = np.argsort(key, kind="stable")
    skey = key[order]
    v = values[order]
    starts = _run_starts(skey)
    ukey = skey[starts]
    present = ~np.isnan(v)
    vals = np.where(present, v, 0.0)
    return Items(
        group=ukey % n_g,
        contrib=ukey // n_g,
        total=_sum_runs(vals, starts),
        rows=np.add.reduceat(present, starts, dtype=np.int64),
        negatives=np.add.reduceat(vals < 0, starts, dtype=np.int64),
        missing=np.add.reduceat(~present, starts, dtype=np.int64),
        vmin=np.minimum.reduceat(np.where(present, v, np.inf), starts),
        vmax=np.maximum.reduceat(np.where(present, v, -np.inf), starts),
    )


def _collapse_sorted(items: Items, key: np.ndarray, group: np.ndarray) -> Items:
    """Merge items whose ``key`` is equal; ``key`` is sorted, ``group`` a function of it."""
    if len(key) == 0:
        return _empty()
    starts = _run_starts(key)
    if items.plain:
        rows = np.add.reduceat(items.rows, starts, dtype=np.int64)
        return _plain(group[starts], items.contrib[starts], rows)
    return Items(
        group=group[starts],
        contrib=items.contrib[starts],
        total=_sum_runs(items.total, starts),
        rows=np.add.reduceat(items.rows, starts, dtype=np.int64),
        negatives=np.add.reduceat(items.negatives, starts, dtype=np.int64),
        missing=np.add.reduceat(items.missing, starts, dtype=np.int64),
        vmin=np.minimum.reduceat(items.vmin, starts),
        vmax=np.maximum.reduceat(items.vmax, starts),
    )


def margin_items(items: Items, n_cols: int) -> tuple[Items, Items, Items]:
    """(row margin, column margin, grand total) items, one per (margin cell, contributor).

    ``items`` must come from ``items_from_rows`` (ordered by contributor, then cell =
    row * n_cols + column).
    """
    c = np.int64(max(n_cols, 1))
    row = items.group // c
    col = items.group % c
    # (contributor, row) is non-decreasing in item order: the runs are already there.
    by_row = _collapse_sorted(items, items.contrib * (row.max(initial=0) + 1) + row, row)
    # (contributor, column) is sorted within each contributor's few items only: a stable
    # sort of a nearly sorted key (cheap) brings equal pairs together.
    col_key = items.contrib * c + col
    order = np.argsort(col_key, kind="stable")
    by_col = _collapse_sorted(items.take(order), col_key[order], col[order])
    # Every contributor's items are contiguous.
    everyone = _collapse_sorted(items, items.contrib, np.zeros_like(items.contrib))
    return by_row, by_col, everyone


def _minmax(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    vmin = np.full(n, np.inf)
    vmax = np.full(n, -np.inf)
    np.minimum.at(vmin, codes, lo)
    np.maximum.at(vmax, codes, hi)
    return vmin, vmax


def _top_contributions(group: np.ndarray, mag: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """The k largest per-contributor magnitudes per group, largest first (0 when absent).

    Each round takes the group maximum and removes exactly one item holding it (ties keep
    their duplicates for the next round): k linear passes, no sort.
    """
    out = np.zeros((n_groups, k), dtype=np.float64)
    live = np.ones(len(mag), dtype=bool)
    index = np.arange(len(mag))
    for j in range(k):
        best = np.full(n_groups, -np.inf)
        np.maximum.at(best, group[live], mag[live])
        has = np.isfinite(best)
        out[has, j] = best[has]
        hit = live & (mag == best[group])
        first = np.full(n_groups, len(mag))
        np.minimum.at(first, group[hit], index[hit])
        live[first[first < len(mag)]] = False
    return out


def group_stats(items: Items, n_groups: int, top_k: int) -> dict[str, np.ndarray]:
    """Statistics per group id in ``range(n_groups)`` from its items."""
    g = items.group
    has = items.rows > 0
    rows = np.bincount(g, weights=items.rows, minlength=n_groups).astype(np.int64)
    if items.plain:
        # Every item is at least one row of value 1: nothing else to reduce.
        ones = np.where(rows > 0, 1.0, np.nan)
        zeros = np.zeros(n_groups, dtype=np.int64)
        stats = {
            "rows": rows,
            "contributors": np.bincount(g, minlength=n_groups).astype(np.int64),
            "sum": rows.astype(np.float64),
            "negatives": zeros,
            "missing": zeros.copy(),
            "vmin": ones,
            "vmax": ones.copy(),
        }
    else:
        vmin, vmax = _minmax(g, items.vmin, items.vmax, n_groups)
        stats = {
            "rows": rows,
            "contributors": np.bincount(g, weights=has, minlength=n_groups).astype(np.int64),
            "sum": np.bincount(g, weights=items.total, minlength=n_groups),
            "negatives": np.bincount(g, weights=items.negatives, minlength=n_groups).astype(
                np.int64
            ),
            "missing": np.bincount(g, weights=items.missing, minlength=n_groups).astype(np.int64),
            "vmin": np.where(np.isfinite(vmin), vmin, np.nan),
            "vmax": np.where(np.isfinite(vmax), vmax, np.nan),
        }
    # Dominance is judged on absolute contributions: with negative values a signed total
    # can be near zero while one contributor is huge (a hole in ratio-of-sum checks).
    top = _top_contributions(g[has], np.abs(items.total[has]), n_groups, top_k)
    for j in range(top_k):
        stats[f"top{j + 1}"] = top[:, j]
    stats["abs_sum"] = np.bincount(g, weights=np.abs(items.total), minlength=n_groups)
    return stats
