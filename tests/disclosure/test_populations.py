"""Differencing of populations a few people apart, for every statistic (issue 16).

A sum, mean or median table of all offenders and the same table without person 11 are each
safe; together they give person 11's value away (a sum's difference is it, two means and
the group sizes give it, two medians bound it). ``near_populations`` used to return early
unless both tables were counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trenv.disclosure import check_table
from trenv.disclosure.populations import near_populations
from trenv.disclosure.record import OutputRecord

STATISTICS = ("sum", "mean", "median", "q75", "std", "var")


@pytest.fixture(scope="module")
def offenders() -> pd.DataFrame:
    """600 people, one or two convictions each, in 3 regions x 2 offences (about 100 people
    a cell), with the months of the sentence."""
    rng = np.random.default_rng(16)
    person = np.repeat(np.arange(600), rng.integers(1, 3, 600))
    return pd.DataFrame(
        {
            "person": person,
            "region": np.array(["north", "south", "east"])[person % 3],
            "offence": rng.choice(["theft", "fraud"], len(person)),
            "months": rng.gamma(2.0, 8.0, len(person)).round(1) + 1.0,
        }
    )


def table(frame: pd.DataFrame, statistic: str, margins: bool = False, **kw: object) -> OutputRecord:
    values = None if statistic == "count" else "months"
    return check_table(
        frame,
        index=["region"],
        columns=["offence"],
        values=values,
        statistic=statistic,
        contributor="person",
        margins=margins,
        **kw,  # type: ignore[arg-type]
    ).record


@pytest.mark.parametrize("statistic", STATISTICS)
def test_a_table_without_one_person_is_flagged_for_every_statistic(
    offenders: pd.DataFrame, statistic: str
) -> None:
    everyone = table(offenders, statistic, margins=True)
    without = table(offenders[offenders.person != 11], statistic, margins=True)
    assert everyone.status != "fail"  # each is fine on its own
    problems = near_populations([everyone], without)
    # Person 11's cells, their region's total, their offences' totals and the grand total.
    cells = offenders[offenders.person == 11]
    region = cells.region.iloc[0]
    assert problems, statistic
    assert all("isolates 1 people" in p for p in problems)
    assert any(p.startswith(f"{region} x All") for p in problems)
    assert any(p.startswith("All x All") for p in problems)
    for offence in cells.offence:
        assert any(p.startswith(f"{region} x {offence}:") for p in problems)
    others = {"north", "south", "east"} - {region}
    assert not any(p.startswith(tuple(others)) for p in problems)


def test_the_issue_reproduction_sum_without_person_11(offenders: pd.DataFrame) -> None:
    t1 = table(offenders, "sum")
    t2 = table(offenders[offenders.person != 11], "sum")
    assert near_populations([t1], t2) != []
    # The difference of the two sums is exactly person 11's months: what is at stake.
    mine = offenders[offenders.person == 11]
    offence = mine.offence.iloc[0]
    i = next(
        k
        for k in range(len(t1.cells))
        if t1.cells.row[k] == [mine.region.iloc[0]] and t1.cells.column[k] == [offence]
    )
    assert t1.cells.value[i] - t2.cells.value[i] == pytest.approx(
        mine[mine.offence == offence].months.sum()
    )


def test_a_sum_and_a_mean_of_the_same_values_are_compared(offenders: pd.DataFrame) -> None:
    problems = near_populations(
        [table(offenders, "sum")], table(offenders[offenders.person != 11], "mean")
    )
    assert problems and "the mean of months" in problems[0] and "the sum in" in problems[0]


def test_the_same_people_twice_or_other_variables_are_not_flagged(
    offenders: pd.DataFrame,
) -> None:
    assert near_populations([table(offenders, "sum")], table(offenders, "mean")) == []
    other = offenders.assign(days=offenders.months * 30)
    days = check_table(
        other[other.person != 11],
        index=["region"],
        columns=["offence"],
        values="days",
        statistic="sum",
        contributor="person",
    ).record
    assert near_populations([table(offenders, "sum")], days) == []  # another variable
    # A count and a sum are not two statistics of one variable.
    assert near_populations([table(offenders, "count")], table(offenders, "sum")) == []


def test_rows_removed_from_the_same_people_are_flagged(offenders: pd.DataFrame) -> None:
    # Someone with two convictions in one cell keeps one: the sums differ by that row.
    twice = offenders[offenders.duplicated(["person", "offence"], keep=False)]
    row = twice.index[0]
    problems = near_populations([table(offenders, "sum")], table(offenders.drop(row), "sum"))
    assert problems and "same people but 1 rows apart" in problems[0]


def test_removing_anyone_from_any_cell_is_flagged(offenders: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    base = table(offenders, "sum", margins=True)
    for person in rng.choice(offenders.person.unique(), 8, replace=False):
        gone = offenders[offenders.person == person]
        problems = near_populations([base], table(offenders[offenders.person != person], "sum"))
        region = gone.region.iloc[0]
        for offence in gone.offence.unique():
            assert any(p.startswith(f"{region} x {offence}:") for p in problems), person


def test_tables_of_other_shapes_compare_the_same_groups(offenders: pd.DataFrame) -> None:
    # The one-way sums by region describe the same people as the row totals of the two-way
    # table: a one-way table without person 11 differs from them in 11's region only.
    two_way = table(offenders, "sum", margins=True)
    one_way = check_table(
        offenders[offenders.person != 11],
        index=["region"],
        values="months",
        statistic="sum",
        contributor="person",
    ).record
    problems = near_populations([two_way], one_way)
    region = offenders[offenders.person == 11].region.iloc[0]
    assert [p.split(":")[0] for p in problems] == [f"{region} x months"]


def test_counts_many_people_apart_or_rounded_to_the_same_value_pass(
    offenders: pd.DataFrame,
) -> None:
    everyone = table(offenders, "count")
    # Without a whole region: its cells are gone, the others are the same people.
    no_south = offenders[offenders.region != "south"]
    assert near_populations([everyone], table(no_south, "count")) == []
    # Half of the people: every cell differs by far more than the threshold.
    assert near_populations([everyone], table(offenders[offenders.person >= 300], "count")) == []
    assert near_populations([everyone], table(offenders[offenders.person != 7], "count"))
    # Rounded counts: what an intruder sees is the published difference. Removing one
    # person changes their cells by a row or two: flagged where the rounded value moves.
    rounded = table(offenders, "count", policy="opensafely")
    moved = kept = 0
    for person in range(40):
        again = table(offenders[offenders.person != person], "count", policy="opensafely")
        pairs = zip(rounded.cells.published, again.cells.published, strict=True)
        differs = sum(1 for a, b in pairs if a is not None and b is not None and a != b)
        assert len(near_populations([rounded], again)) == differs
        moved += differs > 0
        kept += differs == 0
    assert moved and kept  # both cases were seen
