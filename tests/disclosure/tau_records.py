"""Hand-made output records for the tau-ARGUS tests, following record.py's field comments.

Built by hand (not with check_table) so that the golden files and the hierarchical cases do
not move when the table engine or the secondary suppression changes. Every margin is the
sum of its inner cells; a margin's contributors and top contributions are made up
consistently (the sum of contributors, the largest tops), which is all tau-ARGUS reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from trenv.disclosure.policy import load_policy
from trenv.disclosure.record import CellTable, OutputRecord, RuleVerdict

Row = tuple[tuple[str, ...], int | None]  # labels, level (None: an axis without subtotals)


def flat_axis(labels: Sequence[str], margin: str = "All") -> list[Row]:
    return [((label,), None) for label in labels] + [((margin,), None)]


def nested_axis(tree: dict[str, list[str]], margin: str = "All") -> list[Row]:
    """index=[coarse, fine]: leaves (level 2), each coarse subtotal [p, "All"] (level 1) and
    the grand total ["All", ""] (level 0), as record.py describes."""
    rows: list[Row] = []
    for parent, children in tree.items():
        rows += [((parent, child), 2) for child in children]
        rows.append(((parent, margin), 1))
    rows.append(((margin, ""), 0))
    return rows


def _is_total(row: Row) -> bool:
    labels, level = row
    return level == 0 if level is not None else labels == ("All",)


def _leaves_under(axis: list[Row], row: Row) -> list[tuple[str, ...]]:
    depth = max(level or 0 for _, level in axis)
    leaves = [r for r in axis if not _is_total(r) and (r[1] is None or r[1] == depth)]
    labels, level = row
    if _is_total(row):
        return [r[0] for r in leaves]
    if level is None:
        return [labels]
    return [r[0] for r in leaves if r[0][:level] == labels[:level]]


def build(
    inner: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[float, int, list[float]]],
    rows: list[Row],
    cols: list[Row] | None,
    *,
    statistic: str = "count",
    index: Sequence[str] = ("region",),
    columns: Sequence[str] = ("offence",),
    suppressed: dict[tuple[tuple[str, ...], tuple[str, ...]], str] | None = None,
    flags: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] | None = None,
    negatives: dict[tuple[tuple[str, ...], tuple[str, ...]], int] | None = None,
    policy: str = "trenv-default",
    margins: bool = True,
    **extra: Any,
) -> OutputRecord:
    """``inner`` maps (row labels, column labels) of the leaf cells to (value, contributors,
    top contributions); every other cell is summed from them."""
    suppressed = suppressed or {}
    flags = flags or {}
    negatives = negatives or {}
    col_axis = cols if cols is not None else [(("value",), None)]
    pol = load_policy(policy)
    t = CellTable(row_level=[] if rows[0][1] is not None else None)
    if cols is not None and cols[0][1] is not None:
        t.column_level = []
    for r in rows:
        for c in col_axis:
            r_leaves = _leaves_under(rows, r)
            c_leaves = _leaves_under(col_axis, c) if cols is not None else [c[0]]
            parts = [inner[(a, b)] for a in r_leaves for b in c_leaves]
            value = sum(p[0] for p in parts)
            contributors = sum(p[1] for p in parts)
            top = sorted((x for p in parts for x in p[2]), reverse=True)[: len(parts[0][2])]
            key = (r[0], c[0])
            kind = suppressed.get(key)
            row_total = _is_total(r)
            col_total = cols is not None and _is_total(c)
            t.row.append(list(r[0]))
            t.column.append(list(c[0]))
            t.margin.append(row_total or col_total)
            t.row_margin.append(row_total)
            t.column_margin.append(col_total)
            t.value.append(float(value) if contributors or statistic == "count" else None)
            t.published.append(None if kind else float(value))
            t.rows.append(contributors)
            t.contributors.append(contributors)
            t.sum.append(float(value))
            t.abs_sum.append(float(value))
            t.top.append(top)
            t.negatives.append(negatives.get(key, 0))
            t.missing.append(0)
            t.all_equal.append(False)
            t.flags.append(flags.get(key, ["threshold"] if kind == "primary" else []))
            t.reasons.append([])
            t.suppressed.append(kind)  # type: ignore[arg-type]
            t.interval.append(None)
            if t.row_level is not None:
                t.row_level.append(r[1] or 0)
            if t.column_level is not None:
                t.column_level.append(c[1] or 0)
    return OutputRecord(
        kind="table",
        statistic=statistic,
        values=None if statistic == "count" else "months",
        index=list(index),
        columns=list(columns) if cols is not None else [],
        contributor="person",
        margins=margins,
        subtotals=t.row_level is not None or t.column_level is not None,
        policy=pol.name,
        policy_version=pol.version,
        policy_parameters=pol.model_dump(mode="json"),
        status="fail" if suppressed else "pass",
        rules=[RuleVerdict(rule_id="threshold", action="suppress", status="pass", flagged_cells=0)],
        cells=t,
        trenv_version="0.test",
        created=dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC),
        **extra,
    )


def court_table(statistic: str = "count") -> OutputRecord:
    """3 regions x 2 offences; (east, fraud) has 3 people: primary; a rectangle of
    secondaries protects it."""
    regions, offences = ["north", "south", "east"], ["theft", "fraud"]
    inner: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[float, int, list[float]]] = {}
    for i, region in enumerate(regions):
        for j, offence in enumerate(offences):
            n = 3 if (region, offence) == ("east", "fraud") else 20 + 5 * i + j
            value = float(n) if statistic == "count" else 100.0 * n + 0.25 * (i + j)
            tops = [] if statistic == "count" else [value * 0.4, value * 0.3]
            inner[((region,), (offence,))] = (value, n, tops)
    suppressed = {
        (("east",), ("fraud",)): "primary",
        (("east",), ("theft",)): "secondary",
        (("north",), ("fraud",)): "secondary",
        (("north",), ("theft",)): "secondary",
    }
    return build(
        inner, flat_axis(regions), flat_axis(offences), statistic=statistic, suppressed=suppressed
    )
