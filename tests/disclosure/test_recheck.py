"""The airlock's re-check from the output record alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.disclosure.helpers import cells
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


def _round_trip(record: OutputRecord) -> OutputRecord:
    return OutputRecord.model_validate_json(record.model_dump_json())


@pytest.mark.parametrize("policy", ["trenv-default", "sacro", "opensafely", "cbs"])
@pytest.mark.parametrize(
    ("statistic", "normalize"),
    [
        ("count", None),
        ("count", "index"),
        ("count", "columns"),
        ("count", "all"),
        ("sum", None),
        ("mean", None),
        ("std", None),
        ("median", None),
        ("max", None),
        ("q90", None),
    ],
)
@pytest.mark.parametrize("margins", [True, False])
def test_genuine_records_recheck_clean(
    policy: str, statistic: str, normalize: str | None, margins: bool
) -> None:
    # No false alarms: every consistency check and rule must agree with check_table, for
    # rounded, normalised, one- and two-way tables of every statistic.
    values = {} if statistic == "count" else {"values": "months", "statistic": statistic}
    for columns in (["offence"], []):
        check = check_table(
            _data(),
            index=["region"],
            columns=columns,
            contributor="pid",
            margins=margins,
            normalize=normalize if columns else None,
            policy=policy,
            **values,  # type: ignore[arg-type]
        )
        problems = recheck(_round_trip(check.record), policy).problems
        assert problems == [], (columns, problems)


def _class_table() -> pd.DataFrame:
    # Region w: all 15 of its people have the same offence (the others are mixed).
    spec = {
        ("n", "theft"): [1.0] * 30,
        ("n", "fraud"): [1.0] * 25,
        ("s", "theft"): [1.0] * 20,
        ("s", "fraud"): [1.0] * 22,
        ("w", "theft"): [1.0] * 15,
        ("w", "fraud"): [],
    }
    return cells(spec).rename(columns={"a": "region", "b": "offence"})


def test_published_class_disclosure_is_caught() -> None:
    check = check_table(
        _class_table(), index=["region"], columns=["offence"], contributor="pid", policy="cbs"
    )
    assert "class-disclosure" in check.flags.loc["w", "theft"]
    assert pd.isna(check.safe.loc["w", "theft"])
    record = _round_trip(check.record)
    assert recheck(record, "cbs").ok
    i = next(
        k
        for k in range(len(record.cells))
        if record.cells.row[k] == ["w"] and record.cells.column[k] == ["theft"]
    )
    record.cells.published[i] = record.cells.value[i]
    record.cells.suppressed[i] = None
    problems = recheck(record, "cbs").problems
    assert any("['w']/['theft'] is published but class-disclosure" in p for p in problems)


def test_published_100_percent_share_is_caught() -> None:
    check = check_table(
        _class_table(),
        index=["region"],
        columns=["offence"],
        contributor="pid",
        normalize="index",
    )
    assert "shares" in check.flags.loc["w", "theft"]
    record = _round_trip(check.record)
    assert recheck(record, "trenv-default").ok
    i = next(
        k
        for k in range(len(record.cells))
        if record.cells.row[k] == ["w"] and record.cells.column[k] == ["theft"]
    )
    record.cells.published[i] = 1.0
    record.cells.suppressed[i] = None
    problems = recheck(record, "trenv-default").problems
    assert any("['w']/['theft'] is published but shares" in p for p in problems)


def test_published_values_must_match_the_cell_statistics() -> None:
    record = _round_trip(_check().record)
    cells = record.cells
    i = next(k for k, p in enumerate(cells.published) if p is not None and not cells.margin[k])
    cells.published[i] = cells.published[i] + 1
    problems = recheck(record, "trenv-default").problems
    assert any(
        f"{cells.row[i]}/{cells.column[i]} is published but inconsistent" in p for p in problems
    )


def test_inflated_counts_of_a_small_cell_are_caught_by_its_margins() -> None:
    # A forger raises a small cell's rows, contributors and value together (so that the
    # cell itself looks consistent and passes the threshold) and publishes it: its
    # margins no longer add up.
    record = _round_trip(_check().record)
    cells = record.cells
    i = next(k for k, f in enumerate(cells.flags) if "threshold" in f and not cells.margin[k])
    cells.rows[i] = cells.contributors[i] = 12
    cells.value[i] = cells.published[i] = 12.0
    cells.suppressed[i] = None
    cells.top[i] = [1.0, 1.0]
    cells.sum[i] = cells.abs_sum[i] = 12.0
    problems = recheck(record, "trenv-default").problems
    assert not any("is published but threshold" in p for p in problems)
    assert any("the record is inconsistent: rows" in p for p in problems)


def test_rounded_values_must_be_the_rounding_of_the_true_count() -> None:
    check = check_table(
        _data(),
        index=["region"],
        columns=["offence"],
        contributor="pid",
        policy="opensafely",
        margins=True,
    )
    record = _round_trip(check.record)
    assert recheck(record, "opensafely").ok
    cells = record.cells
    i = next(
        k
        for k, p in enumerate(cells.published)
        if p is not None and not cells.margin[k] and cells.value[k] % 5
    )
    cells.published[i] = cells.value[i]  # the true count instead of its rounding
    problems = recheck(record, "opensafely").problems
    assert any("is published but inconsistent" in p for p in problems)


def test_rounded_tables_get_the_lp_audit() -> None:
    # The hidden cells' rounded values are recomputed from the record, so a rounded table
    # with margins is audited like any other: publishing every partner is caught.
    check = check_table(
        _data(),
        index=["region"],
        columns=["offence"],
        contributor="pid",
        policy="opensafely",
        margins=True,
    )
    record = _round_trip(check.record)
    cells = record.cells
    secondary = [k for k, s in enumerate(cells.suppressed) if s == "secondary"]
    assert secondary
    from trenv.disclosure.rounding import round_base

    for k in secondary:
        cells.published[k] = float(round_base(np.array([cells.value[k]]), 5)[0])
        cells.suppressed[k] = None
    problems = recheck(record, "opensafely").problems
    assert any("can be narrowed" in p for p in problems)


def test_public_view_hides_everything_about_suppressed_cells() -> None:
    check = check_table(
        _data(),
        index=["region"],
        columns=["offence"],
        values="months",
        statistic="sum",
        contributor="pid",
        margins=True,
    )
    public = check.record.public()
    cells = public["cells"]
    hidden = [k for k, p in enumerate(cells["published"]) if p is None]
    assert hidden
    for k in hidden:
        for key in (
            "value",
            "sum",
            "abs_sum",
            "rows",
            "contributors",
            "negatives",
            "missing",
            "all_equal",
            "interval",
        ):
            assert cells[key][k] is None, key
        assert cells["flags"][k] == [] and cells["reasons"][k] == []
        assert cells["suppressed"][k] == "suppressed"  # not whether primary (small) or not
    assert all(t == [] for t in cells["top"])
