"""Is an output record consistent with itself?

The airlock re-runs the rules on the record's per-cell statistics, so those statistics
must be the ones the published numbers came from: otherwise a record could pair a large
``contributors`` count (which passes) with the value of a small cell (which is
published). Checked here, from the record alone:

- every cell's statistics among themselves (contributors <= rows, the largest
  contributions sorted and within the absolute sum, ...), and margins against their cells
  (rows, negatives and missing values add up; a margin has at least as many contributors
  as any of its cells and at most their sum);
- every cell's unmitigated ``value`` against its statistics (a count is its rows, a sum
  its sum, a mean sum / rows);
- every published number against ``value``: equal, or, for a rounded count, the rounding
  of it (margins of a rounded table: the sum of the rounded cells, hidden ones included),
  and for a normalised table the share of the (rounded) total;
- for a controlled rounding, whose choice of up or down cannot be recomputed, the recorded
  rounded counts (``cells.rounded``): every one, unpublished margins included, the true
  count if that is a multiple of the base and else one of the two multiples next to it;
  the rounded table additive; and no farther from the true table than the closest
  controlled rounding the server finds itself (a hand-picked rounding could carry
  information in its choice of up and down).
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np

from trenv.disclosure.controlled import adjacent, controlled_round, distance
from trenv.disclosure.grid import ADDITIVE_STATS, Grid
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.rounding import round_base, round_midpoint6
from trenv.disclosure.structure import aggregate

REL = 1e-9  # relative slack for floats added in another order


def _floats(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _close(a: float, b: float, scale: float = 0.0) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=REL * max(1.0, abs(scale)))


def _round(values: np.ndarray, method: str, base: int) -> np.ndarray:
    return round_midpoint6(values) if method == "midpoint6" else round_base(values, base)


def rounding_base(record: OutputRecord) -> int:
    """The record's rounding base (the re-check has compared its parameters with the
    project's policy)."""
    return int(record.policy_parameters.get("rounding", {}).get("base", 5))


def shown_values(record: OutputRecord, grid: Grid | None, stat_of: np.ndarray) -> np.ndarray:
    """What each cell showed before suppression and normalisation, recomputed from the
    recorded values: per cell (``grid`` None) or as the grid with margins. A controlled
    rounding is the recorded one (``controlled_problems`` verifies it)."""
    value = _floats(record.cells.value)
    method = record.rounding
    base = rounding_base(record)
    if method == "controlled":
        return _controlled_shown(record, grid, stat_of)
    if grid is None:
        rounded = (stat_of == "count") & (method != "none")
        shown = value.copy()
        if rounded.any():
            shown[rounded] = _round(value[rounded], method, base)
        return shown
    if grid.axes is not None:
        # Subtotals: what is rounded are the leaves; every subtotal is their rounded sum.
        full = grid.with_margins(np.nan_to_num(value))
        full[grid.present] = np.where(np.isnan(value[grid.index[grid.present]]), np.nan,
                                      full[grid.present])  # fmt: skip
        if record.statistic == "count" and method != "none":
            rows, cols = grid.axes
            leaves = np.nan_to_num(full[np.ix_(rows.leaves, cols.leaves)])
            full = aggregate(_round(leaves, method, base), rows, cols)
        return full
    if record.statistic in ("count", "sum"):
        # Absent margins are the sums of their cells; a cell without rows has no sum (its
        # value is None) but adds nothing to its margins.
        full = grid.with_margins(np.nan_to_num(value))
        idx = grid.index[grid.present]
        full[grid.present] = np.where(np.isnan(value[idx]), np.nan, full[grid.present])
    else:
        full = grid.spread(value, np.nan)
    if record.statistic == "count" and method != "none":
        r, c = grid.r, grid.c
        rounded = _round(full[:r, :c], method, base)
        full = full.copy()
        full[:r, :c] = rounded
        full[:r, c] = rounded.sum(axis=1)
        full[r, :c] = rounded.sum(axis=0)
        full[r, c] = rounded.sum()
    return full


def _controlled_shown(record: OutputRecord, grid: Grid | None, stat_of: np.ndarray) -> np.ndarray:
    """The recorded controlled rounding: per cell, or as the grid (unpublished margins the
    sums of their cells); cells of other statistics show their value."""
    value = _floats(record.cells.value)
    rounded = record.cells.rounded or [None] * len(value)
    counts = stat_of == "count"
    per_cell = np.where(counts, _floats(rounded), value)
    if grid is None:
        return per_cell
    if record.statistic != "count":
        return grid.spread(value, np.nan)
    return grid.with_margins(np.nan_to_num(per_cell, nan=0.0))


def controlled_problems(record: OutputRecord, grid: Grid | None, stat_of: np.ndarray) -> list[str]:
    """Why the recorded controlled rounding is not one of the recorded counts."""
    cells = record.cells
    counts = stat_of == "count"
    if not counts.any():
        return []
    base = rounding_base(record)
    rounded = cells.rounded
    if rounded is None or any(rounded[i] is None for i in np.flatnonzero(counts)):
        return ["the record says its counts were rounded under control but lacks their rounding"]
    value = _floats(cells.value)
    if grid is None:
        # One-cell tables (a describe's counts): the rounding of a cell and its equal total
        # is the nearer multiple (either one for a tie).
        q = _floats(rounded)
        out = []
        for i in np.flatnonzero(counts):
            near = abs(q[i] - value[i]) <= base / 2
            if not (adjacent(q[i : i + 1], value[i : i + 1], base)[0] and near):
                out.append(
                    f"cell {cells.row[i]}/{cells.column[i]}: the count {value[i]:g} is "
                    f"rounded to {q[i]:g}, not to the multiple of {base} nearest to it"
                )
        return out
    r, c = grid.r, grid.c
    true = grid.with_margins(np.nan_to_num(value, nan=0.0))
    shown = _controlled_shown(record, grid, stat_of)
    # Every relation of the grid (its margins' sums, or a hierarchy's every level).
    facts = grid.relations(True)
    summed = shown.copy()
    flat = summed.ravel()
    for rel in facts:
        flat[rel.total] = shown.ravel()[rel.parts].sum()
    out = []

    def where(ri: int, ci: int) -> str:
        i = int(grid.index[ri, ci])
        if i >= 0:
            return f"cell {cells.row[i]}/{cells.column[i]}"
        if ri == r and ci == c:
            return "the unpublished grand total"
        return f"the unpublished total of {'column' if ri == r else 'row'} {ci if ri == r else ri}"

    for ri, ci in zip(*np.nonzero(~adjacent(shown, true, base)), strict=True):
        out.append(
            f"{where(ri, ci)}: the count {true[ri, ci]:g} is rounded to {shown[ri, ci]:g}, "
            f"not to a multiple of {base} next to it"
        )
    for ri, ci in zip(*np.nonzero(summed != shown), strict=True):
        out.append(
            f"{where(ri, ci)}: the rounded total {shown[ri, ci]:g} is not the sum of its "
            f"rounded cells, {summed[ri, ci]:g}: the rounded table does not add up"
        )
    if out:
        return out
    best = controlled_round(true.ravel(), facts, base)
    mine = distance(shown.ravel(), true.ravel())
    if best.found and mine > best.distance + 1e-9:
        out.append(
            f"the controlled rounding is {mine:g} away from the true table, the closest one "
            f"{best.distance:g}: the rounding was chosen by hand"
        )
    return out


def _published_from_shown(record: OutputRecord, grid: Grid, shown: np.ndarray) -> np.ndarray:
    """The published grid ``check_table`` makes of ``shown``: shares if normalised."""
    norm = record.normalize
    if norm is None:
        return shown
    r, c = grid.r, grid.c
    with np.errstate(divide="ignore", invalid="ignore"):
        if norm == "index":
            return shown / shown[:, c][:, None]
        if norm == "columns":
            return shown / shown[r, :][None, :]
        return shown / shown[r, c]


def _own_statistics(record: OutputRecord, stat_of: np.ndarray) -> list[str]:
    cells = record.cells
    out = []
    for i in range(len(cells)):
        where = f"cell {cells.row[i]}/{cells.column[i]}"
        rows, people = cells.rows[i], cells.contributors[i]
        top = cells.top[i]
        wrong = []
        if people > rows or (rows > 0) != (people > 0):
            wrong.append(f"{people} contributors for {rows} rows")
        if cells.negatives[i] > rows or min(cells.negatives[i], cells.missing[i], rows) < 0:
            wrong.append("negative or impossible counts")
        if any(t < 0 for t in top) or any(a < b for a, b in pairwise(top)):
            wrong.append("largest contributions not in order")
        limit = cells.abs_sum[i] * (1 + REL) + REL
        if (top and top[0] > limit) or abs(cells.sum[i]) > limit:
            wrong.append("contributions larger than the absolute sum")
        value = cells.value[i]
        stat = str(stat_of[i])
        if stat == "count" and value != rows:
            wrong.append(f"a count of {value} for {rows} rows")
        elif stat != "count" and rows == 0 and value is not None:
            wrong.append(f"a {stat} of {value:g} without rows")
        elif stat == "sum" and rows and not _close(value or 0.0, cells.sum[i], cells.abs_sum[i]):
            wrong.append(f"a sum of {value} where the contributions add up to {cells.sum[i]:g}")
        elif stat == "mean" and rows and not _close(value or 0.0, cells.sum[i] / rows):
            wrong.append(f"a mean of {value} where sum / rows is {cells.sum[i] / rows:g}")
        if wrong:
            out.append(f"{where}: the record is inconsistent: {'; '.join(wrong)}")
    return out


def _subtotals(record: OutputRecord, grid: Grid) -> list[str]:
    """Every recorded subtotal and total against its children, along both axes."""
    assert grid.axes is not None
    cells = record.cells
    grids = {k: grid.spread(np.asarray(getattr(cells, k), dtype=float)) for k in ADDITIVE_STATS}
    people = grid.spread(np.asarray(cells.contributors, dtype=float))
    out: list[str] = []
    rows, cols = grid.axes
    for axis, along in ((rows, 0), (cols, 1)):
        for total, parts in axis.children().items():
            for other in range(grid.shape[1 - along]):
                at = (total, other) if along == 0 else (other, total)
                kids = (parts, other) if along == 0 else (other, parts)
                i = int(grid.index[at])
                if i < 0 or (grid.index[kids] < 0).any():
                    continue  # an unpublished margin: nothing recorded to check
                wrong = [
                    f"{s} {g[at]:g} != {g[kids].sum():g} of its parts"
                    for s, g in grids.items()
                    if g[at] != g[kids].sum()
                ]
                n, members = people[at], people[kids]
                if not members.max() <= n <= members.sum():
                    wrong.append(
                        f"{n:g} contributors, its parts {members.max():g}..{members.sum():g}"
                    )
                if wrong:
                    out.append(
                        f"cell {cells.row[i]}/{cells.column[i]}: the record is inconsistent: "
                        + "; ".join(wrong)
                    )
    return list(dict.fromkeys(out))


def _margins(record: OutputRecord, grid: Grid) -> list[str]:
    """Recorded margins against their recorded cells."""
    if grid.axes is not None:
        return _subtotals(record, grid)
    cells = record.cells
    r, c = grid.r, grid.c
    out = []
    grids = {k: grid.spread(np.asarray(getattr(cells, k), dtype=float)) for k in ADDITIVE_STATS}
    people = grid.spread(np.asarray(cells.contributors, dtype=float))
    inner_people = people[:r, :c]
    lines = [(k, c, inner_people[k, :], {s: g[k, :c] for s, g in grids.items()}) for k in range(r)]
    lines += [(r, k, inner_people[:, k], {s: g[:r, k] for s, g in grids.items()}) for k in range(c)]
    lines.append((r, c, inner_people.ravel(), {s: g[:r, :c].ravel() for s, g in grids.items()}))
    for ri, ci, members, parts in lines:
        i = int(grid.index[ri, ci])
        if i < 0:
            continue
        wrong = [
            f"{s} {grids[s][ri, ci]:g} != {part.sum():g} of its cells"
            for s, part in parts.items()
            if grids[s][ri, ci] != part.sum()
        ]
        n = people[ri, ci]
        if len(members) and not members.max() <= n <= members.sum():
            wrong.append(f"{n:g} contributors, its cells {members.max():g}..{members.sum():g}")
        if wrong:
            out.append(
                f"cell {cells.row[i]}/{cells.column[i]}: the record is inconsistent: "
                + "; ".join(wrong)
            )
    return out


def record_problems(
    record: OutputRecord, grid: Grid | None, stat_of: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Inconsistencies of ``record``, and the shown values (per cell, or as the grid)."""
    cells = record.cells
    out = _own_statistics(record, stat_of)
    if grid is not None:
        out += _margins(record, grid)
    if record.rounding == "controlled":
        out += controlled_problems(record, grid, stat_of)
    shown = shown_values(record, grid, stat_of)
    if grid is None:
        expected = shown
    else:
        expected = np.full(len(cells), np.nan)
        laid = _published_from_shown(record, grid, shown)
        expected[grid.index[grid.present]] = laid[grid.present]
    for i in range(len(cells)):
        published = cells.published[i]
        where = f"cell {cells.row[i]}/{cells.column[i]}"
        if published is None:
            continue
        if cells.suppressed[i] is not None:
            out.append(f"{where} is published but inconsistent: it is marked as suppressed")
        elif np.isnan(expected[i]) or not _close(published, float(expected[i]), expected[i]):
            out.append(
                f"{where} is published but inconsistent: it shows {published:g} where its "
                f"recorded value gives {expected[i]:g}"
            )
    return out, shown
