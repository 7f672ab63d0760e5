"""Per-cell statistics in one vectorised pass: what every rule needs, nothing row-level.

The rows are first collapsed to one item per (cell, contributor) with a single hash
factorisation; everything else (distinct contributors, sums, the largest contributions
per contributor, negatives, missing values, min/max) is a bincount or a grouped
reduction over those items. Margins are aggregated from the same items, so the raw rows
are read once however many margins a table has. This is what replaces ACRO's one pandas
query per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STAT_NAMES = ("rows", "contributors", "sum", "negatives", "missing", "vmin", "vmax")


@dataclass(frozen=True)
class Items:
    """Per-(group, contributor) aggregates; the unit every statistic is derived from."""

    group: np.ndarray  # int64 group id per item
    contrib: np.ndarray  # int64 contributor id per item
    total: np.ndarray  # float64 sum of the contributor's values in the group
    rows: np.ndarray  # int64 rows with a value
    negatives: np.ndarray  # int64 rows with a negative value
    missing: np.ndarray  # int64 rows with a missing value
    vmin: np.ndarray  # float64 smallest row value (nan if none)
    vmax: np.ndarray  # float64 largest row value (nan if none)


def items_from_rows(
    group: np.ndarray, contrib: np.ndarray, n_contrib: int, values: np.ndarray | None
) -> Items:
    """Collapse rows to one item per (group, contributor)."""
    key = group.astype(np.int64) * np.int64(max(n_contrib, 1)) + contrib.astype(np.int64)
    codes, uniques = pd.factorize(key, sort=False)
    n_items = len(uniques)
    if values is None:
        present = np.ones(len(group), dtype=bool)
        vals = np.ones(len(group), dtype=np.float64)
    else:
        present = ~np.isnan(values)
        vals = np.where(present, values, 0.0)
    rows = np.bincount(codes, weights=present, minlength=n_items).astype(np.int64)
    total = np.bincount(codes, weights=vals, minlength=n_items)
    neg = np.bincount(codes, weights=vals < 0, minlength=n_items).astype(np.int64)
    miss = np.bincount(codes, weights=~present, minlength=n_items).astype(np.int64)
    if values is None:
        vmin = np.ones(n_items)
        vmax = np.ones(n_items)
    else:
        # A cythonised grouped min/max; NaNs are skipped, like pandas' own aggregations.
        grouped = pd.Series(values).groupby(codes, sort=True)
        vmin = grouped.min().to_numpy(dtype=np.float64)
        vmax = grouped.max().to_numpy(dtype=np.float64)
    n_c = np.int64(max(n_contrib, 1))
    return Items(uniques // n_c, uniques % n_c, total, rows, neg, miss, vmin, vmax)


def regroup(items: Items, new_group: np.ndarray, n_contrib: int) -> Items:
    """Aggregate items to coarser groups (margins) without touching the raw rows again."""
    key = new_group.astype(np.int64) * np.int64(max(n_contrib, 1)) + items.contrib
    codes, uniques = pd.factorize(key, sort=False)
    n = len(uniques)
    frame = pd.DataFrame({"vmin": items.vmin, "vmax": items.vmax})
    mm = frame.groupby(codes, sort=True).agg({"vmin": "min", "vmax": "max"})
    n_c = np.int64(max(n_contrib, 1))
    return Items(
        group=uniques // n_c,
        contrib=uniques % n_c,
        total=np.bincount(codes, weights=items.total, minlength=n),
        rows=np.bincount(codes, weights=items.rows, minlength=n).astype(np.int64),
        negatives=np.bincount(codes, weights=items.negatives, minlength=n).astype(np.int64),
        missing=np.bincount(codes, weights=items.missing, minlength=n).astype(np.int64),
        vmin=mm["vmin"].to_numpy(dtype=np.float64),
        vmax=mm["vmax"].to_numpy(dtype=np.float64),
    )


def _top_contributions(group: np.ndarray, mag: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """The k largest per-contributor magnitudes per group, largest first (0 when absent).

    Repeated grouped idxmax is O(k * items) and avoids sorting every item.
    """
    out = np.zeros((n_groups, k), dtype=np.float64)
    remaining = pd.Series(mag, copy=True)
    grp = pd.Series(group)
    for j in range(k):
        live = remaining.notna()
        if not live.any():
            break
        idx = remaining[live].groupby(grp[live], sort=False).idxmax()
        out[idx.index.to_numpy(), j] = remaining.to_numpy()[idx.to_numpy()]
        remaining.iloc[idx.to_numpy()] = np.nan
    return out


def group_stats(items: Items, n_groups: int, top_k: int) -> dict[str, np.ndarray]:
    """Statistics per group id in ``range(n_groups)`` from its items."""
    g = items.group
    has = items.rows > 0
    vmin = np.full(n_groups, np.nan)
    vmax = np.full(n_groups, np.nan)
    if len(g):
        mm = pd.DataFrame({"g": g, "vmin": items.vmin, "vmax": items.vmax}).groupby("g")
        agg = mm.agg({"vmin": "min", "vmax": "max"})
        vmin[agg.index.to_numpy()] = agg["vmin"].to_numpy()
        vmax[agg.index.to_numpy()] = agg["vmax"].to_numpy()
    stats = {
        "rows": np.bincount(g, weights=items.rows, minlength=n_groups).astype(np.int64),
        "contributors": np.bincount(g, weights=has, minlength=n_groups).astype(np.int64),
        "sum": np.bincount(g, weights=items.total, minlength=n_groups),
        "negatives": np.bincount(g, weights=items.negatives, minlength=n_groups).astype(np.int64),
        "missing": np.bincount(g, weights=items.missing, minlength=n_groups).astype(np.int64),
        "vmin": vmin,
        "vmax": vmax,
    }
    # Dominance is judged on absolute contributions: with negative values a signed total
    # can be near zero while one contributor is huge (a hole in ratio-of-sum checks).
    top = _top_contributions(g[has], np.abs(items.total[has]), n_groups, top_k)
    for j in range(top_k):
        stats[f"top{j + 1}"] = top[:, j]
    stats["abs_sum"] = np.bincount(g, weights=np.abs(items.total), minlength=n_groups)
    return stats
