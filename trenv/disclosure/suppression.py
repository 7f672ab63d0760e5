"""Primary and secondary cell suppression on a two-way table with margins, with an LP audit.

Why hand-written: the established cell-suppression tools (tau-ARGUS, R's sdcTable) are
Java/R programs outside a Python notebook; no maintained Python package exists. The
heuristic here is the classic one (every additive relation - a row or column with its
total - that hides exactly one cell gets a partner hidden, choosing the cheapest cell that
gives enough protection), and it is not trusted on its own: every suppressed cell's
feasible interval is computed by linear programming over the table's additive structure
(``lp.feasible_intervals``), and cells that an intruder could still narrow below the
protection level get more partners until the audit passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from trenv.disclosure.lp import feasible_intervals


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


def audit(
    values: np.ndarray,
    suppressed: np.ndarray,
    relations: list[Relation],
    lower: np.ndarray,
    upper: np.ndarray,
    required: np.ndarray,
) -> AuditResult:
    """Feasible interval of every suppressed cell given the published cells and relations.

    ``values``/``suppressed``/``lower``/``upper``/``required`` are flat arrays over cells.
    """
    hidden = np.flatnonzero(suppressed)
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
    targets = sparse.identity(len(hidden), format="csr")
    lo, hi = feasible_intervals(a_eq, np.array(rhs), lower[hidden], upper[hidden], targets)
    return AuditResult(hidden, lo, hi, required[hidden])


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
        result = audit(values, supp, relations, lower, upper, required)
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
    return supp, audit(values, supp, relations, lower, upper, required)
