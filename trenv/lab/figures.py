"""``tre.hist`` and ``tre.bar``: matplotlib figures drawn from checked counts only."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import DisclosureInputError, Policy, check_table
from trenv.lab import session
from trenv.lab.ledger import with_differencing
from trenv.lab.outputs import Output, register
from trenv.lab.tables import as_series


def _nice_edges(values: np.ndarray, bins: int) -> np.ndarray:
    # Edges from the data's own min and max would publish the two most extreme values;
    # widening the range outward to whole multiples of the bin width hides them.
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    width = (hi - lo) / bins if hi > lo else 1.0
    magnitude = 10 ** np.floor(np.log10(width))
    width = np.ceil(width / magnitude) * magnitude
    start = np.floor(lo / width) * width
    n = max(int(np.ceil((hi - start) / width + 1e-9)), 1)
    if start + n * width <= hi:
        n += 1
    return start + width * np.arange(n + 1)


def _figure(ax: Any) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots()
        plt.close(fig)  # the Output displays it; don't also leak it into the next cell
        return fig, ax
    return ax.figure, ax


def _check_counts(frame: pd.DataFrame, contributor: Any, policy: Any) -> Any:
    cname = None
    if contributor is not None:
        c = as_series(contributor, "__contributor__")
        if len(c) != len(frame):
            raise DisclosureInputError("contributor must be as long as the data")
        frame["__contributor__"] = c.to_numpy()
        cname = "__contributor__"
    return check_table(
        frame,
        index=[str(frame.columns[0])],
        contributor=cname,
        policy=policy or session.default_policy(),
        value_name="count",
    )


def _finish(check: Any, fig: Any, contributor: Any = None) -> Output:
    record = check.record.model_copy(
        update={
            "kind": "figure",
            "contributor": None
            if contributor is None
            else str(getattr(contributor, "name", None) or "contributor"),
            "code": session.calling_code(),
            "trenv_version": session.trenv_version(),
        }
    )
    return register(
        Output(result=fig, record=with_differencing(record), table=check.safe, flags=check.flags)
    )


def hist(
    x: Any,
    bins: int | Any = 10,
    range: tuple[float, float] | None = None,
    *,
    contributor: Any = None,
    policy: str | Path | Policy | None = None,
    ax: Any = None,
    **kwargs: Any,
) -> Output:
    """``plt.hist`` whose bar heights are checked counts; suppressed bins are not drawn."""
    s = as_series(x, "value")
    values = pd.to_numeric(s, errors="raise").to_numpy(dtype=float)
    if isinstance(bins, int):
        edges = (
            np.histogram_bin_edges(values[~np.isnan(values)], bins, range)
            if range
            else (_nice_edges(values, bins))
        )
    else:
        edges = np.asarray(bins, dtype=float)
    labels = [f"[{a:g}, {b:g})" for a, b in itertools.pairwise(edges)]
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(labels) - 1)
    codes = np.where((values < edges[0]) | (values > edges[-1]) | np.isnan(values), -1, codes)
    name = str(s.name)
    frame = pd.DataFrame({name: pd.Categorical.from_codes(codes, categories=labels)})
    check = _check_counts(frame, contributor, policy)
    counts = check.safe.iloc[:, 0].to_numpy(dtype=float)
    fig, axis = _figure(ax)
    shown = ~np.isnan(counts)
    axis.bar(edges[:-1][shown], counts[shown], width=np.diff(edges)[shown], align="edge", **kwargs)
    axis.set_xlabel(name)
    axis.set_ylabel("count")
    if (~shown).any():
        axis.set_title(f"{int((~shown).sum())} bin(s) suppressed", fontsize="small")
    return _finish(check, fig, contributor)


def bar(
    x: Any,
    *,
    contributor: Any = None,
    policy: str | Path | Policy | None = None,
    ax: Any = None,
    **kwargs: Any,
) -> Output:
    """A bar chart of category counts (``x.value_counts().plot.bar()``), checked."""
    s = as_series(x, "category")
    frame = pd.DataFrame({str(s.name): s.to_numpy()})
    check = _check_counts(frame, contributor, policy)
    counts = check.safe.iloc[:, 0]
    fig, axis = _figure(ax)
    shown = counts.dropna()
    axis.bar([str(k) for k in shown.index], shown.to_numpy(), **kwargs)
    axis.set_xlabel(str(s.name))
    axis.set_ylabel("count")
    if counts.isna().any():
        axis.set_title(f"{int(counts.isna().sum())} categories suppressed", fontsize="small")
    return _finish(check, fig, contributor)
