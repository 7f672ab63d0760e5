"""DP releases: values, public keys, truncation, validation, and the noise calibration.

Fixtures live in this file (not a conftest) so they cannot collide with the ledger's tests.
A large rho (1e9) makes the noise scale ~2e-5, so the discrete-Gaussian noise on counts is 0
with overwhelming probability: that is how exact expectations are checked.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import opendp.prelude as dp
import polars as pl
import pytest
from pydantic import ValidationError
from scipy import stats

from trenv.errors import Invalid
from trenv.privacy.releases import (
    QuerySpec,
    _cells,
    _key_frame,
    check_calibration,
    count_measurement,
    plan_hash,
    release,
    sum_measurement,
    zcdp_to_approx_dp,
)
from trenv.privacy.spec import check_against_schema, check_bounds_in_range, dtype_range

HUGE_RHO = 1e9
OFFENCES = ["theft", "assault", "fraud", "burglary"]


@pytest.fixture(scope="module")
def justice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 rows: 1,000 persons, 3 rows each; one offence ('secret') not in the codebook."""
    rng = np.random.default_rng(7)
    n = 3000
    offences = rng.choice([*OFFENCES[:3], "secret"], n, p=[0.4, 0.3, 0.2, 0.1])
    frame = pl.DataFrame(
        {
            "pid": [f"p{i % 1000:04d}" for i in range(n)],
            "offence": offences,
            "year": rng.integers(2018, 2022, n),
            "sentence_months": rng.uniform(0, 120, n),
        }
    )
    path = tmp_path_factory.mktemp("dp") / "justice.parquet"
    frame.write_parquet(path)
    return path


@pytest.fixture(scope="module")
def data(justice: Path) -> pl.DataFrame:
    return pl.read_parquet(justice)


def spec(path: Path, **kw: Any) -> QuerySpec:
    base: dict[str, Any] = {"dataset": path, "unit_column": "pid", "rho": HUGE_RHO}
    base.update(kw)
    return QuerySpec(**base)


def first_k(data: pl.DataFrame, k: int) -> pl.DataFrame:
    return data.filter(pl.int_range(pl.len()).over("pid") < k)


# --- values ---------------------------------------------------------------------------------


def test_count_truncates_each_person(justice: Path, data: pl.DataFrame) -> None:
    r1 = release(spec(justice, statistic="count"))
    assert r1.value == 1000  # one row per person
    r3 = release(spec(justice, statistic="count", max_contributions=3))
    assert r3.value == 3000
    r5 = release(spec(justice, statistic="count", max_contributions=5))
    assert r5.value == data.height  # nobody has more than 3 rows
    assert r1.rho_spent == HUGE_RHO
    assert r1.table is None


def test_grouped_count_public_keys(justice: Path, data: pl.DataFrame) -> None:
    keys = ["theft", "assault", "fraud", "burglary"]  # 'burglary' absent, 'secret' unlisted
    r = release(spec(justice, statistic="count", group_by={"offence": keys}, max_contributions=3))
    frame = r.frame()
    assert frame.get_column("offence").to_list() == keys
    got = dict(zip(frame["offence"], frame["count"], strict=True))
    expected = data.group_by("offence").len()
    for key in ["theft", "assault", "fraud"]:
        assert got[key] == expected.filter(pl.col("offence") == key)["len"].item()
    assert got["burglary"] == 0  # missing key present, filled
    assert "secret" not in got  # unknown key dropped
    assert r.accuracy["count"] is not None and r.accuracy["count"] > 0


def test_rows_without_pseudonym_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    pl.DataFrame({"pid": ["a", None, None, "b", "a"], "year": [1, 1, 1, 2, 2]}).write_parquet(path)
    assert release(spec(path, statistic="count", max_contributions=2)).value == 3


def test_truncation_applies_after_key_filter(justice: Path, data: pl.DataFrame) -> None:
    r = release(spec(justice, statistic="count", group_by={"offence": ["theft"]}))
    expected = data.filter(pl.col("offence") == "theft")["pid"].n_unique()
    assert r.frame()["count"].item() == expected


def test_two_way_grouping_is_full_product(justice: Path, data: pl.DataFrame) -> None:
    years = [2018, 2019, 2020, 2021, 2030]
    r = release(
        spec(
            justice,
            statistic="count",
            group_by={"offence": ["theft", "fraud"], "year": years},
            max_contributions=3,
        )
    )
    frame = r.frame()
    assert frame.height == 10
    assert frame.filter(pl.col("year") == 2030)["count"].to_list() == [0, 0]
    expected = data.filter((pl.col("offence") == "fraud") & (pl.col("year") == 2019)).height
    got = frame.filter((pl.col("offence") == "fraud") & (pl.col("year") == 2019))["count"].item()
    assert got == expected


def test_sum_and_mean_with_bounds(justice: Path, data: pl.DataFrame) -> None:
    k3 = first_k(data, 3)
    clipped = k3["sentence_months"].clip(10, 100)
    s = release(
        spec(
            justice,
            statistic="sum",
            column="sentence_months",
            bounds=(10, 100),
            max_contributions=3,
        )
    )
    assert isinstance(s.value, float)
    # Within 8 sigma of the noise (sigma is about 0.007 here): never a chance failure.
    assert s.value == pytest.approx(clipped.sum(), abs=8 * s.noise_scale["sum"])
    m = release(
        spec(
            justice,
            statistic="mean",
            column="sentence_months",
            bounds=(10, 100),
            max_contributions=3,
        )
    )
    assert m.value == pytest.approx(clipped.mean(), rel=1e-6)
    assert set(m.accuracy) == {"sum", "count", "mean"}


def test_grouped_mean(justice: Path, data: pl.DataFrame) -> None:
    r = release(
        spec(
            justice,
            statistic="mean",
            column="sentence_months",
            bounds=(0, 120),
            group_by={"year": [2018, 2019, 2099]},
            max_contributions=3,
        )
    )
    frame = r.frame()
    exact = data.filter(pl.col("year") == 2019)["sentence_months"].mean()
    assert frame.filter(pl.col("year") == 2019)["mean"].item() == pytest.approx(exact, rel=1e-6)
    assert frame.filter(pl.col("year") == 2099)["mean"].item() is None  # zero noisy count
    assert "sum" not in frame.columns  # exact values are never returned


def test_quantile(justice: Path, data: pl.DataFrame) -> None:
    r = release(
        spec(
            justice,
            statistic="quantile",
            column="sentence_months",
            bounds=(0, 120),
            alpha=0.5,
            max_contributions=3,
            rho=10.0,
        )
    )
    assert isinstance(r.value, float)
    assert abs(r.value - data["sentence_months"].median()) < 6  # 3000 rows, rho=10: tight


def test_histogram(justice: Path, data: pl.DataFrame) -> None:
    r = release(
        spec(
            justice,
            statistic="histogram",
            column="sentence_months",
            bins=[0, 30, 60, 90, 200],
            max_contributions=3,
        )
    )
    frame = r.frame()
    assert frame["bin"].to_list() == ["[0, 30)", "[30, 60)", "[60, 90)", "[90, 200]"]
    v = data["sentence_months"]
    assert frame["count"].to_list() == [
        int(((v >= 0) & (v < 30)).sum()),
        int(((v >= 30) & (v < 60)).sum()),
        int(((v >= 60) & (v < 90)).sum()),
        int(((v >= 90) & (v <= 200)).sum()),
    ]


def test_grouped_histogram_covers_keys_times_bins(justice: Path, data: pl.DataFrame) -> None:
    r = release(
        spec(
            justice,
            statistic="histogram",
            column="sentence_months",
            bins=[0, 60, 120],
            group_by={"offence": ["theft", "burglary"]},
            max_contributions=3,
        )
    )
    frame = r.frame()
    assert frame.select("offence", "bin").rows() == [
        ("theft", "[0, 60)"),
        ("theft", "[60, 120]"),
        ("burglary", "[0, 60)"),
        ("burglary", "[60, 120]"),
    ]
    theft = data.filter(pl.col("offence") == "theft")["sentence_months"]
    assert frame["count"].to_list() == [int((theft < 60).sum()), int((theft >= 60).sum()), 0, 0]


def test_histogram_of_a_date_column_counts_calendar_years(tmp_path: Path) -> None:
    # Integer edges on a date column count calendar years (the decimal year), so a DP
    # series over years needs no year column in the data.
    dates = pl.date_range(pl.date(2019, 1, 1), pl.date(2021, 12, 31), "1d", eager=True)
    frame = pl.DataFrame({"pid": [f"p{i}" for i in range(dates.len())], "reported": dates})
    path = tmp_path / "reports.parquet"
    frame.write_parquet(path)
    r = release(spec(path, statistic="histogram", column="reported", bins=[2019, 2020, 2021, 2022]))
    assert r.frame()["count"].to_list() == [365, 366, 365]  # 2020 is a leap year
    with pytest.raises(Invalid, match="numeric"):
        release(spec(path, statistic="sum", column="reported", bounds=(0, 1)))


def test_grouped_quantile_splits_rho(justice: Path) -> None:
    r = release(
        spec(
            justice,
            statistic="quantile",
            column="sentence_months",
            bounds=(0, 120),
            alpha=0.5,
            group_by={"year": [2018, 2019]},
            rho=1.0,
        )
    )
    assert r.frame().height == 2
    assert r.rho_spent == 1.0
    from trenv.privacy.releases import _quantile_measurement

    candidates = tuple(i * 120 / 999 for i in range(1000))
    meas, _ = _quantile_measurement(candidates, 0.5, 1, 0.5)
    assert meas.map(1) <= 0.5  # each of the two groups spends at most rho / 2


def test_release_is_json_and_accounts(justice: Path) -> None:
    import json

    r = release(spec(justice, statistic="count", rho=0.25), delta=1e-7)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["rho_spent"] == 0.25
    assert d["epsilon"] == pytest.approx(0.25 + 2 * math.sqrt(0.25 * math.log(1e7)))
    assert d["delta"] == 1e-7
    assert len(d["plan_hash"]) == 64


def test_plan_hash_ignores_path_but_not_content(justice: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(justice.read_bytes())
    a = spec(justice, statistic="count")
    assert plan_hash(a) == plan_hash(spec(copy, statistic="count"))
    assert plan_hash(a) != plan_hash(spec(justice, statistic="count", max_contributions=2))
    pl.read_parquet(justice).head(10).write_parquet(copy)
    assert plan_hash(a) != plan_hash(spec(copy, statistic="count"))


def test_noise_is_fresh_each_call(justice: Path) -> None:
    s = spec(justice, statistic="count", rho=0.01)
    values = {release(s).value for _ in range(20)}
    assert len(values) > 1  # cached measurement, fresh noise


def test_a_repeated_shape_reuses_the_exact_aggregate_but_not_a_stale_file(
    tmp_path: Path,
) -> None:
    from trenv.privacy import releases

    path = tmp_path / "small.parquet"
    pl.DataFrame({"pid": [f"p{i}" for i in range(50)], "year": [1] * 50}).write_parquet(path)
    s = spec(path, statistic="count", rho=50.0)  # huge rho: noise of a few units at most
    releases._EXACT_CACHE.clear()
    first = release(s).value
    assert len(releases._EXACT_CACHE) == 1
    release(spec(path, statistic="count", rho=10.0))  # other rho, same shape: reused
    assert len(releases._EXACT_CACHE) == 1
    assert abs(first - 50) < 10
    # The vault republishes: a new file at the same path must be read again.
    pl.DataFrame({"pid": [f"p{i}" for i in range(500)], "year": [1] * 500}).write_parquet(path)
    assert abs(release(s).value - 500) < 10
    assert len(releases._EXACT_CACHE) == 2


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"statistic": "count", "rho": 0}, "rho must be a positive"),
        ({"statistic": "count", "rho": -1}, "rho must be a positive"),
        ({"statistic": "count", "rho": math.inf}, "rho must be a positive"),
        ({"statistic": "mean"}, "needs a column"),
        ({"statistic": "count", "column": "sentence_months"}, "takes no column"),
        ({"statistic": "sum", "column": "sentence_months"}, "needs bounds"),
        ({"statistic": "mean", "column": "sentence_months", "bounds": (5, 5)}, "lower"),
        ({"statistic": "mean", "column": "sentence_months", "bounds": (9, 1)}, "lower"),
        (
            {"statistic": "quantile", "column": "sentence_months", "bounds": (0, 1)},
            "alpha must be in",
        ),
        (
            {"statistic": "quantile", "column": "sentence_months", "bounds": (0, 1), "alpha": 1},
            "alpha must be in",
        ),
        ({"statistic": "count", "alpha": 0.5}, "only for quantile"),
        ({"statistic": "histogram", "column": "sentence_months", "bins": [1]}, "two bin edges"),
        (
            {"statistic": "histogram", "column": "sentence_months", "bins": [0, 5, 5]},
            "strictly increasing",
        ),
        ({"statistic": "count", "bins": [0, 1]}, "only for histogram"),
        ({"statistic": "count", "group_by": {"offence": []}}, "empty key list"),
        ({"statistic": "count", "group_by": {"offence": ["a", "a"]}}, "duplicate keys"),
        ({"statistic": "count", "max_contributions": 0}, "max_contributions"),
        ({"statistic": "count", "group_by": {"pid": ["p0001"]}}, "privacy unit column"),
        ({"statistic": "median"}, "statistic"),
        ({"statistic": "count", "unknown_field": 1}, "unknown_field"),
    ],
)
def test_spec_errors(justice: Path, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(justice, **kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"statistic": "count", "unit_column": "person"}, "unknown column 'person'"),
        ({"statistic": "count", "group_by": {"court": ["x"]}}, "unknown column 'court'"),
        (
            {"statistic": "mean", "column": "length", "bounds": (0, 1)},
            "unknown column 'length'",
        ),
        ({"statistic": "mean", "column": "offence", "bounds": (0, 1)}, "not numeric"),
        ({"statistic": "count", "group_by": {"year": ["not-a-year"]}}, "public keys"),
    ],
)
def test_schema_errors(justice: Path, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid, match=message) as info:
        release(spec(justice, **kw))
    assert info.value.fix  # every error says how to fix it


def test_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="does not exist"):
        release(spec(tmp_path / "nope.parquet", statistic="count"))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        # 'year' is Int64: bounds beyond what it can hold are refused by the schema check.
        ({"statistic": "sum", "column": "year", "bounds": (0, 1e308)}, "outside what column"),
        ({"statistic": "mean", "column": "year", "bounds": (-1e19, 0)}, "Int64"),
        # 'sentence_months' is Float64: 1e308 fits, but the noise scale would be infinite.
        (
            {"statistic": "sum", "column": "sentence_months", "bounds": (0, 1e308)},
            "cannot be calibrated",
        ),
        (
            {"statistic": "mean", "column": "sentence_months", "bounds": (-1e306, 1e306),
             "rho": 1e-6, "max_contributions": 1000},
            "cannot be calibrated",
        ),
        # A grid of 1,000 candidates between two neighbouring large floats is impossible.
        (
            {"statistic": "quantile", "column": "sentence_months", "alpha": 0.5,
             "bounds": (1e20, 1e20 + 1e5)},
            "distinct quantile candidates",
        ),
        (
            {"statistic": "quantile", "column": "sentence_months", "alpha": 0.5,
             "bounds": (-1e308, 1e308)},
            "distinct quantile candidates",
        ),
    ],
)  # fmt: skip
def test_bounds_that_cannot_work_are_refused_before_any_row(
    justice: Path, kw: dict[str, Any], message: str
) -> None:
    query = spec(justice, **{"rho": 0.1, **kw})
    with pytest.raises(Invalid, match=message) as info:
        schema = check_against_schema(query)
        check_calibration(query, _cells(query, _key_frame(query, schema)))
    assert info.value.fix and "codebook" in info.value.fix


def test_reasonable_bounds_pass_the_checks(justice: Path) -> None:
    for kw in (
        {"statistic": "sum", "column": "year", "bounds": (2000, 2030)},
        {"statistic": "mean", "column": "sentence_months", "bounds": (0, 120)},
        {"statistic": "quantile", "column": "sentence_months", "alpha": 0.5, "bounds": (0, 120)},
        {"statistic": "histogram", "column": "sentence_months", "bins": [0, 60, 120]},
        {"statistic": "count", "group_by": {"offence": OFFENCES}, "rho": 1e-6},
    ):
        query = spec(justice, **{"rho": 0.1, **kw})
        check_calibration(query, _cells(query, _key_frame(query, check_against_schema(query))))


def test_dtype_ranges() -> None:
    assert dtype_range(pl.Int8) == (-128, 127)
    assert dtype_range(pl.UInt64) == (0, 2**64 - 1)
    assert dtype_range(pl.Float32) == (-3.4028234663852886e38, 3.4028234663852886e38)
    assert dtype_range(pl.Decimal(10, 2)) == (-99999999.99, 99999999.99)
    assert dtype_range(pl.String) is None and dtype_range(pl.Date) is None
    # Exact at the edge: 2**63 is one past Int64's largest value.
    with pytest.raises(Invalid, match="outside"):
        check_bounds_in_range((0, 2.0**63), "n", pl.Int64)
    check_bounds_in_range((-(2.0**63), 0), "n", pl.Int64)


# --- calibration ----------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "rho"), [(1, 0.5), (3, 0.05), (2, 2.0)])
def test_measurement_spends_exactly_rho(k: int, rho: float) -> None:
    meas, scale = count_measurement(4, k, rho)
    assert meas.map(k) <= rho
    assert meas.map(k) == pytest.approx(rho, rel=1e-9)
    assert scale == pytest.approx(k / math.sqrt(2 * rho))
    smeas, sscale = sum_measurement(2, 7.5 * k, rho)
    assert smeas.map(7.5 * k) <= rho
    assert sscale == pytest.approx(7.5 * k / math.sqrt(2 * rho))


def _variance_ratio_interval(n: int, level: float = 1e-6) -> tuple[float, float]:
    """Acceptance region for s^2 / sigma^2 from n draws: (n-1) s^2 / sigma^2 ~ chi2(n-1)."""
    lo = stats.chi2.ppf(level / 2, n - 1) / (n - 1)
    hi = stats.chi2.ppf(1 - level / 2, n - 1) / (n - 1)
    return lo, hi


def test_noise_variance_matches_scale_end_to_end(justice: Path) -> None:
    """300 full releases of one count; empirical variance vs OpenDP's reported scale.

    A release costs milliseconds here (the calibrated measurement is cached per
    (shape, sensitivity, rho) and OpenDP's Context, ~0.65 s per query, is not used), so the
    whole end-to-end path can be sampled. The chi-square region at level 1e-6 for n=300 is
    about [0.70, 1.35]: a scale off by sqrt(2) (variance x2 or /2) fails.
    """
    n, k, rho = 300, 2, 0.02
    s = spec(justice, statistic="count", max_contributions=k, rho=rho)
    draws = np.array([release(s).value for _ in range(n)], dtype=float)
    scale = release(s).noise_scale["count"]
    assert scale == pytest.approx(k / math.sqrt(2 * rho))  # sigma^2 = Delta^2 / (2 rho)
    noise = draws - 2000  # exact: 1000 persons x 2 rows
    ratio = float(np.mean(noise**2)) / scale**2
    lo, hi = _variance_ratio_interval(n)
    assert lo < ratio < hi, (ratio, lo, hi)
    assert abs(float(np.mean(noise))) < 6 * scale / math.sqrt(n)  # unbiased


def test_noise_variance_matches_scale_many_draws() -> None:
    """20,000 draws of the cached measurement itself (built once, invoked many times)."""
    n, rho = 20_000, 0.125
    meas, scale = count_measurement(1, 1, rho)  # scale 2.0
    noise = np.array([meas([100])[0] - 100 for _ in range(n)], dtype=float)
    ratio = float(np.mean(noise**2)) / scale**2
    lo, hi = _variance_ratio_interval(n)
    assert lo < ratio < hi, (ratio, lo, hi)
    # OpenDP's 95% accuracy: P(|noise| >= acc) <= 0.05 (integer-valued, so conservative).
    acc = dp.discrete_gaussian_scale_to_accuracy(scale, 0.05)
    assert float(np.mean(np.abs(noise) >= acc)) <= 0.05 + 0.005


def test_zcdp_conversion() -> None:
    assert zcdp_to_approx_dp(1.0, 1e-7) == pytest.approx(1 + 2 * math.sqrt(math.log(1e7)))
    with pytest.raises(ValueError):
        zcdp_to_approx_dp(0.0)
