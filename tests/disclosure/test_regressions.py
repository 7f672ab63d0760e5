"""One regression test per hole in rule-of-thumb output checking."""

from __future__ import annotations

import pandas as pd

from tests.disclosure.helpers import cells, flags_of
from trenv.disclosure import check_table
from trenv.disclosure.differencing import Ledger

SAFE = [float(x) for x in range(10, 30)]


def test_differencing_through_margins() -> None:
    # Release 1: region x offence without margins; (x, p) is suppressed (3 people).
    df = cells(
        {("x", "p"): [1] * 3, ("x", "q"): [1] * 40, ("y", "p"): [1] * 30, ("y", "q"): [1] * 22}
    )
    two_way = check_table(df, index=["a"], columns=["b"], contributor="pid")
    assert pd.isna(two_way.safe.loc["x", "p"])
    ledger = Ledger([two_way.record])
    # Release 2: a harmless-looking one-way table of regions: x = 43, so (x, p) = 43 - 40.
    one_way = check_table(df, index=["a"], contributor="pid")
    assert not one_way.suppressed.to_numpy().any()
    findings = ledger.check(one_way.record)
    assert [(f.release, f.row, f.column) for f in findings] == [(0, ["x"], ["p"])]
    assert findings[0].lower == findings[0].upper == 3
    # Any later total pins it: one hidden cell in a table is one unknown.
    by_offence = check_table(df, index=["b"], contributor="pid")
    assert len(Ledger([two_way.record]).check(by_offence.record)) == 1
    # Tables of another statistic are different facts and are not combined.
    sums = check_table(df, index=["a"], values="v", statistic="sum", contributor="pid")
    assert Ledger([two_way.record]).check(sums.record) == []


def test_one_record_mode_is_disclosive() -> None:
    df = cells(
        {
            ("x", "p"): [float(v) for v in range(15)],
            ("x", "q"): [2.0] * 15,
            ("y", "p"): [2.0] * 15,
            ("y", "q"): [2.0] * 12 + [3.0] * 3,
        }
    )
    check = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="mode", contributor="pid"
    )
    assert "extremes" in flags_of(check, "x", "p")
    assert pd.isna(check.safe.loc["x", "p"])


def test_constant_valued_cell_reveals_everyone() -> None:
    df = cells({("x", "p"): [36.0] * 25, ("x", "q"): SAFE, ("y", "p"): SAFE, ("y", "q"): SAFE})
    check = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="mean", contributor="pid"
    )
    assert "constant-value" in flags_of(check, "x", "p")
    assert pd.isna(check.safe.loc["x", "p"])


def test_one_person_with_many_rows_is_one_contributor() -> None:
    df = pd.DataFrame(
        {"a": ["x"] * 50 + ["y"] * 30, "b": ["p"] * 80, "pid": [7] * 50 + list(range(100, 130))}
    )
    check = check_table(df, index=["a"], columns=["b"], contributor="pid")
    assert check.table.loc["x", "p"] == 50  # 50 rows ...
    assert "threshold" in flags_of(check, "x", "p")  # ... but one person
    rows_only = check_table(df, index=["a"], columns=["b"], policy="sacro")
    assert "threshold" not in flags_of(rows_only, "x", "p")  # what counting rows misses


def test_negative_values_cannot_hide_dominance() -> None:
    values = [500.0, -2000.0] + [10.0] * 18
    df = cells({("x", "p"): values, ("x", "q"): SAFE, ("y", "p"): SAFE, ("y", "q"): SAFE})
    # A signed (n, k) check: top two 510 of a total of -1320 is "below 90%": passes.
    signed = sorted(values, reverse=True)
    assert sum(signed[:2]) / sum(values) < 0.9
    check = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="sum", contributor="pid"
    )
    # On absolute contributions, 2500 of 2680 (93%) sits with two people.
    assert "dominance-nk" in flags_of(check, "x", "p")
    assert pd.isna(check.safe.loc["x", "p"])


def test_person_split_over_rows_still_dominates() -> None:
    # One person's 10 rows of 100 are one contribution of 1000 against 15 people of 5.
    df = pd.DataFrame(
        {
            "a": ["x"] * 25,
            "b": ["p"] * 25,
            "v": [100.0] * 10 + [5.0] * 15,
            "pid": [1] * 10 + list(range(2, 17)),
        }
    )
    df = pd.concat([df, cells({("y", "p"): SAFE}, start=1000)])
    by_person = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="sum", contributor="pid", policy="cbs"
    )
    assert "dominance-nk" in flags_of(by_person, "x", "p")
    by_row = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="sum", policy="sacro"
    )
    assert "dominance-nk" not in flags_of(by_row, "x", "p")


def test_infinite_values_are_refused_with_the_fix() -> None:
    # A sum table with margins used to die in the LP audit's fsum (OverflowError).
    import numpy as np
    import pandas as pd
    import pytest

    from trenv.disclosure import DisclosureInputError, check_table

    df = pd.DataFrame({"a": ["x", "y"] * 20, "v": [1.0] * 39 + [np.inf], "pid": range(40)})
    with pytest.raises(DisclosureInputError, match="infinite values") as info:
        check_table(df, index=["a"], values="v", statistic="sum", contributor="pid", margins=True)
    assert "replace" in str(info.value)
