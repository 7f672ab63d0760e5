"""``tre.crosstab``, ``tre.pivot_table``, ``tre.describe``: pandas' signatures, checked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import DisclosureInputError, Policy, check_table
from trenv.disclosure.table import TableCheck
from trenv.lab import session
from trenv.lab.ledger import with_differencing
from trenv.lab.outputs import Output, register


def as_series(x: Any, default_name: str) -> pd.Series:
    if type(x).__module__.startswith("polars"):
        x = x.to_pandas()
    s = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x))
    return s.rename(s.name if s.name is not None else default_name).reset_index(drop=True)


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _finish(check: TableCheck, names: dict[str, str | None] | None = None) -> Output:
    # ``names`` replaces crosstab's internal column names by the arrays' own names.
    record = check.record.model_copy(
        update={
            "code": session.calling_code(),
            "trenv_version": session.trenv_version(),
            **(names or {}),
        }
    )
    record = with_differencing(record)
    return register(Output(result=check.safe, record=record, flags=check.flags))


def crosstab(
    index: Any,
    columns: Any,
    values: Any = None,
    rownames: Sequence[str] | None = None,
    colnames: Sequence[str] | None = None,
    aggfunc: str | None = None,
    margins: bool = False,
    margins_name: str = "All",
    dropna: bool = True,
    normalize: bool | str = False,
    *,
    contributor: Any = None,
    policy: str | Path | Policy | None = None,
    structural_zeros: Sequence[tuple[Any, Any]] = (),
    subtotals: bool = False,
) -> Output:
    """``pd.crosstab`` with disclosure control.

    ``contributor`` is the person-id array aligned with ``index`` (people, not rows, are
    counted). Every combination of observed categories is shown, as if ``dropna=False``:
    hiding empty combinations would itself hide a disclosure check. ``subtotals=True``
    (with ``margins=True``): ``index`` (and ``columns``) are nested classifications, coarse
    to fine (``[province, municipality]``); the table shows the combinations that occur with
    a subtotal at every level, protected as one hierarchical table.
    """
    _ = dropna
    rows = [as_series(s, f"row_{i}") for i, s in enumerate(_as_list(index))]
    cols = [as_series(s, f"col_{i}") for i, s in enumerate(_as_list(columns))]
    if rownames is not None:
        rows = [s.rename(n) for s, n in zip(rows, rownames, strict=True)]
    if colnames is not None:
        cols = [s.rename(n) for s, n in zip(cols, colnames, strict=True)]
    names = [str(s.name) for s in rows + cols]
    if len(set(names)) != len(names):
        raise DisclosureInputError(f"index and columns need distinct names, got {names}")
    frame = pd.concat([s.rename(n) for s, n in zip(rows + cols, names, strict=True)], axis=1)
    lengths = {len(s) for s in rows + cols}
    if len(lengths) != 1:
        raise DisclosureInputError("index and columns must have the same length")
    if (values is None) != (aggfunc is None):
        raise DisclosureInputError("values and aggfunc must be given together, as in pandas")
    vname = None
    if values is not None:
        v = as_series(values, "__values__")
        vname = "__values__"
        frame[vname] = v.to_numpy()
    cname = None
    if contributor is not None:
        cname = "__contributor__"
        c = as_series(contributor, cname)
        if len(c) != len(frame):
            raise DisclosureInputError("contributor must be as long as index and columns")
        frame[cname] = c.to_numpy()
    check = check_table(
        frame,
        index=names[: len(rows)],
        columns=names[len(rows) :],
        values=vname,
        statistic=aggfunc,
        contributor=cname,
        policy=policy or session.default_policy(),
        margins=margins,
        margins_name=margins_name,
        normalize=normalize or None,
        structural_zeros=structural_zeros,
        value_name=str(getattr(values, "name", None) or aggfunc or "count"),
        subtotals=subtotals,
    )
    names: dict[str, str | None] = {}
    if cname is not None:
        names["contributor"] = str(getattr(contributor, "name", None) or "contributor")
    if vname is not None:
        names["values"] = str(getattr(values, "name", None) or "values")
    return _finish(check, names)


def pivot_table(
    data: Any,
    values: str | None = None,
    index: Any = None,
    columns: Any = None,
    aggfunc: str = "mean",
    fill_value: Any = None,
    margins: bool = False,
    dropna: bool = True,
    margins_name: str = "All",
    observed: bool = True,
    sort: bool = True,
    *,
    contributor: str | None = None,
    policy: str | Path | Policy | None = None,
    structural_zeros: Sequence[tuple[Any, Any]] = (),
    subtotals: bool = False,
) -> Output:
    """``pd.pivot_table`` with disclosure control; ``aggfunc`` is one statistic name:
    count, sum, mean, median, std, var, min, max, mode or a quantile like ``q25``.

    ``fill_value`` is refused: filling suppressed cells would publish a made-up number.
    ``subtotals=True`` (with ``margins=True``): the ``index`` (and ``columns``) variables
    are nested classifications, coarse to fine, with a subtotal at every level (see
    :func:`crosstab`).
    """
    _ = dropna, observed, sort
    if fill_value is not None:
        raise DisclosureInputError(
            "fill_value is not supported: suppressed cells must stay visibly empty"
        )
    if not isinstance(aggfunc, str):
        raise DisclosureInputError(
            "aggfunc must be one statistic name (e.g. 'mean'); call pivot_table once per statistic"
        )
    if values is None and aggfunc != "count":
        raise DisclosureInputError(f"aggfunc {aggfunc!r} needs values='<numeric column>'")
    check = check_table(
        data,
        index=_as_list(index),
        columns=_as_list(columns),
        values=values if aggfunc != "count" or values else None,
        statistic=aggfunc,
        contributor=contributor,
        policy=policy or session.default_policy(),
        margins=margins,
        margins_name=margins_name,
        structural_zeros=structural_zeros,
        subtotals=subtotals,
    )
    return _finish(check)
