"""Re-check a saved table from its output record and the project's policy (the airlock's
server-side check: the researcher's notebook is not trusted).

From the per-cell counts in the record, every rule that depends on a cell's own numbers
(threshold, dominance, p%, zeros, negatives, missing values, constant values, extremes)
is re-run under the server's policy, per cell statistic (a ``describe`` record mixes
counts, means and quantiles); so are the rules on a table's shape (class disclosure and
0%/100% shares) on the table rebuilt from the record. Every cell such a rule flags for
suppression must be unpublished. The record must be consistent with itself
(``consistency``): its published numbers must be what its statistics give. For count/sum
tables with margins (rounded and normalised ones included: the shown values are
recomputed from the record) the LP audit is re-run on exactly the published cells.
Differencing needs the whole release ledger and is run by the caller. Survival records
(``kind="survival"``) are re-checked step by step by ``survival_recheck``.

Rounding is the server's too: the record's rounding parameters must be the policy's, its
counts rounded by the policy's method (a record whose controlled rounding "could not be
made" is re-solved: for a table that has one, that is refused), and a cell flagged by the
threshold or zeros rule may be published only when the policy replaces suppression by
controlled rounding, the record was rounded so, and the cell's count is below the base.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from trenv.disclosure.consistency import record_problems
from trenv.disclosure.controlled import ROUNDING_REPLACES, controlled_round
from trenv.disclosure.grid import Grid, table_grid
from trenv.disclosure.policy import Policy, RoundingSetting, load_policy
from trenv.disclosure.protection import protection_levels
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.rules import RULES, Context
from trenv.disclosure.suppression import audit
from trenv.disclosure.survival_recheck import survival_problems

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
GRID_RULES = ("class-disclosure", "shares")
RECHECKED = CELL_RULES + GRID_RULES


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
        # Cells of statistics without a position (a describe's count or mean) have none.
        stats["near"] = np.array([-1 if n is None else n for n in cells.near], dtype=np.int64)
    return stats


def _published_but(record: OutputRecord, i: int, rule_id: str, reason: str) -> str:
    cells = record.cells
    return f"cell {cells.row[i]}/{cells.column[i]} is published but {rule_id}: {reason}"


def _cell_rules(
    record: OutputRecord, pol: Policy, stat_of: np.ndarray, published: np.ndarray
) -> list[str]:
    cells = record.cells
    stats = _stats(record, max(pol.dominance.n, 2))
    zeros = {(tuple(r), tuple(c)) for r, c in record.structural_zeros}
    structural = np.array(
        [(tuple(r), tuple(c)) in zeros for r, c in zip(cells.row, cells.column, strict=True)],
        dtype=bool,
    )
    out = []
    for stat in dict.fromkeys(stat_of.tolist()):
        sel = np.flatnonzero(stat_of == stat)
        sub = {key: arr[sel] for key, arr in stats.items()}
        if "near" in sub and (sub["near"] < 0).any():
            sub.pop("near")  # no position statistic here
        ctx = Context(statistic=stat, normalize=record.normalize, structural_zeros=structural[sel])
        for rule_id in CELL_RULES:
            field_name, impl = RULES[rule_id]
            if getattr(pol, field_name).action != "suppress":
                continue
            mask, reason = impl(sub, pol, ctx)
            flagged = np.asarray(mask) & published[sel]
            if rule_id in ROUNDING_REPLACES and stat == "count" and _rounding_replaces(record, pol):
                flagged &= ~(sub["rows"] < pol.rounding.base)
            for j in np.flatnonzero(flagged):
                out.append(_published_but(record, int(sel[j]), rule_id, reason(int(j))))
    return out


def _rounding_replaces(record: OutputRecord, pol: Policy) -> bool:
    """Small counts of this record may be published rounded (the policy says so, and the
    record's counts were rounded under control)."""
    return (
        pol.rounding.replaces_suppression
        and pol.rounding.method == "controlled"
        and record.rounding == "controlled"
    )


def _rounding(record: OutputRecord, pol: Policy, stat_of: np.ndarray) -> list[str]:
    """The record's rounding against the policy's: the same parameters, and its counts
    rounded by the policy's method."""
    try:
        recorded = RoundingSetting.model_validate(record.policy_parameters.get("rounding", {}))
    except ValidationError:
        recorded = None
    if recorded != pol.rounding:
        return [
            f"the record's rounding parameters {record.policy_parameters.get('rounding')} "
            f"are not the policy's ({pol.rounding.model_dump()})"
        ]
    expected = pol.rounding.method if (stat_of == "count").any() else "none"
    if record.rounding == expected:
        return []
    if expected == "controlled" and record.rounding == "none" and record.statistic == "count":
        return _unrounded(record, pol)
    return [f"the counts are rounded by {record.rounding!r}, the policy rounds by {expected!r}"]


def _unrounded(record: OutputRecord, pol: Policy) -> list[str]:
    """A count table published unrounded under a controlled-rounding policy: allowed only
    when no controlled rounding exists, which the server confirms by solving."""
    found = table_grid(record)
    if isinstance(found, str):
        return [found]
    values = np.array([0.0 if v is None else v for v in record.cells.value])
    true = found.with_margins(values)
    solved = controlled_round(true.ravel(), found.relations(True), pol.rounding.base)
    if solved.found:
        return [
            f"the counts are published unrounded, but a controlled rounding to base "
            f"{pol.rounding.base} exists for this table (the policy rounds every count)"
        ]
    return []


def _grid_rules(record: OutputRecord, pol: Policy, grid: Grid, published: np.ndarray) -> list[str]:
    """Class disclosure and shares on the table rebuilt from the record (absent margins
    summed from their cells, as ``check_table`` had them)."""
    rows = grid.with_margins(np.asarray(record.cells.rows, dtype=float)).astype(np.int64)
    ctx = Context(statistic=record.statistic, normalize=record.normalize)
    out = []
    for rule_id in GRID_RULES:
        field_name, impl = RULES[rule_id]
        if getattr(pol, field_name).action != "suppress":
            continue
        mask, reason = impl({"rows": rows}, pol, ctx)
        for pos in np.flatnonzero(np.asarray(mask) & grid.present):
            i = int(grid.index.flat[pos])
            if published[i]:
                out.append(_published_but(record, i, rule_id, reason(int(pos))))
    return out


def recheck(record: OutputRecord, policy: str | Policy) -> Recheck:
    """Problems found when re-checking ``record`` under ``policy`` (empty if it passes)."""
    pol = load_policy(policy)
    out = Recheck()
    if record.kind not in ("table", "survival"):
        out.problems.append(f"only tables can be re-checked from a record, not {record.kind}")
        return out
    if (record.policy, record.policy_version) != (pol.name, pol.version):
        out.problems.append(
            f"checked under {record.policy} v{record.policy_version}, project policy is "
            f"{pol.name} v{pol.version}"
        )
    if (pol.contributor_required or record.kind == "survival") and record.contributor is None:
        out.problems.append("no contributor column: people were not counted")
    if record.kind == "survival":
        out.problems.extend(str(p) for p in survival_problems(record, pol))
        return out
    cells = record.cells
    if cells.statistic is not None:
        stat_of = np.array(cells.statistic, dtype=object)
    elif record.statistic == "describe":
        out.problems.append("the describe record carries no per-cell statistics to re-check")
        return out
    else:
        stat_of = np.full(len(cells), record.statistic, dtype=object)
    published = np.array([p is not None for p in cells.published], dtype=bool)
    out.problems.extend(_rounding(record, pol, stat_of))
    out.problems.extend(_cell_rules(record, pol, stat_of, published))
    grid: Grid | None = None
    if cells.statistic is None and len(cells):
        found = table_grid(record)
        if isinstance(found, str):
            out.problems.append(found)
            return out
        grid = found
        out.problems.extend(_grid_rules(record, pol, grid, published))
    problems, shown = record_problems(record, grid, stat_of)
    out.problems.extend(problems)
    # Normalised tables too: with their margins the shares give the counts back.
    if grid is not None and record.statistic in ("count", "sum") and record.margins:
        out.problems.extend(_audit(record, pol, grid, shown))
    return out


def _audit(record: OutputRecord, pol: Policy, grid: Grid, shown: np.ndarray) -> list[str]:
    """The LP audit on the shown (rounded) values: what the published cells reveal about
    the hidden ones, which take their recorded (recomputed) values."""
    cells = record.cells
    c = grid.c
    hidden = grid.spread(np.array([p is None for p in cells.published], dtype=float)) > 0
    hidden &= grid.present
    flat = np.nan_to_num(shown, nan=0.0).ravel()
    relations = grid.relations(bool(record.columns))
    # Rectangle certificates only on a flat two-way grid (not a hierarchy's trees).
    shape = grid.shape if record.columns and grid.axes is None else None
    if not record.columns:
        hidden[:, c] = False  # a one-way table has no column margin
    nonneg = record.statistic == "count" or sum(cells.negatives) == 0
    lower = np.full(flat.shape, 0.0 if nonneg else -np.inf)
    required = pol.secondary.relative_width * np.abs(flat)
    if record.statistic == "count":
        required = np.maximum(required, pol.secondary.count_width)
    # The protection levels from the record's own statistics (its largest contributions
    # and absolute sums) under the server's policy, never from its recorded levels.
    stats = _stats(record, max(pol.dominance.n, 2))
    levels = protection_levels(
        {key: grid.spread(arr.astype(float)) for key, arr in stats.items()},
        pol,
        record.statistic,
    ).ravel()
    try:
        result = audit(
            flat,
            hidden.ravel(),
            relations,
            lower,
            np.full(flat.shape, np.inf),
            required,
            shape=shape,
            lower_level=levels,
            upper_level=levels,
        )
    except ValueError as exc:
        # Cells and margins that do not add up: a record no genuine table produces.
        return [f"the published cells contradict each other ({exc})"]
    problems = []
    for k in np.flatnonzero(~result.passed).tolist():
        ri, ci = divmod(int(result.cells[k]), c + 1)
        lo, hi, value = result.lower[k], result.upper[k], result.value[k]
        problems.append(
            f"suppressed cell {ri},{ci} can be narrowed to [{lo:g}, {hi:g}] from the "
            f"published cells (needs a range of {result.required[k]:g}, reaching "
            f"{value - result.below[k]:g} and {value + result.above[k]:g})"
        )
    return problems
