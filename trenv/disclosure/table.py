"""Check one table end to end: statistics, rules, suppression, rounding, audit, record."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import cellstats, countstats
from trenv.disclosure import statistic as stat_mod
from trenv.disclosure.controlled import ROUNDING_REPLACES, controlled_round
from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.frames import contributor_codes, encode, numeric_values, to_pandas
from trenv.disclosure.policy import Policy, load_policy
from trenv.disclosure.protection import protection_levels
from trenv.disclosure.record import CellTable, OutputRecord, RuleVerdict
from trenv.disclosure.rounding import round_table
from trenv.disclosure.rules import (
    COUNT_STATS,
    Context,
    RuleResult,
    flag_texts,
    is_position,
    primary_suppressions,
    run_rules,
)
from trenv.disclosure.suppression import (
    AuditResult,
    Relation,
    one_way_relations,
    secondary_suppression,
    table_relations,
)

MAX_CELLS = 2_000_000
ADDITIVE = frozenset({"count", "sum"})
# Statistics that are whole numbers when the values are (a sum, or one of the values).
WHOLE_STATS = frozenset({"sum", "min", "max", "mode"})
WHOLE_LIMIT = 2.0**53  # float64 holds every whole number below this exactly


@dataclass
class TableCheck:
    """Everything one check produced; ``safe`` is what may be published."""

    table: pd.DataFrame  # the unmitigated statistic (never leaves the TRE)
    # Suppressed cells are missing (<NA> in integer tables, NaN in others), counts rounded
    # if the policy says so; counts and sums of whole numbers are Int64, shares and means
    # float.
    safe: pd.DataFrame
    suppressed: pd.DataFrame  # bool, same shape as safe
    flags: pd.DataFrame  # per cell: "; "-joined rule ids
    results: list[RuleResult]
    audit: AuditResult | None
    record: OutputRecord
    policy: Policy


def _labels(levels: list[pd.Index], names: list[str], margin: str | None) -> pd.Index:
    if not levels:
        return pd.Index([], dtype=object)
    if len(levels) == 1:
        idx = pd.Index(levels[0], name=names[0])
        return idx.append(pd.Index([margin], name=names[0])) if margin is not None else idx
    idx = pd.MultiIndex.from_product(levels, names=names)
    if margin is not None:
        idx = idx.append(
            pd.MultiIndex.from_tuples([(margin,) + ("",) * (len(levels) - 1)], names=names)
        )
    return idx


def _ravel(
    codes: list[np.ndarray],
    sizes: list[int],
    n: int,
    dtype: type[np.signedinteger[Any]] = np.int64,
    copy: bool = False,
) -> np.ndarray:
    """The C-order flat index of the codes (what ``np.ravel_multi_index`` gives): the codes
    are in range already, so multiply-adds in place do without its checks and copies.

    With ``copy`` the result is always a new array, which the caller may overwrite; else
    a single code array of that dtype comes back as it is (only to be read).
    """
    if not codes:
        return np.zeros(n, dtype=dtype)
    if len(codes) == 1:
        return codes[0].astype(dtype, copy=copy)
    flat = codes[0].astype(dtype)  # a copy: the codes themselves stay untouched
    for cd, size in zip(codes[1:], sizes[1:], strict=True):
        flat *= dtype(size)
        flat += cd
    return flat


def _assemble(parts: list[dict[str, np.ndarray]], r: int, c: int) -> dict[str, np.ndarray]:
    inner, rowm, colm, grand = parts
    out = {}
    for key in inner:
        grid = np.empty((r + 1, c + 1), dtype=inner[key].dtype)
        grid[:r, :c] = inner[key].reshape(r, c)
        grid[:r, c] = rowm[key]
        grid[r, :c] = colm[key]
        grid[r, c] = grand[key][0]
        out[key] = grid
    return out


def _grid(values: list[np.ndarray], r: int, c: int) -> np.ndarray:
    inner, rowm, colm, grand = values
    grid = np.empty((r + 1, c + 1))
    grid[:r, :c] = inner.reshape(r, c)
    grid[:r, c] = rowm
    grid[r, :c] = colm
    grid[r, c] = grand[0]
    return grid


def _item_stats(
    cell: np.ndarray,
    contrib: np.ndarray,
    n_contrib: int,
    r: int,
    c: int,
    vals: np.ndarray | None,
    top_k: int,
    margins: bool,
) -> list[cellstats.Stats]:
    """(cells, row margin, column margin, grand total) statistics from the rows collapsed
    to (cell, contributor) items (one pass over the rows, margins from the items)."""
    items = cellstats.items_from_rows(cell, contrib, n_contrib, r * c, vals)
    inner = cellstats.row_stats(cell, vals, r * c)
    row_m, col_m, grand_m = cellstats.margin_row_stats(inner, r, c)
    if margins:
        by_row, by_col, everyone = cellstats.margin_items(items, r, c, n_contrib)
    else:
        # Unpublished margins only feed row totals (class disclosure, shares, rounding):
        # skip the contributor de-duplication, whose contributor counts and top shares
        # would never be shown or checked.
        by_row = items.with_group(items.group // c)
        by_col = items.with_group(items.group % c)
        everyone = items.with_group(np.zeros_like(items.group))
    # With margins every grouping has arrays of its own, which the statistics may reuse;
    # without, the groupings share the items' totals.
    return [
        cellstats.group_stats(items, r * c, top_k, inner, consume=margins),
        cellstats.group_stats(by_row, r, top_k, row_m, consume=margins),
        cellstats.group_stats(by_col, c, top_k, col_m, consume=margins),
        cellstats.group_stats(everyone, 1, top_k, grand_m, consume=margins),
    ]


def check_table(
    data: Any,
    *,
    index: Sequence[str],
    columns: Sequence[str] = (),
    values: str | None = None,
    statistic: str | None = None,
    contributor: str | None = None,
    policy: str | Path | Policy = "trenv-default",
    margins: bool = False,
    margins_name: str = "All",
    normalize: str | None = None,
    structural_zeros: Iterable[tuple[Any, Any]] = (),
    value_name: str | None = None,
    subtotals: bool = False,
) -> TableCheck:
    """Compute, check and protect a table of ``statistic`` of ``values`` by index x columns.

    ``structural_zeros`` lists (row label, column label) cells that cannot occur (e.g.
    a court type that does not exist in a region): they are exempt from the zeros rule.
    ``subtotals``: the index (and columns) variables are nested classifications, coarse to
    fine, and the table gets a subtotal at every level, protected as one hierarchical
    table (:mod:`trenv.disclosure.subtotals`; needs ``margins=True``).
    """
    pol = load_policy(policy)
    stat = stat_mod.canonical(statistic if values is not None else None)
    index, columns = list(index), list(columns)
    if not index:
        raise DisclosureInputError("a table needs at least one index (row) variable")
    if stat != "count" and values is None:
        raise DisclosureInputError(f"aggfunc {stat!r} needs a values column to aggregate")
    if contributor is None and pol.contributor_required:
        raise DisclosureInputError(
            f"policy {pol.name!r} protects people, not rows: pass contributor='<person id "
            "column>' (the pseudonymised id of whoever each row is about)"
        )
    norm = None if normalize in (None, False) else ("all" if normalize is True else normalize)
    if norm not in (None, "all", "index", "columns"):
        raise DisclosureInputError("normalize must be False, True, 'all', 'index' or 'columns'")
    needed = index + columns + ([values] if values else []) + ([contributor] if contributor else [])
    frame = to_pandas(data, needed)
    vals = numeric_values(frame[values], values) if values is not None else None

    enc = [encode(frame[c]) for c in index + columns]
    codes = [e[0] for e in enc]
    levels = [e[1] for e in enc]
    # Like pandas, rows with a missing category (code -1) are not tabulated; the minimum of
    # each code array says whether there are any (no mask when there are none).
    keep: np.ndarray | None = None
    for cd in codes:
        if len(cd) and cd.min() < 0:
            keep = cd >= 0 if keep is None else keep & (cd >= 0)
    if keep is not None:
        codes = [cd[keep] for cd in codes]
        vals = vals[keep] if vals is not None else None
    n_rows_in = len(frame) if keep is None else int(keep.sum())
    contrib: np.ndarray | None = None  # None: rows are counted (no contributor column)
    n_contrib = n_rows_in
    if contributor is not None:
        contrib, n_contrib = contributor_codes(frame[contributor], contributor)
        contrib = contrib[keep] if keep is not None else contrib
    if subtotals:
        # Imported here: the hierarchical check builds on this module's helpers.
        from trenv.disclosure.subtotals import check_subtotals

        return check_subtotals(
            codes=codes, levels=levels, index=index, columns=columns, values=values,
            values_column=frame[values] if values else None, vals=vals,
            contrib=np.arange(n_rows_in, dtype=np.int64) if contrib is None else contrib,
            n_contrib=n_contrib, contributor=contributor, stat=stat, pol=pol,
            margins=margins, margins_name=margins_name, norm=norm,
            structural_zeros=structural_zeros, value_name=value_name,
        )  # fmt: skip
    r_sizes = [len(lv) for lv in levels[: len(index)]]
    c_sizes = [len(lv) for lv in levels[len(index) :]]
    r = int(np.prod(r_sizes)) if r_sizes else 1
    c = int(np.prod(c_sizes)) if c_sizes else 1
    if r * c > MAX_CELLS:
        raise DisclosureInputError(
            f"the table would have {r * c:,} cells (limit {MAX_CELLS:,}); "
            "use fewer or coarser variables"
        )
    top_k = max(pol.dominance.n, 2)

    # --- statistics
    parts = None
    if vals is None:
        # Count tables: from sorted keys and their few repeats (countstats). Narrow ids
        # (r * c <= MAX_CELLS) are less fresh memory; count_stats overwrites the rows.
        row_id = _ravel(codes[: len(index)], r_sizes, n_rows_in, np.int32, copy=True)
        col_type = np.int16 if c < 1 << 15 else np.int32
        col_id = _ravel(codes[len(index) :], c_sizes, n_rows_in, col_type)
        parts = countstats.count_stats(row_id, col_id, r, c, contrib, n_contrib, top_k, margins)
        del row_id, col_id
    if parts is None:
        # The cell index straight from the narrow codes (row * c + column): one int64 array.
        cell = _ravel(codes, r_sizes + c_sizes, n_rows_in)
        if contrib is None:
            contrib = np.arange(n_rows_in, dtype=np.int64)  # every row its own contributor
        parts = _item_stats(cell, contrib, n_contrib, r, c, vals, top_k, margins)
    del codes
    stats = _assemble(parts, r, c)
    # Row-level groupings only for the statistics not made from the sums (std, median, ...).
    groupings = (
        [(cell, r * c), (cell // c, r), (cell % c, c), (np.zeros_like(cell), 1)]
        if stat not in ("count", "sum", "mean")
        else []
    )
    if stat in stat_mod.FROM_SUMS:
        value = stat_mod.from_sums(stats, stat)
    else:
        assert vals is not None
        value = _grid([stat_mod.positional(g, vals, n, stat) for g, n in groupings], r, c)
    if is_position(stat):
        assert vals is not None
        span = np.nan_to_num(stats["vmax"] - stats["vmin"]) * pol.extremes.tolerance
        flat_val = [value[:r, :c].ravel(), value[:r, c], value[r, :c], value[r, c : c + 1]]
        flat_span = [span[:r, :c].ravel(), span[:r, c], span[r, :c], span[r, c : c + 1]]
        stats["near"] = _grid(
            [
                stat_mod.near_contributors(
                    g, contrib, n_contrib, vals, np.nan_to_num(fv, nan=np.inf), fs, n
                )
                for (g, n), fv, fs in zip(groupings, flat_val, flat_span, strict=True)
            ],
            r,
            c,
        ).astype(np.int64)

    # --- rules
    structural = np.zeros((r + 1, c + 1), dtype=bool)
    row_labels = _labels(levels[: len(index)], index, margins_name)
    col_labels = _labels(levels[len(index) :], columns, margins_name)
    if not columns:
        col_labels = pd.Index([value_name or values or stat, margins_name])
    for rk, ck in structural_zeros:
        try:
            structural[row_labels.get_loc(rk), col_labels.get_loc(ck)] = True
        except KeyError as exc:
            raise DisclosureInputError(
                f"structural zero ({rk!r}, {ck!r}) is not a cell of this table"
            ) from exc
    ctx = Context(statistic=stat, normalize=norm, structural_zeros=structural)
    results = run_rules(stats, pol, ctx)
    published = np.ones((r + 1, c + 1), dtype=bool)
    if not margins:
        published[r, :] = False
        published[:, c] = False
    if not columns:
        published[:, c] = False  # a one-way table has no column margin
    # --- mitigation: rounding, primary, secondary with LP audit
    # Controlled: every cell with its margins, one- and two-way alike (a one-way table's
    # column margin repeats its cells), for which a rounding always exists.
    shown, rounding, no_rounding = rounded_counts(value, stat, pol, table_relations(r, c))
    protected = protected_by_rounding(results, stats["rows"], pol, rounding)
    primary = primary_suppressions(results, published, protected, ROUNDING_REPLACES)
    suppressed = primary.copy()
    audit_result: AuditResult | None = None
    if stat in ADDITIVE and margins and pol.secondary.enabled:
        if columns:
            relations, shape = table_relations(r, c), (r + 1, c + 1)
        else:
            # A one-way table with its total: the cells add up to the total.
            relations, shape = one_way_relations(r, c), None
        supp_flat, audit_result = protect(shown, primary, relations, stats, pol, stat, shape)
        suppressed = supp_flat.reshape(r + 1, c + 1)
    suppressed &= published
    safe_values = np.where(suppressed, np.nan, shown)
    if norm is not None:
        safe_values = _normalise(safe_values, shown, norm, r, c)

    # --- labelled frames
    def frame_of(arr: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(arr, index=row_labels, columns=col_labels)
        rows_keep = slice(None) if margins else slice(0, r)
        cols_keep = slice(None) if (margins and columns) else slice(0, c)
        return df.iloc[rows_keep, cols_keep]

    flag_text = flag_texts(results, (r + 1, c + 1))
    # Counts (and sums, minima, maxima and modes of whole numbers) stay integers: pandas'
    # nullable Int64, suppressed cells missing (<NA>), so that 1998 is never 1998.0.
    whole = is_whole(stat, norm, frame[values] if values else None, vals, value)
    table = frame_of(value)
    if stat == "count" and norm is None:
        table = table.astype(np.int64)
    elif whole:
        table = table.astype("Int64")
    safe = frame_of(safe_values)
    if whole:
        safe = safe.astype("Int64")
    record = _record(
        stats,
        value,
        safe_values,
        suppressed,
        primary,
        published,
        results,
        audit_result,
        row_labels,
        col_labels,
        pol,
        r,
        c,
        protected=protected,
        rounded=shown if rounding == "controlled" else None,
        whole=whole,
        statistic=stat,
        values=values,
        index=index,
        columns=columns,
        contributor=contributor,
        margins=margins,
        normalize=norm,
        rounding=rounding,
        structural_zeros=[
            [_label_lists(row_labels)[i], _label_lists(col_labels)[j]]
            for i, j in zip(*np.nonzero(structural), strict=True)
        ],
    )
    if no_rounding:
        record = _without_rounding(record, no_rounding)
    return TableCheck(
        table=table,
        safe=safe,
        suppressed=frame_of(suppressed).astype(bool),
        flags=frame_of(flag_text),
        results=results,
        audit=audit_result,
        record=record,
        policy=pol,
    )


def protect(
    shown: np.ndarray,
    primary: np.ndarray,
    relations: list[Relation],
    stats: dict[str, np.ndarray],
    pol: Policy,
    stat: str,
    shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, AuditResult]:
    """Secondary suppression of a grid of shown values under its additive ``relations``,
    with the policy's widths, protection levels and cost (flat results)."""
    flat_vals = np.nan_to_num(shown, nan=0.0).ravel()
    nonneg = stat == "count" or stats["negatives"].flat[-1] == 0  # the grand total's
    lower = np.full(flat_vals.shape, 0.0 if nonneg else -np.inf)
    upper = np.full(flat_vals.shape, np.inf)
    required = pol.secondary.relative_width * np.abs(flat_vals)
    if stat == "count":
        required = np.maximum(required, pol.secondary.count_width)
    # Cells a concentration rule suppresses keep its protection levels (both sides).
    levels = protection_levels(stats, pol, stat).ravel()
    cost = {
        "value": np.abs(flat_vals),
        "contributors": stats["contributors"].ravel().astype(np.float64),
        "cells": np.ones(flat_vals.shape),
    }[pol.secondary.cost]
    return secondary_suppression(
        flat_vals,
        primary.ravel(),
        relations,
        lower,
        upper,
        required,
        pol.secondary.max_rounds,
        shape=shape,
        lower_level=levels,
        upper_level=levels,
        cost=cost,
    )


def rounded_counts(
    value: np.ndarray,
    stat: str,
    pol: Policy,
    relations: list[Relation],
    plain: Callable[[np.ndarray, str, int], np.ndarray] = round_table,
) -> tuple[np.ndarray, str, str]:
    """What the table shows before suppression, the rounding it got, and why it got none
    when the policy's controlled rounding could not be made ("" otherwise). ``plain``
    rounds by base or midpoint-6; controlled rounding keeps every one of ``relations``."""
    method = pol.rounding.method if stat in COUNT_STATS else "none"
    if method == "none":
        return value.copy(), method, ""
    if method != "controlled":
        return plain(value, method, pol.rounding.base), method, ""
    found = controlled_round(value.ravel(), relations, pol.rounding.base)
    if found.rounded is None:
        return value.copy(), "none", found.reason
    return found.rounded.reshape(value.shape), method, ""


def protected_by_rounding(
    results: list[RuleResult], rows: np.ndarray, pol: Policy, rounding: str
) -> np.ndarray:
    """Cells the controlled rounding protects instead of suppression: flagged by the
    threshold or zeros rule, with a count below the base (so that the count itself can be
    published as 0). A few people with many rows each stay suppressed: rounding hides a
    count to within the base, not who is in it."""
    protected = np.zeros(rows.shape, dtype=bool)
    if rounding != "controlled" or not pol.rounding.replaces_suppression:
        return protected
    for res in results:
        if res.rule_id in ROUNDING_REPLACES:
            protected |= res.mask & (rows < pol.rounding.base)
    return protected


def is_whole(
    stat: str,
    norm: str | None,
    column: pd.Series | None,
    vals: np.ndarray | None,
    value: np.ndarray,
) -> bool:
    """Whether the table's numbers are whole (counts; sums, minima, maxima and modes of
    whole numbers) and shown as integers, as float64 holds them exactly (a sum of large
    whole numbers may not be one)."""
    whole = norm is None and (
        stat == "count"
        or (stat in WHOLE_STATS and column is not None and _whole_numbers(column, vals))
    )
    return whole and bool(np.all(np.nan_to_num(np.abs(value)) < WHOLE_LIMIT))


def _whole_numbers(column: pd.Series, vals: np.ndarray | None) -> bool:
    """Whether every value is a whole number (an integer column needs no pass over it)."""
    if vals is None:
        return False
    if pd.api.types.is_integer_dtype(column):
        return True
    finite = vals[~np.isnan(vals)]
    return bool(np.array_equal(finite, np.round(finite)))


def _without_rounding(record: OutputRecord, reason: str) -> OutputRecord:
    """The record of a table whose controlled rounding could not be made: its small cells
    were suppressed instead, which the checker is told."""
    verdict = RuleVerdict(
        rule_id="controlled-rounding",
        action="review",
        status="review",
        flagged_cells=0,
        detail=f"{reason}; the table's cells were suppressed instead of rounded",
    )
    status = record.status if record.status == "fail" else "review"
    return record.model_copy(update={"rules": [*record.rules, verdict], "status": status})


@contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the record's cell lists are made.

    A 20k-cell record is about 100k new lists; made with the collector on, they trigger a
    full collection that traverses every object of the process (0.05-0.14 s, five times
    the lists' own cost). None of them can be garbage: the record holds them all.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _normalise(safe: np.ndarray, shown: np.ndarray, norm: str, r: int, c: int) -> np.ndarray:
    # Shares are computed from the (rounded) true totals, then suppressed cells stay hidden.
    with np.errstate(divide="ignore", invalid="ignore"):
        if norm == "index":
            denom = shown[:, c][:, None]
        elif norm == "columns":
            denom = shown[r, :][None, :]
        else:
            denom = shown[r, c]
        return safe / denom


def _label_lists(labels: pd.Index) -> list[list[str]]:
    # One conversion for the whole axis: indexing a MultiIndex per cell is slow.
    return [[str(k) for k in key] if isinstance(key, tuple) else [str(key)] for key in labels]


def _record(
    stats: dict[str, np.ndarray],
    value: np.ndarray,
    safe: np.ndarray,
    suppressed: np.ndarray,
    primary: np.ndarray,
    published: np.ndarray,
    results: list[RuleResult],
    audit_result: AuditResult | None,
    row_labels: pd.Index,
    col_labels: pd.Index,
    pol: Policy,
    r: int,
    c: int,
    *,
    protected: np.ndarray,
    rounded: np.ndarray | None,
    whole: bool,
    **meta: Any,
) -> OutputRecord:
    protection: dict[int, tuple[float, float]] = {}
    if audit_result is not None:
        protection = {
            int(cell_i): (float(lo), float(hi))
            for cell_i, lo, hi in zip(
                audit_result.cells, audit_result.below, audit_result.above, strict=True
            )
            if lo > 0 or hi > 0
        }
    with _collection_paused():
        cells = _cell_table(
            stats,
            value,
            safe,
            suppressed,
            primary,
            published,
            results,
            audit_result,
            _label_lists(row_labels),
            _label_lists(col_labels),
            r,
            c,
            whole=whole,
            rounded=rounded,
            protection=protection if audit_result is not None else None,
        )
    verdicts = []
    for res in results:
        n_flag = int(res.mask.sum())
        n_rounded = int((res.mask & protected).sum())
        status = "pass" if n_flag == 0 else ("fail" if res.action == "suppress" else "review")
        detail = ""
        if n_rounded:
            detail = (
                f"{n_rounded} flagged cell(s) published with controlled rounding to base "
                f"{pol.rounding.base} instead of suppressed (rounding.replaces_suppression)"
            )
            if n_rounded == n_flag:
                status = "pass"
        verdicts.append(
            RuleVerdict(
                rule_id=res.rule_id,
                action=res.action,
                status=status,
                flagged_cells=n_flag,
                detail=detail,
            )
        )
    any_review = any(v.status == "review" for v in verdicts)
    any_supp = bool(suppressed.any())
    # "fail" = cells had to be suppressed (the safe table is still releasable);
    # "review" = a checker must look at flags that do not suppress.
    status = "fail" if any_supp else ("review" if any_review else "pass")
    return OutputRecord(
        kind="table",
        policy=pol.name,
        policy_version=pol.version,
        policy_parameters=pol.model_dump(mode="json"),
        status=status,
        rules=verdicts,
        cells=cells,
        audit_passed=None if audit_result is None else audit_result.ok,
        **meta,
    )


def _cell_table(
    stats: dict[str, np.ndarray],
    value: np.ndarray,
    safe: np.ndarray,
    suppressed: np.ndarray,
    primary: np.ndarray,
    published: np.ndarray,
    results: list[RuleResult],
    audit_result: AuditResult | None,
    row_text: list[list[str]],
    col_text: list[list[str]],
    r: int,
    c: int,
    *,
    whole: bool = False,
    rounded: np.ndarray | None = None,
    protection: dict[int, tuple[float, float]] | None = None,
) -> CellTable:
    """The published cells of the record, column by column. ``whole``: the statistic's
    numbers are whole and written as integers (49, not 49.0); ``rounded``: a controlled
    rounding's grid; ``protection``: the audit's levels per flat cell that has any."""
    top_keys = sorted(k for k in stats if k.startswith("top"))
    idx = np.flatnonzero(published.ravel())
    ri, ci = np.divmod(idx, c + 1)
    # Flags and reasons per published cell, rule by rule (each cell's in rule order).
    flags: list[list[str]] = [[] for _ in range(len(idx))]
    reasons: list[list[str]] = [[] for _ in range(len(idx))]
    for res in results:
        hit = np.flatnonzero(res.mask.ravel()[idx])
        for pos, i in zip(hit.tolist(), idx[hit].tolist(), strict=True):
            flags[pos].append(res.rule_id)
            reasons[pos].append(f"{res.rule_id}: {res.reasons(i)}")
    interval: list[tuple[float, float] | None] = [None] * len(idx)
    if audit_result is not None and len(idx):
        audited = np.asarray(audit_result.cells, dtype=np.int64)
        pos = np.minimum(np.searchsorted(idx, audited), len(idx) - 1)
        # Later entries for the same cell win, as they did in a dict.
        for p, cell_i, lo, hi in zip(
            pos.tolist(),
            audited.tolist(),
            np.asarray(audit_result.lower, dtype=np.float64).tolist(),
            np.asarray(audit_result.upper, dtype=np.float64).tolist(),
            strict=True,
        ):
            if idx[p] == cell_i:
                interval[p] = (lo, hi)

    def column(a: np.ndarray, dtype: type) -> list[Any]:
        # The dtype makes every element the Python type its CellTable field declares.
        return a.ravel()[idx].astype(dtype).tolist()

    def floats(a: np.ndarray) -> list[float | None]:
        sel = a.ravel()[idx].astype(np.float64)
        out: list[float | None] = sel.tolist()
        for k in np.flatnonzero(np.isnan(sel)).tolist():
            out[k] = None
        return out

    def numbers(a: np.ndarray) -> list[int | float | None]:
        out = floats(a)
        return [None if x is None else int(x) for x in out] if whole else list(out)

    supp = suppressed.ravel()[idx].astype(bool)
    prim = primary.ravel()[idx].astype(bool)
    kind = np.full(len(idx), None, dtype=object)
    kind[supp & prim] = "primary"
    kind[supp & ~prim] = "secondary"
    # Built from typed arrays, so pydantic's per-element validation (a third of the
    # record's time at 20k cells) is skipped; tests/disclosure/test_fast_path.py checks
    # that validating the result changes nothing.
    return CellTable.model_construct(
        row=[list(row_text[k]) for k in ri.tolist()],
        column=[list(col_text[k]) for k in ci.tolist()],
        margin=((ri == r) | (ci == c)).tolist(),
        row_margin=(ri == r).tolist(),
        column_margin=(ci == c).tolist(),
        published=numbers(safe),
        value=numbers(value),
        rounded=None if rounded is None else numbers(rounded),
        rows=column(stats["rows"], np.int64),
        contributors=column(stats["contributors"], np.int64),
        sum=column(stats["sum"], np.float64),
        abs_sum=column(stats["abs_sum"], np.float64),
        top=np.column_stack([stats[k].ravel()[idx] for k in top_keys]).astype(np.float64).tolist(),
        negatives=column(stats["negatives"], np.int64),
        missing=column(stats["missing"], np.int64),
        all_equal=(stats["vmin"].ravel()[idx] == stats["vmax"].ravel()[idx]).tolist(),
        near=column(stats["near"], np.int64) if "near" in stats else None,
        flags=flags,
        reasons=reasons,
        suppressed=kind.tolist(),
        interval=interval,
        protection=None if protection is None else [protection.get(int(i)) for i in idx.tolist()],
    )
