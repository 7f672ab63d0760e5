"""Progress lines (a loop reporting on itself) are not counted as rows of a table; rows of
data dressed up as progress still are."""

from __future__ import annotations

import random

import pytest

from trenv.judge.text import table_rows
from trenv.lab.server.progress import ProgressSeries


@pytest.mark.parametrize(
    "line",
    [
        "epoch {i}/100, loss={loss:.4f}",
        "processed batch {i} of 100",
        "step {i}: elapsed {loss:.2f} s",
        "iteration {i}",
    ],
)
def test_a_loop_reporting_progress_is_not_a_table(line: str) -> None:
    text = "\n".join(line.format(i=i + 1, loss=1 / (i + 1)) for i in range(100))
    assert table_rows(text) >= 100  # the text judge alone sees a 100-row table
    rest = ProgressSeries().without_progress(text)
    assert rest is not None and table_rows(rest) <= 2


def test_a_series_goes_on_across_messages() -> None:
    series = ProgressSeries()
    kept = [series.without_progress(f"epoch {i}/100, loss={1 / i:.3f}") for i in range(1, 50)]
    assert kept[:2] == [None, None] and all(k == "" for k in kept[2:])


@pytest.mark.parametrize(
    "line",
    [
        "{i},fraud,Utrecht,{a},{b}",  # categories change: not one template
        "row {i}: age {a}, sentence {b}",  # two columns of data beside the counter
        "{a} {b}",  # bare numbers: a column, no label
        "person {a} sentence {b}",  # no counter going up
    ],
)
def test_rows_of_data_are_not_progress(line: str) -> None:
    rng = random.Random(5)
    text = "\n".join(
        line.format(i=i, a=rng.randint(18, 80), b=rng.randint(0, 60)).replace(
            "fraud", rng.choice(["fraud", "theft"])
        )
        for i in range(100)
    )
    rest = ProgressSeries().without_progress(text)
    assert table_rows(rest if rest is not None else text) >= 90
