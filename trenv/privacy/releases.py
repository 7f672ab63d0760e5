"""Differentially private releases on OpenDP, pure with respect to the budget ledger.

Each call to :func:`release` spends exactly ``spec.rho`` (zero-concentrated DP) and reports
it; the caller (the ledger) reserves the budget before and commits it after.

How a release is computed
-------------------------
1. The columns are checked against the parquet schema before any row is read.
2. Rows whose group keys are not in the PUBLIC key lists are dropped (and, for histograms,
   values outside the bin edges; and rows without a pseudonym); then each person
   (``unit_column``) keeps at most ``max_contributions`` rows. Which rows a person keeps
   depends only on that person's own rows, so adding or removing one person changes at most
   ``max_contributions`` rows.
3. The exact aggregate is computed with polars over ``pl.scan_parquet`` on the full product of
   the public keys (absent groups are zero, so a group's presence is not disclosed).
4. OpenDP's Gaussian mechanism (``dp.m.make_gaussian``: discrete Gaussian for counts, continuous
   for sums) adds noise calibrated so that the measurement's own privacy map at the person-level
   sensitivity equals at most ``rho``. Quantiles use OpenDP's exponential-mechanism quantile
   (``dp.m.make_private_quantile``) under zCDP.

Why not OpenDP's ``Context`` API: OpenDP 0.16 serialises the polars plan and requires polars
1.36.1; the environment has polars 2.x, and the Context then fails with "Installed python
polars version ... != expected version". The measurements above do not go through polars
plans, and each is built once per (shape, sensitivity, rho) and cached: invoking a cached
measurement samples fresh noise every call, so caching never reuses noise.

Sensitivities (privacy unit: one person, at most k = max_contributions rows):
count (per cell, whole vector) L2 <= k; sum with bounds [L, U] L2 <= k * max(|L|, |U|);
mean = noisy sum / noisy count, rho split evenly between the two.

Accounting: rho-zCDP implies (eps, delta)-DP for every delta > 0 with
eps = rho + 2 * sqrt(rho * ln(1 / delta)) (Bun & Steinke 2016, Prop. 1.3).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import threading
from collections import OrderedDict
from typing import Any

import opendp.prelude as dp
import polars as pl
from pydantic import BaseModel

from trenv.errors import Invalid
from trenv.hashing import file_sha256
from trenv.privacy.spec import QuerySpec, check_against_schema

dp.enable_features("contrib")

DEFAULT_DELTA = 1e-7
ALPHA = 0.05
_CELL = "__cell__"
_BIN = "bin"


class DPRelease(BaseModel):
    """What a release returns; everything JSON-serialisable."""

    statistic: str
    value: float | int | None
    table: list[dict[str, Any]] | None
    accuracy: dict[str, float | None]
    accuracy_alpha: float
    noise_scale: dict[str, float]
    rho_spent: float
    epsilon: float
    delta: float
    plan_hash: str
    max_contributions: int

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def frame(self) -> pl.DataFrame:
        """The grouped result as a polars DataFrame (one row for a scalar)."""
        if self.table is not None:
            return pl.DataFrame(self.table)
        return pl.DataFrame({"value": [self.value]})


def zcdp_to_approx_dp(rho: float, delta: float = DEFAULT_DELTA) -> float:
    """epsilon such that rho-zCDP implies (epsilon, delta)-DP (Bun & Steinke 2016)."""
    if rho <= 0 or not 0 < delta < 1:
        raise ValueError("need rho > 0 and 0 < delta < 1")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    # Cached by (path, mtime, size): a changed file gets a new key and is hashed again.
    return file_sha256(path)


def plan_hash(spec: QuerySpec) -> str:
    """sha256 of the canonical JSON of the spec without its path, plus the file's sha256."""
    st = os.stat(spec.dataset)
    file_hash = _file_sha256(str(spec.dataset.resolve()), st.st_mtime_ns, st.st_size)
    canon = json.dumps(spec.plan_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canon}\n{file_hash}".encode()).hexdigest()


# --- calibrated measurements (cached; each invocation draws fresh noise) ---------------------


def _fits(meas: dp.Measurement, d_in: Any, rho: float) -> bool:
    return float(meas.map(d_in)) <= rho


@functools.lru_cache(maxsize=256)
def count_measurement(length: int, sensitivity: int, rho: float) -> tuple[dp.Measurement, float]:
    """Discrete Gaussian on an integer vector of ``length`` counts, L2 sensitivity given."""
    domain = dp.vector_domain(dp.atom_domain(T=int), size=length)
    metric = dp.l2_distance(T=int)
    scale = sensitivity / math.sqrt(2.0 * rho)
    meas = dp.m.make_gaussian(domain, metric, scale)
    while not _fits(meas, sensitivity, rho):  # guard against rounding in the privacy map
        scale = math.nextafter(scale * (1 + 1e-12), math.inf)
        meas = dp.m.make_gaussian(domain, metric, scale)
    return meas, scale


@functools.lru_cache(maxsize=256)
def sum_measurement(length: int, sensitivity: float, rho: float) -> tuple[dp.Measurement, float]:
    """Gaussian on a float vector of ``length`` sums, L2 sensitivity given."""
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=length)
    metric = dp.l2_distance(T=float)
    scale = sensitivity / math.sqrt(2.0 * rho)
    meas = dp.m.make_gaussian(domain, metric, scale)
    while not _fits(meas, sensitivity, rho):
        scale = math.nextafter(scale * (1 + 1e-12), math.inf)
        meas = dp.m.make_gaussian(domain, metric, scale)
    return meas, scale


@functools.lru_cache(maxsize=64)
def _quantile_measurement(
    candidates: tuple[float, ...], alpha: float, k: int, rho: float
) -> tuple[dp.Measurement, float]:
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    metric = dp.symmetric_distance()

    def build(scale: float) -> dp.Measurement:
        return dp.m.make_private_quantile(
            domain, metric, dp.zero_concentrated_divergence(), list(candidates), alpha, scale
        )

    scale = dp.binary_search_param(build, d_in=k, d_out=rho, T=float)
    return build(scale), scale


# --- data preparation -----------------------------------------------------------------------


def _key_frame(spec: QuerySpec, schema: pl.Schema) -> pl.DataFrame | None:
    """The full product of the public key lists, typed like the data's columns."""
    if not spec.group_by:
        return None
    cols = list(spec.group_by)
    rows = list(itertools.product(*(spec.group_by[c] for c in cols)))
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    frame = pl.DataFrame(data)
    try:
        return frame.with_columns(*(pl.col(c).cast(schema[c], strict=True) for c in cols))
    except Exception as exc:
        raise Invalid(
            f"public keys do not match the column types ({exc}).",
            "Pass keys of the same type as the columns (see the codebook).",
        ) from exc


def _bin_labels(bins: list[float]) -> list[str]:
    labels = []
    for i in range(len(bins) - 1):
        close = "]" if i == len(bins) - 2 else ")"
        labels.append(f"[{bins[i]:g}, {bins[i + 1]:g}{close}")
    return labels


def decimal_year(date: pl.Expr) -> pl.Expr:
    """The year plus the elapsed fraction of it (day 1 -> .0, never reaching the next year)."""
    return date.dt.year().cast(pl.Float64) + (date.dt.ordinal_day().cast(pl.Float64) - 1) / 366


def _prepared(spec: QuerySpec, keys: pl.DataFrame | None) -> pl.LazyFrame:
    """Filter to public keys (and bin range), then truncate each person to k rows."""
    lf = pl.scan_parquet(spec.dataset)
    if spec.column is not None and lf.collect_schema().get(spec.column) == pl.Date:
        # Dates are histogrammed on the decimal year (2021-07-02 -> 2021.5): integer bin
        # edges then count calendar years, and the bins stay public, chosen without the data.
        lf = lf.with_columns(decimal_year(pl.col(spec.column)).alias(spec.column))
    if keys is not None:
        for col in spec.group_by:
            lf = lf.filter(pl.col(col).is_in(keys.get_column(col).unique().implode()))
    if spec.column is not None:
        lf = lf.filter(pl.col(spec.column).is_not_null() & pl.col(spec.column).is_not_nan())
    if spec.statistic == "histogram":
        assert spec.bins is not None and spec.column is not None
        b = spec.bins
        col = pl.col(spec.column).cast(pl.Float64)
        lf = lf.filter((col >= b[0]) & (col <= b[-1]))
        idx = pl.lit(len(b) - 2, dtype=pl.Int64)
        for i in range(len(b) - 2, 0, -1):
            idx = pl.when(col < b[i]).then(pl.lit(i - 1, dtype=pl.Int64)).otherwise(idx)
        labels = _bin_labels(b)
        lf = lf.with_columns(
            idx.replace_strict(list(range(len(labels))), labels, return_dtype=pl.String).alias(_BIN)
        )
    # Rows without a pseudonym cannot be attributed to one person: they are never released.
    # cum_count (1-based, counts non-null values) is safe once null pseudonyms are gone.
    unit = pl.col(spec.unit_column)
    lf = lf.filter(unit.is_not_null())
    return lf.filter(unit.cum_count().over(spec.unit_column) <= spec.max_contributions)


def _cells(spec: QuerySpec, keys: pl.DataFrame | None) -> pl.DataFrame | None:
    """All output cells: the public key product (times histogram bins)."""
    if spec.statistic == "histogram":
        assert spec.bins is not None
        bins = pl.DataFrame({_BIN: _bin_labels(spec.bins)})
        return bins if keys is None else keys.join(bins, how="cross")
    return keys


# Exact, contribution-bounded aggregates by query shape. The noise is drawn fresh for every
# release (and every release is charged), so reusing the exact aggregate of an identical
# shape changes nothing about privacy; it makes a repeated query shape cost only the noise.
# The key holds the file's identity (inode, size, mtime): a republished file is re-read.
_EXACT_CACHE: OrderedDict[str, pl.DataFrame] = OrderedDict()
_EXACT_CACHE_SIZE = 64
_EXACT_LOCK = threading.Lock()  # callers may run releases in threads (the service: processes)


def _shape_key(spec: QuerySpec, aggs: list[pl.Expr]) -> str:
    st = os.stat(spec.dataset)
    shape = spec.model_dump(mode="json", exclude={"rho", "alpha"})
    shape["file"] = [str(spec.dataset.resolve()), st.st_ino, st.st_size, st.st_mtime_ns]
    shape["aggs"] = [str(a) for a in aggs]
    return json.dumps(shape, sort_keys=True)


def _aggregate(spec: QuerySpec, cells: pl.DataFrame | None, aggs: list[pl.Expr]) -> pl.DataFrame:
    key = _shape_key(spec, aggs)
    with _EXACT_LOCK:
        cached = _EXACT_CACHE.get(key)
        if cached is not None:
            _EXACT_CACHE.move_to_end(key)
            return cached
    exact = _aggregate_uncached(spec, cells, aggs)
    with _EXACT_LOCK:
        _EXACT_CACHE[key] = exact
        while len(_EXACT_CACHE) > _EXACT_CACHE_SIZE:
            _EXACT_CACHE.popitem(last=False)
    return exact


def _aggregate_uncached(
    spec: QuerySpec, cells: pl.DataFrame | None, aggs: list[pl.Expr]
) -> pl.DataFrame:
    lf = _prepared(spec, cells)
    if cells is None:
        return lf.select(aggs).collect()
    by = cells.columns
    exact = lf.group_by(by).agg(aggs).collect()
    out = cells.join(exact, on=by, how="left", nulls_equal=True)
    return out.with_columns(pl.exclude(by).fill_null(0))


def _with(exact: pl.DataFrame, cells: pl.DataFrame | None, cols: list[pl.Series]) -> pl.DataFrame:
    """The cell keys (if any) next to the released columns; exact values are dropped."""
    if cells is None:
        return pl.DataFrame(cols)
    return exact.select(cells.columns).with_columns(cols)


# --- release --------------------------------------------------------------------------------


def release(spec: QuerySpec, delta: float = DEFAULT_DELTA) -> DPRelease:
    """Run one DP query spending exactly ``spec.rho`` and return the release."""
    schema = check_against_schema(spec)
    keys = _key_frame(spec, schema)
    k = spec.max_contributions
    s = spec.statistic
    cells = _cells(spec, keys)
    accuracy: dict[str, float | None] = {}
    scales: dict[str, float] = {}
    rows: list[dict[str, Any]] | None = None
    value: float | int | None = None

    if s in ("count", "histogram"):
        exact = _aggregate(spec, cells, [pl.len().cast(pl.Int64).alias("count")])
        meas, scale = count_measurement(exact.height, k, spec.rho)
        noisy = meas(exact.get_column("count").to_list())
        scales["count"] = scale
        accuracy["count"] = float(dp.discrete_gaussian_scale_to_accuracy(scale, ALPHA))
        out = exact.with_columns(pl.Series("count", noisy, dtype=pl.Int64))
    elif s in ("sum", "mean"):
        assert spec.bounds is not None and spec.column is not None
        lo, hi = spec.bounds
        clipped = pl.col(spec.column).cast(pl.Float64).clip(lo, hi)
        exact = _aggregate(
            spec, cells, [clipped.sum().alias("sum"), pl.len().cast(pl.Int64).alias("count")]
        )
        sens = k * max(abs(lo), abs(hi))
        rho_sum = spec.rho if s == "sum" else spec.rho / 2
        smeas, scales["sum"] = sum_measurement(exact.height, sens, rho_sum)
        noisy_sum = smeas([float(x) for x in exact.get_column("sum").to_list()])
        accuracy["sum"] = float(dp.gaussian_scale_to_accuracy(scales["sum"], ALPHA))
        if s == "sum":
            out = _with(exact, cells, [pl.Series("sum", noisy_sum, dtype=pl.Float64)])
        else:
            cmeas, scales["count"] = count_measurement(exact.height, k, spec.rho / 2)
            noisy_count = cmeas(exact.get_column("count").to_list())
            accuracy["count"] = float(
                dp.discrete_gaussian_scale_to_accuracy(scales["count"], ALPHA)
            )
            # Post-processing: ratio of the two noisy values, clamped to the bounds.
            means = [
                min(max(sm / c, lo), hi) if c > 0 else None
                for sm, c in zip(noisy_sum, noisy_count, strict=True)
            ]
            accuracy["mean"] = None  # no closed form for a ratio; see sum and count
            out = _with(
                exact,
                cells,
                [
                    pl.Series("mean", means, dtype=pl.Float64),
                    pl.Series("noisy_sum", noisy_sum, dtype=pl.Float64),
                    pl.Series("noisy_count", noisy_count, dtype=pl.Int64),
                ],
            )
    else:  # quantile
        out = _quantile(spec, cells, scales, accuracy)

    stat_col = {"count": "count", "histogram": "count", "sum": "sum", "mean": "mean"}.get(
        s, "quantile"
    )
    if cells is None:
        value = out.get_column(stat_col).item()
    else:
        rows = out.to_dicts()
    return DPRelease(
        statistic=s,
        value=value,
        table=rows,
        accuracy=accuracy,
        accuracy_alpha=ALPHA,
        noise_scale=scales,
        rho_spent=spec.rho,
        epsilon=zcdp_to_approx_dp(spec.rho, delta),
        delta=delta,
        plan_hash=plan_hash(spec),
        max_contributions=k,
    )


QUANTILE_CANDIDATES = 1000


def _grid(lo: float, hi: float) -> tuple[float, tuple[float, ...]]:
    """The quantile's candidates: QUANTILE_CANDIDATES evenly spaced points from lo to hi."""
    step = (hi - lo) / (QUANTILE_CANDIDATES - 1)
    return step, tuple(lo + i * step for i in range(QUANTILE_CANDIDATES))


def check_calibration(spec: QuerySpec, cells: pl.DataFrame | None) -> None:
    """Refuse a query whose noise cannot be calibrated, before anything is reserved.

    Everything here is data independent (the spec and the number of public cells), so it
    runs before the ledger reserves anything: bounds so wide that the noise scale
    ``sensitivity / sqrt(2 rho)`` is not a finite number (``[0, 1e308]``), or a quantile grid
    that the floating-point numbers cannot resolve, are refused with nothing charged.
    """
    k, s = spec.max_contributions, spec.statistic
    length = 1 if cells is None else cells.height
    fix = (
        "Pass the column's real range from the codebook (never from the data), e.g. "
        "bounds=[0, 3650] for days, or a smaller max_contributions."
    )
    try:
        if s in ("count", "histogram", "mean"):
            count_measurement(length, k, spec.rho if s != "mean" else spec.rho / 2)
        if s in ("sum", "mean"):
            assert spec.bounds is not None
            lo, hi = spec.bounds
            sens = k * max(abs(lo), abs(hi))
            rho = spec.rho if s == "sum" else spec.rho / 2
            scale = sens / math.sqrt(2.0 * rho)
            if not (math.isfinite(sens) and math.isfinite(scale)):
                raise Invalid(
                    f"bounds ({lo:g}, {hi:g}) with max_contributions {k} and rho {spec.rho:g} "
                    f"need noise of scale {scale:g}: that cannot be calibrated.",
                    fix,
                )
            sum_measurement(length, sens, rho)
    except dp.OpenDPException as exc:
        raise Invalid(
            f"OpenDP cannot calibrate this query's noise ({str(exc).strip()}).", fix
        ) from None
    if s == "quantile":
        assert spec.bounds is not None
        lo, hi = spec.bounds
        step, grid = _grid(lo, hi)
        if not (math.isfinite(step) and step > 0 and all(math.isfinite(c) for c in grid)
                and all(a < b for a, b in itertools.pairwise(grid))):  # fmt: skip
            raise Invalid(
                f"bounds ({lo:g}, {hi:g}) cannot hold a grid of {QUANTILE_CANDIDATES} distinct "
                "quantile candidates.",
                fix,
            )


def _quantile(
    spec: QuerySpec,
    cells: pl.DataFrame | None,
    scales: dict[str, float],
    accuracy: dict[str, float | None],
) -> pl.DataFrame:
    """Exponential-mechanism quantile over an evenly spaced grid inside the bounds.

    With groups, each person may fall in every group, so rho is split evenly over the groups
    (sequential composition); without groups the whole rho goes to the one quantile.
    """
    assert spec.bounds is not None and spec.column is not None and spec.alpha is not None
    lo, hi = spec.bounds
    step, candidates = _grid(lo, hi)
    n_cells = 1 if cells is None else cells.height
    meas, scales["quantile"] = _quantile_measurement(
        candidates, spec.alpha, spec.max_contributions, spec.rho / n_cells
    )
    accuracy["quantile"] = None  # data dependent; the grid step bounds the resolution
    accuracy["quantile_grid_step"] = step
    col = pl.col(spec.column).cast(pl.Float64).clip(lo, hi)
    lf = _prepared(spec, cells)
    if cells is None:
        values = lf.select(col).collect().get_column(spec.column).to_list()
        return pl.DataFrame({"quantile": [float(meas(values))]})
    by = cells.columns
    grouped = lf.group_by(by).agg(col.alias("v")).collect()
    full = cells.join(grouped, on=by, how="left", nulls_equal=True)
    out = [float(meas(v if v is not None else [])) for v in full.get_column("v").to_list()]
    return full.select(by).with_columns(pl.Series("quantile", out, dtype=pl.Float64))


def spec_from_json(text: str | bytes) -> QuerySpec:
    return QuerySpec.model_validate_json(text)


__all__ = [
    "DEFAULT_DELTA",
    "DPRelease",
    "QuerySpec",
    "check_calibration",
    "count_measurement",
    "plan_hash",
    "release",
    "spec_from_json",
    "sum_measurement",
    "zcdp_to_approx_dp",
]
