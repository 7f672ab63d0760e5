"""Secondary cell suppression on additive tables, with an exact audit of what it hides.

Why hand-written: the established cell-suppression tools (tau-ARGUS, R's sdcTable) are
Java/R programs outside a Python notebook; no maintained Python package exists.

What a suppressed cell needs (``required``, ``lower_level``, ``upper_level``, per cell): its
feasible interval, given everything published and the a priori bounds, must be at least
``required`` wide, and must reach ``upper_level`` above and ``lower_level`` below its value
(the protection levels of ``protection.py``; the lower one is capped by the a priori lower
bound, below which no interval can reach and which the intruder knows anyway).

How partners are chosen: on a two-way table with margins (``shape``), every cell that is
not yet protected (or is alone in a row or column) gets the cheapest *rectangle* of cells
whose move ``+t, -t, -t, +t`` alone gives it the room it needs (tau-ARGUS's hypercube
method, in two dimensions); "cheapest" by the profile's cost (``cost``: the value, the
contributors or one per cell that the rectangle newly hides). Elsewhere (generic
``Relation``s: one-way tables, or when no single rectangle can do it) every relation that
hides exactly one cell gets a partner: the cheapest cell that can carry the requirement
on its own, else the largest. Then the audit decides; unprotected cells get more partners,
for at most ``max_rounds`` rounds, after which the whole table is suppressed (failing
closed is the only safe answer). Finally a clean-up pass drops, most costly first, every
secondary suppression that the audit shows is not needed.

The audit (``audit``) is exact: a cell passes only if a feasible range of the required size
is demonstrated - by a certificate (a feasible table of the very LP an intruder would
solve: rectangles and maximum flows on two-way tables, ``certificates.py``) or by the
intruder's linear programmes themselves, whose every solution also certifies the other
cells (``ranges.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from trenv.disclosure.certificates import (
    CANDIDATES,
    cheapest_rectangle,
    cycle_certificates,
    flow_moves,
    many_cycle_certificates,
)
from trenv.disclosure.ranges import reaches, settle

__all__ = [
    "CANDIDATES",
    "AuditResult",
    "Relation",
    "audit",
    "cycle_certificates",
    "secondary_suppression",
    "table_relations",
]

POINT_ROUNDS = 10_000  # most batch rounds (they stop when a round settles nothing)


@dataclass(frozen=True)
class Relation:
    parts: np.ndarray  # flat indices of the cells that add up ...
    total: int  # ... to this flat index


@dataclass(frozen=True)
class AuditResult:
    cells: np.ndarray  # flat indices of the suppressed cells
    lower: np.ndarray  # feasible minimum per suppressed cell (an inner bound, see method)
    upper: np.ndarray  # feasible maximum per suppressed cell
    required: np.ndarray  # required width per suppressed cell
    # "cycle" (rectangle certificate), "point" (feasible points of one LP for many cells)
    # or "lp" (exact interval) per suppressed cell
    method: np.ndarray
    value: np.ndarray  # the cell's value as the audit saw it
    below: np.ndarray  # how far below its value the interval must reach (lower level)
    above: np.ndarray  # how far above (upper protection level)

    @property
    def passed(self) -> np.ndarray:
        return reaches(
            self.value - self.lower, self.upper - self.value, self.required, self.below, self.above
        )

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


def one_way_relations(n_rows: int, n_cols: int = 1) -> list[Relation]:
    """The one additive relation of a one-way table laid out as ``(n_rows + 1) x
    (n_cols + 1)``: its column's cells add up to the total (its column margin is never
    published)."""
    return [Relation(np.arange(n_rows) * (n_cols + 1), n_rows * (n_cols + 1))]


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


@dataclass(frozen=True)
class _Problem:
    """One table's audit question, built once for every audit of a suppression run."""

    values: np.ndarray
    signed: sparse.csc_matrix  # relations x cells: +1 for a part, -1 for the total
    member: sparse.csr_matrix  # relations x cells: 1 for every member
    lower: np.ndarray
    upper: np.ndarray
    required: np.ndarray
    below: np.ndarray
    above: np.ndarray
    relations: list[Relation]
    shape: tuple[int, int] | None

    @property
    def sign_kind(self) -> str | None:
        """ "nonneg" (bounds 0..inf), "free" (no bounds) or None (anything else): the two
        bound patterns the structural certificates and rectangles handle."""
        if np.all(self.lower == 0) and np.all(np.isinf(self.upper)):
            return "nonneg"
        if np.all(np.isinf(self.lower)) and np.all(np.isinf(self.upper)):
            return "free"
        return None


def _problem(
    values: np.ndarray,
    relations: list[Relation],
    lower: np.ndarray,
    upper: np.ndarray,
    required: np.ndarray,
    shape: tuple[int, int] | None,
    lower_level: np.ndarray | None,
    upper_level: np.ndarray | None,
) -> _Problem:
    if shape is not None:
        values = additive(values, shape)
    n = len(values)
    rows, cols, data = [], [], []
    for i, rel in enumerate(relations):
        rows.append(np.full(len(rel.parts) + 1, i))
        cols.append(np.append(rel.parts, rel.total))
        data.append(np.append(np.ones(len(rel.parts)), -1.0))
    if relations:
        signed = sparse.csr_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(relations), n),
        )
    else:
        signed = sparse.csr_matrix((0, n))
    member = abs(signed).tocsr()
    zeros = np.zeros(n)
    low_level = zeros if lower_level is None else np.asarray(lower_level, dtype=float)
    up_level = zeros if upper_level is None else np.asarray(upper_level, dtype=float)
    with np.errstate(invalid="ignore"):
        below = np.maximum(np.minimum(low_level, values - lower), 0.0)
        above = np.maximum(np.minimum(up_level, upper - values), 0.0)
    return _Problem(
        values=values,
        signed=signed.tocsc(),
        member=member,
        lower=lower,
        upper=upper,
        required=required,
        below=np.nan_to_num(below),
        above=np.nan_to_num(above),
        relations=relations,
        shape=shape,
    )


def audit(
    values: np.ndarray,
    suppressed: np.ndarray,
    relations: list[Relation],
    lower: np.ndarray,
    upper: np.ndarray,
    required: np.ndarray,
    shape: tuple[int, int] | None = None,
    *,
    lower_level: np.ndarray | None = None,
    upper_level: np.ndarray | None = None,
) -> AuditResult:
    """Feasible interval of every suppressed cell given the published cells and relations.

    ``values``/``suppressed``/``lower``/``upper``/``required`` (and the protection levels)
    are flat arrays over cells; ``shape`` (a table with margins, the relations of
    ``table_relations``) enables the structural certificates, otherwise every interval is
    settled by linear programming.
    """
    prob = _problem(values, relations, lower, upper, required, shape, lower_level, upper_level)
    return _audit(prob, suppressed)


def _equalities(
    prob: _Problem, suppressed: np.ndarray, hidden: np.ndarray
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """``a_eq x = b`` over the ``hidden`` cells: every relation with a hidden member, with
    its published members moved to the right-hand side."""
    sub = prob.signed[:, hidden].tocsr()
    keep = np.flatnonzero(sub.getnnz(axis=1) > 0)
    shown = np.where(suppressed, 0.0, prob.values)
    b = -(prob.signed @ shown)
    return sub[keep], b[keep]


def _audit(prob: _Problem, suppressed: np.ndarray, cells: np.ndarray | None = None) -> AuditResult:
    """The audit of ``cells`` (default: every suppressed cell). ``cells`` must be a union
    of components of the hidden cells (cells linked by the relations they share), so that
    the programmes over them alone are the intruder's."""
    values = prob.values
    hidden = np.flatnonzero(suppressed) if cells is None else np.sort(cells)
    n_h = len(hidden)
    value = values[hidden]
    required = prob.required[hidden]
    below, above = prob.below[hidden], prob.above[hidden]
    lo_all = np.full(n_h, np.nan)
    hi_all = np.full(n_h, np.nan)
    method = np.full(n_h, "lp", dtype=object)
    todo = np.ones(n_h, dtype=bool)
    kind = prob.sign_kind
    if prob.shape is not None and n_h and kind is not None:
        todo = _structural(prob, suppressed, hidden, kind, (lo_all, hi_all, method))
    if todo.any():
        a_eq, b = _equalities(prob, suppressed, hidden)
        lower, upper = prob.lower[hidden], prob.upper[hidden]
        got = settle(a_eq, b, lower, upper, value, (required, below, above), todo, POINT_ROUNDS)
        idx = np.flatnonzero(todo)
        lo_all[idx], hi_all[idx] = got.lower[idx], got.upper[idx]
        # "lp": both ends are the cell's own optima; "point": proven by feasible points.
        method[idx] = np.where(got.exact[idx], "lp", "point")
    return AuditResult(hidden, lo_all, hi_all, required, method, value, below, above)


def _structural(
    prob: _Problem,
    suppressed: np.ndarray,
    hidden: np.ndarray,
    kind: str,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Settle what the structure of a two-way table proves, cheapest proofs first: many
    rectangles at once (vectorised), the best single rectangle, then maximum flows. On
    integer tables the flows are exact, so they also settle the cells that fail."""
    assert prob.shape is not None
    lo_all, hi_all, method = out
    grid = prob.values.reshape(prob.shape)
    hidden_grid = suppressed.reshape(prob.shape)
    value = prob.values[hidden]
    required, below, above = prob.required[hidden], prob.below[hidden], prob.above[hidden]
    down = np.zeros(len(hidden))
    up = np.zeros(len(hidden))
    todo = np.ones(len(hidden), dtype=bool)

    def prove(idx: np.ndarray, d: np.ndarray, u: np.ndarray, how: str) -> None:
        down[idx] = np.fmax(down[idx], d)
        up[idx] = np.fmax(up[idx], u)
        ok = idx[reaches(down[idx], up[idx], required[idx], below[idx], above[idx])]
        lo_all[ok], hi_all[ok], method[ok] = value[ok] - down[ok], value[ok] + up[ok], how
        todo[ok] = False

    if kind == "nonneg":
        idx = np.arange(len(hidden))
        prove(idx, *many_cycle_certificates(grid, hidden_grid, hidden), "cycle")
    idx = np.flatnonzero(todo)
    if len(idx):
        d, u = cycle_certificates(grid, hidden_grid, nonneg=kind == "nonneg", cells=hidden[idx])
        prove(idx, d.ravel()[hidden[idx]], u.ravel()[hidden[idx]], "cycle")
    idx = np.flatnonzero(todo)
    if len(idx):
        want_down = np.maximum(below[idx], required[idx])
        want_up = np.maximum(above[idx], required[idx])
        d, u, exact = flow_moves(
            grid, hidden_grid, kind == "nonneg", hidden[idx], want_down, want_up
        )
        prove(idx, d, u, "flow")
        if exact:  # the flows are the cells' true room (up to the caps): verdicts final
            left = idx[todo[idx]]
            lo_all[left], hi_all[left] = value[left] - down[left], value[left] + up[left]
            method[left] = "flow"
            todo[left] = False
    return todo


# ----------------------------------------------------------------- choosing partners


def _need(prob: _Problem, cell: int) -> float:
    """What a partner must be able to carry for ``cell``: its width and protection levels."""
    return float(max(prob.required[cell], prob.below[cell], prob.above[cell]))


def _pick_partner(
    candidates: np.ndarray,
    values: np.ndarray,
    need: float,
    suppressed: np.ndarray,
    cost: np.ndarray,
) -> int | None:
    free = candidates[~suppressed[candidates]]
    if len(free) == 0:
        return None
    mag = np.abs(values[free])
    # The cheapest cell that on its own can carry the requirement (ties: the smallest);
    # if none can, the largest.
    enough = free[mag >= need]
    if len(enough):
        return int(enough[np.lexsort((np.abs(values[enough]), cost[enough]))[0]])
    return int(free[np.argmax(mag)])


def _hidden_counts(prob: _Problem, suppressed: np.ndarray) -> np.ndarray:
    return np.asarray(prob.member @ suppressed.astype(np.float64)).astype(np.int64)


def _alone(prob: _Problem, suppressed: np.ndarray) -> np.ndarray:
    """Cells hidden alone in some relation (the relation gives them back exactly)."""
    single = np.flatnonzero(_hidden_counts(prob, suppressed) == 1)
    if not len(single):
        return np.array([], dtype=np.int64)
    sub = prob.member[single].tocsr()
    return np.unique(sub.indices[suppressed[sub.indices]])


def _pair_alone(prob: _Problem, supp: np.ndarray, cost: np.ndarray) -> None:
    """Give every relation that hides exactly one cell a partner, until none does."""
    changed = True
    while changed:
        changed = False
        for rel in prob.relations:
            members = np.append(rel.parts, rel.total)
            hidden = members[supp[members]]
            if len(hidden) != 1:
                continue
            pick = _pick_partner(rel.parts, prob.values, _need(prob, int(hidden[0])), supp, cost)
            supp[rel.total if pick is None else pick] = True
            changed = True


def _relations_of(prob: _Problem, cell: int) -> np.ndarray:
    return prob.signed.indices[prob.signed.indptr[cell] : prob.signed.indptr[cell + 1]]


def _more_partners(prob: _Problem, supp: np.ndarray, cost: np.ndarray, cell: int) -> bool:
    """One more partner for ``cell`` in every relation it belongs to; False if every
    member of those relations is hidden already."""
    added = False
    for i in _relations_of(prob, cell).tolist():
        rel = prob.relations[i]
        members = np.append(rel.parts, rel.total)
        pick = _pick_partner(members, prob.values, _need(prob, cell), supp, cost)
        if pick is not None:
            supp[pick] = True
            added = True
    return added


def _reinforce(prob: _Problem, supp: np.ndarray, cost: np.ndarray, cell: int) -> None:
    """More partners for an unprotected ``cell``; if its relations are all hidden, what
    bounds it lies further out, so its hidden neighbours get partners instead."""
    if _more_partners(prob, supp, cost, cell):
        return
    rels = _relations_of(prob, cell)
    neighbours = np.unique(prob.member[rels].indices)
    for other in neighbours[supp[neighbours] & (neighbours != cell)].tolist():
        _more_partners(prob, supp, cost, other)


def _rectangles(prob: _Problem, supp: np.ndarray, cost: np.ndarray, cells: np.ndarray) -> None:
    """The cheapest protecting rectangle for each of ``cells``, largest needs first; cells
    that no single rectangle can protect get more partners relation by relation."""
    assert prob.shape is not None
    kind = prob.sign_kind
    grid = prob.values.reshape(prob.shape)
    hidden = supp.reshape(prob.shape)  # a view: rectangles are hidden in ``supp``
    cost_grid = cost.reshape(prob.shape)
    width = prob.required.reshape(prob.shape)
    size = prob.required[cells] + prob.below[cells] + prob.above[cells]
    before = supp.copy()
    for cell in cells[np.argsort(-size, kind="stable")].tolist():
        corners = None
        if kind is not None:
            corners = cheapest_rectangle(
                grid,
                hidden,
                cost_grid,
                width,
                cell,
                float(prob.below[cell]),
                float(prob.above[cell]),
                nonneg=kind == "nonneg",
            )
        if corners is None or before[corners].all():
            # No single rectangle can do it (or the audit found the one already in place
            # not enough, which only rounding at the tolerance can cause): partners
            # relation by relation. A rectangle hidden earlier in this pass is enough.
            _reinforce(prob, supp, cost, cell)
        else:
            supp[corners] = True


def _components(prob: _Problem, suppressed: np.ndarray) -> np.ndarray:
    """Per cell, the label of its component among the hidden cells (-1 if published)."""
    hidden = np.flatnonzero(suppressed)
    labels = np.full(len(suppressed), -1, dtype=np.int64)
    if not len(hidden):
        return labels
    inc = prob.member[:, hidden].tocoo()
    n_rel = prob.member.shape[0]
    n = len(hidden) + n_rel
    graph = sparse.coo_matrix(
        (np.ones(len(inc.data)), (inc.col, len(hidden) + inc.row)), shape=(n, n)
    )
    _, lab = sparse.csgraph.connected_components(graph, directed=False)
    labels[hidden] = lab[: len(hidden)]
    return labels


def _clean_up(
    prob: _Problem,
    supp: np.ndarray,
    primary: np.ndarray,
    cost: np.ndarray,
    result: AuditResult,
) -> tuple[np.ndarray, AuditResult]:
    """Drop the secondary suppressions the audit shows are not needed, most costly first.

    A cell stays if dropping it would leave another hidden alone in a relation (given
    back exactly, whatever the requirement); otherwise it goes if its component of
    hidden cells still passes the audit without it.
    """
    secondary = np.flatnonzero(supp & ~primary)
    if not len(secondary):
        return supp, result
    order = secondary[np.lexsort((-np.abs(prob.values[secondary]), -cost[secondary]))]
    counts = _hidden_counts(prob, supp)
    dropped = False
    for cell in order.tolist():
        rels = prob.signed.indices[prob.signed.indptr[cell] : prob.signed.indptr[cell + 1]]
        if (counts[rels] == 2).any():
            continue
        labels = _components(prob, supp)
        trial = supp.copy()
        trial[cell] = False
        affected = np.flatnonzero((labels == labels[cell]) & trial)
        if len(affected) and not _audit(prob, trial, cells=affected).ok:
            continue
        supp = trial
        counts[rels] -= 1
        dropped = True
    return supp, (_audit(prob, supp) if dropped else result)


Found = tuple[np.ndarray, AuditResult] | None


def _hides_margins(supp: np.ndarray, primary: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether a pattern hides a total (last row or column) that no rule flagged."""
    extra = (supp & ~primary).reshape(shape)
    return bool(extra[-1, :].any() or extra[:, -1].any())


def _by_relations(prob: _Problem, primary: np.ndarray, cost: np.ndarray, rounds: int) -> Found:
    """Partners relation by relation (the classic heuristic), cleaned up; None if the cells
    are not protected within ``rounds``."""
    supp = primary.copy()
    for _ in range(rounds):
        _pair_alone(prob, supp, cost)
        result = _audit(prob, supp)
        if result.ok:
            return _clean_up(prob, supp, primary, cost, result)
        for cell in result.cells[~result.passed].tolist():
            _reinforce(prob, supp, cost, cell)
    return None


def _by_rectangles(prob: _Problem, primary: np.ndarray, cost: np.ndarray, rounds: int) -> Found:
    """The cheapest protecting rectangle per unprotected or lone cell (two-way tables),
    cleaned up; None if the cells are not protected within ``rounds``."""
    supp = primary.copy()
    result = _audit(prob, supp)
    for round_ in range(rounds + 1):
        alone = _alone(prob, supp)
        if result.ok and not len(alone):
            return _clean_up(prob, supp, primary, cost, result)
        if round_ == rounds:
            break
        todo = np.union1d(result.cells[~result.passed], alone).astype(np.int64)
        _rectangles(prob, supp, cost, todo)
        _pair_alone(prob, supp, cost)
        result = _audit(prob, supp)
    return None


def secondary_suppression(
    values: np.ndarray,
    primary: np.ndarray,
    relations: list[Relation],
    lower: np.ndarray,
    upper: np.ndarray,
    required: np.ndarray,
    max_rounds: int,
    shape: tuple[int, int] | None = None,
    *,
    lower_level: np.ndarray | None = None,
    upper_level: np.ndarray | None = None,
    cost: np.ndarray | None = None,
) -> tuple[np.ndarray, AuditResult]:
    """Extend ``primary`` until the audit shows every hidden cell is protected.

    ``cost`` (per cell, default ``|values|``) is what the partner choice and the clean-up
    minimise. If the cells cannot be protected within ``max_rounds`` the whole table is
    suppressed: failing closed is the only safe answer for a release.
    """
    prob = _problem(values, relations, lower, upper, required, shape, lower_level, upper_level)
    cost = np.abs(prob.values) if cost is None else np.asarray(cost, dtype=float)
    # The pattern as it is first: a table whose cells are protected stays as it is.
    if not len(_alone(prob, primary)):
        result = _audit(prob, primary)
        if result.ok:
            return primary.copy(), result
    if shape is None:
        found = [_by_relations(prob, primary, cost, max_rounds)]
    else:
        # Rectangles are usually the cheaper partners, but where a whole row is small (a
        # small court) they reach for the margins, which partners along the relations
        # leave alone: then both are tried, and the cheaper pattern (then the one with
        # fewer cells) is kept.
        found = [_by_rectangles(prob, primary, cost, max_rounds)]
        if found[0] is None or _hides_margins(found[0][0], primary, shape):
            found.append(_by_relations(prob, primary, cost, max_rounds))
    passing = [f for f in found if f is not None]
    if passing:
        return min(passing, key=lambda f: (float(cost[f[0] & ~primary].sum()), int(f[0].sum())))
    supp = primary.copy()
    supp[:] = True
    return supp, _audit(prob, supp)
