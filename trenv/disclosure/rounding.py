"""Rounding to base with consistent totals: the inner cells of a count table are rounded,
its margins recomputed from the published (rounded) cells.

Rounding each margin independently would let a reader compare a total with the sum of its
rounded cells and narrow down the true values; recomputing margins from the rounded cells
keeps the published table additive, so it leaks nothing beyond the rounded cells. The
price is that a margin is no longer a rounding of its true total (it can be off by half a
base per cell). Controlled rounding (``trenv.disclosure.controlled``) rounds the margins
too and keeps the table additive; it needs a solver, these rules need none.
"""

from __future__ import annotations

import numpy as np


def round_base(values: np.ndarray, base: int) -> np.ndarray:
    """Round to the nearest multiple of ``base`` (halves upwards, as OpenSAFELY does)."""
    return np.floor(values / base + 0.5) * base


def round_midpoint6(values: np.ndarray) -> np.ndarray:
    """OpenSAFELY's midpoint-6 rounding: 0 stays 0, 1-6 -> 3, 7-12 -> 9, ...

    ``ceiling(x / 6) * 6 - 3 * (x != 0)``: every published value is the midpoint of the
    band of six true values it stands for.
    """
    return np.ceil(values / 6) * 6 - 3 * (values != 0)


def round_table(table: np.ndarray, method: str, base: int) -> np.ndarray:
    """Round the inner cells of an ``(R+1) x (C+1)`` table; margins become sums of them.

    The margins are summed even when the table does not publish them: shares
    of a normalised table are divided by them, and NaN margins made every share NaN.
    Unpublished margins are dropped by the caller, so summing them reveals nothing.
    """
    if method == "none":
        return table.copy()
    out = table.astype(np.float64).copy()
    inner = out[:-1, :-1]
    rounded = round_midpoint6(inner) if method == "midpoint6" else round_base(inner, base)
    out[:-1, :-1] = rounded
    out[:-1, -1] = rounded.sum(axis=1)
    out[-1, :-1] = rounded.sum(axis=0)
    out[-1, -1] = rounded.sum()
    return out
