"""Differencing over a project's tables of different data (trenv.differencing).

Two tables of the same people combine; a table of other data (its totals contradict) is
left out instead of making the combined programme infeasible.
"""

from __future__ import annotations

import pandas as pd

from trenv.differencing import differencing_findings
from trenv.disclosure import check_table
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
