"""Primary and secondary cell suppression on a two-way table with margins, with an LP audit.

Why hand-written: the established cell-suppression tools (tau-ARGUS, R's sdcTable) are
Java/R programs outside a Python notebook; no maintained Python package exists. The
heuristic here is the classic one (every additive relation - a row or column with its
total - that hides exactly one cell gets a partner hidden, choosing the cheapest cell that
gives enough protection), and it is not trusted on its own: every suppressed cell's
feasible interval is computed by linear programming over the table's additive structure
(``lp.feasible_intervals``), and cells that an intruder could still narrow below the
protection level get more partners until the audit passes.

The audit is exact and fast: a feasible *cycle* of suppressed cells (a rectangle in the
sign-adjusted table where every row and column, margins included, sums to zero) moves a
hidden cell while keeping all published numbers and bounds intact, so it proves an interval
at least that wide - two feasible points of the very same LP. Cells that such a certificate
covers need no solver call; every other suppressed cell gets the two linear programmes
(min and max). Either way a cell passes only if a feasible range of the required width is
demonstrated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from trenv.disclosure.lp import feasible_intervals, feasible_point

CANDIDATES = 24  # partner rows/columns tried per cell in a cycle certificate
POINT_ROUNDS = 2  # batch programmes (up and down) before every cell gets its own


@dataclass(frozen=True)
class Relation:
    parts: np.ndarray  # flat indices of the cells that add up ...
    total: int  # ... to this flat index


@dataclass(frozen=True)
class AuditResult:
    cells: np.ndarray  # flat indices of the suppressed cells
    lower: np.ndarray  # feasible minimum per suppressed cell
    upper: np.ndarray  # feasible maximum per suppressed cell
    required: np.ndarray  # required width per suppressed cell
    # "cycle" (rectangle certificate), "point" (feasible points of one LP for many cells)
    # or "lp" (exact interval) per suppressed cell
    method: np.ndarray

    @property
    def passed(self) -> np.ndarray:
        return (self.upper - self.lower) >= self.required - 1e-9

    @property
    def ok(self) -> bool:
        return bool(self.passed.all())


def table_relations(n_rows: int, n_cols: int) -> list[Relation]:
    """Additive relations of an ``(n_rows + 1) x (n_cols + 1)`` table whose last row/column
    are the margins."""
    width = n_cols + 1
    rels = []
    for i in range(n_rows + 1):
        rels.append(Relation(np.arange(n_cols) + i * width, i * width + n_cols))
    for j in range(n_cols + 1):
        rels.append(Relation(np.arange(n_rows) * width + j, n_rows * width + j))
    return rels


def cycle_certificates(
    values: np.ndarray, suppressed: np.ndarray, nonneg: bool
) -> tuple[np.ndarray, np.ndarray]:
    """For each suppressed cell of an ``(R+1) x (C+1)`` table with margins, the widest
    rectangle move ``(down, up)`` that keeps every relation and bound satisfied.

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
    for r, c in zip(*(a.tolist() for a in np.nonzero(suppressed)), strict=True):
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


def additive(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The flat table with its margins replaced by correctly rounded sums of its cells.

    Margins of sums come from per-person totals added in another order than the cells,
    so in floating point they miss the sum of their cells by a few ulps (1e-6 on a total
    of 2e7). Those are contradictory facts for the LP, which then reports "infeasible";
    the intruder's question does not change when the margins move by rounding noise.
    Integer tables (counts) are returned unchanged: their sums are exact.
    """
    if np.array_equal(values, np.round(values)):
        return values
    grid = values.reshape(shape).copy()
    inner = grid[:-1, :-1]
    grid[:-1, -1] = [math.fsum(row) for row in inner]
    grid[-1, :-1] = [math.fsum(col) for col in inner.T]
    grid[-1, -1] = math.fsum(inner.ravel())
    return grid.ravel()


def audit(
    values: np.ndarray,
    suppressed: np.ndarray,
    relations: list[Relation],
    lower: np.ndarray,
    upper: np.ndarray,
    required: np.ndarray,
    shape: tuple[int, int] | None = None,
) -> AuditResult:
    """Feasible interval of every suppressed cell given the published cells and relations.

    ``values``/``suppressed``/``lower``/``upper``/``required`` are flat arrays over cells;
    ``shape`` (a table with margins, the relations of ``table_relations``) enables the
    cycle certificates, otherwise every interval is computed by LP.
    """
    if shape is not None:
        values = additive(values, shape)
    hidden = np.flatnonzero(suppressed)
    lo_all = np.full(len(hidden), np.nan)
    hi_all = np.full(len(hidden), np.nan)
    method = np.full(len(hidden), "lp", dtype=object)
    todo = np.ones(len(hidden), dtype=bool)
    if shape is not None and len(hidden):
        nonneg = bool(np.all(lower[hidden] == 0) and np.all(np.isinf(upper[hidden])))
        finite = bool(np.all(np.isinf(lower[hidden])) and np.all(np.isinf(upper[hidden])))
        if nonneg or finite:
            down, up = cycle_certificates(
                values.reshape(shape), suppressed.reshape(shape), nonneg=nonneg
            )
            d, u = down.ravel()[hidden], up.ravel()[hidden]
            ok = (d + u) >= required[hidden] - 1e-9
            lo_all[ok] = values[hidden][ok] - d[ok]
            hi_all[ok] = values[hidden][ok] + u[ok]
            method[ok] = "cycle"
            todo = ~ok
    var_of = -np.ones(len(values), dtype=np.int64)
    var_of[hidden] = np.arange(len(hidden))
    rows, cols, data, rhs = [], [], [], []
    r = 0
    for rel in relations:
        members = np.append(rel.parts, rel.total)
        coefs = np.append(np.ones(len(rel.parts)), -1.0)
        is_hidden = suppressed[members]
        if not is_hidden.any():
            continue
        rows.extend([r] * int(is_hidden.sum()))
        cols.extend(var_of[members[is_hidden]].tolist())
        data.extend(coefs[is_hidden].tolist())
        # Published members move to the right-hand side: sum(hidden) = -sum(published).
        rhs.append(-float(np.dot(coefs[~is_hidden], values[members[~is_hidden]])))
        r += 1
    a_eq = sparse.csr_matrix((data, (rows, cols)), shape=(r, len(hidden)))
    b = np.array(rhs)
    if todo.any():
        todo = _point_certificates(
            a_eq,
            b,
            values[hidden],
            lower[hidden],
            upper[hidden],
            required[hidden],
            todo,
            (lo_all, hi_all, method),
        )
    if todo.any():
        # The true table is feasible, so min <= value <= max. Solve the maximum first; if
        # it alone leaves enough room above the value the minimum is not needed (the
        # recorded interval then starts at the value, a conservative inner bound).
        eye = sparse.identity(len(hidden), format="csr")
        idx = np.flatnonzero(todo)
        _, hi = feasible_intervals(a_eq, b, lower[hidden], upper[hidden], eye[idx], (-1.0,))
        hi_all[idx] = hi
        lo_all[idx] = values[hidden][idx]
        need_min = idx[(hi - values[hidden][idx]) < required[hidden][idx] - 1e-9]
        if len(need_min):
            lo, _ = feasible_intervals(a_eq, b, lower[hidden], upper[hidden], eye[need_min], (1.0,))
            lo_all[need_min] = lo
    return AuditResult(hidden, lo_all, hi_all, required[hidden], method)


def _point_certificates(
    a_eq: sparse.csr_matrix,
    b: np.ndarray,
    value: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    required: np.ndarray,
    todo: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Settle cells with a few programmes for all of them instead of two per cell.

    Any feasible point of the audit's LP is a table consistent with everything published,
    so each of its coordinates is a value the intruder cannot rule out: the feasible
    interval of a cell contains the true value and that coordinate. Pushing all unsettled
    cells up at once (weighted by their required widths), then all down, usually moves
    most of them far enough; the rest get their own exact programmes. The verdicts are
    those of the exact programmes (a settled cell has at least the room shown), only the
    recorded interval of a settled cell is an inner bound ("point").
    """
    lo_all, hi_all, method = out
    best_lo = np.where(todo, value, np.nan)
    best_hi = best_lo.copy()
    for _ in range(POINT_ROUNDS):
        left = todo & ~(best_hi - best_lo >= required - 1e-9)
        if not left.any():
            break
        for sign in (-1.0, 1.0):  # maximise, then minimise
            weight = np.where(left, sign / np.maximum(required, 1e-9), 0.0)
            point = feasible_point(a_eq, b, lower, upper, weight)
            if point is None:  # unbounded: the exact programmes report it per cell
                return todo
            best_hi = np.fmax(best_hi, np.where(todo, point, np.nan))
            best_lo = np.fmin(best_lo, np.where(todo, point, np.nan))
    done = todo & (best_hi - best_lo >= required - 1e-9)
    lo_all[done], hi_all[done], method[done] = best_lo[done], best_hi[done], "point"
    return todo & ~done


def _pick_partner(
    candidates: np.ndarray, values: np.ndarray, need: float, suppressed: np.ndarray
) -> int | None:
    free = candidates[~suppressed[candidates]]
    if len(free) == 0:
        return None
    mag = np.abs(values[free])
    # Cheapest cell that on its own can carry the required uncertainty; else the largest.
    enough = free[mag >= need]
    if len(enough):
        return int(enough[np.argmin(np.abs(values[enough]))])
    return int(free[np.argmax(mag)])


def secondary_suppression(
    values: np.ndarray,
    primary: np.ndarray,
    relations: list[Relation],
    lower: np.ndarray,
    upper: np.ndarray,
    required: np.ndarray,
    max_rounds: int,
    shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, AuditResult]:
    """Extend ``primary`` until the LP audit shows every hidden cell is protected.

    If the heuristic cannot protect a cell within ``max_rounds`` the whole table is
    suppressed: failing closed is the only safe answer for a release.
    """
    supp = primary.copy()
    for _ in range(max_rounds):
        changed = True
        while changed:
            changed = False
            for rel in relations:
                members = np.append(rel.parts, rel.total)
                hidden = members[supp[members]]
                if len(hidden) != 1:
                    continue
                need = float(required[hidden[0]])
                pick = _pick_partner(rel.parts, values, need, supp)
                if pick is None:
                    pick = rel.total
                supp[pick] = True
                changed = True
        result = audit(values, supp, relations, lower, upper, required, shape)
        if result.ok:
            return supp, result
        # Give each unprotected cell one more partner in every relation it belongs to.
        for cell in result.cells[~result.passed]:
            for rel in relations:
                members = np.append(rel.parts, rel.total)
                if cell not in members:
                    continue
                pick = _pick_partner(rel.parts, values, float(required[cell]), supp)
                if pick is not None:
                    supp[pick] = True
    supp[:] = True
    return supp, audit(values, supp, relations, lower, upper, required, shape)
