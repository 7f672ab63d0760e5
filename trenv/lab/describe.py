"""``tre.describe``: ``DataFrame.describe()`` with every statistic checked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import DisclosureInputError, Policy, check_table
from trenv.disclosure.record import CellTable, RuleVerdict
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
    for col in numeric:
        for stat, label in zip(stats, labels, strict=True):
            check = check_table(
                work, index=[_ONE], values=col, statistic=stat, contributor=contributor, policy=pol
            )
            table.loc[label, col] = (
                check.table.iloc[0, 0] if stat != "count" else float(check.record.cells.rows[0])
            )
            safe.loc[label, col] = np.nan if check.suppressed.iloc[0, 0] else table.loc[label, col]
            flags.loc[label, col] = check.flags.iloc[0, 0]
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
            "cells": CellTable(),  # per-statistic cells are in the flags, not a grid
            "code": session.calling_code(),
            "trenv_version": session.trenv_version(),
        }
    )
    return register(Output(result=safe, record=record, flags=flags))
