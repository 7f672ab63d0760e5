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
from scipy import sparse
from scipy.sparse.csgraph import maximum_flow

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


def _top_hidden(values: np.ndarray, hidden: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of its ``k`` largest hidden cells (largest first), -1 padded."""
    key = np.where(hidden, values, -np.inf)
    k = min(k, key.shape[1])
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]
    return np.where(np.isfinite(np.take_along_axis(key, order, axis=1)), order, -1)


def many_cycle_certificates(
    values: np.ndarray, suppressed: np.ndarray, cells: np.ndarray, k: int = CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """(down, up) per flat index of ``cells`` (non-negative tables): the move of up to
    ``k`` rectangles through the cell at once, with distinct other rows and columns.

    Rectangles that share only the target cell add up: every other corner lies in one of
    them, so each moves within its own bound while the target moves by the sum (down by
    no more than its own value). This proves the room of cells on heavily suppressed
    tables of small counts, where every single rectangle is too thin but many are not.
    The k-th largest partner in the row is paired with the k-th largest in the column.
    """
    n_r, n_c = values.shape
    sign_r, sign_c = _signs(n_r), _signs(n_c)
    inf = np.inf
    r, c = np.divmod(np.asarray(cells, dtype=np.int64), n_c)
    row_top = _top_hidden(values, suppressed, k + 1)[r]  # candidate columns c'
    col_top = _top_hidden(values.T, suppressed.T, k + 1)[c]  # candidate rows r'
    ok_c = (row_top >= 0) & (row_top != c[:, None])
    ok_r = (col_top >= 0) & (col_top != r[:, None])
    cc, rr = np.maximum(row_top, 0), np.maximum(col_top, 0)
    # x-move per unit t of the corners (the target moves +1), as in rectangle_moves.
    a_row = -sign_c[cc] * sign_c[c][:, None]
    a_col = -sign_r[rr] * sign_r[r][:, None]
    x_row, x_col = values[r[:, None], cc], values[rr, c[:, None]]
    moves = []
    for side in (1.0, -1.0):  # t up (the corners moving against it bound it), then down
        cap_row = np.where(ok_c, np.where(side * a_row < 0, x_row, inf), -1.0)
        cap_col = np.where(ok_r, np.where(side * a_col < 0, x_col, inf), -1.0)
        by_c = np.argsort(-cap_row, axis=1, kind="stable")[:, :k]
        by_r = np.argsort(-cap_col, axis=1, kind="stable")[:, :k]
        m = min(by_c.shape[1], by_r.shape[1])
        by_c, by_r = by_c[:, :m], by_r[:, :m]
        cols = np.take_along_axis(cc, by_c, axis=1)
        rows = np.take_along_axis(rr, by_r, axis=1)
        cap_c = np.take_along_axis(cap_row, by_c, axis=1)
        cap_r = np.take_along_axis(cap_col, by_r, axis=1)
        a_far = np.take_along_axis(a_row, by_c, axis=1) * np.take_along_axis(a_col, by_r, axis=1)
        x_far = values[rows, cols]
        cap_far = np.where(side * a_far < 0, x_far, inf)
        usable = (cap_c >= 0) & (cap_r >= 0) & suppressed[rows, cols]
        each = np.where(usable, np.minimum(np.minimum(cap_c, cap_r), cap_far), 0.0)
        moves.append(each.sum(axis=1))
    up, down = moves
    return np.minimum(down, values[r, c]), up


BIG = 2**30  # "unbounded" arc capacity; every flow is capped far below it (int32 residuals)
FLOW_LIMIT = 2**29  # the largest capped flow, in scaled units


def flow_moves(
    values: np.ndarray,
    suppressed: np.ndarray,
    nonneg: bool,
    cells: np.ndarray,
    want_down: np.ndarray,
    want_up: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(down, up, exact) per flat index of ``cells``: how far each can move, by maximum
    flow, capped at ``want_down``/``want_up`` (the room the audit asks for).

    A hidden cell moving by ``t`` is ``t`` units of circulation along its edge of the
    rows x columns graph, which must return through the other hidden cells within their
    bounds: the largest ``t`` is a maximum flow (exact, the many-cycle case in full).
    SciPy's maximum flow takes integer capacities, so values are scaled by a power of two
    and rounded down: every flow found is a feasible table (an inner bound). ``exact``
    says the scaling lost nothing (integer tables), so that a flow below the cap is the
    cell's true room, not just a bound.
    """
    n_r, n_c = values.shape
    sign_r, sign_c = _signs(n_r), _signs(n_c)
    cells = np.asarray(cells, dtype=np.int64)
    hid_r, hid_c = np.nonzero(suppressed)
    x = values[hid_r, hid_c]
    wants = np.concatenate([want_down, want_up])
    # The largest capacity and the largest flow asked for must fit the integer range.
    top = max(float(np.max(np.abs(x), initial=0.0)), float(np.max(wants, initial=0.0)), 1.0)
    scale = 2.0 ** np.floor(np.log2(FLOW_LIMIT / top))
    integer = bool(np.array_equal(x, np.round(x)))
    if integer and scale >= 1.0:
        scale = 1.0
    # A flow is capped at FLOW_LIMIT: above that it proves a bound, not the cell's room.
    exact = integer and scale == 1.0 and bool(np.all(wants <= FLOW_LIMIT))
    cap_x = np.floor(x * scale) if nonneg else np.full(len(x), float(BIG))
    s = sign_r[hid_r] * sign_c[hid_c]
    # Arc row -> column raises z = s x, column -> row lowers it; x going down is bounded
    # by its value, x going up is not.
    fwd = np.where(s > 0, BIG, cap_x)
    back = np.where(s > 0, cap_x, BIG)
    n = n_r + n_c + 1
    source = n - 1
    nodes = np.arange(n - 1)
    tail = np.concatenate([hid_r, n_r + hid_c, np.full(n - 1, source)])
    head = np.concatenate([n_r + hid_c, hid_r, nodes])
    cap = np.concatenate([fwd, back, np.zeros(n - 1)]).astype(np.int32)
    graph = sparse.csr_matrix((cap, (tail, head)), shape=(n, n))
    graph.sort_indices()
    base = graph.data.copy()

    def position(u: int, v: int) -> int:
        lo, hi = graph.indptr[u], graph.indptr[u + 1]
        return int(lo + np.searchsorted(graph.indices[lo:hi], v))

    down = np.zeros(len(cells))
    up = np.zeros(len(cells))
    for i, cell in enumerate(cells.tolist()):
        r, c = divmod(cell, n_c)
        own = [position(r, n_r + c), position(n_r + c, r)]
        s_cell = sign_r[r] * sign_c[c]
        for side, want, out in ((1.0, want_up[i], up), (-1.0, want_down[i], down)):
            need = int(min(np.ceil(want * scale - 1e-9), FLOW_LIMIT)) if want > 0 else 0
            if side < 0 and nonneg:  # the cell itself goes down by at most its value
                need = min(need, int(np.floor(values[r, c] * scale)))
            if need <= 0:
                continue
            # x up with s = +1 raises z: the flow goes row -> column on the cell's own
            # edge and must come back column -> row through the others.
            start, sink = (n_r + c, r) if side * s_cell > 0 else (r, n_r + c)
            data = base.copy()
            data[own] = 0
            data[position(source, start)] = need
            g = sparse.csr_matrix((data, graph.indices, graph.indptr), shape=graph.shape)
            out[i] = maximum_flow(g, source, sink, method="dinic").flow_value / scale
    return down, up, exact
