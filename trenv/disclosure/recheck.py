"""Re-check a saved table from its output record and the project's policy (the airlock's
server-side check: the researcher's notebook is not trusted).

From the per-cell counts in the record, every rule that depends on a cell's own numbers
(threshold, dominance, p%, zeros, negatives, missing values, constant values, extremes)
is re-run under the server's policy; every cell such a rule flags for suppression must be
unpublished; and for count/sum tables with margins the LP audit is re-run on exactly the
published cells. Rules on a table's shape (class disclosure, shares) and differencing need
the whole release ledger and are run by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trenv.disclosure.policy import Policy, load_policy
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.rules import RULES, Context
from trenv.disclosure.suppression import audit, table_relations

CELL_RULES = (
    "threshold",
    "dominance-nk",
    "p-percent",
    "zeros",
    "negative",
    "missing",
    "constant-value",
    "extremes",
)


@dataclass
class Recheck:
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _stats(record: OutputRecord, k: int) -> dict[str, np.ndarray]:
    cells = record.cells
    top = np.array([(t + [0.0] * k)[:k] for t in cells.top], dtype=float).reshape(-1, k)
    equal = np.array(cells.all_equal, dtype=bool)
    stats = {
        "rows": np.array(cells.rows, dtype=np.int64),
        "contributors": np.array(cells.contributors, dtype=np.int64),
        "sum": np.array(cells.sum, dtype=float),
        "abs_sum": np.array(cells.abs_sum, dtype=float),
        "negatives": np.array(cells.negatives, dtype=np.int64),
        "missing": np.array(cells.missing, dtype=np.int64),
        # Only equality of min and max is recorded (never the values themselves).
        "vmin": np.zeros(len(equal)),
        "vmax": np.where(equal, 0.0, 1.0),
    }
    for j in range(k):
        stats[f"top{j + 1}"] = top[:, j]
    if cells.near is not None:
        stats["near"] = np.array(cells.near, dtype=np.int64)
    return stats


def recheck(record: OutputRecord, policy: str | Policy) -> Recheck:
    """Problems found when re-checking ``record`` under ``policy`` (empty if it passes)."""
    pol = load_policy(policy)
    out = Recheck()
    if record.kind != "table":
        out.problems.append(f"only tables can be re-checked from a record, not {record.kind}")
        return out
    if (record.policy, record.policy_version) != (pol.name, pol.version):
        out.problems.append(
            f"checked under {record.policy} v{record.policy_version}, project policy is "
            f"{pol.name} v{pol.version}"
        )
    if pol.contributor_required and record.contributor is None:
        out.problems.append("no contributor column: people were not counted")
    cells = record.cells
    n = len(cells)
    structural = np.zeros(n, dtype=bool)
    zeros = {(tuple(r), tuple(c)) for r, c in record.structural_zeros}
    for i in range(n):
        structural[i] = (tuple(cells.row[i]), tuple(cells.column[i])) in zeros
    stats = _stats(record, max(pol.dominance.n, 2))
    ctx = Context(
        statistic=record.statistic, normalize=record.normalize, structural_zeros=structural
    )
    published = np.array([p is not None for p in cells.published])
    for rule_id in CELL_RULES:
        field_name, impl = RULES[rule_id]
        if getattr(pol, field_name).action != "suppress":
            continue
        mask, reason = impl(stats, pol, ctx)
        for i in np.flatnonzero(np.asarray(mask) & published):
            out.problems.append(
                f"cell {cells.row[i]}/{cells.column[i]} is published but {rule_id}: "
                f"{reason(int(i))}"
            )
    # Rounded tables: hidden cells' rounded values are not recorded, so their additive
    # structure cannot be rebuilt exactly; the rounding itself protects the margins.
    additive = record.statistic in ("count", "sum") and record.rounding == "none"
    if additive and record.margins and record.columns:
        out.problems.extend(_audit(record, pol, published))
    return out


def _audit(record: OutputRecord, pol: Policy, published: np.ndarray) -> list[str]:
    cells = record.cells
    rows = list(
        dict.fromkeys(tuple(r) for r, m in zip(cells.row, cells.row_margin, strict=True) if not m)
    )
    cols = list(
        dict.fromkeys(
            tuple(c) for c, m in zip(cells.column, cells.column_margin, strict=True) if not m
        )
    )
    r, c = len(rows), len(cols)
    grid = np.zeros((r + 1, c + 1))
    hidden = np.zeros((r + 1, c + 1), dtype=bool)
    for i in range(len(cells)):
        ri = r if cells.row_margin[i] else rows.index(tuple(cells.row[i]))
        ci = c if cells.column_margin[i] else cols.index(tuple(cells.column[i]))
        # The audit asks what the published numbers reveal about the true (or rounded)
        # values, so hidden cells take their recorded values.
        value = cells.published[i] if cells.published[i] is not None else cells.value[i]
        grid[ri, ci] = 0.0 if value is None else value
        hidden[ri, ci] = not published[i]
    flat = grid.ravel()
    nonneg = record.statistic == "count" or sum(cells.negatives) == 0
    lower = np.full(flat.shape, 0.0 if nonneg else -np.inf)
    required = pol.secondary.relative_width * np.abs(flat)
    if record.statistic == "count":
        required = np.maximum(required, pol.secondary.count_width)
    result = audit(
        flat,
        hidden.ravel(),
        table_relations(r, c),
        lower,
        np.full(flat.shape, np.inf),
        required,
        shape=grid.shape,
    )
    problems = []
    for cell, lo, hi, need in zip(
        result.cells, result.lower, result.upper, result.required, strict=True
    ):
        if hi - lo < need - 1e-9:
            ri, ci = divmod(int(cell), c + 1)
            problems.append(
                f"suppressed cell {ri},{ci} can be narrowed to [{lo:g}, {hi:g}] from the "
                f"published cells (needs a range of {need:g})"
            )
    return problems
