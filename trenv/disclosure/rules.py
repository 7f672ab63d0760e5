"""The disclosure rules: each has a stable id, a mask over cells and a reason per cell.

Rules read only the per-cell statistics of ``cellstats`` (arrays of equal shape, one
entry per cell including margins), so the same code checks a table in the notebook and
re-checks it in the airlock from the output record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trenv.disclosure.policy import Policy

COUNT_STATS = frozenset({"count"})
MAGNITUDE_STATS = frozenset({"sum", "mean", "std", "var"})
POSITION_STATS = frozenset({"min", "max", "median", "mode"})


def is_quantile(statistic: str) -> bool:
    return statistic.startswith("q") and statistic[1:].replace(".", "", 1).isdigit()


def is_position(statistic: str) -> bool:
    """Statistics that are (or interpolate) individual values."""
    return statistic in POSITION_STATS or is_quantile(statistic)


@dataclass(frozen=True)
class Context:
    statistic: str
    normalize: str | None = None  # None, "all", "index" or "columns"
    structural_zeros: np.ndarray | None = None  # bool mask of impossible cells


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    action: str
    mask: np.ndarray
    reasons: Callable[[int], str]  # flat cell index -> reason text


Stats = dict[str, np.ndarray]


def _threshold(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    t = p.threshold.min_contributors
    n = s["contributors"]
    mask = (n > 0) & (n < t)
    return mask, lambda i: f"{int(n.flat[i])} contributor(s), fewer than the threshold {t}"


def _dominance(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    n, k = p.dominance.n, p.dominance.k
    top = sum(s[f"top{j + 1}"] for j in range(n))
    total = s["abs_sum"]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, top / total, 0.0)
    applies = c.statistic in MAGNITUDE_STATS
    mask = applies & (s["contributors"] > 0) & (share >= k)
    return (
        mask,
        lambda i: (
            f"the largest {n} contributor(s) hold {share.flat[i]:.0%} of the cell (limit {k:.0%})"
        ),
    )


def _p_percent(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    pp = p.p_percent.p
    top1, top2 = s["top1"], s["top2"]
    rest = s["abs_sum"] - top1 - top2
    applies = c.statistic in MAGNITUDE_STATS
    mask = applies & (top1 > 0) & (rest < pp * top1)
    return (
        mask,
        lambda i: (
            f"the second largest contributor can estimate the largest to within "
            f"{(rest.flat[i] / top1.flat[i]):.1%} (p = {pp:.0%})"
        ),
    )


def _zeros(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    mask = s["rows"] == 0
    if c.structural_zeros is not None:
        mask = mask & ~c.structural_zeros
    return mask, lambda i: "empty cell: a zero shows that nobody in this group has it"


def _negative(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    neg = s["negatives"]
    mask = (c.statistic in MAGNITUDE_STATS) & (neg > 0)
    return (
        mask,
        lambda i: f"{int(neg.flat[i])} negative value(s): sums can hide a dominant contributor",
    )


def _missing(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    miss = s["missing"]
    mask = miss > 0
    return mask, lambda i: f"{int(miss.flat[i])} missing value(s) were left out"


def _constant(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    applies = c.statistic not in COUNT_STATS
    mask = applies & (s["rows"] > 0) & (s["vmin"] == s["vmax"])
    return (
        mask,
        lambda i: (
            f"all {int(s['contributors'].flat[i])} contributor(s) have the same value, "
            "so the statistic reveals each one's value"
        ),
    )


def _class(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    rows = s["rows"]
    n_r, n_c = rows.shape[0] - 1, rows.shape[1] - 1
    mask = np.zeros(rows.shape, dtype=bool)
    if c.statistic in COUNT_STATS and rows.ndim == 2:
        inner = rows[:n_r, :n_c]
        row_tot = rows[:n_r, n_c][:, None]
        col_tot = rows[n_r, :n_c][None, :]
        whole_row = (inner > 0) & (inner == row_tot) & (n_c >= 2)
        whole_col = (inner > 0) & (inner == col_tot) & (n_r >= 2)
        mask[:n_r, :n_c] = whole_row | whole_col
    return (
        mask,
        lambda i: (
            "every contributor of its row or column falls in this cell, "
            "so the group's attribute is disclosed"
        ),
    )


def _extremes(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    k = p.extremes.min_contributors
    near = s.get("near")
    if near is None or not is_position(c.statistic):
        return np.zeros(s["rows"].shape, dtype=bool), lambda i: ""
    mask = (s["rows"] > 0) & (near < k)
    return (
        mask,
        lambda i: (
            f"the {c.statistic} is the value of {int(near.flat[i])} contributor(s) "
            f"(at least {k} needed at or around it)"
        ),
    )


def _shares(s: Stats, p: Policy, c: Context) -> tuple[np.ndarray, Callable[[int], str]]:
    rows = s["rows"]
    mask = np.zeros(rows.shape, dtype=bool)
    if c.normalize is None or rows.ndim != 2:
        return mask, lambda i: ""
    n_r, n_c = rows.shape[0] - 1, rows.shape[1] - 1
    inner = rows[:n_r, :n_c]
    if c.normalize == "index":
        denom = rows[:n_r, n_c][:, None]
    elif c.normalize == "columns":
        denom = rows[n_r, :n_c][None, :]
    else:
        denom = rows[n_r, n_c]
    mask[:n_r, :n_c] = (denom > 0) & ((inner == 0) | (inner == denom))
    return mask, lambda i: "a 0% or 100% share discloses the attribute of a whole group"


RULES: dict[str, tuple[str, Callable[..., tuple[np.ndarray, Callable[[int], str]]]]] = {
    # rule id -> (policy field, implementation)
    "threshold": ("threshold", _threshold),
    "dominance-nk": ("dominance", _dominance),
    "p-percent": ("p_percent", _p_percent),
    "zeros": ("zeros", _zeros),
    "negative": ("negative", _negative),
    "missing": ("missing", _missing),
    "class-disclosure": ("class_disclosure", _class),
    "constant-value": ("constant_value", _constant),
    "extremes": ("extremes", _extremes),
    "shares": ("shares", _shares),
}


def primary_suppressions(
    results: list[RuleResult],
    published: np.ndarray,
    protected: np.ndarray | None = None,
    replaceable: frozenset[str] = frozenset(),
) -> np.ndarray:
    """The cells a ``suppress`` rule flags among the published ones; every result's mask is
    cleared outside ``published`` (an unpublished margin is flagged for nothing). Cells in
    ``protected`` are not suppressed for the rules in ``replaceable`` (controlled rounding
    protects them instead)."""
    primary = np.zeros(published.shape, dtype=bool)
    for res in results:
        res.mask[~published] = False
        if res.action == "suppress":
            keep = (
                res.mask & ~protected
                if protected is not None and res.rule_id in replaceable
                else res.mask
            )
            primary |= keep
    return primary


def flag_texts(results: list[RuleResult], shape: tuple[int, ...]) -> np.ndarray:
    """Per cell, the "; "-joined ids of the rules that flag it."""
    text = np.full(shape, "", dtype=object)
    for res in results:
        for i in np.flatnonzero(res.mask):
            cur = text.flat[i]
            text.flat[i] = f"{cur}; {res.rule_id}" if cur else res.rule_id
    return text


def run_rules(stats: Stats, policy: Policy, context: Context) -> list[RuleResult]:
    """Every table rule the policy does not switch off, in a stable order."""
    out = []
    for rule_id, (field, impl) in RULES.items():
        action = getattr(policy, field).action
        if action == "off":
            continue
        mask, reason = impl(stats, policy, context)
        out.append(RuleResult(rule_id, action, np.asarray(mask, dtype=bool), reason))
    return out
