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
contributor) pairs are collapsed in blocks of whole contributors, in a dense array of
slots per block (tables with many columns sort instead). This is what replaces ACRO's one
pandas query per cell. Count tables (no values) take ``countstats``, which needs no items.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

Stats = dict[str, np.ndarray]

# Below this many items the k rounds over all items are cheap enough without a prefilter.
PREFILTER_MIN = 4096
# From this many rows on, the gather of the values into sorted order is split across
# threads: numpy releases the GIL while indexing, and a random gather waits on memory, so
# two threads nearly halve it (0.23 s to 0.12 s at 10M on two cores).
PARALLEL_TAKE_MIN = 1 << 20
# The column margin is collapsed in blocks of whole contributors with this many
# (contributor, column) slots at most (4 MB of totals, in cache), when a block still holds
# this many items; tables with more columns sort instead.
BLOCK_SLOTS = 1 << 19
BLOCK_MIN_ITEMS = 1 << 12
# Elementwise passes over long arrays go in blocks of this many positions: their
# temporaries (8 MB) are recycled by the allocator, while every full-length temporary
# is fresh memory, whose page faults cost as much as the arithmetic on this kind of VM.
CHUNK = 1 << 20


@dataclass(frozen=True)
class Items:
    """Per-(group, contributor) aggregates: what the contributor-level statistics need."""

    group: np.ndarray  # int64 group id per item
    contrib: np.ndarray | None  # int64 contributor id per item (None once no longer needed)
    total: np.ndarray  # float64 sum of the contributor's values in the group
    # bool: the item has a value (None: every item has one); items without have total 0.0
    has: np.ndarray | None

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
    codes = np.empty(len(boundaries), dtype=np.int64) if out is None else out
    # Block by block with a carry: a cumsum of the whole bool array into int64 would first
    # cast all of it (a hidden temporary as long as the output).
    carry = np.int64(-1)
    for lo, hi in _spans(len(boundaries)):
        block = np.cumsum(boundaries[lo:hi], out=codes[lo:hi], dtype=np.int64)
        block += carry
        carry = block[-1]
    return codes


def _sums(codes: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(codes, weights=weights, minlength=n)``, the same floats: both add
    the weights in input order onto 0.0. ``np.add.at`` is faster here and does without
    the second output-sized buffer that ``bincount`` allocates for weights."""
    # Filled, not calloc'ed (np.zeros): add.at reads before it writes, and a page of
    # calloc'ed memory faults twice then (the zero page, then a page of its own).
    out = np.empty(n, dtype=np.float64)
    out.fill(0.0)
    np.add.at(out, codes, weights)
    return out


def _spans(n: int, start: int = 0) -> Iterator[tuple[int, int]]:
    """``[lo, hi)`` blocks of ``CHUNK`` positions covering ``start .. n - 1``."""
    for lo in range(start, n, CHUNK):
        yield lo, min(lo + CHUNK, n)


def _sorted(key: np.ndarray) -> np.ndarray:
    """``np.sort(key)`` for int64 keys, in place (``key`` is overwritten and returned).

    numpy sorts 64-bit integers with its SIMD quicksort (x86-simd-sort on AVX2 and
    AVX-512): 10M keys in 0.07-0.1 s of CPU on this machine, less than polars' sort
    (0.17 s on one thread, more on two) and without its copy. Sorting in place also
    touches no fresh memory.
    """
    key.sort()
    return key


def _workers() -> int:
    """CPUs this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _take(values: np.ndarray, order: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``values[order]``, in parallel chunks for large inputs (the same elements either
    way: each chunk is a plain gather into its own slice of the result); into ``out``
    (a spent buffer of that dtype and length) if given."""
    n, workers = len(order), min(_workers(), 8)
    if out is None:
        out = np.empty(n, dtype=values.dtype)
    if n < PARALLEL_TAKE_MIN or workers < 2:
        # "clip" because "raise" buffers ``out``; the positions are in range anyway.
        return np.take(values, order, out=out, mode="clip")
    edges = np.linspace(0, n, workers + 1).astype(np.int64).tolist()

    def part(lo: int, hi: int) -> None:
        # "clip" because "raise" buffers ``out``; the positions are in range anyway.
        np.take(values, order[lo:hi], out=out[lo:hi], mode="clip")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(part, edges[:-1], edges[1:]))
    return out


def _pack_positions(key: np.ndarray) -> int | None:
    """Shift ``key`` (non-negative int64) left and put every position's index in the low
    bits, in place; the shift, or None (``key`` untouched) when they do not fit in 63 bits.

    The packed values are distinct and sort like ``(key, position)``: sorting them gives
    the stable order of the keys without an argsort's indirection.
    """
    n = len(key)
    shift = _bits(n)
    if int(key.max()).bit_length() + shift > 63:
        return None
    key <<= np.int64(shift)
    for lo, hi in _spans(n):
        key[lo:hi] |= np.arange(lo, hi, dtype=np.int64)
    return shift


def _packed_starts(packed: np.ndarray, shift: int) -> np.ndarray:
    """``_boundaries(packed >> shift)`` for sorted packed keys, without the shifted copy:
    for non-negative values ``a >> s != b >> s`` exactly when ``a ^ b`` has a bit at or
    above ``s``, i.e. ``a ^ b > 2**s - 1``."""
    starts = np.empty(len(packed), dtype=bool)
    starts[0] = True
    low = np.int64((1 << shift) - 1)
    for lo, hi in _spans(len(packed), 1):
        np.greater(packed[lo:hi] ^ packed[lo - 1 : hi - 1], low, out=starts[lo:hi])
    return starts


def _sort_runs(key: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(order, starts, run_keys, spent)`` of non-negative int64 keys, ``key`` consumed:
    ``order = argsort(key, kind="stable")``, ``starts = _boundaries(key[order])`` and
    ``run_keys = key[order][starts]`` (the distinct keys, ascending); ``spent`` is an
    int64 buffer as long as the keys that the caller may overwrite (fresh memory costs
    page faults as much as the arithmetic here).

    The positions are packed below the keys and the packed values sorted in place (they
    are distinct, so the sort has one answer: the stable order); keys too wide for that
    go to numpy's stable argsort.
    """
    shift = _pack_positions(key)
    if shift is None:
        order = np.argsort(key, kind="stable")
        skey = key[order]
        starts = _boundaries(skey)
        return order, starts, skey[starts], skey
    packed = _sorted(key)
    order = np.bitwise_and(packed, np.int64((1 << shift) - 1))
    starts = _packed_starts(packed, shift)
    run_keys = packed[starts]  # a mask index copies directly (compress gathers indices first)
    run_keys >>= np.int64(shift)
    return order, starts, run_keys, packed


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
        key = _sorted(key)
        starts = np.flatnonzero(_boundaries(key))
        ukey = key[starts]
        rows = np.diff(starts, append=np.int64(len(key)))
        return Items(ukey & mask, ukey >> bits, rows.astype(np.float64), None)
    order, bounds, ukey, spent = _sort_runs(key)
    del key
    m = len(ukey)
    v = _take(values, order, out=spent.view(np.float64))  # the sorted keys are spent
    codes = _codes(bounds, out=order)  # the order is spent once the values are gathered
    del bounds
    missing = np.isnan(v)
    has: np.ndarray | None = None
    if missing.any():
        np.copyto(v, 0.0, where=missing)
        has = np.bincount(codes, weights=~missing, minlength=m) > 0
    # Sequential per item, in row order (the sort is stable).
    total = _sums(codes, v, m)
    del v
    # The run numbers are spent: their buffer takes the cells, the keys the contributors.
    group = np.bitwise_and(ukey, mask, out=codes[:m])
    ukey >>= bits
    return Items(group=group, contrib=ukey, total=total, has=has)


def _collapse(
    items: Items, bounds: np.ndarray, group: np.ndarray, starts_group: bool = False
) -> Items:
    """Merge the runs of consecutive items that ``bounds`` (as from ``_boundaries``)
    delimits; ``group`` gives each item's new group (equal within a run), or with
    ``starts_group`` each run's group already.

    The run numbers are made block by block and the totals added block by block, in item
    order (the same floats as one ``add.at`` over all items), without a run-number array
    as long as the items.
    """
    n = int(np.count_nonzero(bounds))
    total = np.empty(n, dtype=np.float64)
    total.fill(0.0)  # filled, not calloc'ed: see _sums
    has = None if items.has is None else np.zeros(n, dtype=bool)
    carry = np.int64(-1)
    for lo, hi in _spans(len(bounds)):
        codes = np.cumsum(bounds[lo:hi], dtype=np.int64)
        codes += carry
        carry = codes[-1]
        np.add.at(total, codes, items.total[lo:hi])
        if has is not None and items.has is not None:
            has[codes[items.has[lo:hi]]] = True
    return Items(
        group=group if starts_group else group[np.flatnonzero(bounds)],
        contrib=None,  # margin items are not collapsed any further
        total=total,
        has=has,
    )


def _per_contributor(items: Items, n_contrib: int) -> Items:
    """The grand total's items, indexed by contributor id (``0 .. n_contrib - 1``).

    ``bincount`` adds each contributor's items in item order, as collapsing their runs
    does, so the totals are the same floats; ids without items get a total of 0 and
    ``has`` False, which leaves every statistic of the grand total unchanged. One pass
    instead of a collapse (run numbers, starts, a group array as long as the items).
    """
    assert items.contrib is not None
    contrib = items.contrib
    if items.has is None:
        has = np.bincount(contrib, minlength=n_contrib) > 0
    else:
        has = np.bincount(contrib, weights=items.has, minlength=n_contrib) > 0
    return Items(
        group=np.zeros(n_contrib, dtype=np.int64),
        contrib=None,
        total=_sums(contrib, items.total, n_contrib),
        has=has,
    )


def _column_margin_by_sort(items: Items, n_cols: int) -> Items:
    """The column margin's items: (contributor, column) is sorted within each
    contributor's few items only, so a stable sort (of a nearly sorted key) brings equal
    pairs together, in item order."""
    assert items.contrib is not None
    nc = np.int64(n_cols)
    cbits = np.int64(_bits(n_cols))
    col_key = items.contrib << cbits
    for lo, hi in _spans(len(col_key)):
        col_key[lo:hi] |= items.group[lo:hi] % nc
    order, bounds, run_keys, spent = _sort_runs(col_key)
    del col_key
    run_keys &= np.int64((1 << int(cbits)) - 1)
    sorted_items = Items(
        run_keys,  # unused by the collapse
        None,
        _take(items.total, order, out=spent.view(np.float64)),
        None if items.has is None else items.has[order],
    )
    del order
    return _collapse(sorted_items, bounds, run_keys, starts_group=True)


def _column_margin_by_blocks(items: Items, n_cols: int) -> Items:
    """The column margin's items, as ``_column_margin_by_sort`` makes them, without a sort.

    The items come in blocks of whole contributors; within a block, a dense array of
    (contributor in the block, column) slots takes every item's total with ``add.at``, in
    item order (so each slot's total is added in the order the sort would give), and the
    occupied slots, in slot order, are the block's items in (contributor, column) order.
    The slots of a block fit in cache; nothing as long as the items is sorted or gathered.
    """
    assert items.contrib is not None
    contrib, m = items.contrib, len(items.group)
    nc = np.int64(n_cols)
    step = max(BLOCK_SLOTS // n_cols, 1)
    # Block edges at the first item of a contributor (ids are non-decreasing).
    nominal = np.arange(step, m, step)
    edges = np.unique(np.searchsorted(contrib, contrib[nominal], side="left")).tolist()
    edges = [0, *(e for e in edges if 0 < e < m), m]
    # At most one slot per item: the results go straight into arrays as long as the
    # items, of which only the part filled is ever touched (no pieces to concatenate).
    out_group = np.empty(m, dtype=np.int64)
    out_total = np.empty(m, dtype=np.float64)
    out_has = None if items.has is None else np.empty(m, dtype=bool)
    filled = 0
    # The slots are zero (and unused) between blocks: each block resets the ones it used,
    # so a block costs its items, not its slots (zeroing fresh slot arrays per block cost
    # more than the collapse).
    slot_total = np.zeros(0, dtype=np.float64)
    slot_used = np.zeros(0, dtype=bool)
    slot_has = np.zeros(0, dtype=bool)
    for lo, hi in pairwise(edges):
        person = contrib[lo:hi]
        new_person = np.empty(hi - lo, dtype=bool)
        new_person[0] = True
        np.not_equal(person[1:], person[:-1], out=new_person[1:])
        slot = np.cumsum(new_person, dtype=np.int64)
        slot -= 1
        n_slots = (int(slot[-1]) + 1) * n_cols
        if n_slots > len(slot_total):
            slot_total = np.zeros(n_slots, dtype=np.float64)
            slot_used = np.zeros(n_slots, dtype=bool)
            slot_has = np.zeros(n_slots if items.has is not None else 0, dtype=bool)
        slot *= nc
        slot += items.group[lo:hi] % nc
        np.add.at(slot_total, slot, items.total[lo:hi])
        slot_used[slot] = True
        where = np.flatnonzero(slot_used[:n_slots])
        end = filled + len(where)
        np.remainder(where, nc, out=out_group[filled:end])
        np.take(slot_total, where, out=out_total[filled:end], mode="clip")
        slot_total[where] = 0.0
        slot_used[where] = False
        if out_has is not None and items.has is not None:
            slot_has[slot[items.has[lo:hi]]] = True
            np.take(slot_has, where, out=out_has[filled:end], mode="clip")
            slot_has[where] = False
        filled = end
    return Items(
        group=out_group[:filled],
        contrib=None,
        total=out_total[:filled],
        has=None if out_has is None else out_has[:filled],
    )


def margin_items(
    items: Items, n_rows: int, n_cols: int, n_contrib: int | None = None
) -> tuple[Items, Items, Items]:
    """(row margin, column margin, grand total) items, one per (margin cell, contributor).

    ``items`` must come from ``items_from_rows`` (ordered by contributor, then cell =
    row * n_cols + column). ``n_contrib`` bounds the contributor ids: when the ids are no
    sparser than the items, the grand total's items come from a ``bincount`` by id.
    """
    if len(items.total) == 0:
        return _empty(), _empty(), _empty()
    assert items.contrib is not None
    contrib, group, m = items.contrib, items.group, len(items.group)
    nc = np.int64(max(n_cols, 1))
    if n_contrib is not None and n_contrib <= m:
        everyone = _per_contributor(items, n_contrib)
    else:
        # Every contributor's items are contiguous.
        everyone = _collapse(items, _boundaries(contrib), np.zeros(m, dtype=np.int64))
    # (contributor, row) is non-decreasing in item order: the runs are already there.
    new_row = np.empty(m, dtype=bool)
    new_row[0] = True
    for lo, hi in _spans(m, 1):
        rows = group[lo - 1 : hi] // nc
        np.not_equal(rows[1:], rows[:-1], out=new_row[lo:hi])
        new_row[lo:hi] |= contrib[lo:hi] != contrib[lo - 1 : hi - 1]
    row_group = group[new_row]
    row_group //= nc
    by_row = _collapse(items, new_row, row_group, starts_group=True)
    del new_row, row_group
    if BLOCK_SLOTS // int(nc) >= BLOCK_MIN_ITEMS:
        by_col = _column_margin_by_blocks(items, int(nc))
    else:
        by_col = _column_margin_by_sort(items, int(nc))
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
    keep = np.empty(len(mag), dtype=bool)
    for lo, hi in _spans(len(mag)):
        np.greater_equal(mag[lo:hi], bound[group[lo:hi]], out=keep[lo:hi])
    return np.flatnonzero(keep)


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
    contributors = np.bincount(g, minlength=n_groups)
    if has is not None:
        contributors -= np.bincount(g[~has], minlength=n_groups)  # few items lack a value
    stats["contributors"] = contributors.astype(np.int64)
    # (bincount gives int64 for no items at all: the sums stay float64 for empty tables too)
    stats["sum"] = np.bincount(g, weights=items.total, minlength=n_groups).astype(np.float64)
    # Dominance is judged on absolute contributions: with negative values a signed total
    # can be near zero while one contributor is huge (a hole in ratio-of-sum checks).
    if np.signbit(items.total).any():
        mag = np.abs(items.total, out=items.total if consume else None)
        abs_sum = np.bincount(g, weights=mag, minlength=n_groups).astype(np.float64)
    else:
        # No negative total (nor -0.0): the magnitudes are the totals, bit for bit, and
        # their sums the sums.
        mag, abs_sum = items.total, stats["sum"].copy()
    # Items without a value have a total of 0, which changes no group's largest
    # contributions (absent ones are 0 too): no need to leave them out.
    top = _top_contributions(g, mag, n_groups, top_k)
    for j in range(top_k):
        stats[f"top{j + 1}"] = top[:, j]
    stats["abs_sum"] = abs_sum
    return stats
