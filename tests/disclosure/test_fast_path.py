"""The fast statistics path gives exactly the results of the plain numpy path.

Large tables sort packed (key, position) values in place, gather the values in threads,
collapse the column margin in blocks of whole contributors and run their elementwise
passes in blocks. None of that may change a single bit: the fast path is forced here on
small random tables (thresholds at zero, tiny blocks so that every block edge is crossed
many times) and compared, record for record, with the plain numpy path (numpy's stable
argsort, one gather, the column margin sorted, whole-array passes). The data have many
contributors per cell, repeated rows per (cell, contributor), ties, negatives, NaNs, -0.0,
and dense, sparse and hashed contributor ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from trenv.disclosure import cellstats, check_table, countstats
from trenv.disclosure.policy import load_policy
from trenv.disclosure.table import _item_stats

ROWS_POLICY = load_policy("trenv-default").model_copy(update={"contributor_required": False})


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2_000, 6_000))
    n_people = int(rng.integers(20, n // 3))
    v = (rng.pareto(1.1, n) * 10).round(int(rng.integers(0, 3)))
    v *= rng.choice([-1.0, 1.0], n, p=[0.25, 0.75])
    v[rng.random(n) < 0.1] = 7.0  # ties within and across cells
    v[rng.random(n) < 0.05] = np.nan
    v[rng.random(n) < 0.01] = -0.0
    pid: Any = rng.integers(0, n_people, n)
    kind = seed % 3
    if kind == 1:
        pid = pid * 3 + 1  # ids sparser than the items: the grand total collapses runs
    elif kind == 2:
        pid = np.array([f"p{p}" for p in pid], dtype=object)  # hashed ids
    return pd.DataFrame(
        {
            "a": rng.integers(0, 4, n),
            "b": rng.choice(["x", "y", "z"], n),
            "c": pd.Categorical.from_codes(rng.integers(0, 5, n), list("pqrst")),
            "v": v,
            "pid": pid,
        }
    )


def _outputs(
    df: pd.DataFrame, statistic: str | None, margins: bool, **table: Any
) -> tuple[Any, ...]:
    kwargs: dict[str, Any] = {"values": "v", "statistic": statistic} if statistic else {}
    table = {"index": ["a", "b"], "columns": ["c"], "contributor": "pid", **table}
    check = check_table(df, margins=margins, **kwargs, **table)
    record = check.record.model_dump(mode="json")
    record.pop("created", None)
    record.pop("code", None)
    return (
        record,
        # Whole-number tables are Int64 (object arrays of pointers): compare the numbers.
        check.safe.to_numpy(dtype=float, na_value=np.nan).tobytes(),
        check.suppressed.to_numpy().tobytes(),
        check.table.to_numpy(dtype=float, na_value=np.nan).tobytes(),
    )


@pytest.mark.parametrize("seed", range(9))
@pytest.mark.parametrize(("statistic", "margins"), [("sum", True), ("sum", False), (None, True)])
def test_fast_path_equals_numpy_path(
    seed: int, statistic: str | None, margins: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = _frame(seed)
    with monkeypatch.context() as plain:
        plain.setattr(cellstats, "_pack_positions", lambda key: None)
        plain.setattr(cellstats, "PARALLEL_TAKE_MIN", 1 << 62)
        plain.setattr(cellstats, "CHUNK", 1 << 30)
        plain.setattr(cellstats, "BLOCK_MIN_ITEMS", 1 << 62)  # the column margin sorts
        want = _outputs(df, statistic, margins)
    monkeypatch.setattr(cellstats, "PARALLEL_TAKE_MIN", 0)
    # The column margin in blocks of a few contributors (5 columns: 13 items a block).
    monkeypatch.setattr(cellstats, "BLOCK_SLOTS", 64)
    monkeypatch.setattr(cellstats, "BLOCK_MIN_ITEMS", 1)
    monkeypatch.setattr(cellstats, "_workers", lambda: 3)
    monkeypatch.setattr(cellstats, "CHUNK", 7)
    got = _outputs(df, statistic, margins)
    assert got[1:] == want[1:]
    assert got[0] == want[0]


@pytest.mark.parametrize("nearly_sorted", [True, False])
@pytest.mark.parametrize("high", [40, 2**40, 2**61])
def test_sort_runs_is_the_stable_sort(
    nearly_sorted: bool, high: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keys below 2**40 take the packed sort, wider ones numpy's stable argsort.
    monkeypatch.setattr(cellstats, "CHUNK", 5)
    rng = np.random.default_rng(7)
    key = rng.integers(0, high, size=3000, dtype=np.int64)
    if high < 100:
        key[::3] = key[0]  # many duplicates
    if nearly_sorted:
        key = np.sort(key // 4) * 4 + rng.integers(0, 4, size=len(key))
    want = np.argsort(key, kind="stable")
    order, starts, run_keys, _ = cellstats._sort_runs(key.copy())
    np.testing.assert_array_equal(order, want)
    np.testing.assert_array_equal(starts, cellstats._boundaries(key[want]))
    np.testing.assert_array_equal(run_keys, np.unique(key))


# Count tables: the repeats of sorted keys (countstats, blocks of 7, the column margin in a
# thread) against the item statistics.
COUNT_TABLES = [
    {},
    {"contributor": None, "policy": ROWS_POLICY},
    {"index": ["a", "b", "d"], "columns": ["c"]},
    {"index": ["c"], "columns": ["a", "d"]},
    {"columns": []},
]


@pytest.mark.parametrize("seed", range(9))
@pytest.mark.parametrize("margins", [True, False])
@pytest.mark.parametrize("table", range(len(COUNT_TABLES)))
def test_count_path_equals_item_path(
    seed: int, margins: bool, table: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = _frame(seed)
    df["d"] = np.random.default_rng(seed).integers(0, 3, len(df))
    if seed % 4 == 3:
        df.loc[: len(df) // 3, "pid"] = df["pid"].iloc[0]  # one person with many rows
    with monkeypatch.context() as items:
        items.setattr(countstats, "count_stats", lambda *args: None)
        want = _outputs(df, None, margins, **COUNT_TABLES[table])
    monkeypatch.setattr(countstats, "CHUNK", 7)
    monkeypatch.setattr(countstats, "PARALLEL_MIN", 0)  # the column margin in a thread
    monkeypatch.setattr(countstats, "_workers", lambda: 2)
    got = _outputs(df, None, margins, **COUNT_TABLES[table])
    assert got[1:] == want[1:]
    assert got[0] == want[0]


def _same(got: list[cellstats.Stats], want: list[cellstats.Stats]) -> None:
    for part_got, part_want in zip(got, want, strict=True):
        assert part_got.keys() == part_want.keys()
        for key in part_want:
            a, b = part_got[key], part_want[key]
            assert a.dtype == b.dtype and a.shape == b.shape, key
            assert a.tobytes() == b.tobytes(), key


@pytest.mark.parametrize("margins", [True, False])
@pytest.mark.parametrize(
    "people",
    ["none", "one", "all different", "few", "wide ids", "no rows"],
)
def test_count_stats_edge_cases(people: str, margins: bool) -> None:
    rng = np.random.default_rng(3)
    n, r, c = (0 if people == "no rows" else 500), 6, 5
    dtype = np.int32 if margins else np.int64  # table.py passes int32, either works
    row = rng.integers(0, r, n).astype(dtype)
    col = rng.integers(0, c, n).astype(dtype)
    contrib = {
        "none": None,
        "one": np.zeros(n, dtype=np.int64),
        "all different": rng.permutation(n).astype(np.int64),
        "few": rng.integers(0, 7, n).astype(np.int64),
        # Too wide for 32-bit (contributor, column) keys: the column margin sorts int64.
        "wide ids": rng.integers(0, 7, n).astype(np.int64) << 28,
        "no rows": np.zeros(0, dtype=np.int64),
    }[people]
    n_contrib = n if contrib is None else int(contrib.max(initial=-1)) + 1
    got = countstats.count_stats(row.copy(), col, r, c, contrib, n_contrib, 3, margins)
    assert got is not None
    ids = np.arange(n, dtype=np.int64) if contrib is None else contrib
    want = _item_stats(row * c + col, ids, n_contrib, r, c, None, 3, margins)
    _same(got, want)


def test_count_stats_refuses_keys_wider_than_63_bits() -> None:
    one = np.zeros(1, dtype=np.int64)
    assert countstats.count_stats(one, one, 1000, 1000, one, 1 << 50, 2, True) is None


def _same_typed(a: Any, b: Any, where: str) -> None:
    """Equal values of the same Python types, recursively (0 and 0.0 differ in JSON)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_typed(x, y, f"{where}[{k}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("statistic", "margins", "by_person"),
    [(None, True, True), (None, False, False), ("sum", True, True), ("median", True, True)],
)
def test_record_cells_are_what_validation_would_make(
    seed: int, statistic: str | None, margins: bool, by_person: bool
) -> None:
    # The record's cell table is built without pydantic's per-element validation: every
    # field must already hold exactly what validating it would give.
    from trenv.disclosure.record import CellTable

    kwargs: dict[str, Any] = {"values": "v", "statistic": statistic} if statistic else {}
    if not by_person:
        kwargs["policy"] = ROWS_POLICY
    check = check_table(
        _frame(seed),
        index=["a", "b"],
        columns=["c"],
        contributor="pid" if by_person else None,
        margins=margins,
        **kwargs,
    )
    cells = check.record.cells
    assert len(cells) > 0
    validated = CellTable.model_validate(cells.model_dump())
    for name in CellTable.model_fields:
        _same_typed(getattr(cells, name), getattr(validated, name), name)
    assert cells.model_dump_json() == validated.model_dump_json()


@pytest.mark.parametrize("signs", ["non-negative", "negative", "minus zero"])
@pytest.mark.parametrize("with_has", [True, False])
def test_group_stats_equals_the_plain_formulas(signs: str, with_has: bool) -> None:
    # group_stats skips abs() for non-negative totals and keeps items without a value
    # (total 0) in the top contributions; both must give the plain formulas' bits.
    rng = np.random.default_rng(11)
    m, n_groups = 5000, 37
    group = rng.integers(0, n_groups, m)
    total = np.round(rng.pareto(1.0, m) * 10, 1)
    if signs == "negative":
        total *= rng.choice([-1.0, 1.0], m)
    elif signs == "minus zero":
        total[rng.random(m) < 0.05] = -0.0
    has = rng.random(m) > 0.1 if with_has else None
    if has is not None:
        total[~has] = 0.0
    rowwise = {"rows": np.bincount(group, minlength=n_groups)}
    got = cellstats.group_stats(
        cellstats.Items(group, None, total.copy(), has), n_groups, 3, rowwise
    )
    keep = np.ones(m, dtype=bool) if has is None else has
    mag = np.abs(total)
    top = cellstats._top_contributions(group[keep], mag[keep], n_groups, 3)
    want = {
        "rows": rowwise["rows"],
        "contributors": np.bincount(group[keep], minlength=n_groups).astype(np.int64),
        "sum": np.bincount(group, weights=total, minlength=n_groups),
        **{f"top{j + 1}": top[:, j] for j in range(3)},
        "abs_sum": np.bincount(group, weights=mag, minlength=n_groups),
    }
    _same([got], [want])
