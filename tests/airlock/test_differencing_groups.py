"""Differencing over a project's tables of different data (trenv.disclosure.populations).

Two tables of the same people combine; a table of other data (its totals contradict) is
left out instead of making the combined programme infeasible.
"""

from __future__ import annotations

import pandas as pd

from trenv.disclosure import check_table
from trenv.disclosure.populations import differencing_findings, near_populations
from trenv.disclosure.record import OutputRecord


def people() -> pd.DataFrame:
    """40 people per (region, offence) cell, except 3 in (east, fraud)."""
    rows = []
    for region in ("north", "south", "east"):
        for offence in ("theft", "fraud"):
            for _ in range(3 if (region, offence) == ("east", "fraud") else 40):
                rows.append({"person": f"p{len(rows)}", "region": region, "offence": offence})
    return pd.DataFrame(rows)


def record(frame: pd.DataFrame, *index: str, columns: tuple[str, ...] = ()) -> OutputRecord:
    return check_table(frame, index=index, columns=columns, contributor="person").record


def test_tables_of_other_data_are_left_out_and_the_same_data_still_combines() -> None:
    data = people()
    two_way = record(data, "region", columns=("offence",))  # no margins: east/fraud hidden
    by_region = record(data, "region")  # the east total pins it
    seizures = pd.DataFrame({"person": [f"s{i}" for i in range(57)], "region": ["north"] * 57})
    other = record(seizures, "region")  # north: 57, which contradicts 80 people in north
    assert differencing_findings([two_way], by_region)  # the classic leak is found
    # With a table of other data in between, the leak is still found, and nothing crashes.
    assert differencing_findings([two_way, other], by_region)
    assert differencing_findings([other], two_way) == []


def test_two_tables_of_populations_a_few_people_apart_are_flagged() -> None:
    data = people()
    everyone = record(data, "region")
    # The same table without two people of the east region: their region is revealed.
    all_but_two = record(data[~data.person.isin(["p160", "p161"])], "region")  # both east
    problems = near_populations([everyone], all_but_two)
    assert len(problems) == 1 and "east" in problems[0] and "isolates 2 people" in problems[0]
    # A table of the same population, or of a subset that shares only equal cells, is not.
    assert near_populations([everyone], record(data, "region")) == []
    assert near_populations([everyone], record(data[data.region != "east"], "region")) == []
    # Theft only: east differs by its 3 fraud cases, which a suppressed cell was hiding.
    (theft,) = near_populations([everyone], record(data[data.offence == "theft"], "region"))
    assert "isolates 3 people" in theft
