"""Differencing with rounded and float releases: published numbers as the facts they are.

A rounded count says "the true count is within the rounding band", not "the true count
is this"; a float sum is exact only up to the order of addition. Both used to be handled
by leaving such releases out of the ledger (missing leaks) - or would be wrong if taken
as exact (flagging safe tables, or "inconsistent facts" errors).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.disclosure.helpers import cells
from trenv.disclosure import check_table
from trenv.disclosure.differencing import Ledger, rounding_error_bounds

# x = 43 people: 3 in (x, p), 40 in (x, q); y = 52: 30 in (y, p), 22 in (y, q).
SPEC = {
    ("x", "p"): [1.0] * 3,
    ("x", "q"): [1.0] * 40,
    ("y", "p"): [1.0] * 30,
    ("y", "q"): [1.0] * 22,
}


def _rounded_two_way():  # type: ignore[no-untyped-def]
    # OpenSAFELY: redact <= 7, round the rest to 5: (x, q) = 40 is published as 40.
    check = check_table(
        cells(SPEC), index=["a"], columns=["b"], contributor="pid", policy="opensafely"
    )
    assert np.isnan(check.safe.loc["x", "p"]) and check.safe.loc["x", "q"] == 40
    assert check.record.rounding == "base"
    return check.record


@pytest.mark.parametrize(
    ("method", "base", "low", "high"),
    [("base", 5, -2, 2), ("base", 10, -4, 5), ("base", 2, 0, 1), ("midpoint6", 5, -3, 2)],
)
def test_rounding_error_bounds_cover_every_integer(
    method: str, base: int, low: int, high: int
) -> None:
    from trenv.disclosure.rounding import round_base, round_midpoint6

    true = np.arange(1, 200, dtype=float)
    rounded = round_midpoint6(true) if method == "midpoint6" else round_base(true, base)
    err = rounded - true
    assert (err.min(), err.max()) == (low, high)
    assert rounding_error_bounds(method, base, 9.0) == (low, high)


def test_rounded_cell_with_an_exact_total_pins_the_suppressed_cell() -> None:
    # (x, q) rounded to 40 means 38..42; an exact one-way x = 43 then leaves (x, p) in
    # 1..5, narrower than the protection width 5. Leaving the rounded table out of the
    # ledger missed this; taking 40 as exact would claim (x, p) = 3 exactly.
    one_way = check_table(cells(SPEC), index=["a"], contributor="pid")
    assert not one_way.suppressed.to_numpy().any()
    findings = Ledger([_rounded_two_way()]).check(one_way.record)
    assert [(f.release, f.row, f.column) for f in findings] == [(0, ["x"], ["p"])]
    assert (findings[0].lower, findings[0].upper) == pytest.approx((1.0, 5.0))


def test_two_rounded_releases_leave_the_cell_wide_enough() -> None:
    # A rounded one-way x = 45 means 43..47: (x, p) = x - (x, q) lies in 1..9, wide
    # enough. Taking both rounded numbers as exact would pin it to 45 - 40 = 5.
    one_way = check_table(cells(SPEC), index=["a"], contributor="pid", policy="opensafely")
    assert one_way.safe.loc["x"].iloc[0] == 45
    assert Ledger([_rounded_two_way()]).check(one_way.record) == []


def test_rounded_margins_are_sums_of_rounded_cells() -> None:
    # With margins, the hidden (x, p) is partnered; its row total 45 = r(x,p) + r(x,q)
    # is the sum of the *rounded* cells: the facts must carry both cells' rounding errors.
    df = cells(SPEC)
    with_margins = check_table(
        df, index=["a"], columns=["b"], contributor="pid", policy="opensafely", margins=True
    )
    record = with_margins.record
    assert record.rounding == "base"
    exact_total = check_table(df, index=["a"], contributor="pid")
    findings = Ledger([record]).check(exact_total.record)
    # Every finding's interval must contain the true value (the facts are consistent).
    for f in findings:
        i = next(
            k
            for k in range(len(record.cells))
            if record.cells.row[k] == f.row and record.cells.column[k] == f.column
        )
        assert f.lower - 1e-9 <= record.cells.value[i] <= f.upper + 1e-9


def test_float_sums_from_two_tables_are_not_contradictory() -> None:
    # Two tables' sums of the same people differ in the last bits (another order of
    # addition); as exact facts the LP would call them inconsistent and raise.
    rng = np.random.default_rng(4)
    spec = {
        ("x", "p"): [5e6 + rng.random() for _ in range(3)],
        ("x", "q"): [5e6 + rng.random() for _ in range(40)],
        ("y", "p"): [5e6 + rng.random() for _ in range(30)],
        ("y", "q"): [5e6 + rng.random() for _ in range(22)],
    }
    df = cells(spec)
    two_way = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="sum", contributor="pid"
    )
    by_a = check_table(df, index=["a"], values="v", statistic="sum", contributor="pid")
    by_b = check_table(df, index=["b"], values="v", statistic="sum", contributor="pid")
    # Seven facts about four cells: redundant, so noise makes exact facts contradictory.
    noisy = by_b.record.model_copy(deep=True)
    noisy.cells.published = [p * (1 + 3e-15) for p in noisy.cells.published]  # a few ulps
    findings = Ledger([two_way.record, by_a.record]).check(noisy)
    assert [(f.row, f.column) for f in findings] == [(["x"], ["p"])]
