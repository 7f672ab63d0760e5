"""Controlled rounding of a count table: every cell, margins and subtotals included, goes
to one of the two multiples of the base next to it, and the rounded table is additive.

Zero-restricted: a value that is a multiple of the base (0 among them) stays as it is;
any other value ``x`` is published as ``b * floor(x / b)`` or ``b * ceil(x / b)``. Of all
such tables whose rounded cells add up to their rounded totals (every ``Relation`` of
the table holds), the one closest to the true table is chosen. "Closest" is the same in
the sum of absolute and in the sum of squared differences: for a cell with remainder
``r = x mod b``, rounding up instead of down adds ``b - 2r`` to the first and ``b(b - 2r)``
to the second, so both objectives rank every choice alike.

For a two-way table with margins a controlled rounding always exists (Cox 1987: the
table is a transportation problem and its constraint matrix totally unimodular); for
three-way tables and tables with subtotals it may not, and ``controlled_round`` then says
so (the caller falls back to suppression).

Why SciPy's ``milp`` (HiGHS) and not a hand-written network flow: a flow algorithm would
solve the two-way case, but only that case. Tables with subtotals (hierarchies) and more
dimensions are not networks; one integer programme over generic additive relations
covers every shape with the same code and proves when no rounding exists. For a two-way
table the constraint matrix is a network matrix (totally unimodular), so a vertex of the
LP relaxation is already integral: one dual-simplex solve (``linprog``, HiGHS) settles it,
which is the flow algorithm's result without a flow implementation to maintain; only a
fractional vertex (a table that is no network) goes on to ``milp``'s branch and bound.
SciPy is already the engine's solver (the LP audit).

The server re-check does not trust the choice: ``problems`` verifies that every value is
an adjacent multiple of its true value and that every relation holds, and the re-check
compares the recorded distance with its own optimum, so that a hand-picked rounding
(which could carry information in its choice of up and down) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from trenv.disclosure.suppression import Relation

# Seconds HiGHS may spend on one table. A two-way table is solved at the root (100 x 100
# cells in well under a second); a table that takes longer is reported, not waited for.
TIME_LIMIT_S = 60.0
# The rules whose flagged cells a controlled rounding may protect instead of suppression
# (``rounding.replaces_suppression``): small counts and zeros, the counts rounding hides.
ROUNDING_REPLACES = frozenset({"threshold", "zeros"})


@dataclass(frozen=True)
class ControlledRounding:
    """The rounded cells (flat, as the input), or None and why not."""

    rounded: np.ndarray | None
    distance: float  # sum of |rounded - true| (inf when nothing was found)
    optimal: bool  # the closest rounding (not just one found within the time limit)
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.rounded is not None


def _members(rel: Relation) -> tuple[np.ndarray, np.ndarray]:
    """The cells of a relation and their coefficients: parts +1, total -1."""
    return (
        np.append(np.asarray(rel.parts, dtype=np.int64), rel.total),
        np.append(np.ones(len(rel.parts)), -1.0),
    )


def distance(rounded: np.ndarray, values: np.ndarray) -> float:
    return float(np.abs(np.asarray(rounded, dtype=float) - values).sum())


def controlled_round(
    values: np.ndarray,
    relations: Sequence[Relation],
    base: int,
    time_limit: float = TIME_LIMIT_S,
) -> ControlledRounding:
    """The closest zero-restricted controlled rounding of ``values`` to ``base``.

    ``values`` are the table's cells (flat, margins included, non-negative integers) and
    ``relations`` its additive structure over those flat indices (``table_relations``,
    or the relations of a table with subtotals).
    """
    x = np.asarray(values, dtype=float)
    if x.size and (np.any(x < 0) or not np.array_equal(x, np.round(x))):
        raise ValueError("controlled rounding needs non-negative whole counts")
    x = np.round(x)
    b = float(base)
    low = np.floor(x / b) * b
    remainder = x - low
    free = np.flatnonzero(remainder > 0)  # zero-restricted: multiples stay as they are
    if not len(free):
        return ControlledRounding(x.copy(), 0.0, True)
    var_of = np.full(x.shape, -1, dtype=np.int64)
    var_of[free] = np.arange(len(free))
    rows: list[int] = []
    cols: list[int] = []
    coefs: list[float] = []
    rhs: list[float] = []
    for rel in relations:
        members, signs = _members(rel)
        # sum(low + b*y over parts) = low_t + b*y_t  <=>  sum(s * y) = -sum(s * low) / b
        target = -float(np.dot(signs, low[members])) / b
        vars_ = var_of[members]
        moving = vars_ >= 0
        if not moving.any():
            if target != 0:
                return ControlledRounding(
                    None, np.inf, False, "the table's relations do not hold for its values"
                )
            continue
        k = len(rhs)
        rows.extend([k] * int(moving.sum()))
        cols.extend(vars_[moving].tolist())
        coefs.extend(signs[moving].tolist())
        rhs.append(target)
    cost = b - 2.0 * remainder[free]  # extra distance of rounding each free cell up
    a = sparse.csr_array((coefs, (rows, cols)), shape=(len(rhs), len(free)))
    bound = np.array(rhs)
    up, status = _solve(cost, a, bound, time_limit)
    if up is None:
        why = (
            f"no controlled rounding to base {base} exists for this table's relations"
            if status == 2
            else f"no controlled rounding to base {base} was found within {time_limit:g} s"
        )
        return ControlledRounding(None, np.inf, False, why)
    rounded = x.copy()
    rounded[free] = low[free] + b * up
    # Verified, not assumed: the solver works in floating point.
    wrong = problems(rounded, x, relations, base)
    if wrong:
        return ControlledRounding(None, np.inf, False, f"the solver's rounding fails: {wrong[0]}")
    return ControlledRounding(rounded, distance(rounded, x), status == 0)


def _solve(
    cost: np.ndarray, a: sparse.csr_array, bound: np.ndarray, time_limit: float
) -> tuple[np.ndarray | None, int]:
    """The 0/1 choice minimising ``cost`` with ``a @ up == bound``, and HiGHS' status.

    The LP relaxation first, by dual simplex (a vertex of the polytope): for a two-way
    table its matrix is totally unimodular, so that vertex is integral and therefore the
    integer optimum; this is several times faster than the integer programme on the same
    matrix. A fractional vertex (a table that is no network) goes to ``milp``.
    """
    lp = linprog(
        cost,
        A_eq=a if a.shape[0] else None,
        b_eq=bound if a.shape[0] else None,
        bounds=(0, 1),
        method="highs-ds",
        options={"time_limit": float(time_limit)},
    )
    if lp.status == 2:  # no real solution, so no 0/1 one either
        return None, 2
    if lp.status == 0 and np.all(np.abs(lp.x - np.round(lp.x)) < 1e-9):
        return np.round(lp.x), 0
    res = milp(
        cost,
        integrality=np.ones(len(cost)),
        bounds=Bounds(0, 1),
        constraints=[LinearConstraint(a, bound, bound)] if a.shape[0] else [],
        options={"time_limit": float(time_limit), "disp": False},
    )
    if res.x is None:
        return None, int(res.status)
    return np.round(res.x), int(res.status)


def adjacent(rounded: np.ndarray, values: np.ndarray, base: int) -> np.ndarray:
    """Per cell: ``rounded`` is the value itself if that is a multiple of ``base``, else
    one of the two multiples next to it."""
    x = np.asarray(values, dtype=float)
    q = np.asarray(rounded, dtype=float)
    low = np.floor(x / base) * base
    multiple = low == x
    return np.where(multiple, q == x, (q == low) | (q == low + base))


def problems(
    rounded: np.ndarray, values: np.ndarray, relations: Sequence[Relation], base: int
) -> list[str]:
    """Why ``rounded`` is not a controlled rounding of ``values`` (flat indices named)."""
    out = [
        f"cell {int(i)}: {rounded[i]:g} is not a multiple of {base} next to {values[i]:g}"
        for i in np.flatnonzero(~adjacent(rounded, values, base))
    ]
    for rel in relations:
        members, signs = _members(rel)
        gap = float(np.dot(signs, np.asarray(rounded, dtype=float)[members]))
        if gap != 0:
            out.append(
                f"cells {np.asarray(rel.parts).tolist()} add up to "
                f"{float(np.asarray(rounded, dtype=float)[rel.parts].sum()):g}, "
                f"their total {rounded[rel.total]:g}"
            )
    return out
