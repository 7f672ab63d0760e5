"""Each rule on a hand-made table with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.disclosure.helpers import cells, flags_of
from trenv.disclosure import check_table

SAFE = [float(x) for x in range(10, 30)]  # 20 people, distinct values, no dominance


def _sum(df: pd.DataFrame, policy: str = "trenv-default", **kw):  # type: ignore[no-untyped-def]
    return check_table(
        df,
        index=["a"],
        columns=["b"],
        values="v",
        statistic="sum",
        contributor="pid",
        policy=policy,
        **kw,
    )


def test_threshold_counts_contributors() -> None:
    df = cells(
        {("x", "p"): [1] * 9, ("x", "q"): [1] * 10, ("y", "p"): [1] * 30, ("y", "q"): [1] * 25}
    )
    check = check_table(df, index=["a"], columns=["b"], contributor="pid")
    assert flags_of(check, "x", "p") == {"threshold"}
    assert flags_of(check, "x", "q") == set()
    assert pd.isna(check.safe.loc["x", "p"])
    assert check.safe.loc["x", "q"] == 10


def test_dominance_nk() -> None:
    # Two people hold 1000 + 900 of 1900 + 18 * 5 = 1990: 95% >= 90%.
    df = cells(
        {("x", "p"): [1000, 900] + [5] * 18, ("x", "q"): SAFE, ("y", "p"): SAFE, ("y", "q"): SAFE}
    )
    check = _sum(df)
    assert "dominance-nk" in flags_of(check, "x", "p")
    assert "dominance-nk" not in flags_of(check, "x", "q")


def test_p_percent_exact_boundary() -> None:
    # p% rule: remainder after the two largest (11 x 9 = 99) below 10% of the largest
    # (1000) lets the runner-up estimate the leader to within 10%.
    base = {("x", "q"): SAFE, ("y", "p"): SAFE, ("y", "q"): SAFE}
    flagged = _sum(cells({("x", "p"): [1000, 100] + [9.0] * 11, **base}), policy="sacro")
    passed = _sum(cells({("x", "p"): [1000, 100] + [10.0] * 11, **base}), policy="sacro")
    assert "p-percent" in flags_of(flagged, "x", "p")  # 99 < 100
    assert "p-percent" not in flags_of(passed, "x", "p")  # 110 >= 100


def test_zeros_and_structural_zeros() -> None:
    df = cells({("x", "p"): [1] * 12, ("y", "p"): [1] * 12, ("y", "q"): [1] * 12})
    check = check_table(df, index=["a"], columns=["b"], contributor="pid")
    assert flags_of(check, "x", "q") == {"zeros"}
    exempt = check_table(
        df, index=["a"], columns=["b"], contributor="pid", structural_zeros=[("x", "q")]
    )
    assert "zeros" not in flags_of(exempt, "x", "q")


def test_negative_values_flagged_for_review() -> None:
    df = cells(
        {("x", "p"): [*SAFE[:-1], -3.0], ("x", "q"): SAFE, ("y", "p"): SAFE, ("y", "q"): SAFE}
    )
    check = _sum(df)
    assert "negative" in flags_of(check, "x", "p")
    verdict = {v.rule_id: v for v in check.record.rules}["negative"]
    assert verdict.status == "review" and verdict.flagged_cells == 1
    assert not check.suppressed.loc["x", "p"]  # review only under trenv-default
    assert _sum(df, policy="sacro").suppressed.loc["x", "p"]  # ACRO suppresses


def test_missing_values_reported() -> None:
    df = cells(
        {("x", "p"): [*SAFE[:-1], np.nan], ("x", "q"): SAFE, ("y", "p"): SAFE, ("y", "q"): SAFE}
    )
    check = _sum(df)
    assert flags_of(check, "x", "p") == {"missing"}
    assert check.table.loc["x", "p"] == pytest.approx(sum(SAFE[:-1]))


def test_class_disclosure_whole_row_in_one_cell() -> None:
    df = cells({("x", "p"): [1] * 15, ("y", "p"): [1] * 12, ("y", "q"): [1] * 14})
    check = check_table(
        df, index=["a"], columns=["b"], contributor="pid", policy="cbs", margins=True
    )
    assert "class-disclosure" in flags_of(check, "x", "p")
    assert "class-disclosure" not in flags_of(check, "y", "p")


def test_constant_value_cell() -> None:
    df = cells({("x", "p"): [7.0] * 15, ("x", "q"): SAFE, ("y", "p"): SAFE, ("y", "q"): SAFE})
    check = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="mean", contributor="pid"
    )
    assert flags_of(check, "x", "p") == {"constant-value"}
    assert pd.isna(check.safe.loc["x", "p"])


@pytest.mark.parametrize("stat", ["max", "min", "median", "q90"])
def test_extremes_need_contributors_at_the_value(stat: str) -> None:
    spread = [float(x) for x in range(100, 130)]
    df = cells(
        {
            ("x", "p"): spread,
            ("x", "q"): [5.0] * 12 + [9.0] * 12,
            ("y", "p"): spread,
            ("y", "q"): spread,
        }
    )
    check = check_table(
        df, index=["a"], columns=["b"], values="v", statistic=stat, contributor="pid", policy="cbs"
    )
    assert "extremes" in flags_of(check, "x", "p")  # one person sits at the value
    if stat in ("max", "min"):
        assert "extremes" not in flags_of(check, "x", "q")  # 12 people share it


def test_one_record_mode() -> None:
    df = cells(
        {
            ("x", "p"): [float(x) for x in range(20)],
            ("x", "q"): [3.0] * 12 + [4.0] * 8,
            ("y", "p"): [3.0] * 12 + [4.0] * 8,
            ("y", "q"): [3.0] * 12 + [4.0] * 8,
        }
    )
    check = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="mode", contributor="pid"
    )
    assert "extremes" in flags_of(check, "x", "p")  # every value unique: mode is one person's
    assert flags_of(check, "x", "q") == set()
    assert check.safe.loc["x", "q"] == 3.0


def test_shares_zero_and_hundred_percent() -> None:
    df = cells({("x", "p"): [1] * 15, ("y", "p"): [1] * 12, ("y", "q"): [1] * 14})
    check = check_table(df, index=["a"], columns=["b"], contributor="pid", normalize="index")
    assert "shares" in flags_of(check, "x", "p")
    assert "shares" in flags_of(check, "x", "q")
    assert "shares" not in flags_of(check, "y", "q")


def test_rule_reasons_and_record() -> None:
    df = cells(
        {("x", "p"): [1] * 3, ("x", "q"): [1] * 12, ("y", "p"): [1] * 30, ("y", "q"): [1] * 25}
    )
    check = check_table(df, index=["a"], columns=["b"], contributor="pid")
    flagged = check.record.flagged
    assert len(flagged) == 1
    assert flagged[0].row == ["x"] and flagged[0].column == ["p"]
    assert flagged[0].reasons == ["threshold: 3 contributor(s), fewer than the threshold 10"]
    assert flagged[0].contributors == 3 and flagged[0].suppressed == "primary"
    assert check.record.policy == "trenv-default" and check.record.policy_version == "1.0"


def test_inner_cells_do_not_depend_on_margins() -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "a": rng.choice(list("xyz"), 400, p=[0.6, 0.35, 0.05]),
            "b": rng.choice(list("pq"), 400),
            "v": rng.pareto(1.0, 400),
            "pid": rng.integers(0, 150, 400),
        }
    )
    kw = {"index": ["a"], "columns": ["b"], "values": "v", "statistic": "sum", "contributor": "pid"}
    plain = check_table(df, **kw)
    with_margins = check_table(df, margins=True, **kw)
    inner = with_margins.flags.loc[["x", "y", "z"], ["p", "q"]]
    pd.testing.assert_frame_equal(plain.flags, inner)
    assert with_margins.record.cells.contributors[-1] == df.pid.nunique()
