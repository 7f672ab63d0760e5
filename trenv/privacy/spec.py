"""QuerySpec: the description of one differentially private release.

Field-level problems raise pydantic's ``ValidationError`` whose messages name the problem
and the fix; problems that need the data's schema (unknown columns, non-numeric columns)
raise :class:`trenv.errors.Invalid` from :func:`check_against_schema`, before any row is read.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trenv.errors import Invalid
from trenv.wire.dp import Statistic

Key = str | int

NEEDS_COLUMN: frozenset[str] = frozenset({"sum", "mean", "quantile", "histogram"})
NEEDS_BOUNDS: frozenset[str] = frozenset({"sum", "mean", "quantile"})


class QuerySpec(BaseModel):
    """One DP query. ``group_by`` maps each grouping column to its PUBLIC key list.

    The key lists come from the codebook, never from the data: rows whose key is not listed
    are dropped before aggregation and every listed key appears in the output.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: Path
    statistic: Statistic
    unit_column: str = Field(min_length=1)
    rho: float
    column: str | None = None
    bounds: tuple[float, float] | None = None
    group_by: dict[str, list[Key]] = Field(default_factory=dict)
    alpha: float | None = None
    bins: list[float] | None = None
    max_contributions: int = 1

    @field_validator("rho")
    @classmethod
    def _rho_positive(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"rho must be a positive finite number, got {v}; fix: pass rho > 0")
        return v

    @field_validator("max_contributions")
    @classmethod
    def _contrib_positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(
                f"max_contributions must be at least 1, got {v}; "
                "fix: pass the most rows one person may contribute (default 1)"
            )
        return v

    @field_validator("group_by")
    @classmethod
    def _keys_nonempty(cls, v: dict[str, list[Key]]) -> dict[str, list[Key]]:
        for col, keys in v.items():
            if not keys:
                raise ValueError(
                    f"group_by column {col!r} has an empty key list; "
                    "fix: pass its public keys from the codebook"
                )
            if len(set(keys)) != len(keys):
                raise ValueError(
                    f"group_by column {col!r} has duplicate keys; fix: list each key once"
                )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> QuerySpec:
        s = self.statistic
        if s in NEEDS_COLUMN and not self.column:
            raise ValueError(f"statistic {s!r} needs a column; fix: pass column='<name>'")
        if s == "count" and self.column is not None:
            raise ValueError("statistic 'count' takes no column; fix: drop column")
        if s in NEEDS_BOUNDS:
            if self.bounds is None:
                raise ValueError(
                    f"statistic {s!r} needs bounds; fix: pass bounds=(lower, upper) from the "
                    "codebook, never from the data"
                )
            lo, hi = self.bounds
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError("bounds must be finite; fix: pass finite (lower, upper)")
            if lo >= hi:
                raise ValueError(f"bounds lower ({lo}) >= upper ({hi}); fix: pass lower < upper")
        if s == "quantile":
            if self.alpha is None or not 0 < self.alpha < 1:
                raise ValueError(
                    f"quantile alpha must be in (0, 1), got {self.alpha}; fix: e.g. alpha=0.5"
                )
        elif self.alpha is not None:
            raise ValueError(f"alpha is only for quantile, not {s!r}; fix: drop alpha")
        if s == "histogram":
            b = self.bins
            if b is None or len(b) < 2:
                raise ValueError(
                    "histogram needs at least two bin edges; fix: pass bins=[e0, e1, ...]"
                )
            if any(not math.isfinite(x) for x in b) or any(
                b[i] >= b[i + 1] for i in range(len(b) - 1)
            ):
                raise ValueError(
                    "histogram bin edges must be finite and strictly increasing; "
                    "fix: sort the edges and remove duplicates"
                )
        elif self.bins is not None:
            raise ValueError(f"bins are only for histogram, not {s!r}; fix: drop bins")
        if self.column is not None and self.column in self.group_by:
            raise ValueError(
                f"column {self.column!r} is also a group_by column; fix: use another column"
            )
        if self.unit_column in self.group_by or self.unit_column == self.column:
            raise ValueError(
                f"the privacy unit column {self.unit_column!r} cannot be aggregated or "
                "grouped; fix: choose a different column"
            )
        return self

    def plan_dict(self) -> dict[str, object]:
        """The spec without the dataset path, for the plan hash."""
        d = self.model_dump(mode="json")
        d.pop("dataset")
        return d


def check_against_schema(spec: QuerySpec) -> pl.Schema:
    """Check every column the spec names against the parquet schema (no rows are read)."""
    if not spec.dataset.is_file():
        raise Invalid(
            f"dataset {spec.dataset} does not exist.",
            "Pass the path of a parquet file of the project's data.",
        )
    try:
        schema = pl.scan_parquet(spec.dataset).collect_schema()
    except Exception as exc:
        raise Invalid(
            f"dataset {spec.dataset} is not a readable parquet file ({exc}).",
            "Pass a parquet file.",
        ) from exc
    named = [spec.unit_column, *spec.group_by]
    if spec.column is not None:
        named.append(spec.column)
    for col in named:
        if col not in schema:
            raise Invalid(
                f"unknown column {col!r} in {spec.dataset.name}.",
                f"Use one of: {', '.join(schema.names())}.",
            )
    dated = spec.statistic == "histogram" and schema.get(spec.column or "") == pl.Date
    if spec.column is not None and not schema[spec.column].is_numeric() and not dated:
        raise Invalid(
            f"column {spec.column!r} is {schema[spec.column]}, not numeric.",
            f"Statistic {spec.statistic!r} needs a numeric column (a histogram also takes "
            "a date column, binned by its decimal year: bins=[2019, 2020, 2021]).",
        )
    if spec.bounds is not None and spec.column is not None:
        check_bounds_in_range(spec.bounds, spec.column, schema[spec.column])
    return schema


_FLOAT_MAX = {pl.Float16: 65504.0, pl.Float32: 3.4028234663852886e38,
              pl.Float64: 1.7976931348623157e308}  # fmt: skip


def dtype_range(dtype: pl.DataType) -> tuple[float, float] | None:
    """The smallest and largest value a numeric column of ``dtype`` can hold (None: not numeric)."""
    if dtype.is_integer():
        lo, hi = pl.select(dtype.min().alias("lo"), dtype.max().alias("hi")).row(0)
        return lo, hi  # Python ints: compared exactly with the float bounds
    if isinstance(dtype, pl.Decimal):
        digits = (dtype.precision or 38) - (dtype.scale or 0)
        top = 10.0**digits - 10.0 ** -(dtype.scale or 0)
        return -top, top
    for float_type, top in _FLOAT_MAX.items():
        if dtype == float_type:
            return -top, top
    return None


def check_bounds_in_range(bounds: tuple[float, float], column: str, dtype: pl.DataType) -> None:
    """Bounds outside what the column's type can hold are a mistake: refused, nothing read."""
    limits = dtype_range(dtype)
    if limits is None:
        return
    lo, hi = bounds
    if lo < limits[0] or hi > limits[1]:
        raise Invalid(
            f"bounds ({lo:g}, {hi:g}) are outside what column {column!r} can hold "
            f"({dtype}: {limits[0]:g} to {limits[1]:g}).",
            "Pass bounds within the column's range, from the codebook (never from the data).",
        )
