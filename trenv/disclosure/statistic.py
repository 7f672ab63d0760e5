"""The published statistic per cell (and margin), computed from the same group codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.rules import COUNT_STATS, MAGNITUDE_STATS, POSITION_STATS, is_quantile

KNOWN = [*sorted(COUNT_STATS | MAGNITUDE_STATS | POSITION_STATS), "q<percent>, e.g. q25"]

ALIASES = {"size": "count", "len": "count", "average": "mean", "p50": "median", "q50": "median"}


def canonical(statistic: str | None) -> str:
    """Normalise the aggfunc name; raises for what trenv cannot check."""
    name = "count" if statistic is None else str(statistic).lower()
    name = ALIASES.get(name, name)
    if name in COUNT_STATS | MAGNITUDE_STATS | POSITION_STATS or is_quantile(name):
        if is_quantile(name) and not 0 <= float(name[1:]) <= 100:
            raise DisclosureInputError(f"quantile {name!r} must be between q0 and q100")
        return name
    raise DisclosureInputError(
        f"aggfunc {statistic!r} cannot be checked; use one of {KNOWN} "
        "(callables cannot be checked for disclosure)"
    )


FROM_SUMS = ("count", "sum", "mean")


def from_sums(stats: dict[str, np.ndarray], statistic: str) -> np.ndarray:
    """A count, sum or mean per cell from the cells' rows and sums (NaN where empty)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if statistic == "count":
            return stats["rows"].astype(np.float64)
        if statistic == "sum":
            return np.where(stats["rows"] > 0, stats["sum"], np.nan)
        return np.where(stats["rows"] > 0, stats["sum"] / stats["rows"], np.nan)


def positional(group: np.ndarray, values: np.ndarray, n_groups: int, statistic: str) -> np.ndarray:
    """min/max/median/quantile/mode/std/var per group (NaN for empty groups)."""
    out = np.full(n_groups, np.nan)
    ok = ~np.isnan(values)
    g, v = group[ok], values[ok]
    if len(v) == 0:
        return out
    grouped = pd.Series(v).groupby(g, sort=True)
    if statistic == "mode":
        # Most frequent value; ties go to the smallest value, deterministically (ACRO picks
        # one at random, which makes its output irreproducible).
        counts = pd.DataFrame({"g": g, "v": v}).value_counts().reset_index(name="n")
        counts = counts.sort_values(["g", "n", "v"], ascending=[True, False, True])
        first = counts.drop_duplicates("g")
        out[first["g"].to_numpy()] = first["v"].to_numpy()
        return out
    if is_quantile(statistic):
        res = grouped.quantile(float(statistic[1:]) / 100)
    elif statistic in ("std", "var"):
        res = getattr(grouped, statistic)(ddof=1)
    else:
        res = getattr(grouped, statistic)()
    out[res.index.to_numpy()] = res.to_numpy()
    return out


def near_contributors(
    group: np.ndarray,
    contrib: np.ndarray,
    n_contrib: int,
    values: np.ndarray,
    stat: np.ndarray,
    band: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """Distinct contributors whose value lies within ``band`` of the group's statistic."""
    close = np.abs(values - stat[group]) <= band[group] + 1e-12 * np.abs(stat[group])
    key = group[close] * np.int64(max(n_contrib, 1)) + contrib[close]
    uniq = pd.unique(key)
    return np.bincount(uniq // np.int64(max(n_contrib, 1)), minlength=n_groups).astype(np.int64)
