"""Per-cell statistics in one vectorised pass: what every rule needs, nothing row-level.

The rows are first collapsed to one item per (cell, contributor) with a single hash
factorisation; everything else (distinct contributors, sums, the largest contributions
per contributor, negatives, missing values, min/max) is a ``bincount`` or an unbuffered
``ufunc.at`` reduction over those items (both linear and in C, no sorting). Margins are
aggregated from the same items, so the raw rows are read once however many margins a
table has. This is what replaces ACRO's one pandas query per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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


def _minmax(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    vmin = np.full(n, np.inf)
    vmax = np.full(n, -np.inf)
    np.minimum.at(vmin, codes, lo)
    np.maximum.at(vmax, codes, hi)
    return vmin, vmax


def items_from_rows(
    group: np.ndarray, contrib: np.ndarray, n_contrib: int, values: np.ndarray | None
) -> Items:
    """Collapse rows to one item per (group, contributor)."""
    n_c = np.int64(max(n_contrib, 1))
    key = group.astype(np.int64) * n_c + contrib.astype(np.int64)
    codes, uniques = pd.factorize(key, sort=False)
    n_items = len(uniques)
    if values is None:
        rows = np.bincount(codes, minlength=n_items).astype(np.int64)
        zeros = np.zeros(n_items, dtype=np.int64)
        ones = np.ones(n_items)
        return Items(
            uniques // n_c, uniques % n_c, rows.astype(np.float64), rows, zeros, zeros, ones, ones
        )
    present = ~np.isnan(values)
    vals = np.where(present, values, 0.0)
    vmin, vmax = _minmax(
        codes, np.where(present, values, np.inf), np.where(present, values, -np.inf), n_items
    )
    return Items(
        group=uniques // n_c,
        contrib=uniques % n_c,
        total=np.bincount(codes, weights=vals, minlength=n_items),
        rows=np.bincount(codes, weights=present, minlength=n_items).astype(np.int64),
        negatives=np.bincount(codes, weights=vals < 0, minlength=n_items).astype(np.int64),
        missing=np.bincount(codes, weights=~present, minlength=n_items).astype(np.int64),
        vmin=vmin,
        vmax=vmax,
    )


def _aggregate(items: Items, codes: np.ndarray, n: int) -> dict[str, np.ndarray]:
    vmin, vmax = _minmax(codes, items.vmin, items.vmax, n)
    return {
        "total": np.bincount(codes, weights=items.total, minlength=n),
        "rows": np.bincount(codes, weights=items.rows, minlength=n).astype(np.int64),
        "negatives": np.bincount(codes, weights=items.negatives, minlength=n).astype(np.int64),
        "missing": np.bincount(codes, weights=items.missing, minlength=n).astype(np.int64),
        "vmin": vmin,
        "vmax": vmax,
    }


def regroup(items: Items, new_group: np.ndarray, n_contrib: int) -> Items:
    """Aggregate items to coarser groups (margins) without touching the raw rows again."""
    n_c = np.int64(max(n_contrib, 1))
    key = new_group.astype(np.int64) * n_c + items.contrib
    codes, uniques = pd.factorize(key, sort=False)
    return Items(
        group=uniques // n_c, contrib=uniques % n_c, **_aggregate(items, codes, len(uniques))
    )


def collapse_all(items: Items, n_contrib: int) -> Items:
    """One group (the grand total): contributor ids index a dense array, no hashing."""
    agg = _aggregate(items, items.contrib, max(n_contrib, 1))
    seen = np.bincount(items.contrib, minlength=max(n_contrib, 1)) > 0
    contrib = np.flatnonzero(seen)
    return Items(
        group=np.zeros(len(contrib), dtype=np.int64),
        contrib=contrib,
        **{k: v[seen] for k, v in agg.items()},
    )


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
    vmin, vmax = _minmax(g, items.vmin, items.vmax, n_groups)
    stats = {
        "rows": np.bincount(g, weights=items.rows, minlength=n_groups).astype(np.int64),
        "contributors": np.bincount(g, weights=has, minlength=n_groups).astype(np.int64),
        "sum": np.bincount(g, weights=items.total, minlength=n_groups),
        "negatives": np.bincount(g, weights=items.negatives, minlength=n_groups).astype(np.int64),
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
