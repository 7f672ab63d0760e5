"""Certificates that a suppressed cell can move: feasible tables without a solver.

Any table that keeps every published number and every a priori bound is a point of the
audit's linear programme, so each one proves part of a hidden cell's feasible interval.
These are built from the structure of a two-way table with margins: with
``z[i, j] = s_i s_j x[i, j]`` (``s = -1`` on the margin row/column) every row and column
of ``z`` sums to zero, so the hidden cells' deviations from the true table form a
circulation on the bipartite graph of rows and columns whose edges are the hidden cells.
"""

from __future__ import annotations

import numpy as np

CANDIDATES = 24  # partner rows/columns tried per cell in a cycle certificate


def cycle_certificates(
    values: np.ndarray, suppressed: np.ndarray, nonneg: bool, cells: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each suppressed cell of an ``(R+1) x (C+1)`` table with margins (or only for the
    flat indices ``cells``), the widest rectangle move ``(down, up)`` that keeps every
    relation and bound satisfied.

    With ``z[i, j] = s_i s_j x[i, j]`` (``s = -1`` on the margin row/column) every row and
    column of ``z`` sums to zero, so ``+t, -t, -t, +t`` on the corners of any rectangle of
    suppressed cells is feasible while no corner turns negative.
    """
    n_r, n_c = values.shape
    sign_r = np.ones(n_r)
    sign_r[-1] = -1.0
    sign_c = np.ones(n_c)
    sign_c[-1] = -1.0
    down = np.zeros(values.shape)
    up = np.zeros(values.shape)
    inf = np.inf
    # The suppressed cells of every row and column, found once (not once per cell).
    row_hidden = [np.flatnonzero(line) for line in suppressed]
    col_hidden = [np.flatnonzero(line) for line in suppressed.T]
    where = np.nonzero(suppressed) if cells is None else np.divmod(cells, n_c)
    for r, c in zip(*(a.tolist() for a in where), strict=True):
        cols = row_hidden[r]
        cols = cols[cols != c]
        rows = col_hidden[c]
        rows = rows[rows != r]
        if not len(cols) or not len(rows):
            continue
        # Any rectangle is a valid certificate, so on heavily suppressed tables only the
        # partners with the largest values (which allow the largest moves) are tried.
        if len(cols) > CANDIDATES:
            cols = cols[np.argsort(values[r, cols])[-CANDIDATES:]]
        if len(rows) > CANDIDATES:
            rows = rows[np.argsort(values[rows, c])[-CANDIDATES:]]
        rows_col = rows[:, None]
        corner = suppressed[rows_col, cols]
        if not corner.any():
            continue
        if not nonneg:
            down[r, c] = up[r, c] = inf
            continue
        # x-move per unit t of the target (+1 by choice of orientation) and the other
        # corners; all signs are +-1, so the products are exact.
        s_target = sign_r[r] * sign_c[c]
        a_rc2 = sign_c[cols] * (-sign_r[r] * s_target)  # (r, c'), per column
        a_r2c = sign_r[rows] * (-sign_c[c] * s_target)  # (r', c), per row
        a_r2c2 = sign_r[rows_col] * sign_c[cols] * s_target  # (r', c')
        x_rc2 = values[r, cols]
        x_r2c = values[rows, c]
        x_r2c2 = values[rows_col, cols]
        # t >= -x for corners moving with t, t <= x for corners moving against it.
        d = np.minimum(
            np.minimum(np.where(a_rc2 > 0, x_rc2, inf), np.where(a_r2c > 0, x_r2c, inf)[:, None]),
            np.minimum(np.where(a_r2c2 > 0, x_r2c2, inf), values[r, c]),
        )
        u = np.minimum(
            np.minimum(np.where(a_rc2 < 0, x_rc2, inf), np.where(a_r2c < 0, x_r2c, inf)[:, None]),
            np.where(a_r2c2 < 0, x_r2c2, inf),
        )
        # Each rectangle gives a feasible point below and one above the true value; the
        # interval spans the lowest and the highest of them (possibly from two rectangles).
        down[r, c] = d[corner].max()
        up[r, c] = u[corner].max()
    return down, up


def _signs(n: int) -> np.ndarray:
    sign = np.ones(n)
    sign[-1] = -1.0
    return sign


def rectangle_moves(values: np.ndarray, cell: int, nonneg: bool) -> tuple[np.ndarray, np.ndarray]:
    """For every rectangle ``(r, c), (r, c'), (r', c), (r', c')`` through ``cell = (r, c)``,
    indexed by its far corner ``(r', c')``, how far the rectangle move can take the cell
    down and up (if all four corners were hidden). Row ``r`` and column ``c`` are not
    rectangles and get zero."""
    n_r, n_c = values.shape
    r, c = divmod(int(cell), n_c)
    sign_r, sign_c = _signs(n_r), _signs(n_c)
    if not nonneg:
        down = np.full(values.shape, np.inf)
        up = down.copy()
    else:
        inf = np.inf
        s_t = sign_r[r] * sign_c[c]
        # x-move per unit t of the target (+1) and the other corners, as in cycle_certificates.
        a_row = -sign_r[r] * sign_c * s_t  # corner (r, c'), per column
        a_col = -sign_r * sign_c[c] * s_t  # corner (r', c), per row
        a_far = np.outer(sign_r, sign_c) * s_t  # corner (r', c')
        x_row, x_col = values[r], values[:, c]
        down = np.minimum(
            np.minimum(
                np.where(a_row > 0, x_row, inf)[None, :], np.where(a_col > 0, x_col, inf)[:, None]
            ),
            np.minimum(np.where(a_far > 0, values, inf), values[r, c]),
        )
        up = np.minimum(
            np.minimum(
                np.where(a_row < 0, x_row, inf)[None, :], np.where(a_col < 0, x_col, inf)[:, None]
            ),
            np.where(a_far < 0, values, inf),
        )
    down[r, :] = down[:, c] = 0.0
    up[r, :] = up[:, c] = 0.0
    return down, up


def cheapest_rectangle(
    values: np.ndarray,
    suppressed: np.ndarray,
    cost: np.ndarray,
    width: np.ndarray,
    cell: int,
    below: float,
    above: float,
    nonneg: bool,
) -> np.ndarray | None:
    """The flat indices of the three other corners of the cheapest rectangle through
    ``cell`` that protects it on its own: its move reaches ``below`` under and ``above``
    over the cell's value and spans the cell's required ``width`` and that of every corner
    it newly hides. Hidden corners cost nothing (so a rectangle already in the pattern
    costs 0); ties go to the rectangle hiding the least value. None if there is none.
    """
    n_c = values.shape[1]
    r, c = divmod(int(cell), n_c)
    down, up = rectangle_moves(values, cell, nonneg)
    span = down + up
    new_row, new_col, new_far = ~suppressed[r], ~suppressed[:, c], ~suppressed
    corner_width = np.maximum(
        np.maximum(
            np.where(new_row, width[r], 0.0)[None, :], np.where(new_col, width[:, c], 0.0)[:, None]
        ),
        np.where(new_far, width, 0.0),
    )
    tol = 1e-9
    ok = (down >= below - tol) & (up >= above - tol) & (span > 0)
    ok &= span >= np.maximum(corner_width, width[r, c]) - tol
    ok[r, :] = ok[:, c] = False
    if not ok.any():
        return None
    mag = np.abs(values)
    total = (
        np.where(new_row, cost[r], 0.0)[None, :]
        + np.where(new_col, cost[:, c], 0.0)[:, None]
        + np.where(new_far, cost, 0.0)
    )
    hidden_value = (
        np.where(new_row, mag[r], 0.0)[None, :]
        + np.where(new_col, mag[:, c], 0.0)[:, None]
        + np.where(new_far, mag, 0.0)
    )
    idx = np.flatnonzero(ok)
    best = int(idx[np.lexsort((hidden_value.ravel()[idx], total.ravel()[idx]))[0]])
    r2, c2 = divmod(best, n_c)
    return np.array([r * n_c + c2, r2 * n_c + c, best])
