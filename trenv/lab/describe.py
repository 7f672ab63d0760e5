"""``tre.describe``: ``DataFrame.describe()`` with every statistic checked.

Each statistic of each column is checked as a one-cell table; the record keeps every one
of those cells with its own statistic and counts (rows, contributors, largest
contributions, contributors near a quantile, ...), so that the airlock can re-run the
rules on it like on any table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import DisclosureInputError, Policy, check_table
from trenv.disclosure.record import CellRecord, CellTable, RuleVerdict
from trenv.lab import session
from trenv.lab.outputs import Output, register

_ONE = "__all__"


def describe(
    data: Any,
    percentiles: Sequence[float] | None = None,
    include: Any = None,
    *,
    contributor: str | None = None,
    policy: str | Path | Policy | None = None,
) -> Output:
    """count, mean, std, min, percentiles and max of each numeric column.

    Each statistic is checked as a one-cell table: count by the threshold, mean and std by
    threshold, dominance and constant values, min/max/percentiles by the extremes rule.
    """
    _ = include
    frame = data.to_pandas() if type(data).__module__.startswith("polars") else data
    if not isinstance(frame, pd.DataFrame):
        raise DisclosureInputError("describe() takes a pandas or polars DataFrame")
    pcts = [0.25, 0.5, 0.75] if percentiles is None else sorted(percentiles)
    stats = ["count", "mean", "std", "min"] + [f"q{p * 100:g}" for p in pcts] + ["max"]
    labels = ["count", "mean", "std", "min"] + [f"{p * 100:g}%" for p in pcts] + ["max"]
    numeric = [
        c
        for c in frame.columns
        if c != contributor
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if not numeric:
        raise DisclosureInputError("describe() found no numeric columns to describe")
    work = frame[[*numeric, *([contributor] if contributor else [])]].assign(**{_ONE: "all"})
    pol = policy or session.default_policy()
    table = pd.DataFrame(np.nan, index=labels, columns=numeric)
    safe = table.copy()
    flags = pd.DataFrame("", index=labels, columns=numeric)
    counts: dict[str, int] = {}
    record = None
    cells: list[CellRecord] = []
    for col in numeric:
        for stat, label in zip(stats, labels, strict=True):
            check = check_table(
                work, index=[_ONE], values=col, statistic=stat, contributor=contributor, policy=pol
            )
            table.loc[label, col] = check.table.iloc[0, 0]
            # The safe value: suppressed, or rounded if the policy rounds counts.
            safe.loc[label, col] = check.safe.iloc[0, 0]
            flags.loc[label, col] = check.flags.iloc[0, 0]
            cell = check.record.cells.cell(0)
            cells.append(
                cell.model_copy(update={"row": [label], "column": [str(col)], "statistic": stat})
            )
            for verdict in check.record.rules:
                if verdict.status != "pass":
                    counts[verdict.rule_id] = counts.get(verdict.rule_id, 0) + 1
            record = record or check.record
    assert record is not None
    by_id = {v.rule_id: v for v in record.rules}
    rules = [
        RuleVerdict(
            rule_id=rid,
            action=v.action,
            status="pass"
            if not counts.get(rid)
            else ("fail" if v.action == "suppress" else "review"),
            flagged_cells=counts.get(rid, 0),
        )
        for rid, v in by_id.items()
    ]
    status = (
        "fail"
        if safe.isna().to_numpy().any()
        else ("review" if any(r.status == "review" for r in rules) else "pass")
    )
    record = record.model_copy(
        update={
            "statistic": "describe",
            "values": None,
            "index": [],
            "columns": numeric,
            "rules": rules,
            "status": status,
            "rounding": _count_rounding(record),
            "cells": _cell_table(cells),
            "code": session.calling_code(),
            "trenv_version": session.trenv_version(),
        }
    )
    # The counts are whole numbers in float columns (as in pandas' describe): shown and
    # saved as integers.
    return register(Output(result=safe, record=record, flags=flags, whole_rows=("count",)))


def _count_rounding(record: Any) -> str:
    """The rounding of the record's count cells (the other statistics are not rounded)."""
    return str(record.policy_parameters.get("rounding", {}).get("method", "none"))


def _cell_table(cells: list[CellRecord]) -> CellTable:
    """One cell per (statistic, column), column by column like a table's record."""
    near = [c.near for c in cells]
    return CellTable(
        row=[c.row for c in cells],
        column=[c.column for c in cells],
        margin=[False] * len(cells),
        row_margin=[False] * len(cells),
        column_margin=[False] * len(cells),
        published=[c.published for c in cells],
        value=[c.value for c in cells],
        rows=[c.rows for c in cells],
        contributors=[c.contributors for c in cells],
        sum=[c.sum for c in cells],
        abs_sum=[c.abs_sum for c in cells],
        top=[c.top for c in cells],
        negatives=[c.negatives for c in cells],
        missing=[c.missing for c in cells],
        all_equal=[c.all_equal for c in cells],
        near=near if any(n is not None for n in near) else None,
        statistic=[str(c.statistic) for c in cells],
        flags=[c.flags for c in cells],
        reasons=[c.reasons for c in cells],
        suppressed=[c.suppressed for c in cells],
        interval=[c.interval for c in cells],
        # A controlled rounding's choice, per count cell (the server cannot recompute it).
        rounded=[c.rounded for c in cells] if any(c.rounded is not None for c in cells) else None,
    )
