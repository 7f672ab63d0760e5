"""The vectorised per-cell statistics equal a straightforward per-cell reference.

The engine collapses rows to (cell, contributor) items by sorting one combined integer
key and derives the margins from those items. The reference below recomputes every
published cell on its own from the raw rows with plain pandas selections, so any slip in
the key encoding, the run boundaries or the margin collapses shows up as a mismatch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from trenv.disclosure import check_table

TOP_K = 2  # the default policy's dominance n is 2, so two top contributions are recorded


def _frame(seed: int, *, exact: bool) -> pd.DataFrame:
    """Small random rows: repeated and single contributors, negatives, NaNs, empty cells,
    rows with a missing category, skewed cells."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    n_people = int(rng.integers(1, max(n // 2, 2)))
    a = rng.choice(["n", "s", "e", "w"], size=n, p=[0.5, 0.3, 0.15, 0.05])
    a2 = rng.choice(["x", "y"], size=n)
    b = rng.choice(["p", "q", "r", "t", "u"], size=n, p=[0.4, 0.3, 0.2, 0.08, 0.02]).astype(object)
    b[rng.random(n) < 0.03] = None
    if exact:
        # Multiples of 0.5 below 2**20: every summation order gives the same float.
        v = rng.integers(-40, 2000, size=n) / 2.0
    else:
        v = (rng.pareto(1.2, size=n) + 0.1) * rng.choice([-1.0, 1.0], size=n, p=[0.2, 0.8])
    v[rng.random(n) < 0.08] = np.nan
    pid: Any = rng.integers(0, n_people, size=n)
    kind = seed % 3
    if kind == 1:
        pid = np.array([f"id{p}" for p in pid], dtype=object)  # hashed ids
    elif kind == 2:
        pid = pid * 1_000_003 + 17  # sparse integer ids
    return pd.DataFrame({"a": a, "a2": a2, "b": b, "v": v, "pid": pid})


def _reference(rows: pd.DataFrame, values: str | None) -> dict[str, Any]:
    """Every statistic of one cell from its raw rows, the obvious way."""
    v = pd.Series(1.0, index=rows.index) if values is None else rows[values]
    present = v.notna()
    per_person = v.where(present, 0.0).groupby(rows["pid"]).sum()
    has_value = present.groupby(rows["pid"]).any()
    mags = sorted(np.abs(per_person[has_value]).tolist(), reverse=True)
    mags = (mags + [0.0] * TOP_K)[:TOP_K]
    vv = v[present]
    return {
        "rows": int(present.sum()),
        "contributors": int(has_value.sum()),
        "sum": float(per_person.sum()),
        "abs_sum": float(np.abs(per_person).sum()),
        "top": mags,
        "negatives": int((v < 0).sum()),
        "missing": int((~present).sum()),
        "all_equal": bool(len(vv) > 0 and vv.min() == vv.max()),
    }


def _compare(df: pd.DataFrame, values: str | None, margins: bool, exact: bool) -> int:
    kwargs: dict[str, Any] = {"values": values, "statistic": "sum"} if values else {}
    check = check_table(
        df, index=["a", "a2"], columns=["b"], contributor="pid", margins=margins, **kwargs
    )
    cells = check.record.cells
    tabulated = df[df["b"].notna()]
    assert len(cells) == (
        (tabulated["a"].nunique() * tabulated["a2"].nunique() + margins)
        * (tabulated["b"].nunique() + margins)
    )
    for i in range(len(cells)):
        sel = np.ones(len(tabulated), dtype=bool)
        row, col = cells.row[i], cells.column[i]
        if not cells.row_margin[i]:
            sel &= (tabulated["a"] == row[0]).to_numpy() & (tabulated["a2"] == row[1]).to_numpy()
        if not cells.column_margin[i]:
            sel &= (tabulated["b"] == col[0]).to_numpy()
        want = _reference(tabulated[sel], values)
        got = {
            "rows": cells.rows[i],
            "contributors": cells.contributors[i],
            "sum": cells.sum[i],
            "abs_sum": cells.abs_sum[i],
            "top": cells.top[i],
            "negatives": cells.negatives[i],
            "missing": cells.missing[i],
            "all_equal": cells.all_equal[i],
        }
        where = f"cell {row} x {col}"
        for key in ("rows", "contributors", "negatives", "missing", "all_equal"):
            assert got[key] == want[key], f"{where}: {key} {got[key]} != {want[key]}"
        # Sums of general floats depend on the order of addition (pandas' reference uses
        # compensated summation), so they are compared to the last few bits only.
        for key in ("sum", "abs_sum", "top"):
            if exact:
                assert got[key] == want[key], f"{where}: {key} {got[key]} != {want[key]}"
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), where
    return len(cells)


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("margins", [True, False])
def test_sum_statistics_match_reference(seed: int, margins: bool) -> None:
    assert _compare(_frame(seed, exact=True), "v", margins, exact=True) > 0


@pytest.mark.parametrize("seed", range(12))
def test_sum_statistics_match_reference_general_floats(seed: int) -> None:
    assert _compare(_frame(100 + seed, exact=False), "v", True, exact=False) > 0


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("margins", [True, False])
def test_count_statistics_match_reference(seed: int, margins: bool) -> None:
    assert _compare(_frame(200 + seed, exact=True), None, margins, exact=True) > 0


def test_one_contributor_everywhere() -> None:
    # A single person in every cell: every margin collapses to that one contributor.
    df = pd.DataFrame(
        {
            "a": ["n", "n", "s", "s", "s"],
            "a2": ["x", "y", "x", "x", "y"],
            "b": ["p", "q", "p", "p", "q"],
            "v": [1.5, -2.0, np.nan, 4.0, 8.0],
            "pid": [7, 7, 7, 7, 7],
        }
    )
    assert _compare(df, "v", True, exact=True) == 15
    assert _compare(df, None, True, exact=True) == 15


@pytest.mark.parametrize("prefilter", [True, False])
@pytest.mark.parametrize("seed", range(20))
def test_top_contributions_with_ties_match_sorting(
    seed: int, prefilter: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trenv.disclosure import cellstats
    from trenv.disclosure.cellstats import _top_contributions

    if prefilter:  # the chunk-maxima prefilter of large groupings, on small inputs
        monkeypatch.setattr(cellstats, "PREFILTER_MIN", 0)
    rng = np.random.default_rng(seed)
    n_groups, k = int(rng.integers(1, 30)), int(rng.integers(1, 5))
    group = rng.integers(0, n_groups, size=int(rng.integers(0, 300)))
    mag = rng.integers(0, 6, size=len(group)).astype(float)  # many ties, zeros
    got = _top_contributions(group, mag, n_groups, k)
    for g in range(n_groups):
        want = (sorted(mag[group == g].tolist(), reverse=True) + [0.0] * k)[:k]
        assert got[g].tolist() == want, (g, got[g], want)
