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
from itertools import pairwise

import numpy as np

Stats = dict[str, np.ndarray]

# Below this many items the k rounds over all items are cheap enough without a prefilter.
PREFILTER_MIN = 4096


@dataclass(frozen=True)
class Items:
    """Per-(group, contributor) aggregates: what the contributor-level statistics need."""

    group: np.ndarray  # int64 group id per item
    contrib: np.ndarray | None  # int64 contributor id per item (None once no longer needed)
    total: np.ndarray  # float64 sum of the contributor's values in the group
    has: np.ndarray | None  # bool: the item has a value (None: every item has one)

    def with_group(self, group: np.ndarray) -> Items:
        return Items(group, self.contrib, self.total, self.has)


def _empty() -> Items:
    i = np.zeros(0, dtype=np.int64)
    return Items(i, i, np.zeros(0, dtype=np.float64), None)


def _bits(n: int) -> int:
    """Bits for the ids ``0 .. n - 1`` (at least 1)."""
    return max(int(n - 1).bit_length(), 1)


def _boundaries(sorted_key: np.ndarray) -> np.ndarray:
    """``True`` where a run of equal values starts in a sorted (non-empty) array.

    Full length (the first position is a start), so the run starts are one
    ``flatnonzero`` and the run numbers one ``cumsum``, without concatenating.
    """
    starts = np.empty(len(sorted_key), dtype=bool)
    starts[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=starts[1:])
    return starts


def _codes(boundaries: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The run number of every position (for ``bincount``, one sequential pass in C).

    ``out`` may be a spent int64 buffer of the same length: on these machines the first
    touch of freshly allocated memory costs as much as the arithmetic, so the large
    temporaries are kept few.
    """
    codes = np.cumsum(boundaries, out=out, dtype=np.int64)
    codes -= 1
    return codes


def _runs(sorted_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index of every run of equal values in a sorted (non-empty) array, and the
    run number of every position."""
    bounds = _boundaries(sorted_key)
    return np.flatnonzero(bounds), _codes(bounds)


def _stable_sort(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, key[order])`` with ``order = argsort(key, kind="stable")`` for
    non-negative int64 keys; ``key`` is consumed (overwritten).

    When the key and the row number fit in 63 bits together, the row number is packed
    below the key and the packed values are sorted in place, without the indirection of
    an argsort (about twice as fast); the row numbers make every packed value distinct, so
    the result is exactly the stable order, and the sorted keys are the packed values
    shifted back (no gather through ``order``).
    """
    n = len(key)
    shift = np.int64(_bits(n))
    if int(key.max()).bit_length() + int(shift) <= 63:
        key <<= shift
        key |= np.arange(n, dtype=np.int64)
        key.sort()
        order = key & np.int64((1 << int(shift)) - 1)
        key >>= shift
        return order, key
    order = np.argsort(key, kind="stable")
    return order, key[order]


def _stable_order(key: np.ndarray) -> np.ndarray:
    """``argsort(key, kind="stable")`` for non-negative int64 keys."""
    return _stable_sort(key.copy())[0]


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
    # Contributor above the cell bits: shifts and masks split the key again (cheaper than
    # division), and the order is the same as that of ``contrib * n_cells + cell``.
    bits = np.int64(_bits(n_cells))
    mask = np.int64((1 << int(bits)) - 1)
    key = contrib.astype(np.int64, copy=False) << bits
    key |= cell
    if values is None:
        # Counts need no row payload: sorting the keys alone is enough.
        key.sort()
        starts = np.flatnonzero(_boundaries(key))
        ukey = key[starts]
        rows = np.diff(starts, append=np.int64(len(key)))
        return Items(ukey & mask, ukey >> bits, rows.astype(np.float64), None)
    order, skey = _stable_sort(key)
    v = values[order]
    bounds = _boundaries(skey)
    starts = np.flatnonzero(bounds)
    ukey = skey[starts]
    del skey
    codes = _codes(bounds, out=order)  # the order is spent once the values are gathered
    present = ~np.isnan(v)
    has: np.ndarray | None = None
    if not present.all():
        np.copyto(v, 0.0, where=~present)
        has = np.bincount(codes, weights=present, minlength=len(starts)) > 0
    return Items(
        group=ukey & mask,
        contrib=ukey >> bits,
        # Sequential per item, in row order (the sort is stable).
        total=np.bincount(codes, weights=v, minlength=len(starts)),
        has=has,
    )


def _collapse(items: Items, bounds: np.ndarray, group: np.ndarray) -> Items:
    """Merge the runs of consecutive items that ``bounds`` (as from ``_boundaries``)
    delimits; ``group`` gives each item's new group (equal within a run)."""
    starts = np.flatnonzero(bounds)
    codes = _codes(bounds)
    n = len(starts)
    return Items(
        group=group[starts],
        contrib=None,  # margin items are not collapsed any further
        total=np.bincount(codes, weights=items.total, minlength=n),
        has=None if items.has is None else np.bincount(codes, weights=items.has, minlength=n) > 0,
    )


def margin_items(items: Items, n_rows: int, n_cols: int) -> tuple[Items, Items, Items]:
    """(row margin, column margin, grand total) items, one per (margin cell, contributor).

    ``items`` must come from ``items_from_rows`` (ordered by contributor, then cell =
    row * n_cols + column).
    """
    if len(items.total) == 0:
        return _empty(), _empty(), _empty()
    assert items.contrib is not None
    contrib = items.contrib
    row, col = np.divmod(items.group, np.int64(max(n_cols, 1)))
    new_contrib = _boundaries(contrib)
    # Every contributor's items are contiguous.
    everyone = _collapse(items, new_contrib, np.zeros(len(contrib), dtype=np.int64))
    # (contributor, row) is non-decreasing in item order: the runs are already there.
    new_row = new_contrib
    new_row[1:] |= row[1:] != row[:-1]
    by_row = _collapse(items, new_row, row)
    del row, new_row, new_contrib
    # (contributor, column) is sorted within each contributor's few items only: a stable
    # sort of a nearly sorted key (cheap) brings equal pairs together.
    cbits = np.int64(_bits(max(n_cols, 1)))
    col_key = contrib << cbits
    col_key |= col
    del col
    order = np.argsort(col_key, kind="stable")
    col_key = col_key[order]
    by_col = _collapse(
        Items(col_key, None, items.total[order], None if items.has is None else items.has[order]),
        _boundaries(col_key),
        col_key & np.int64((1 << int(cbits)) - 1),
    )
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
    vmin = np.full(n, np.inf)
    vmax = np.full(n, -np.inf)
    missing_rows = np.isnan(values)
    # Few rows are missing or negative: counting the cells of those rows only is exact
    # and avoids two float weight arrays as long as the data.
    missing = np.bincount(cell[missing_rows], minlength=n).astype(np.int64)
    negatives = np.bincount(cell[values < 0], minlength=n).astype(np.int64)
    if missing_rows.any():
        present = ~missing_rows
        np.minimum.at(vmin, cell[present], values[present])
        np.maximum.at(vmax, cell[present], values[present])
    else:
        np.minimum.at(vmin, cell, values)
        np.maximum.at(vmax, cell, values)
    return {
        "rows": np.bincount(cell, minlength=n).astype(np.int64) - missing,
        "negatives": negatives,
        "missing": missing,
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


def _candidates(group: np.ndarray, mag: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """Positions of the items that can be among their group's ``k`` largest.

    The items are split into ``k`` disjoint chunks; the largest item of every chunk is a
    distinct item, so the smallest of those ``k`` chunk maxima is a lower bound on the
    group's ``k``-th largest value, and items below it cannot be in the top ``k`` (ties at
    the bound are kept). One pass over the items instead of ``k`` rounds over all of them.
    """
    bound = np.full(n_groups, np.inf)
    edges = np.linspace(0, len(mag), k + 1).astype(np.int64)
    for lo, hi in pairwise(edges.tolist()):
        chunk_max = np.full(n_groups, -np.inf)
        np.maximum.at(chunk_max, group[lo:hi], mag[lo:hi])
        np.minimum(bound, chunk_max, out=bound)
    return np.flatnonzero(mag >= bound[group])


def _top_contributions(group: np.ndarray, mag: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """The k largest magnitudes (>= 0) per group, largest first (0 when absent).

    Each round takes the largest value left in every group and how many items hold it,
    fills that many slots and retires those items: at most k linear passes, no sort.
    """
    out = np.zeros((n_groups, k), dtype=np.float64)
    if n_groups == 1:
        # The grand total: a partial sort of its items is cheaper than the rounds.
        m = min(k, len(mag))
        if m:
            top = np.partition(mag, len(mag) - m)[len(mag) - m :]
            out[0, :m] = np.sort(top)[::-1]
        out[~np.isfinite(out)] = 0.0
        return out
    if len(mag) > PREFILTER_MIN:
        keep = _candidates(group, mag, n_groups, k)
        group, mag = group[keep], mag[keep]
    left = mag.astype(np.float64, copy=True)
    filled = np.zeros(n_groups, dtype=np.int64)
    slots = np.arange(k)
    for _ in range(k):
        best = np.full(n_groups, -1.0)
        np.maximum.at(best, group, left)
        at_best = left == best[group]
        at_best &= left >= 0
        # Counting through weights avoids gathering the groups of the retired items.
        count = np.bincount(group, weights=at_best, minlength=n_groups).astype(np.int64)
        take = (slots[None, :] >= filled[:, None]) & (slots[None, :] < (filled + count)[:, None])
        out[take] = np.broadcast_to(best[:, None], out.shape)[take]
        filled += count
        if (filled >= k).all() or not count.any():
            break
        np.copyto(left, -1.0, where=at_best)
    # An infinite contribution takes its slot but is not reported as a number.
    out[~np.isfinite(out)] = 0.0
    return out


def group_stats(
    items: Items, n_groups: int, top_k: int, rowwise: Stats, consume: bool = False
) -> Stats:
    """Statistics per group id in ``range(n_groups)``: the row-level ones as given, the
    contributor-level ones from the group's items.

    ``consume=True`` lets the magnitudes overwrite ``items.total`` (one large allocation
    less) when the caller no longer needs the items.
    """
    g = items.group
    stats = dict(rowwise)
    has = items.has
    if has is None:
        stats["contributors"] = np.bincount(g, minlength=n_groups).astype(np.int64)
    else:
        stats["contributors"] = np.bincount(g, weights=has, minlength=n_groups).astype(np.int64)
    stats["sum"] = np.bincount(g, weights=items.total, minlength=n_groups)
    # Dominance is judged on absolute contributions: with negative values a signed total
    # can be near zero while one contributor is huge (a hole in ratio-of-sum checks).
    mag = np.abs(items.total, out=items.total if consume else None)
    if has is None:
        top = _top_contributions(g, mag, n_groups, top_k)
    else:
        top = _top_contributions(g[has], mag[has], n_groups, top_k)
    for j in range(top_k):
        stats[f"top{j + 1}"] = top[:, j]
    stats["abs_sum"] = np.bincount(g, weights=mag, minlength=n_groups)
    return stats
