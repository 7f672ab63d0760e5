"""Differencing across releases: does a new table, with what was released before, pin
down a cell that some release suppresses?

Every count or sum table over the same data is a set of linear facts about the finest
cross-classification of all their variables (the *atoms*): a published cell says that the
atoms it covers add up to its value. A suppressed cell is safe only if, given all facts of
all releases together, its feasible interval is still at least the protection width. That
is the LP of ``lp.feasible_intervals`` over the atoms, for every suppressed cell of every
comparable release. (E.g. a one-way table of regions published after a two-way table whose
row total for a region was suppressed pins that total down.)

Rounded tables are left out: their cells are not exact linear facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from trenv.disclosure.lp import feasible_intervals
from trenv.disclosure.record import OutputRecord

MAX_ATOMS = 500_000


@dataclass(frozen=True)
class Finding:
    release: int  # position in the ledger (the new table is last)
    row: list[str]
    column: list[str]
    lower: float
    upper: float
    required: float

    def reason(self) -> str:
        return (
            f"differencing: with the other releases this suppressed cell lies in "
            f"[{self.lower:g}, {self.upper:g}], narrower than {self.required:g}"
        )


def _comparable(a: OutputRecord, b: OutputRecord) -> bool:
    return (
        a.kind == b.kind == "table"
        and a.statistic == b.statistic
        and a.statistic in ("count", "sum")
        and a.values == b.values
        and a.rounding == "none"
        and b.rounding == "none"
        and a.normalize is None
        and b.normalize is None
    )


@dataclass
class Ledger:
    """The tables a project has released (or asked to release), in order."""

    records: list[OutputRecord] = field(default_factory=list)

    def add(self, record: OutputRecord) -> None:
        self.records.append(record)

    def check(self, new: OutputRecord) -> list[Finding]:
        """Suppressed cells (of any comparable release) that ``new`` helps pin down."""
        group = [r for r in self.records if _comparable(r, new)]
        if not group:
            return []
        group.append(new)
        dims = list(dict.fromkeys(d for r in group for d in r.index + r.columns))
        levels: dict[str, list[str]] = {d: [] for d in dims}
        for rec in group:
            names = rec.index + rec.columns
            for i in range(len(rec.cells)):
                labels = rec.cells.row[i] + rec.cells.column[i]
                margin = [rec.cells.row_margin[i]] * len(rec.index) + [
                    rec.cells.column_margin[i]
                ] * len(rec.columns)
                for d, lab, m in zip(names, labels, margin, strict=False):
                    if not m and lab not in levels[d]:
                        levels[d].append(lab)
        sizes = [len(levels[d]) for d in dims]
        n_atoms = int(np.prod(sizes))
        if n_atoms > MAX_ATOMS:
            raise ValueError(f"{n_atoms:,} atoms: too many to check for differencing")
        code = {d: {lab: k for k, lab in enumerate(levels[d])} for d in dims}
        grid = np.arange(n_atoms).reshape(sizes)

        rows_eq: list[np.ndarray] = []
        rhs: list[float] = []
        targets: list[np.ndarray] = []
        meta: list[tuple[int, int, float]] = []
        nonneg = True
        for pos, rec in enumerate(group):
            params = rec.policy_parameters.get("secondary", {})
            names = rec.index + rec.columns
            for i in range(len(rec.cells)):
                sel: list[slice | int] = [slice(None)] * len(dims)
                labels = rec.cells.row[i] + rec.cells.column[i]
                margin = [rec.cells.row_margin[i]] * len(rec.index) + [
                    rec.cells.column_margin[i]
                ] * len(rec.columns)
                for d, lab, m in zip(names, labels, margin, strict=False):
                    if not m:
                        sel[dims.index(d)] = code[d][lab]
                atoms = np.asarray(grid[tuple(sel)]).ravel()
                nonneg &= rec.cells.negatives[i] == 0
                published = rec.cells.published[i]
                if published is not None:
                    rows_eq.append(atoms)
                    rhs.append(published)
                elif rec.cells.value[i] is not None:
                    value = float(rec.cells.value[i] or 0.0)
                    need = float(params.get("relative_width", 0.0)) * abs(value)
                    if rec.statistic == "count":
                        need = max(need, float(params.get("count_width", 0.0)))
                    targets.append(atoms)
                    meta.append((pos, i, need))
        if not targets:
            return []

        def as_matrix(sets: list[np.ndarray]) -> sparse.csr_matrix:
            r_idx = np.concatenate([np.full(len(s), k) for k, s in enumerate(sets)])
            c_idx = np.concatenate(sets)
            return sparse.csr_matrix(
                (np.ones(len(c_idx)), (r_idx, c_idx)), shape=(len(sets), n_atoms)
            )

        a_eq = as_matrix(rows_eq) if rows_eq else sparse.csr_matrix((0, n_atoms))
        lower = np.full(n_atoms, 0.0 if nonneg else -np.inf)
        upper = np.full(n_atoms, np.inf)
        lo, hi = feasible_intervals(a_eq, np.array(rhs), lower, upper, as_matrix(targets))
        findings = []
        for (pos, i, need), a, b in zip(meta, lo, hi, strict=True):
            if b - a < need - 1e-9:
                rec = group[pos]
                findings.append(
                    Finding(pos, rec.cells.row[i], rec.cells.column[i], float(a), float(b), need)
                )
        return findings
