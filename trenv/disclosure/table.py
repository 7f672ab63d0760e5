"""Check one table end to end: statistics, rules, suppression, rounding, audit, record."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import cellstats, countstats
from trenv.disclosure import statistic as stat_mod
from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.frames import contributor_codes, encode, numeric_values, to_pandas
from trenv.disclosure.policy import Policy, load_policy
from trenv.disclosure.record import CellTable, OutputRecord, RuleVerdict
from trenv.disclosure.rounding import round_table
from trenv.disclosure.rules import (
    COUNT_STATS,
    Context,
    RuleResult,
    is_position,
    run_rules,
)
from trenv.disclosure.suppression import (
    AuditResult,
    Relation,
    secondary_suppression,
    table_relations,
)

MAX_CELLS = 2_000_000
ADDITIVE = frozenset({"count", "sum"})


@dataclass
class TableCheck:
    """Everything one check produced; ``safe`` is what may be published."""

    table: pd.DataFrame  # the unmitigated statistic (never leaves the TRE)
    safe: pd.DataFrame  # suppressed cells are NaN, counts rounded if the policy says so
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
) -> TableCheck:
    """Compute, check and protect a table of ``statistic`` of ``values`` by index x columns.

    ``structural_zeros`` lists (row label, column label) cells that cannot occur (e.g.
    a court type that does not exist in a region): they are exempt from the zeros rule.
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
    r_sizes = [len(lv) for lv in levels[: len(index)]]
    c_sizes = [len(lv) for lv in levels[len(index) :]]
    r = int(np.prod(r_sizes)) if r_sizes else 1
    c = int(np.prod(c_sizes)) if c_sizes else 1
    if r * c > MAX_CELLS:
        raise DisclosureInputError(
            f"the table would have {r * c:,} cells (limit {MAX_CELLS:,}); "
            "use fewer or coarser variables"
        )
    contrib: np.ndarray | None = None
    n_contrib = n_rows_in
    if contributor is not None:
        contrib, n_contrib = contributor_codes(frame[contributor], contributor)
        contrib = contrib[keep] if keep is not None else contrib
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
    with np.errstate(divide="ignore", invalid="ignore"):
        if stat == "count":
            value = stats["rows"].astype(np.float64)
        elif stat == "sum":
            value = np.where(stats["rows"] > 0, stats["sum"], np.nan)
        elif stat == "mean":
            value = np.where(stats["rows"] > 0, stats["sum"] / stats["rows"], np.nan)
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
    norm = None if normalize in (None, False) else ("all" if normalize is True else normalize)
    if norm not in (None, "all", "index", "columns"):
        raise DisclosureInputError("normalize must be False, True, 'all', 'index' or 'columns'")
    ctx = Context(statistic=stat, normalize=norm, structural_zeros=structural)
    results = run_rules(stats, pol, ctx)
    published = np.ones((r + 1, c + 1), dtype=bool)
    if not margins:
        published[r, :] = False
        published[:, c] = False
    if not columns:
        published[:, c] = False  # a one-way table has no column margin
    for res in results:
        res.mask[~published] = False

    # --- mitigation: primary, rounding, secondary with LP audit
    primary = np.zeros_like(published)
    for res in results:
        if res.action == "suppress":
            primary |= res.mask
    shown = value.copy()
    rounding = pol.rounding.method if stat in COUNT_STATS else "none"
    if rounding != "none":
        shown = round_table(shown, rounding, pol.rounding.base)
    suppressed = primary.copy()
    audit_result: AuditResult | None = None
    if stat in ADDITIVE and margins and pol.secondary.enabled:
        if columns:
            relations, shape = table_relations(r, c), (r + 1, c + 1)
        else:
            # A one-way table with its total: the cells add up to the total.
            relations, shape = [Relation(np.arange(r) * (c + 1), r * (c + 1))], None
        flat_vals = np.nan_to_num(shown, nan=0.0).ravel()
        nonneg = stat == "count" or stats["negatives"][r, c] == 0
        lower = np.full(flat_vals.shape, 0.0 if nonneg else -np.inf)
        upper = np.full(flat_vals.shape, np.inf)
        required = pol.secondary.relative_width * np.abs(flat_vals)
        if stat == "count":
            required = np.maximum(required, pol.secondary.count_width)
        supp_flat, audit_result = secondary_suppression(
            flat_vals,
            primary.ravel(),
            relations,
            lower,
            upper,
            required,
            pol.secondary.max_rounds,
            shape=shape,
        )
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

    flag_text = np.full((r + 1, c + 1), "", dtype=object)
    for res in results:
        for i in np.flatnonzero(res.mask):
            cur = flag_text.flat[i]
            flag_text.flat[i] = f"{cur}; {res.rule_id}" if cur else res.rule_id
    table = frame_of(value)
    if stat == "count" and norm is None:
        table = table.astype(np.int64)
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
    return TableCheck(
        table=table,
        safe=frame_of(safe_values),
        suppressed=frame_of(suppressed).astype(bool),
        flags=frame_of(flag_text),
        results=results,
        audit=audit_result,
        record=record,
        policy=pol,
    )


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
    **meta: Any,
) -> OutputRecord:
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
        )
    verdicts = []
    for res in results:
        n_flag = int(res.mask.sum())
        status = "pass" if n_flag == 0 else ("fail" if res.action == "suppress" else "review")
        verdicts.append(
            RuleVerdict(rule_id=res.rule_id, action=res.action, status=status, flagged_cells=n_flag)
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
) -> CellTable:
    """The published cells of the record, column by column."""
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
        published=floats(safe),
        value=floats(value),
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
    )
