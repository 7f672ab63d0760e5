"""The airlock's re-check from the output record alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trenv.disclosure import OutputRecord, check_table
from trenv.disclosure.recheck import recheck


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 900
    return pd.DataFrame(
        {
            "region": rng.choice(["n", "e", "s", "w"], n, p=[0.5, 0.3, 0.17, 0.03]),
            "offence": rng.choice(["theft", "fraud", "arson"], n, p=[0.6, 0.3, 0.1]),
            "months": rng.pareto(1.2, n) * 4,
            "pid": rng.integers(0, 500, n),
        }
    )


def _check(**kw):  # type: ignore[no-untyped-def]
    return check_table(
        _data(), index=["region"], columns=["offence"], contributor="pid", margins=True, **kw
    )


def test_a_checked_table_rechecks_clean_after_a_json_round_trip() -> None:
    for kw in ({}, {"values": "months", "statistic": "sum"}):
        check = _check(**kw)
        assert check.suppressed.to_numpy().any()
        record = OutputRecord.model_validate_json(check.record.model_dump_json())
        assert recheck(record, "trenv-default").problems == []


def test_a_published_small_cell_is_caught() -> None:
    record = _check().record
    cells = record.cells
    i = next(k for k, f in enumerate(cells.flags) if "threshold" in f)
    cells.published[i] = cells.value[i]
    problems = recheck(record, "trenv-default").problems
    assert any("threshold" in p and str(cells.row[i]) in p for p in problems)


def test_an_unprotected_secondary_cell_is_caught() -> None:
    record = _check().record
    cells = record.cells
    secondary = [k for k, s in enumerate(cells.suppressed) if s == "secondary"]
    assert secondary
    for k in secondary:  # publish every partner: the primaries become solvable
        cells.published[k] = cells.value[k]
    problems = recheck(record, "trenv-default").problems
    assert any("can be narrowed" in p for p in problems)


def test_policy_mismatch_is_reported() -> None:
    problems = recheck(_check().record, "cbs").problems
    assert any("project policy is cbs" in p for p in problems)


def test_structural_zeros_travel_with_the_record() -> None:
    df = pd.DataFrame(
        {
            "a": ["x"] * 20 + ["y"] * 30 + ["y"] * 25,
            "b": ["p"] * 20 + ["p"] * 30 + ["q"] * 25,
            "pid": range(75),
        }
    )
    check = check_table(
        df, index=["a"], columns=["b"], contributor="pid", structural_zeros=[("x", "q")]
    )
    assert check.record.structural_zeros == [[["x"], ["q"]]]
    assert recheck(check.record, "trenv-default").ok
