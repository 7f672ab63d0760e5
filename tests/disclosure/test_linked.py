"""Linked tables: several tables of one data set protected together (issue 16).

Each table passes alone; together they pin a cell down. After ``protect_linked`` no
combination of the tables narrows any hidden cell below its protection width; the proof is
an intruder's LP over the finest cross-classification written in this test, not trenv's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

import trenv.lab as tre
from trenv.disclosure import DisclosureInputError, check_table, recheck
from trenv.disclosure.differencing import Ledger
from trenv.disclosure.linked import protect_linked
from trenv.disclosure.record import OutputRecord


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    """Regions x offences x sex; north has 3 people with fraud."""
    rng = np.random.default_rng(8)
    rows = []
    for region, theft, fraud in (("north", 40, 3), ("south", 50, 45), ("east", 60, 44)):
        for offence, n in (("theft", theft), ("fraud", fraud)):
            rows += [(region, offence, rng.choice(["f", "m"])) for _ in range(n)]
    frame = pd.DataFrame(rows, columns=["region", "offence", "sex"])
    return frame.assign(person=range(len(frame)))


def table(frame: pd.DataFrame, columns: str, margins: bool) -> OutputRecord:
    return check_table(
        frame, index=["region"], columns=[columns], contributor="person", margins=margins
    ).record


def intruder_widths(frame: pd.DataFrame, records: list[OutputRecord]) -> dict[tuple, float]:
    """Width of every hidden cell's feasible range over atoms region x offence x sex, given
    every published cell of every record (a cell is the sum of the atoms it covers)."""
    dims = ["region", "offence", "sex"]
    levels = {d: sorted(frame[d].unique()) for d in dims}
    atoms = [(r, o, s) for r in levels["region"] for o in levels["offence"] for s in levels["sex"]]
    rows, rhs, targets = [], [], []
    for k, rec in enumerate(records):
        names = rec.index + rec.columns
        for i, cell in enumerate(rec.cells):
            fixed = {
                d: lab
                for d, lab, m in zip(
                    names,
                    cell.row + cell.column,
                    [rec.cells.row_margin[i]] * len(rec.index)
                    + [rec.cells.column_margin[i]] * len(rec.columns),
                    strict=True,
                )
                if not m
            }
            cover = np.array([all(a[dims.index(d)] == v for d, v in fixed.items()) for a in atoms])
            if cell.published is None:
                targets.append(((k, tuple(cell.row), tuple(cell.column)), cover))
            else:
                rows.append(cover.astype(float))
                rhs.append(cell.published)
    widths = {}
    for key, cover in targets:
        c = cover.astype(float)
        lo = linprog(c, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=(0, None))
        hi = linprog(-c, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=(0, None))
        assert lo.status == 0 and hi.status in (0, 3)  # 3: unbounded above, no facts on it
        widths[key] = np.inf if hi.status == 3 else -hi.fun - lo.fun
    return widths


def test_two_tables_each_safe_pin_a_cell_together_and_not_once_linked(
    people: pd.DataFrame,
) -> None:
    # Region x offence without margins hides north/fraud (3 people) and nothing else; the
    # region x sex table publishes north's total (43), so north/fraud = 43 - 40 = 3.
    offences, sexes = table(people, "offence", False), table(people, "sex", True)
    assert recheck(offences, "trenv-default").ok and recheck(sexes, "trenv-default").ok
    assert intruder_widths(people, [offences, sexes])[(0, ("north",), ("fraud",))] == 0
    assert Ledger([offences]).check(sexes)  # the airlock would fail the pair
    linked = protect_linked([offences, sexes])
    widths = intruder_widths(people, linked)
    assert widths and min(widths.values()) >= 5 - 1e-9, widths
    assert Ledger([linked[0]]).check(linked[1]) == []
    assert all(recheck(r, "trenv-default").ok for r in linked)
    verdict = linked[0].rules[-1]
    assert verdict.rule_id == "linked-tables" and verdict.status == "pass"
    assert verdict.flagged_cells >= 1  # a partner was hidden for the combination


def test_two_tables_sharing_a_margin_hide_it_in_both(people: pd.DataFrame) -> None:
    # A pattern that hides south's total in the offence table (as a secondary suppression)
    # must not leave it published in the sex table: the same people, the same number.
    offences, sexes = table(people, "offence", True), table(people, "sex", True)
    cells = offences.cells.model_dump()
    south = next(
        i for i, (r, m) in enumerate(zip(cells["row"], cells["column_margin"], strict=True))
        if r == ["south"] and m
    )  # fmt: skip
    cells["published"][south], cells["suppressed"][south] = None, "secondary"
    offences = offences.model_copy(update={"cells": type(offences.cells)(**cells)})
    linked = protect_linked([offences, sexes])
    shown = {
        (tuple(c.row), tuple(c.column)): c.published
        for c in linked[1].cells
        if c.row == ["south"] and c.column == ["All"]
    }
    assert shown == {(("south",), ("All",)): None}
    widths = intruder_widths(people, linked)
    assert min(widths.values()) >= 5 - 1e-9


def test_tables_of_other_data_or_statistics_are_refused(people: pd.DataFrame) -> None:
    offences = table(people, "offence", True)
    fewer = table(people[people.person > 5], "sex", True)
    with pytest.raises(DisclosureInputError, match="not of the same data"):
        protect_linked([offences, fewer])
    means = check_table(
        people.assign(v=1.0), index=["region"], values="v", statistic="mean",
        contributor="person",
    ).record  # fmt: skip
    with pytest.raises(DisclosureInputError, match="only counts and sums"):
        protect_linked([offences, means])
    with pytest.raises(DisclosureInputError, match="two or more"):
        protect_linked([offences])


def test_the_lab_links_tables_in_place_and_refuses_saved_ones(
    people: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    by_offence = tre.crosstab(people.region, people.offence, contributor=people.person)
    by_sex = tre.crosstab(people.region, people.sex, contributor=people.person, margins=True)
    assert by_offence.result.loc["north"].isna().sum() == 1
    tre.linked_tables(by_offence, by_sex)
    hidden = by_offence.result.isna().to_numpy().sum() + by_sex.result.isna().to_numpy().sum()
    assert hidden >= 2  # north/fraud and a partner
    shown = {(tuple(c.row), tuple(c.column)): c.published for c in by_offence.record.cells}
    for (row, column), value in shown.items():
        cell = by_offence.result.loc[row[0], column[0]]
        assert (value is None) == bool(pd.isna(cell))
    tre.save(by_offence, "offences")
    with pytest.raises(DisclosureInputError, match="already saved"):
        tre.linked_tables(by_offence, by_sex)
