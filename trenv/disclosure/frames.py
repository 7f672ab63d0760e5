"""Input normalisation: pandas or polars in, validated pandas columns out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure.errors import DisclosureInputError


def to_pandas(data: Any, columns: Sequence[str]) -> pd.DataFrame:
    """Select ``columns`` from a pandas or polars frame as a pandas frame."""
    missing = [c for c in columns if c not in list(data.columns)]
    if missing:
        raise DisclosureInputError(
            f"column(s) {missing} not in the data; available columns: {list(data.columns)}"
        )
    if isinstance(data, pd.DataFrame):
        return data[list(dict.fromkeys(columns))]
    module = type(data).__module__
    if module.startswith("polars"):
        # Only the needed columns cross over; Arrow makes this close to zero-copy.
        return data.select(list(dict.fromkeys(columns))).to_pandas()
    raise DisclosureInputError(
        f"data must be a pandas or polars DataFrame, not {type(data).__name__}"
    )


def encode(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 for missing) and the sorted category labels of one dimension.

    The codes keep their narrow integer dtype (int8 for a categorical of a few levels):
    they are only combined into the int64 cell index, and an int64 copy per dimension
    would be fresh memory as large as the data's.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), pd.Index(column.cat.categories)
    codes, labels = pd.factorize(column, sort=True, use_na_sentinel=True)
    return codes, pd.Index(labels)


def numeric_values(column: pd.Series, name: str) -> np.ndarray:
    """The values column as float64, or a clear error if it is not numeric."""
    if not (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)):
        raise DisclosureInputError(
            f"values column {name!r} has dtype {column.dtype}, not a number; convert it "
            f"first (e.g. pd.to_numeric(df[{name!r}])) or use a count instead"
        )
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    # Integers cannot be infinite; a float column is checked in one pass (no copy).
    if not pd.api.types.is_integer_dtype(column) and np.isinf(values).any():
        raise DisclosureInputError(
            f"values column {name!r} holds infinite values, which no statistic of people "
            f"can be checked on; replace them first (e.g. df[{name!r}].replace([np.inf, "
            "-np.inf], np.nan)) or leave those rows out"
        )
    return values


def contributor_codes(column: pd.Series, name: str) -> tuple[np.ndarray, int]:
    """Dense integer ids per contributor (and how many ids there can be)."""
    # A numpy integer column cannot hold a missing value (a nullable Int64 one can).
    no_missing = isinstance(column.dtype, np.dtype) or not column.isna().any()
    if pd.api.types.is_integer_dtype(column) and no_missing and len(column):
        raw = column.to_numpy(dtype=np.int64)
        lo, hi = int(raw.min()), int(raw.max())
        # Pseudonymised ids are often already small non-negative integers: use them as
        # codes directly (ids only need to be distinct, not consecutive) and skip a hash.
        if lo >= 0 and hi < 4 * len(raw) + 1024:
            return raw, hi + 1
    codes, labels = pd.factorize(column, use_na_sentinel=True)
    if (codes < 0).any():
        raise DisclosureInputError(
            f"contributor column {name!r} has missing ids; every row must say whose it is"
        )
    return codes.astype(np.int64), len(labels)
