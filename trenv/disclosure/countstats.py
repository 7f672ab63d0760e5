"""Statistics of count tables (no values column) from sorted keys and their few repeats.

In a count table every row weighs 1, so each grouping's contributor-level statistics
follow from how many rows share a (contributor, group) pair: the distinct contributors
are the rows minus the *repeats* (rows whose pair an earlier row already has), and the
largest contributions are 1 for every contributor except those with repeats. Sorting the
rows' (contributor, row, column) keys, packed in bit fields, puts equal pairs next to
each other; one pass of ``key ^ previous key`` then finds the repeats of the cells (no
bit differs), of the row margin (none above the column bits) and where each contributor
starts (the grand total). The column margin's pairs need a second sort, of (contributor,
column) keys (32-bit when they fit). Repeats are few in real tables (a person has few
rows in one cell), so what is collected per repeat costs little; nothing is built per
(contributor, cell) item as ``cellstats`` does for sums.

Every quantity is an integer (exact as float64 below 2**53), so the results equal those
of ``cellstats``' item statistics bit for bit; ``tests/disclosure/test_fast_path.py``
compares the two.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from trenv.disclosure.cellstats import (
    CHUNK,
    Stats,
    _bits,
    _boundaries,
    _top_contributions,
    _workers,
)

# From this many rows on, the column margin's sort runs in a thread of its own.
PARALLEL_MIN = 1 << 20


def _rowwise(rows: np.ndarray) -> Stats:
    """The row-level statistics of a count grouping (every row has the value 1)."""
    return {
        "rows": rows,
        "negatives": np.zeros(len(rows), dtype=np.int64),
        "missing": np.zeros(len(rows), dtype=np.int64),
        "vmin": np.where(rows > 0, 1.0, np.nan),
        "vmax": np.where(rows > 0, 1.0, np.nan),
    }


def _bincount(values: np.ndarray, n_bins: int) -> np.ndarray:
    """``np.bincount(values, minlength=n_bins)`` block by block: bincount casts narrower
    integers to int64 first, a hidden full-length copy; a block's copy is recycled."""
    step = max(CHUNK, n_bins)
    out = np.zeros(n_bins, dtype=np.int64)
    for lo in range(0, len(values), step):
        out += np.bincount(values[lo : lo + step], minlength=n_bins)
    return out


def _contributor_stats(
    rows: np.ndarray, contributors: np.ndarray, top: np.ndarray, top_k: int
) -> Stats:
    """``rowwise`` plus the contributor-level statistics of ``cellstats.group_stats``.

    ``top`` holds the ``top_k`` largest contributions (rows of one contributor) per group,
    largest first; every row counts 1, so the sum and the absolute sum are the rows.
    """
    stats = _rowwise(rows)
    stats["contributors"] = contributors
    stats["sum"] = rows.astype(np.float64)
    for j in range(top_k):
        stats[f"top{j + 1}"] = top[:, j]
    stats["abs_sum"] = rows.astype(np.float64)
    return stats


def _tops(repeats: np.ndarray, group: np.ndarray, contributors: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest contributions per group, from the sorted ``repeats``.

    ``repeats`` holds, for every row that repeats a (contributor, group) pair, a value
    equal for the rows of the same pair (sorted, so they are contiguous); ``group`` is
    that pair's group. A pair with ``m`` rows has ``m - 1`` repeats. Contributors without
    repeats contribute 1: the sorted contributions of a group are its pairs with repeats,
    largest first, then ones up to the number of contributors, then zeros.
    """
    n_groups = len(contributors)
    if len(repeats):
        starts = _boundaries(repeats)
        where = np.flatnonzero(starts)
        multiplicity = np.diff(where, append=len(repeats)) + 1
        heavy = _top_contributions(group[where], multiplicity.astype(np.float64), n_groups, k)
    else:
        heavy = np.zeros((n_groups, k), dtype=np.float64)
    ones = contributors[:, None] > np.arange(k)[None, :]
    return np.maximum(heavy, ones)


def _union_tops(top: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest of the ``top`` lists along axis 1 (shape ``(groups, parts, k)``)."""
    flat = top.reshape(top.shape[0], -1)
    return -np.sort(-flat, axis=1)[:, :k]


def _repeat_pass(
    key: np.ndarray, row_shift: int, person_shift: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over the sorted ``key``: the keys of cell repeats (equal to the previous key), the
    keys of row-margin repeats (equal above ``row_shift``) and the positions where a new
    contributor starts (a difference at or above ``person_shift``), in block passes."""
    cell_rep, row_rep, person_starts = [], [], [np.zeros(1, dtype=np.int64)]
    row_low = np.int64((1 << row_shift) - 1)
    person_low = np.int64((1 << person_shift) - 1)
    for lo in range(1, len(key), CHUNK):
        hi = min(lo + CHUNK, len(key))
        block = key[lo:hi]
        diff = block ^ key[lo - 1 : hi - 1]
        cell_rep.append(block[diff == 0])
        row_rep.append(block[diff <= row_low])
        new_person = np.flatnonzero(diff > person_low)
        new_person += lo
        person_starts.append(new_person)
    empty = np.zeros(0, dtype=np.int64)
    return (
        np.concatenate(cell_rep) if cell_rep else empty,
        np.concatenate(row_rep) if row_rep else empty,
        np.concatenate(person_starts) if len(key) else empty,
    )


def _repeats(key: np.ndarray) -> np.ndarray:
    """The values of a sorted key that equal their predecessor (block passes)."""
    found = [np.zeros(0, dtype=key.dtype)]
    for lo in range(1, len(key), CHUNK):
        hi = min(lo + CHUNK, len(key))
        block = key[lo:hi]
        found.append(block[block == key[lo - 1 : hi - 1]])
    return np.concatenate(found)


def _column_repeats(
    contrib: np.ndarray, col: np.ndarray, cb: int, pb: int, spent: np.ndarray
) -> np.ndarray:
    """The sorted (contributor, column) keys that repeat their predecessor (int64).

    32-bit keys go into ``spent``, a buffer of that length the caller no longer needs
    (no fresh memory), cast block by block.
    """
    if pb + cb <= 31 and spent.dtype == np.int32:
        col_key = np.left_shift(contrib, cb, out=spent)
    else:
        col_key = contrib << np.int64(cb)
    col_key |= col
    col_key.sort()
    return _repeats(col_key).astype(np.int64)


def count_stats(
    row: np.ndarray,
    col: np.ndarray,
    n_rows: int,
    n_cols: int,
    contrib: np.ndarray | None,
    n_contrib: int,
    top_k: int,
    margins: bool,
) -> list[Stats] | None:
    """(cells, row margin, column margin, grand total) statistics of a count table.

    ``row`` and ``col`` are each row's table row and column (0-based; ``row`` int32 or
    int64, and overwritten, ``col`` any integer type), ``contrib`` its contributor id (int64) in
    ``0 .. n_contrib - 1`` or None (every row its own contributor). The cells come flat in
    row-major order (cell = row * n_cols + column). Without ``margins`` the margins'
    contributor-level statistics are what ``cellstats`` gives for unpublished margins
    (their cells' contributors added up, the largest contributions of their cells). None
    when the packed keys would not fit in 63 bits (the caller then uses ``cellstats``).
    """
    r, c, n = n_rows, n_cols, len(row)
    rb, cb = _bits(r), _bits(c)
    pb = _bits(n_contrib)
    if contrib is not None and pb + rb + cb > 63:
        return None
    cell_bits = row  # (row, column) in bit fields, in the rows' own buffer
    cell_bits <<= cell_bits.dtype.type(cb)
    cell_bits |= col
    # Row-major bins of width 2**cb (a few empty bins per row), trimmed to the table.
    padded = _bincount(cell_bits, r << cb).reshape(r, 1 << cb)
    rows_grid = np.ascontiguousarray(padded[:, :c])
    rows = rows_grid.ravel()
    row_rows, col_rows = rows_grid.sum(axis=1), rows_grid.sum(axis=0)
    grand_rows = np.array([rows.sum()], dtype=np.int64)
    if contrib is None:
        # Every row is its own contributor: contributors and contributions are the rows.
        def alone(counts: np.ndarray) -> Stats:
            top = (counts[:, None] > np.arange(top_k)[None, :]).astype(np.float64)
            return _contributor_stats(counts, counts.copy(), top, top_k)

        return [alone(rows), alone(row_rows), alone(col_rows), alone(grand_rows)]
    person_shift = rb + cb
    key = contrib << np.int64(person_shift)
    key |= cell_bits
    # The column margin's sort is independent of the cells' and the row margin's: on a
    # large table it runs in a second thread (numpy sorts without the GIL).
    with ThreadPoolExecutor(1) as pool:
        col_job: Future[np.ndarray] | None = None
        if margins and n >= PARALLEL_MIN and _workers() >= 2:
            col_job = pool.submit(_column_repeats, contrib, col, cb, pb, cell_bits)
        elif margins:
            col_rep = _column_repeats(contrib, col, cb, pb, cell_bits)
        del cell_bits
        key.sort()  # numpy's SIMD sort, in place
        if margins:
            cell_rep, row_rep, person_starts = _repeat_pass(key, cb, person_shift)
        else:
            cell_rep = _repeats(key)
        del key
        if col_job is not None:
            col_rep = col_job.result()
    cell_mask = np.int64((1 << person_shift) - 1)
    rep_cell = cell_rep & cell_mask
    rep_cell = (rep_cell >> np.int64(cb)) * np.int64(c) + (rep_cell & np.int64((1 << cb) - 1))
    inner_contrib = rows - np.bincount(rep_cell, minlength=r * c)
    inner_top = _tops(cell_rep, rep_cell, inner_contrib, top_k)
    inner = _contributor_stats(rows, inner_contrib, inner_top, top_k)
    if not margins:
        # Unpublished margins: not de-duplicated, as cellstats leaves them.
        grid_contrib = inner_contrib.reshape(r, c)
        grid_top = inner_top.reshape(r, c, top_k)
        return [
            inner,
            _contributor_stats(
                row_rows, grid_contrib.sum(axis=1), _union_tops(grid_top, top_k), top_k
            ),
            _contributor_stats(
                col_rows,
                grid_contrib.sum(axis=0),
                _union_tops(grid_top.transpose(1, 0, 2), top_k),
                top_k,
            ),
            _contributor_stats(
                grand_rows,
                np.array([inner_contrib.sum()], dtype=np.int64),
                _union_tops(grid_top.reshape(1, r * c, top_k), top_k),
                top_k,
            ),
        ]
    # Row margin: the (contributor, row) pairs are the keys above the column bits.
    row_pair = row_rep >> np.int64(cb)
    rep_row = row_pair & np.int64((1 << rb) - 1)
    row_contrib = row_rows - np.bincount(rep_row, minlength=r)
    by_row = _contributor_stats(
        row_rows, row_contrib, _tops(row_pair, rep_row, row_contrib, top_k), top_k
    )
    # Grand total: each contributor's rows are one run of the sorted keys.
    per_person = np.diff(person_starts, append=np.int64(n)).astype(np.float64)
    everyone = _contributor_stats(
        grand_rows,
        np.array([len(person_starts)], dtype=np.int64),
        _top_contributions(np.zeros(len(per_person), dtype=np.int64), per_person, 1, top_k),
        top_k,
    )
    # Column margin: from the repeats of the (contributor, column) keys.
    rep_col = col_rep & np.int64((1 << cb) - 1)
    col_contrib = col_rows - np.bincount(rep_col, minlength=c)
    by_col = _contributor_stats(
        col_rows, col_contrib, _tops(col_rep, rep_col, col_contrib, top_k), top_k
    )
    return [inner, by_row, by_col, everyone]
