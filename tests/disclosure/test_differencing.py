"""Differencing with rounded and float releases: published numbers as the facts they are.

A rounded count says "the true count is within the rounding band", not "the true count
is this"; a float sum is exact only up to the order of addition. Both used to be handled
by leaving such releases out of the ledger (missing leaks) - or would be wrong if taken
as exact (flagging safe tables, or "inconsistent facts" errors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    assert pd.isna(check.safe.loc["x", "p"]) and check.safe.loc["x", "q"] == 40
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


# --- controlled rounding: every published cell, margins included, is the true value plus
# an error in [-(b-1), b-1]


@pytest.mark.parametrize("base", [2, 3, 5, 10])
def test_controlled_rounding_error_bounds_are_exact(base: int) -> None:
    # Every rounding controlled rounding may publish (the value itself if a multiple of
    # the base, else either multiple next to it) lies within the bounds for its published
    # value, and every error the bounds allow happens for some true count: the bounds are
    # neither too narrow (missed leaks) nor too wide (missed pins).
    seen: dict[float, set[float]] = {}
    for true in range(0, 8 * base):
        low = (true // base) * base
        choices = [low] if low == true else [low, low + base]
        for published in choices:
            err = float(published - true)
            lo, hi = rounding_error_bounds("controlled", base, float(published))
            assert lo <= err <= hi, (true, published)
            seen.setdefault(float(published), set()).add(err)
    for published in (0.0, float(base), float(3 * base)):
        lo, hi = rounding_error_bounds("controlled", base, published)
        assert seen[published] == {float(e) for e in range(int(lo), int(hi) + 1)}
    assert rounding_error_bounds("controlled", base, 0.0) == (-(base - 1), 0)
    assert rounding_error_bounds("controlled", base, None) == (-(base - 1), base - 1)


def _controlled_5():  # type: ignore[no-untyped-def]
    from tests.disclosure.test_controlled_rounding import policy

    return policy(method="controlled", base=5)


def test_controlled_rounding_hides_a_suppressed_cell_that_base_rounding_gives_away() -> None:
    # Base rounding to 5 publishes (x, q) = 40 as 40 meaning 38..42, and with the exact
    # one-way x = 43 pins (x, p) to 1..5 (above). A controlled 40 means 36..44: (x, p)
    # then lies in 0..7, wide enough.
    two_way = check_table(
        cells(SPEC), index=["a"], columns=["b"], contributor="pid", policy=_controlled_5()
    )
    assert two_way.record.rounding == "controlled"
    assert pd.isna(two_way.safe.loc["x", "p"]) and two_way.safe.loc["x", "q"] == 40
    one_way = check_table(cells(SPEC), index=["a"], contributor="pid")
    assert Ledger([two_way.record]).check(one_way.record) == []


def test_controlled_rounding_with_an_exact_total_can_still_pin_a_cell() -> None:
    # (x, p) = 1 is suppressed, (x, q) = 43 is published as 45 (41..49); the exact one-way
    # x = 44 leaves (x, p) = 44 - (x, q) in 0..3: narrower than 5.
    spec = {**SPEC, ("x", "p"): [1.0], ("x", "q"): [1.0] * 43}
    two_way = check_table(
        cells(spec), index=["a"], columns=["b"], contributor="pid", policy=_controlled_5()
    )
    assert two_way.safe.loc["x", "q"] == 45
    one_way = check_table(cells(spec), index=["a"], contributor="pid")
    findings = Ledger([two_way.record]).check(one_way.record)
    assert [(f.release, f.row, f.column) for f in findings] == [(0, ["x"], ["p"])]
    assert (findings[0].lower, findings[0].upper) == pytest.approx((0.0, 3.0))


def test_two_controlled_releases_keep_a_rounded_small_cell_wide_enough() -> None:
    # Small counts published rounded are protected cells too. A one-way and a two-way
    # table of the same people, both rounded under control, round the grand total to 20
    # and to 10: the two together say (x, p), published 0 in both, is 0..8 rather than
    # 0..9. Narrower than its rounding alone, but not below the protection width 5.
    spec = {("x", "p"): [1.0], ("x", "q"): [], ("y", "p"): [1.0] * 11, ("y", "q"): [1.0] * 4}
    df = cells(spec)
    two_way = check_table(
        df, index=["a"], columns=["b"], contributor="pid", policy="trenv-rounding", margins=True
    )
    one_way = check_table(df, index=["a"], contributor="pid", policy="trenv-rounding", margins=True)
    assert two_way.safe.loc["All", "All"] == 10 and one_way.safe.loc["All"].iloc[0] == 20
    assert Ledger([two_way.record]).check(one_way.record) == []


def test_exact_releases_pin_a_small_count_published_rounded() -> None:
    # Under the rounding profile (x, p) = 3 is published rounded (0); two exact tables of
    # another profile - (x, q) = 40 without margins, and x = 43 - give it back as 3. The
    # rounded cell is a protected cell of the ledger like the suppressed one.
    rounded = check_table(
        cells(SPEC),
        index=["a"],
        columns=["b"],
        contributor="pid",
        policy="trenv-rounding",
        margins=True,
    )
    assert rounded.safe.loc["x", "p"] == 0
    exact_two_way = check_table(cells(SPEC), index=["a"], columns=["b"], contributor="pid")
    exact_one_way = check_table(cells(SPEC), index=["a"], contributor="pid")
    findings = Ledger([rounded.record, exact_two_way.record]).check(exact_one_way.record)
    pinned = {(f.release, f.row[0], f.column[0]): f for f in findings}
    assert pinned[(0, "x", "p")].rounded  # the rounded small cell
    assert (pinned[(0, "x", "p")].lower, pinned[(0, "x", "p")].upper) == pytest.approx((3, 3))
    assert "published rounded" in pinned[(0, "x", "p")].reason()
    assert (1, "x", "p") in pinned  # and the suppressed one
