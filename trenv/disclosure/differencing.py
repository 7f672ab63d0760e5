"""Differencing across releases: does a new table, with what was released before, pin
down a cell that some release suppresses?

Every count or sum table over the same data is a set of linear facts about the finest
cross-classification of all their variables (the *atoms*): a published cell says that the
atoms it covers add up to its value. A suppressed cell is safe only if, given all facts of
all releases together, its feasible interval is still at least the protection width. That
is the LP of ``lp.feasible_intervals`` over the atoms, for every suppressed cell of every
comparable release. (E.g. a one-way table of regions published after a two-way table whose
row total for a region was suppressed pins that total down.)

Not every published number is an exact fact (``release_facts``):

- a *rounded* count constrains its cell to an interval, not a value. Each inner cell of a
  rounded table gets a rounding-error variable ``e = rounded - true`` bounded by the
  rounding rule (base 5: ``-2 <= e <= 2``), shared by the cell's own fact
  (``cell + e = published``) and by the facts of its margins, which are sums of the
  rounded cells (``margin + sum(e) = published``): treating rounded numbers as exact would
  flag safe tables and miss nothing, while leaving them out would miss real leaks;
- a *controlled-rounded* count (``rounding: controlled``) is its true value plus an error
  in ``[-(b-1), b-1]`` for every cell, margins included (a published 0: ``[-(b-1), 0]``,
  the true count is not negative); every cell of the table's grid, hidden cells and
  unpublished margins included, gets its own error variable, and since the rounded table
  adds up exactly as the true one does, the errors of every relation add up too
  (``sum(e_parts) - e_total = 0``): a hidden cell's rounded value is as known as the
  table's additivity makes it, and its true value as uncertain as its rounding;
- a *sum* is a float whose last bits depend on the order of addition, so each published
  sum may be off by a relative ``FLOAT_SLACK`` (otherwise two tables' totals that differ
  by rounding noise would be contradictory facts).

The protected cells are the suppressed ones (protection width: the release's
``secondary`` widths) and, where controlled rounding replaced suppression, the published
cells flagged by the threshold or zeros rule: no combination of releases may narrow such
a cell below the width a suppressed count must keep, or below ``b - 1`` (what a published
0 leaves on its own) if that is less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from trenv.disclosure.controlled import ROUNDING_REPLACES
from trenv.disclosure.grid import table_grid
from trenv.disclosure.lp import feasible_intervals
from trenv.disclosure.policy import Policy
from trenv.disclosure.protection import protection_levels
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.rules import MAGNITUDE_STATS

MAX_ATOMS = 500_000
FLOAT_SLACK = 1e-9  # relative to the largest published value of the release
ROUNDINGS = ("none", "base", "midpoint6", "controlled")


@dataclass(frozen=True)
class Finding:
    release: int  # position in the ledger (the new table is last)
    row: list[str]
    column: list[str]
    lower: float
    upper: float
    required: float
    rounded: bool = False  # a small count published rounded, not a suppressed cell
    cell: int = -1  # position in the release's cell list
    value: float = 0.0  # the cell's true value
    below: float = 0.0  # protection levels the interval must reach below and above it
    above: float = 0.0

    @property
    def narrow(self) -> bool:
        """Narrower than the protection width, or short of a protection level (a
        dominated sum): the cell is pinned down."""
        return (
            self.upper - self.lower < self.required - 1e-9
            or self.value - self.lower < self.below - 1e-9
            or self.upper - self.value < self.above - 1e-9
        )

    def reason(self) -> str:
        what = "this small count, published rounded," if self.rounded else "this suppressed cell"
        levels = (
            f" or not reaching {self.value - self.below:g} and {self.value + self.above:g}"
            if self.below or self.above
            else ""
        )
        return (
            f"differencing: with the other releases {what} lies in "
            f"[{self.lower:g}, {self.upper:g}], narrower than {self.required:g}{levels}"
        )


def rounding_error_bounds(method: str, base: int, published: float | None) -> tuple[float, float]:
    """Bounds on ``rounded - true`` for an integer count under a rounding rule.

    Base ``b`` rounds halves upwards, so ``rounded - true`` lies in ``(-b/2, b/2]``: for
    integers ``[-(ceil(b/2) - 1), floor(b/2)]`` (base 5: -2..2, base 10: -4..5).
    Midpoint-6 publishes 3 for 1-6, 9 for 7-12, ...: ``-3..2``, and 0 only for 0.
    Controlled rounding publishes a multiple ``x`` as it is and any other ``x`` as one of
    the two multiples next to it, so ``|rounded - true| <= b - 1``: ``-(b-1)..b-1``, and
    for a published 0 (a true 0 to ``b - 1``) ``-(b-1)..0``; a hidden cell's rounding
    (``published`` None) is either side.
    """
    if method == "base":
        return -(math.ceil(base / 2) - 1.0), float(base // 2)
    if method == "midpoint6":
        return (0.0, 0.0) if published == 0 else (-3.0, 2.0)
    if method == "controlled":
        return -(base - 1.0), (0.0 if published == 0 else base - 1.0)
    return 0.0, 0.0


def record_levels(rec: OutputRecord) -> np.ndarray:
    """Per cell of ``rec``, the protection level a concentration rule asks of it
    (:mod:`trenv.disclosure.protection`), from the record's own statistics and policy."""
    cells = rec.cells
    if rec.statistic not in MAGNITUDE_STATS or not len(cells):
        return np.zeros(len(cells))
    try:
        pol = Policy.model_validate(rec.policy_parameters)
    except ValueError:
        return np.zeros(len(cells))  # not a trenv policy: the widths alone
    k = max(pol.dominance.n, 2)
    top = np.array([(list(t) + [0.0] * k)[:k] for t in cells.top], dtype=float).reshape(-1, k)
    stats = {"abs_sum": np.asarray(cells.abs_sum, dtype=float)}
    stats.update({f"top{j + 1}": top[:, j] for j in range(k)})
    return protection_levels(stats, pol, rec.statistic)


def unfixed(rec: OutputRecord, i: int) -> list[bool]:
    """Per variable (index, then columns): whether cell ``i`` of ``rec`` adds over it (a
    margin, or a level below a subtotal's) instead of fixing it to its label."""
    cells = rec.cells
    out: list[bool] = []
    for names, margin, levels in (
        (rec.index, cells.row_margin[i], cells.row_level),
        (rec.columns, cells.column_margin[i], cells.column_level),
    ):
        depth = 0 if margin else (len(names) if levels is None else levels[i])
        out += [t >= depth for t in range(len(names))]
    return out


def _comparable(a: OutputRecord, b: OutputRecord) -> bool:
    return (
        a.kind == b.kind == "table"
        and a.statistic == b.statistic
        and a.statistic in ("count", "sum")
        and a.values == b.values
        and a.rounding in ROUNDINGS
        and b.rounding in ROUNDINGS
        and a.normalize is None
        and b.normalize is None
    )


@dataclass
class Facts:
    """Linear facts ``atoms(row) + sum(errors(row)) = rhs`` with bounded error variables."""

    atoms: list[np.ndarray] = field(default_factory=list)
    errors: list[list[int]] = field(default_factory=list)
    rhs: list[float] = field(default_factory=list)
    error_lower: list[float] = field(default_factory=list)
    error_upper: list[float] = field(default_factory=list)
    # Coefficients of each fact's errors (None: all 1; -1 for a total in ``e`` relations).
    error_signs: list[list[float] | None] = field(default_factory=list)

    def error(self, lower: float, upper: float) -> int:
        self.error_lower.append(lower)
        self.error_upper.append(upper)
        return len(self.error_lower) - 1

    def add(
        self,
        atoms: np.ndarray,
        errors: list[int],
        rhs: float,
        signs: list[float] | None = None,
    ) -> None:
        self.atoms.append(atoms)
        self.errors.append(errors)
        self.rhs.append(rhs)
        self.error_signs.append(signs)

    def matrix(self, n_atoms: int) -> sparse.csr_matrix:
        n_vars = n_atoms + len(self.error_lower)
        if not self.atoms:
            return sparse.csr_matrix((0, n_vars))
        signs = self.error_signs + [None] * (len(self.atoms) - len(self.error_signs))
        cols = [
            np.concatenate((a, np.asarray(e, dtype=np.int64) + n_atoms))
            for a, e in zip(self.atoms, self.errors, strict=True)
        ]
        data = [
            np.concatenate((np.ones(len(a)), np.ones(len(e)) if sg is None else np.asarray(sg)))
            for a, e, sg in zip(self.atoms, self.errors, signs, strict=True)
        ]
        r_idx = np.concatenate([np.full(len(c), k) for k, c in enumerate(cols)])
        c_idx = np.concatenate(cols)
        return sparse.csr_matrix((np.concatenate(data), (r_idx, c_idx)), shape=(len(cols), n_vars))


def release_facts(rec: OutputRecord, atoms_of: list[np.ndarray], facts: Facts) -> None:
    """Add what one release publishes to ``facts`` (``atoms_of[i]``: the atoms of cell i)."""
    cells = rec.cells
    if rec.rounding == "controlled":
        _controlled_facts(rec, atoms_of, facts)
        return
    inner = [i for i in range(len(cells)) if not (cells.row_margin[i] or cells.column_margin[i])]
    if rec.rounding in ("base", "midpoint6"):
        base = rounding_base(rec)
        err = {
            i: facts.error(*rounding_error_bounds(rec.rounding, base, cells.published[i]))
            for i in inner
        }
        by_row: dict[tuple[str, ...], list[int]] = {}
        by_col: dict[tuple[str, ...], list[int]] = {}
        for i in inner:
            by_row.setdefault(tuple(cells.row[i]), []).append(err[i])
            by_col.setdefault(tuple(cells.column[i]), []).append(err[i])
        for i in range(len(cells)):
            published = cells.published[i]
            if published is None:
                continue
            if i in err:
                errors = [err[i]]
            elif cells.row_margin[i] and cells.column_margin[i]:
                errors = list(err.values())
            elif cells.column_margin[i]:  # the total of a row: its rounded cells
                errors = by_row.get(tuple(cells.row[i]), [])
            else:
                errors = by_col.get(tuple(cells.column[i]), [])
            facts.add(atoms_of[i], errors, float(published))
        return
    shown = [abs(p) for p in cells.published if p is not None]
    slack = FLOAT_SLACK * max(shown, default=0.0) if rec.statistic != "count" else 0.0
    for i in range(len(cells)):
        published = cells.published[i]
        if published is None:
            continue
        errors = [facts.error(-slack, slack)] if slack > 0 else []
        facts.add(atoms_of[i], errors, float(published))


def nested_zeros(
    group: list[OutputRecord],
    dims: list[str],
    code: dict[str, dict[str, int]],
    grid: np.ndarray,
) -> np.ndarray:
    """Atoms that no person is in, known from a table with subtotals: it lists every
    combination of its nested variables that occurs (a municipality only under its own
    province), so every other combination is empty. An intruder knows the nesting anyway;
    without it the programme would let Meppel's people sit in Utrecht."""
    out = np.zeros(grid.size, dtype=bool)
    for rec in group:
        if not rec.subtotals:
            continue
        cells = rec.cells
        for names, labels, levels, margin in (
            (rec.index, cells.row, cells.row_level, cells.row_margin),
            (rec.columns, cells.column, cells.column_level, cells.column_margin),
        ):
            if len(names) < 2 or levels is None:
                continue
            seen = np.zeros([len(code[d]) for d in names], dtype=bool)
            for lab, lv, m in zip(labels, levels, margin, strict=True):
                if not m and lv == len(names):
                    seen[tuple(code[d][x] for d, x in zip(names, lab, strict=True))] = True
            axes = [dims.index(d) for d in names]
            shape = [len(code[d]) if k in axes else 1 for k, d in enumerate(dims)]
            order = np.argsort(axes)  # the record's variables in the atoms' order
            laid = np.transpose(seen, order).reshape(shape)
            out |= ~np.broadcast_to(laid, grid.shape).ravel()
    return out


def _controlled_facts(rec: OutputRecord, atoms_of: list[np.ndarray], facts: Facts) -> None:
    """A controlled-rounded table: an error per cell of its grid (unpublished margins too),
    a fact per published cell, and the errors of every relation adding up."""
    cells = rec.cells
    base = rounding_base(rec)
    grid = table_grid(rec)
    if isinstance(grid, str):
        # Not one table (the re-check refuses such a record): each cell on its own.
        for i in range(len(cells)):
            if cells.published[i] is not None:
                e = facts.error(*rounding_error_bounds("controlled", base, cells.published[i]))
                facts.add(atoms_of[i], [e], float(cells.published[i]))
        return
    err = np.empty(grid.shape, dtype=np.int64)
    for pos in np.ndindex(*grid.shape):
        i = int(grid.index[pos])
        published = cells.published[i] if i >= 0 else None
        err[pos] = facts.error(*rounding_error_bounds("controlled", base, published))
        if published is not None:
            facts.add(atoms_of[i], [int(err[pos])], float(published))
    flat = err.ravel()
    empty = np.zeros(0, dtype=np.int64)
    for rel in grid.relations(True):
        members = [*flat[rel.parts].tolist(), int(flat[rel.total])]
        facts.add(empty, members, 0.0, [1.0] * len(rel.parts) + [-1.0])


def rounding_base(rec: OutputRecord) -> int:
    return int(rec.policy_parameters.get("rounding", {}).get("base", 5))


def rounding_protected(rec: OutputRecord, i: int) -> bool:
    """Cell ``i`` is a small count (or a zero) published with controlled rounding in place
    of suppression: the rounding is all that protects it."""
    cells = rec.cells
    return (
        rec.rounding == "controlled"
        and cells.published[i] is not None
        and cells.suppressed[i] is None
        and any(f in ROUNDING_REPLACES for f in cells.flags[i])
    )


@dataclass
class Ledger:
    """The tables a project has released (or asked to release), in order."""

    records: list[OutputRecord] = field(default_factory=list)

    def add(self, record: OutputRecord) -> None:
        self.records.append(record)

    def check(self, new: OutputRecord) -> list[Finding]:
        """Suppressed cells (of any comparable release) that ``new`` helps pin down."""
        return [f for f in self.intervals(new) if f.narrow]

    def intervals(self, new: OutputRecord) -> list[Finding]:
        """The feasible interval of every suppressed cell of ``new`` and of the comparable
        releases, given all of them together (``Finding.release``: position among the
        comparable releases, ``new`` last)."""
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
                margin = unfixed(rec, i)
                for d, lab, m in zip(names, labels, margin, strict=False):
                    if not m and lab not in levels[d]:
                        levels[d].append(lab)
        sizes = [len(levels[d]) for d in dims]
        n_atoms = int(np.prod(sizes))
        if n_atoms > MAX_ATOMS:
            raise ValueError(f"{n_atoms:,} atoms: too many to check for differencing")
        code = {d: {lab: k for k, lab in enumerate(levels[d])} for d in dims}
        grid = np.arange(n_atoms).reshape(sizes)

        facts = Facts()
        targets: list[np.ndarray] = []
        meta: list[tuple[int, int, float, bool]] = []
        levels: dict[tuple[int, int], float] = {}
        nonneg = True
        for pos, rec in enumerate(group):
            params = rec.policy_parameters.get("secondary", {})
            rec_levels = record_levels(rec)
            names = rec.index + rec.columns
            atoms_of = []
            for i in range(len(rec.cells)):
                sel: list[slice | int] = [slice(None)] * len(dims)
                labels = rec.cells.row[i] + rec.cells.column[i]
                margin = unfixed(rec, i)
                for d, lab, m in zip(names, labels, margin, strict=False):
                    if not m:
                        sel[dims.index(d)] = code[d][lab]
                atoms = np.asarray(grid[tuple(sel)]).ravel()
                atoms_of.append(atoms)
                nonneg &= rec.cells.negatives[i] == 0
                if rec.cells.published[i] is None and rec.cells.value[i] is not None:
                    value = float(rec.cells.value[i] or 0.0)
                    need = float(params.get("relative_width", 0.0)) * abs(value)
                    if rec.statistic == "count":
                        need = max(need, float(params.get("count_width", 0.0)))
                    targets.append(atoms)
                    meta.append((pos, i, need, False))
                    levels[(pos, i)] = float(rec_levels[i])
                elif rounding_protected(rec, i):
                    # The width a suppressed count must keep, but no more than its rounding
                    # alone leaves it (a published 0: 0 to b - 1).
                    value = float(rec.cells.value[i] or 0.0)
                    need = max(
                        float(params.get("relative_width", 0.0)) * value,
                        float(params.get("count_width", 0.0)),
                    )
                    targets.append(atoms)
                    meta.append((pos, i, min(need, rounding_base(rec) - 1.0), True))
            release_facts(rec, atoms_of, facts)
        if not targets:
            return []

        n_vars = n_atoms + len(facts.error_lower)
        target_matrix = Facts(atoms=targets, errors=[[] for _ in targets]).matrix(n_atoms)
        target_matrix.resize((len(targets), n_vars))
        atom_lower = np.full(n_atoms, 0.0 if nonneg else -np.inf)
        atom_upper = np.full(n_atoms, np.inf)
        impossible = nested_zeros(group, dims, code, grid)
        atom_lower[impossible], atom_upper[impossible] = 0.0, 0.0
        lower = np.concatenate((atom_lower, facts.error_lower))
        upper = np.concatenate((atom_upper, facts.error_upper))
        lo, hi = feasible_intervals(
            facts.matrix(n_atoms), np.array(facts.rhs), lower, upper, target_matrix
        )
        out = []
        for (pos, i, need, rounded), a, b in zip(meta, lo, hi, strict=True):
            value = float(group[pos].cells.value[i] or 0.0)
            level = levels.get((pos, i), 0.0)
            # Below a non-negative cell's value the interval cannot reach past 0.
            below = min(level, abs(value)) if nonneg else level
            out.append(
                Finding(pos, group[pos].cells.row[i], group[pos].cells.column[i], float(a),
                        float(b), need, rounded, cell=i, value=value, below=below,
                        above=level)
            )  # fmt: skip
        return out
