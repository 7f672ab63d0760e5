"""Whether many hidden variables can each move far enough, proven by feasible points.

The audit asks, per hidden cell, whether its feasible range (the min and max of one
variable over ``{x : a_eq x = b, lower <= x <= upper}``) reaches far enough. Two
programmes per cell answer that exactly, but every solution of *any* programme is a
feasible point - a whole table the intruder cannot rule out - and so proves part of every
cell's range at once. Here the facts are split into independent blocks (variables that
share no equality, directly or through others, are separate problems); in each block a
few batch programmes push all unsettled cells up and then down at once; then every cell
still unsettled gets its own programme (max, and min if needed), whose solution serves
all the others as well. A cell passes as soon as points prove what it needs, and fails
only when its own min and max show that it cannot have it: the verdicts are those of the
exact programmes, only the recorded range of a cell that passed is an inner bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from trenv.disclosure.lp import components

TOL = 1e-9


def reaches(
    down: np.ndarray, up: np.ndarray, required: np.ndarray, below: np.ndarray, above: np.ndarray
) -> np.ndarray:
    """A range ``down`` below and ``up`` above a value is at least ``required`` wide and
    reaches ``below`` under and ``above`` over the value."""
    return (down + up >= required - TOL) & (down >= below - TOL) & (up >= above - TOL)


@dataclass(frozen=True)
class Settled:
    lower: np.ndarray  # proven minimum per variable (nan where not asked)
    upper: np.ndarray  # proven maximum
    exact: np.ndarray  # both ends are the variable's own optima


def _solve(
    objective: np.ndarray, a_eq: sparse.csr_matrix, b_eq: np.ndarray, bounds: list
) -> np.ndarray | None:
    """A point minimising ``objective`` (None if unbounded); inconsistent facts raise."""
    res = linprog(
        objective,
        A_eq=a_eq if a_eq.shape[0] else None,
        b_eq=b_eq if a_eq.shape[0] else None,
        bounds=bounds,
        method="highs",
    )
    if res.status == 0:
        return np.asarray(res.x, dtype=float)
    if res.status == 3:
        return None
    raise ValueError(f"published facts are inconsistent: {res.message}")


def _take(lo: np.ndarray, hi: np.ndarray, cells: np.ndarray, values: np.ndarray) -> None:
    """Widen the proven ranges of ``cells`` to include a feasible point's ``values``."""
    lo[cells] = np.fmin(lo[cells], values)
    hi[cells] = np.fmax(hi[cells], values)


def settle(
    a_eq: sparse.csr_matrix,
    b_eq: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    value: np.ndarray,
    needs: tuple[np.ndarray, np.ndarray, np.ndarray],
    todo: np.ndarray,
    rounds: int,
) -> Settled:
    """Prove or refute, for every variable in ``todo``, that its range around ``value``
    meets ``needs`` (required width, reach below, reach above). ``rounds`` batch
    programmes up and down per block come before the per-variable ones."""
    required, below, above = needs
    n = len(value)
    lo = np.where(todo, value, np.nan)
    hi = lo.copy()
    exact_lo = np.zeros(n, dtype=bool)
    exact_hi = np.zeros(n, dtype=bool)
    a_eq = a_eq.tocsr()
    labels = components(a_eq, n)
    con_label = labels[a_eq.indices[a_eq.indptr[:-1]]] if a_eq.shape[0] else np.array([], int)
    scale = np.maximum(np.maximum(required, np.maximum(below, above)), 1e-9)

    def ok(idx: np.ndarray) -> np.ndarray:
        return reaches(
            value[idx] - lo[idx], hi[idx] - value[idx], required[idx], below[idx], above[idx]
        )

    for label in np.unique(labels[todo]).tolist():
        var = np.flatnonzero(labels == label)
        cons = np.flatnonzero(con_label == label)
        sub_a, sub_b = a_eq[cons][:, var], b_eq[cons]
        bounds = [
            (a if np.isfinite(a) else None, b if np.isfinite(b) else None)
            for a, b in zip(lower[var].tolist(), upper[var].tolist(), strict=True)
        ]
        mine, at_mine = var[todo[var]], todo[var]

        # Batch rounds: push up every cell that still lacks room above, then down every
        # cell that lacks room below, while a round settles anything.
        for _ in range(rounds):
            left = mine[~ok(mine)]
            if not len(left):
                break
            before = len(left)
            down, up = value[left] - lo[left], hi[left] - value[left]
            wants = (
                (left[up < np.maximum(above[left], required[left] - down) - TOL], -1.0),
                (left[down < np.maximum(below[left], required[left] - up) - TOL], 1.0),
            )
            unbounded = False
            for cells, sign in wants:
                if not len(cells):
                    continue
                weight = np.zeros(len(var))
                weight[np.searchsorted(var, cells)] = sign / scale[cells]
                point = _solve(weight, sub_a, sub_b, bounds)
                if point is None:  # unbounded: the per-variable programmes sort it out
                    unbounded = True
                    break
                _take(lo, hi, mine, point[at_mine])
            if unbounded or int((~ok(mine)).sum()) == before:
                break
        for cell in mine.tolist():
            at = int(np.searchsorted(var, cell))
            while not ok(np.array([cell]))[0]:
                short_up = hi[cell] - value[cell] < max(above[cell], required[cell]) - TOL
                if not exact_hi[cell] and (short_up or exact_lo[cell]):
                    sign = -1.0
                elif not exact_lo[cell]:
                    sign = 1.0
                else:
                    break  # both ends exact: the cell truly lacks room
                objective = np.zeros(len(var))
                objective[at] = sign
                point = _solve(objective, sub_a, sub_b, bounds)
                if point is None:
                    if sign < 0:
                        hi[cell], exact_hi[cell] = np.inf, True
                    else:
                        lo[cell], exact_lo[cell] = -np.inf, True
                    continue
                _take(lo, hi, mine, point[at_mine])
                if sign < 0:
                    hi[cell], exact_hi[cell] = point[at], True
                else:
                    lo[cell], exact_lo[cell] = point[at], True
    return Settled(lo, hi, exact_lo & exact_hi)
