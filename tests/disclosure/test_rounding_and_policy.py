"""Rounding, policy profiles and input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.disclosure.helpers import cells
from trenv.disclosure import DisclosureInputError, available_policies, check_table, load_policy
from trenv.disclosure.rounding import round_base, round_midpoint6, round_table


def test_round_base_and_midpoint6() -> None:
    x = np.array([0, 1, 2, 3, 7, 8, 12, 13, 22, 23])
    assert round_base(x, 5).tolist() == [0, 0, 0, 5, 5, 10, 10, 15, 20, 25]
    assert round_midpoint6(np.array([0, 1, 6, 7, 12, 13])).tolist() == [0, 3, 3, 9, 9, 15]


def test_rounded_margins_are_sums_of_published_cells() -> None:
    table = np.array([[12.0, 8.0, 0.0], [3.0, 31.0, 0.0], [0.0, 0.0, 0.0]])
    out = round_table(table, "base", 5)
    assert out[:2, :2].tolist() == [[10, 10], [5, 30]]
    assert out[:2, 2].tolist() == [20, 35] and out[2, :2].tolist() == [15, 40]
    assert out[2, 2] == 55


def test_opensafely_profile_redacts_and_rounds() -> None:
    df = cells(
        {
            ("x", "p"): [1] * 7,
            ("x", "q"): [1] * 42,
            ("y", "p"): [1] * 33,
            ("y", "q"): [1] * 21,
            ("z", "p"): [1] * 18,
            ("z", "q"): [1] * 26,
        }
    )
    check = check_table(
        df, index=["a"], columns=["b"], contributor="pid", policy="opensafely", margins=True
    )
    safe = check.safe
    assert pd.isna(safe.loc["x", "p"])  # <= 7 redacted
    shown = safe.to_numpy(dtype=float, na_value=np.nan)
    assert np.all(np.isnan(shown) | (shown % 5 == 0))
    assert check.record.rounding == "base"
    # Totals are consistent with the rounded cells (where all of a row is published).
    for row in ("y", "z"):
        if not safe.loc[row].isna().any():
            assert safe.loc[row, "All"] == safe.loc[row, ["p", "q"]].sum()


def test_profiles_ship_with_versions() -> None:
    assert {"trenv-default", "sacro", "opensafely", "cbs"} <= set(available_policies())
    sacro = load_policy("sacro")
    assert (sacro.threshold.min_contributors, sacro.dominance.n, sacro.dominance.k) == (10, 2, 0.9)
    assert sacro.p_percent.p == 0.10 and sacro.zeros.action == "suppress"
    assert load_policy("opensafely").threshold.min_contributors == 8
    assert all(load_policy(p).version for p in available_policies())


def test_unknown_policy_names_the_choices() -> None:
    with pytest.raises(DisclosureInputError, match=r"unknown policy 'nope'.*sacro"):
        load_policy("nope")


def test_policy_file_typo_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nversion: '1'\nthreshold: {min_contributer: 5}\n")
    with pytest.raises(DisclosureInputError, match="min_contributer"):
        load_policy(bad)
    good = tmp_path / "q.yaml"
    good.write_text("name: mine\nversion: '2'\nthreshold: {min_contributors: 5}\n")
    assert load_policy(good).threshold.min_contributors == 5


def test_missing_contributor_is_explained() -> None:
    df = cells({("x", "p"): [1] * 12})
    with pytest.raises(DisclosureInputError, match="contributor='<person id"):
        check_table(df, index=["a"], columns=["b"])
    with pytest.raises(DisclosureInputError, match=r"\['person'\] not in the data"):
        check_table(df, index=["a"], columns=["b"], contributor="person")


def test_non_numeric_values_are_explained() -> None:
    df = cells({("x", "p"): [1] * 12}).assign(v=lambda d: d["v"].astype(str))
    with pytest.raises(DisclosureInputError, match=r"not a number.*pd\.to_numeric"):
        check_table(df, index=["a"], columns=["b"], values="v", statistic="sum", contributor="pid")


def test_unknown_statistic_is_explained() -> None:
    df = cells({("x", "p"): [1] * 12})
    with pytest.raises(DisclosureInputError, match="cannot be checked"):
        check_table(
            df, index=["a"], columns=["b"], values="v", statistic="geomean", contributor="pid"
        )


def test_polars_input_gives_the_same_result() -> None:
    pl = pytest.importorskip("polars")
    df = cells(
        {
            ("x", "p"): [1.0] * 3,
            ("x", "q"): [2.0] * 40,
            ("y", "p"): [3.0] * 30,
            ("y", "q"): [4.0] * 22,
        }
    )
    a = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="sum", contributor="pid", margins=True
    )
    b = check_table(
        pl.from_pandas(df),
        index=["a"],
        columns=["b"],
        values="v",
        statistic="sum",
        contributor="pid",
        margins=True,
    )
    pd.testing.assert_frame_equal(a.safe, b.safe)


def test_rounded_shares_without_margins_are_not_all_missing() -> None:
    # Shares are divided by the rounded totals, which must exist even when the table
    # does not publish them (they used to be NaN, and so was every share).
    df = cells(
        {("x", "p"): [1] * 13, ("x", "q"): [1] * 40, ("y", "p"): [1] * 30, ("y", "q"): [1] * 22}
    )
    check = check_table(
        df, index=["a"], columns=["b"], contributor="pid", policy="opensafely", normalize="index"
    )
    assert check.safe.loc["x", "p"] == pytest.approx(15 / 55)
    assert check.safe.loc["y", "q"] == pytest.approx(20 / 50)
    assert list(check.safe.columns) == ["p", "q"]
