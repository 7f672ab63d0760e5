"""Feasible intervals of linear forms under published linear facts (HiGHS via SciPy).

Both the secondary-suppression audit and the differencing check reduce to the same
question an intruder would ask: given everything published (equalities) and what is
known a priori (bounds, e.g. counts are non-negative), how far can a hidden quantity
move? The answer is the pair of linear programmes min/max of the quantity.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import linprog


def components(a_eq: sparse.csr_matrix, n_vars: int) -> np.ndarray:
    """Label variables that share an equality (directly or transitively)."""
    if a_eq.shape[0] == 0:
        return np.arange(n_vars)
    coo = a_eq.tocoo()
    # Bipartite graph variables <-> constraints; connected components split the LP into
    # independent small problems, which keeps the audit fast on large tables.
    n_rows = a_eq.shape[0]
    graph = sparse.coo_matrix(
        (np.ones(len(coo.data)), (coo.col, n_vars + coo.row)),
        shape=(n_vars + n_rows, n_vars + n_rows),
    )
    _, labels = sparse.csgraph.connected_components(graph, directed=False)
    return labels[:n_vars]


def feasible_intervals(
    a_eq: sparse.csr_matrix,
    b_eq: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    targets: sparse.csr_matrix,
    sides: tuple[float, ...] = (1.0, -1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of each target row ``t @ x`` over ``{x : a_eq x = b_eq, lower <= x <= upper}``.

    ``sides`` selects the programmes: ``(1.0,)`` only minimises, ``(-1.0,)`` only maximises
    (the other end is returned as nan).

    Unbounded directions give -inf/+inf. Raises ValueError if the facts are inconsistent
    (which means the published numbers were not produced from one data set).
    """
    n_vars = a_eq.shape[1]
    labels = components(a_eq, n_vars)
    a_eq = a_eq.tocsr()
    targets = targets.tocsr()
    lo = np.full(targets.shape[0], np.nan)
    hi = np.full(targets.shape[0], np.nan)
    bounds_all = np.column_stack([lower, upper])
    row_of_constraint = (
        labels[a_eq.indices[a_eq.indptr[:-1]]] if a_eq.shape[0] else np.array([], dtype=int)
    )
    pieces: dict[int, tuple[np.ndarray, sparse.csr_matrix, np.ndarray, list]] = {}

    def piece(label: int) -> tuple[np.ndarray, sparse.csr_matrix, np.ndarray, list]:
        # The sub-problem of one component, built once and reused for all its targets.
        if label not in pieces:
            var_idx = np.flatnonzero(labels == label)
            con_idx = np.flatnonzero(row_of_constraint == label)
            bnds = [
                (None if not np.isfinite(a) else a, None if not np.isfinite(b) else b)
                for a, b in bounds_all[var_idx]
            ]
            pieces[label] = (var_idx, a_eq[con_idx][:, var_idx], b_eq[con_idx], bnds)
        return pieces[label]

    for t in range(targets.shape[0]):
        row = targets.getrow(t)
        comp = labels[row.indices]
        # Targets spanning several components are sums of independent pieces.
        total_lo = 0.0
        total_hi = 0.0
        for label in np.unique(comp):
            var_idx, sub_a, sub_b, bnds = piece(int(label))
            coef = np.zeros(len(var_idx))
            pos = np.searchsorted(var_idx, row.indices[comp == label])
            coef[pos] = row.data[comp == label]
            for sign in sides:
                res = linprog(
                    sign * coef,
                    A_eq=sub_a if sub_a.shape[0] else None,
                    b_eq=sub_b if sub_a.shape[0] else None,
                    bounds=bnds,
                    method="highs",
                )
                if res.status == 3:
                    value = -np.inf if sign > 0 else np.inf
                elif res.status == 0:
                    value = sign * res.fun
                else:
                    raise ValueError(f"published facts are inconsistent: {res.message}")
                if sign > 0:
                    total_lo += value
                else:
                    total_hi += value
        if 1.0 in sides:
            lo[t] = total_lo
        if -1.0 in sides:
            hi[t] = total_hi
    return lo, hi
