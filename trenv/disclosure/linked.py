"""Linked tables: several tables of the same data, protected together.

Two tables from one data set share cells: region x offence and region x sex have the same
region totals, and every table has the same grand total. Each table's own suppression
pattern protects it alone; together a cell hidden in one can be published in the other
(the shared margin), or pinned down by the facts of both (an intruder solves one linear
programme over the finest cross-classification of all their variables). tau-ARGUS calls
this "linked tables" and protects them jointly; so does this module:

1. a cell hidden in one table is hidden in every table that shows the same group of people
   (the same variables fixed to the same labels, :func:`populations._definitions`);
2. the tables' facts are combined in the differencing ledger's programme
   (:class:`trenv.disclosure.differencing.Ledger`), which gives the feasible interval of
   every hidden cell of every table given everything published in all of them;
3. every cell left narrower than its protection gets a partner in each additive relation of
   its own table (the cheapest published cell that can carry the width, as the single-table
   heuristic chooses), and steps 1-2 run again, until no cell is narrow. If that does not
   converge within the policy's ``secondary.max_rounds`` every cell of every table is
   hidden: failing closed.

Pure: records in, records out. The records must describe tables of one data set (their
shared cells must have the same true values) with the same statistic (counts, or sums of
one values column): other tables share no linear facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trenv.disclosure.consistency import shown_values
from trenv.disclosure.differencing import Finding, Ledger
from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.grid import Grid, table_grid
from trenv.disclosure.populations import Definition, _definitions
from trenv.disclosure.record import OutputRecord, RuleVerdict
from trenv.disclosure.suppression import _pick_partner

RULE = "linked-tables"
VALUE_TOLERANCE = 1e-9


@dataclass
class _Table:
    record: OutputRecord
    grid: Grid
    hidden: np.ndarray  # per record cell
    shown: np.ndarray  # per grid position: the (rounded) value, what partners are chosen by
    primary: np.ndarray  # per record cell: hidden by its own rules
    cost: np.ndarray  # per grid position: what a partner costs (the policy's secondary.cost)


def protect_linked(records: Sequence[OutputRecord]) -> list[OutputRecord]:
    """``records`` with their suppression patterns extended so that, together, every hidden
    cell of every table keeps its protection width."""
    tables = [_table(r, k) for k, r in enumerate(records)]
    if len(tables) < 2:
        raise DisclosureInputError("linked tables are two or more tables of the same data")
    _same_data(tables)
    definitions = [_definitions(t.record) for t in tables]
    rounds = max(t.record.policy_parameters.get("secondary", {}).get("max_rounds", 50)
                 for t in tables)  # fmt: skip
    for _ in range(int(rounds)):
        _share_hidden(tables, definitions)
        current = [_hide(t) for t in tables]
        intervals = Ledger(current[:-1]).intervals(current[-1])
        narrow = [f for f in intervals if f.narrow]
        if not narrow:
            return _finished(tables, current, intervals)
        changed = False
        for f in narrow:
            changed |= _add_partners(tables[f.release], f.cell, f.required)
        if not changed:
            break
    for t in tables:  # no pattern found: nothing of any of them is published
        t.hidden[:] = True
    current = [_hide(t) for t in tables]
    return _finished(tables, current, Ledger(current[:-1]).intervals(current[-1]))


def _finished(
    tables: list[_Table], current: list[OutputRecord], intervals: list[Finding]
) -> list[OutputRecord]:
    return [
        _finish(t, r, [f for f in intervals if f.release == k], len(tables))
        for k, (t, r) in enumerate(zip(tables, current, strict=True))
    ]


def _table(record: OutputRecord, k: int) -> _Table:
    where = f"table {k + 1}"
    if record.kind != "table" or record.cells.statistic is not None:
        raise DisclosureInputError(f"{where} is not a table of one statistic")
    if record.statistic not in ("count", "sum"):
        raise DisclosureInputError(
            f"{where} is a table of {record.statistic}s: only counts and sums add up, so "
            "only they are linked by shared cells"
        )
    if record.normalize is not None:
        raise DisclosureInputError(f"{where} is normalised: link the counts, then normalise")
    grid = table_grid(record)
    if isinstance(grid, str):
        raise DisclosureInputError(f"{where}: {grid}")
    stat_of = np.full(len(record.cells), record.statistic, dtype=object)
    hidden = np.array([p is None for p in record.cells.published], dtype=bool)
    primary = np.array([s == "primary" for s in record.cells.suppressed], dtype=bool)
    shown = np.abs(np.nan_to_num(shown_values(record, grid, stat_of), nan=0.0))
    measure = record.policy_parameters.get("secondary", {}).get("cost", "value")
    if measure == "contributors":
        cost = grid.spread(np.asarray(record.cells.contributors, dtype=float)).ravel()
    elif measure == "cells":
        cost = np.ones(shown.size)
    else:
        cost = shown.ravel()
    return _Table(record, grid, hidden, shown, primary, cost)


def _same_data(tables: list[_Table]) -> None:
    first = tables[0].record
    for k, t in enumerate(tables[1:], start=2):
        if (t.record.statistic, t.record.values) != (first.statistic, first.values):
            raise DisclosureInputError(
                f"table {k} is not of the same statistic and values as table 1: "
                f"{t.record.statistic} of {t.record.values} against {first.statistic} of "
                f"{first.values}"
            )
    seen: dict[Definition, tuple[int, float]] = {}
    for k, t in enumerate(tables, start=1):
        for key, i in _definitions(t.record).items():
            value = float(t.record.cells.value[i] or 0.0)
            other = seen.setdefault(key, (k, value))
            if abs(other[1] - value) > VALUE_TOLERANCE * max(1.0, abs(value)):
                cells = t.record.cells
                raise DisclosureInputError(
                    f"tables {other[0]} and {k} are not of the same data: cell "
                    f"{cells.row[i]}/{cells.column[i]} is {value:g} in one and {other[1]:g} "
                    "in the other. Link only tables made from one data frame."
                )


def _share_hidden(tables: list[_Table], definitions: list[dict[Definition, int]]) -> None:
    """A group hidden in one table is hidden in every table that shows it."""
    hidden_keys = {
        key for t, defs in zip(tables, definitions, strict=True)
        for key, i in defs.items() if t.hidden[i]
    }  # fmt: skip
    for t, defs in zip(tables, definitions, strict=True):
        for key, i in defs.items():
            if key in hidden_keys:
                t.hidden[i] = True


def _add_partners(t: _Table, cell: int, need: float) -> bool:
    """Hide a partner of ``cell`` in every relation of its table it belongs to."""
    grid = t.grid
    pos_of = {int(grid.index.flat[p]): p for p in np.flatnonzero(grid.index.ravel() >= 0)}
    at = pos_of[cell]
    hidden_pos = np.zeros(grid.index.size, dtype=bool)
    present = grid.index.ravel() >= 0
    hidden_pos[present] = t.hidden[grid.index.ravel()[present]]
    hidden_pos[~present] = True  # an unpublished margin cannot be a partner
    changed = False
    for rel in grid.relations(bool(t.record.columns)):
        members = np.append(rel.parts, rel.total)
        if at not in members:
            continue
        pick = _pick_partner(rel.parts, t.shown.ravel(), need, hidden_pos, t.cost)
        if pick is None and not hidden_pos[rel.total]:
            pick = rel.total
        if pick is not None:
            hidden_pos[pick] = True
            t.hidden[int(grid.index.flat[pick])] = True
            changed = True
    return changed


def _hide(t: _Table) -> OutputRecord:
    """The record with its hidden cells unpublished (new ones as secondary suppressions)."""
    cells = t.record.cells
    published = [None if h else p for h, p in zip(t.hidden, cells.published, strict=True)]
    suppressed = [
        ("primary" if pr else "secondary") if h else None
        for h, pr in zip(t.hidden, t.primary, strict=True)
    ]
    return t.record.model_copy(
        update={"cells": cells.model_copy(update={"published": published,
                                                  "suppressed": suppressed})}
    )  # fmt: skip


def _finish(
    t: _Table, record: OutputRecord, intervals: list[Finding], n_tables: int
) -> OutputRecord:
    """The final record: the joint intervals of its hidden cells (``intervals``: this
    table's), the verdict and the status."""
    cells = record.cells
    joint = {f.cell: (f.lower, f.upper) for f in intervals}
    interval = [joint.get(i) if h else None for i, h in enumerate(t.hidden.tolist())]
    before = np.array([p is not None for p in t.record.cells.published], dtype=bool)
    added = int((t.hidden & before).sum())
    narrow = [f for f in intervals if f.narrow]
    verdict = RuleVerdict(
        rule_id=RULE,
        action="suppress",
        status="fail" if narrow else "pass",
        flagged_cells=added,
        detail=f"protected jointly with {n_tables - 1} other table(s) of the same data; "
        f"{added} more cell(s) hidden for the combination",
    )
    return record.model_copy(
        update={
            "cells": cells.model_copy(update={"interval": interval}),
            "rules": [*record.rules, verdict],
            "status": "fail" if t.hidden.any() else record.status,
            "audit_passed": not narrow if record.audit_passed is not None else None,
        }
    )
