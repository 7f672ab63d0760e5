"""The researcher API: pandas signatures, safe results, records, saving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trenv.lab as tre
from trenv.disclosure import DisclosureInputError


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TRENV_POLICY", raising=False)
    return tmp_path


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame(
        {
            "court": rng.choice(["Amsterdam", "Den Haag", "Zwolle"], n, p=[0.5, 0.3, 0.2]),
            "verdict": rng.choice(["guilty", "acquitted", "dismissed"], n, p=[0.7, 0.2, 0.1]),
            "months": np.round(rng.gamma(2.0, 6.0, n), 1),
            "age": rng.integers(18, 80, n),
            "person": rng.integers(0, 2000, n),
        }
    )
    df.loc[:5, "court"] = "Assen"  # a small court: 6 records
    return df


def test_crosstab_matches_pandas_where_safe(data: pd.DataFrame) -> None:
    out = tre.crosstab(data.court, data.verdict, contributor=data.person, margins=True)
    expected = pd.crosstab(data.court, data.verdict, margins=True)
    shown = out.result.loc[expected.index, expected.columns]
    mask = shown.notna()
    assert mask.to_numpy().sum() > 0
    np.testing.assert_array_equal(shown[mask].fillna(-1), expected.where(mask).fillna(-1))
    assert out.result.loc["Assen"].iloc[:3].isna().all()  # 6 records in all
    assert out.record.kind == "table" and out.record.contributor == "person"
    assert "tre.crosstab(data.court" in out.record.code


def test_pivot_table_statistics(data: pd.DataFrame) -> None:
    for stat in ("count", "sum", "mean", "median", "std", "min", "max", "q90"):
        out = tre.pivot_table(
            data,
            values="months",
            index="court",
            columns="verdict",
            aggfunc=stat,
            contributor="person",
        )
        if stat in ("count", "sum", "mean", "median", "std"):
            ref = pd.pivot_table(
                data,
                values="months",
                index="court",
                columns="verdict",
                aggfunc=stat if stat != "count" else "count",
            )
            got = out.result.loc["Amsterdam", "guilty"]
            assert got == pytest.approx(ref.loc["Amsterdam", "guilty"])
        assert out.record.statistic == stat
        if stat == "max":
            assert pd.isna(out.result.loc["Amsterdam", "guilty"])  # the longest is one person


def test_fill_value_and_callables_are_refused(data: pd.DataFrame) -> None:
    with pytest.raises(DisclosureInputError, match="fill_value"):
        tre.pivot_table(data, values="months", index="court", fill_value=0, contributor="person")
    with pytest.raises(DisclosureInputError, match="one statistic name"):
        tre.pivot_table(data, values="months", index="court", aggfunc=np.mean, contributor="person")


def test_save_writes_csv_and_record(data: pd.DataFrame, workspace: Path) -> None:
    out = tre.crosstab(data.court, data.verdict, contributor=data.person)
    written = tre.save(out, "courts")
    folder = workspace / "outputs"
    assert set(written) == {"courts.csv", "courts.record.json"}
    record = json.loads((folder / "courts.record.json").read_text())
    assert record["schema_version"] == "trenv.output-record/1"
    import hashlib

    digest = hashlib.sha256((folder / "courts.csv").read_bytes()).hexdigest()
    assert record["files"] == {"courts.csv": digest}
    assert record["policy"] == "trenv-default" and record["policy_version"] == "1.0"
    assert "person" not in json.dumps(record["cells"])  # no ids, only counts
    assert len(record["cells"]["contributors"]) == 12
    csv = pd.read_csv(folder / "courts.csv", index_col=0)
    assert csv.loc["Assen"].isna().all()
    with pytest.raises(FileExistsError, match="never overwritten"):
        tre.save(out, "courts")
    for bad in ("../x", "a/b", "a\\b", ""):
        with pytest.raises(ValueError, match="plain file name"):
            tre.save(out, bad)
    assert out in tre.outputs()


def test_differencing_against_saved_outputs(workspace: Path) -> None:
    df = pd.DataFrame(
        {
            "a": ["x"] * 43 + ["y"] * 52,
            "b": ["p"] * 3 + ["q"] * 40 + ["p"] * 30 + ["q"] * 22,
            "pid": range(95),
        }
    )
    first = tre.crosstab(df.a, df.b, contributor=df.pid)
    tre.save(first, "two_way")
    second = tre.pivot_table(df, index="a", aggfunc="count", contributor="pid")
    verdict = {v.rule_id: v for v in second.record.rules}["differencing"]
    assert verdict.status == "fail" and verdict.flagged_cells == 1
    assert second.status == "fail"


def test_a_sum_table_without_one_person_is_flagged_before_submission(
    data: pd.DataFrame,
) -> None:
    # The issue's reproduction: each table is safe, the pair gives person 11's months away.
    t1 = tre.pivot_table(
        data, values="months", index="court", columns="verdict", aggfunc="sum", contributor="person"
    )
    assert {v.rule_id: v.status for v in t1.record.rules}["population-difference"] == "pass"
    tre.save(t1, "a")
    t2 = tre.pivot_table(
        data[data.person != 11],
        values="months",
        index="court",
        columns="verdict",
        aggfunc="sum",
        contributor="person",
    )
    verdict = {v.rule_id: v for v in t2.record.rules}["population-difference"]
    assert verdict.status == "fail" and t2.status == "fail"
    assert "isolates 1 people" in verdict.detail and "saved table 1" in verdict.detail
    assert "population-difference: fail" in t2._repr_html_()  # the researcher sees why


def test_html_highlights_flagged_cells(data: pd.DataFrame) -> None:
    out = tre.crosstab(data.court, data.verdict, contributor=data.person)
    html = out._repr_html_()
    assert "#f8d0d0" in html and "threshold" in html and "trenv-default" in html


def test_hist_and_bar(data: pd.DataFrame, workspace: Path) -> None:
    h = tre.hist(data.months, bins=8, contributor=data.person)
    assert h.record.kind == "figure"
    counts = h.table.iloc[:, 0]
    assert counts.notna().sum() >= 2
    edges = [float(s.split(",")[0][1:]) for s in counts.index]
    assert min(edges) <= data.months.min() and min(edges) != data.months.min()
    drawn = [p.get_height() for p in h.result.axes[0].patches]
    assert sorted(drawn) == sorted(counts.dropna().tolist())
    b = tre.bar(data.court, contributor=data.person)
    assert pd.isna(b.table.loc["Assen"].iloc[0])
    assert len(b.result.axes[0].patches) == 3
    written = tre.save(b, "courts_bar")
    assert {"courts_bar.png", "courts_bar.csv", "courts_bar.record.json"} == set(written)


def test_model_summaries(data: pd.DataFrame) -> None:
    import statsmodels.api as sm
    from sklearn.linear_model import LinearRegression, LogisticRegression

    x = pd.get_dummies(data[["court"]], drop_first=True, dtype=float).assign(age=data.age)
    ols = sm.OLS(data.months, sm.add_constant(x)).fit()
    out = tre.model_summary(ols)
    assert out.record.model.df_resid == ols.df_resid
    assert np.isnan(out.result.loc["court_Assen"]).all()  # 6 records
    y = (data.verdict == "guilty").astype(float)
    logit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    out_logit = tre.model_summary(logit)
    small = {v.rule_id: v for v in out_logit.record.rules}["model-level-count"]
    assert small.flagged_cells >= 1
    lin = LinearRegression().fit(x, data.months)
    out_lin = tre.model_summary(lin, x, data.months)
    assert out_lin.record.model.df_resid == len(data) - x.shape[1] - 1
    assert out_lin.result.loc["age", "coef"] == pytest.approx(lin.coef_[-1])
    tiny = LogisticRegression().fit(x.iloc[:12], y.iloc[:12])
    assert tre.model_summary(tiny, x.iloc[:12], y.iloc[:12]).result.isna().all().all()
    with pytest.raises(DisclosureInputError, match="fitted on"):
        tre.model_summary(lin)


def test_describe(data: pd.DataFrame) -> None:
    out = tre.describe(data[["months", "age", "person"]], contributor="person")
    ref = data[["months", "age"]].describe()
    assert out.result.loc["mean", "months"] == pytest.approx(ref.loc["mean", "months"])
    assert out.result.loc["count", "age"] == ref.loc["count", "age"]
    assert np.isnan(out.result.loc["max", "months"])  # the longest sentence is one person's
    assert "person" not in out.result.columns


def test_polars_input(data: pd.DataFrame) -> None:
    pl = pytest.importorskip("polars")
    a = tre.pivot_table(data, values="months", index="court", aggfunc="sum", contributor="person")
    b = tre.pivot_table(
        pl.from_pandas(data), values="months", index="court", aggfunc="sum", contributor="person"
    )
    pd.testing.assert_frame_equal(a.result, b.result)


def test_describe_record_carries_cell_statistics_for_the_recheck(data: pd.DataFrame) -> None:
    from trenv.disclosure import OutputRecord, recheck

    out = tre.describe(data[["months", "age", "person"]], contributor="person")
    cells = out.record.cells
    assert len(cells) == 8 * 2  # count, mean, std, min, 25%, 50%, 75%, max per column
    at = {(c.row[0], c.column[0]): c for c in cells}
    count = at[("count", "months")]
    assert count.statistic == "count" and count.rows == 3000 and count.published == 3000
    assert count.contributors == data.person.nunique()
    mean = at[("mean", "months")]
    assert mean.sum == pytest.approx(data.months.sum()) and len(mean.top) == 2
    assert mean.near is None  # a mean sits at no contributor's value
    top = at[("max", "months")]
    assert top.published is None and top.suppressed == "primary" and top.near < 10
    assert at[("50%", "months")].near >= 10
    record = OutputRecord.model_validate_json(out.record.model_dump_json())
    assert recheck(record, "trenv-default").problems == []
    # A forged record publishing the maximum (one person's sentence) is caught.
    i = next(k for k, c in enumerate(record.cells) if (c.row, c.column) == (["max"], ["months"]))
    record.cells.published[i] = record.cells.value[i]
    record.cells.suppressed[i] = None
    problems = recheck(record, "trenv-default").problems
    assert any("['max']/['months'] is published but extremes" in p for p in problems)


def test_describe_rounds_counts_under_a_rounding_policy(data: pd.DataFrame) -> None:
    from trenv.disclosure import recheck

    out = tre.describe(data[["months", "person"]], contributor="person", policy="opensafely")
    assert out.result.loc["count", "months"] == 3000
    small = data.iloc[:23]
    out = tre.describe(small[["months", "person"]], contributor="person", policy="opensafely")
    assert out.result.loc["count", "months"] == 25  # 23 rounded to base 5
    assert recheck(out.record, "opensafely").problems == []


def test_describe_under_controlled_rounding_rechecks_clean(data: pd.DataFrame) -> None:
    from trenv.disclosure import OutputRecord, recheck

    small = data.iloc[:23]
    out = tre.describe(small[["months", "person"]], contributor="person", policy="trenv-rounding")
    assert out.result.loc["count", "months"] == 20  # 23 people: the nearer multiple of 10
    assert out.record.rounding == "controlled"
    record = OutputRecord.model_validate_json(out.record.model_dump_json())
    assert recheck(record, "trenv-rounding").problems == []
    i = next(k for k, c in enumerate(record.cells) if (c.row, c.column) == (["count"], ["months"]))
    assert record.cells.rounded is not None
    record.cells.rounded[i] = record.cells.published[i] = 30  # the farther multiple
    problems = recheck(record, "trenv-rounding").problems
    assert any("not to the multiple of 10 nearest to it" in p for p in problems)


# --- integers stay integers: 1998, not 1998.000000 (display) or 1998.0 (CSV)


def _cells_html(html: str) -> list[str]:
    """What each data cell of the displayed table shows (without the tooltips' spans)."""
    import re

    return [re.sub(r"<span[^>]*></span>", "", v) for v in re.findall(r"<td[^>]*>(.*?)</td>", html)]


def test_counts_are_shown_as_integers_and_suppressed_cells_empty(data: pd.DataFrame) -> None:
    out = tre.crosstab(data.court, data.verdict, contributor=data.person, margins=True)
    assert str(out.result.dtypes.iloc[0]) == "Int64"
    shown = _cells_html(out._repr_html_())
    total = str(int(out.result.loc["All", "All"]))
    assert total in shown and f"{total}.000000" not in out._repr_html_()
    assert all(v == "" or v.isdigit() for v in shown), shown
    assert "" in shown and "&lt;NA&gt;" not in out._repr_html_() and "nan" not in shown
    # Shares and means stay floats.
    mean = tre.pivot_table(
        data, values="months", index="court", aggfunc="mean", contributor="person"
    )
    assert mean.result.dtypes.iloc[0] == np.float64
    share = tre.crosstab(data.court, data.verdict, contributor=data.person, normalize="index")
    assert share.result.dtypes.iloc[0] == np.float64


def test_sums_of_whole_numbers_are_integers(data: pd.DataFrame) -> None:
    whole = data.assign(days=(data.months * 30).round().astype(np.int64))
    out = tre.pivot_table(whole, values="days", index="court", aggfunc="sum", contributor="person")
    assert str(out.result.dtypes.iloc[0]) == "Int64"
    assert out.result.loc["Amsterdam"].iloc[0] == whole.days[whole.court == "Amsterdam"].sum()
    # A float column holding whole numbers (missing values made it float) too.
    floats = whole.assign(days=whole.days.astype(float))
    floats.loc[10, "days"] = np.nan
    out = tre.pivot_table(floats, values="days", index="court", aggfunc="sum", contributor="person")
    assert str(out.result.dtypes.iloc[0]) == "Int64"
    fractional = tre.pivot_table(
        data, values="months", index="court", aggfunc="sum", contributor="person"
    )
    assert fractional.result.dtypes.iloc[0] == np.float64


def test_saved_csv_holds_integers(data: pd.DataFrame, workspace: Path) -> None:
    out = tre.crosstab(data.court, data.verdict, contributor=data.person, margins=True)
    tre.save(out, "counts")
    text = (workspace / "outputs" / "counts.csv").read_text()
    total = int(out.result.loc["All", "All"])
    assert f",{total}\n" in text and ".0" not in text
    assert "\nAssen,,,," in text  # suppressed cells are empty
    record = json.loads((workspace / "outputs" / "counts.record.json").read_text())
    assert '"published": [' in json.dumps(record["cells"]) and ".0," not in json.dumps(
        record["cells"]["published"]
    )
    described = tre.describe(data[["months", "age", "person"]], contributor="person")
    shown = _cells_html(described._repr_html_())
    assert shown[:2] == ["3000", "3000"]  # the count row
    assert "3000.000000" not in described._repr_html_()
    tre.save(described, "described")
    rows = (workspace / "outputs" / "described.csv").read_text().splitlines()
    assert rows[1] == "count,3000,3000"
    assert rows[2].startswith("mean,") and "." in rows[2]


def test_figure_counts_are_saved_as_integers(data: pd.DataFrame, workspace: Path) -> None:
    b = tre.bar(data.court, contributor=data.person)
    tre.save(b, "courts")
    text = (workspace / "outputs" / "courts.csv").read_text()
    assert ".0" not in text and "\nAssen,\n" in text
