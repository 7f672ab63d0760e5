"""Kaplan-Meier step tables that are safe to publish: coarsened time, merged steps, cut tails.

A Kaplan-Meier curve is a table in disguise. Each step publishes the people at risk, the
events and the censorings of one interval, and the drop of the risk set between two steps
is a count of people: a step of one event says "one person reoffended in week 14", and a
risk set that shrinks by two says "two people left in week 14" even if the events column
says nothing. SDC practice therefore treats a survival table as a frequency table (the SDC
handbook's rules for survival tables, Griffiths et al., *Handbook on Statistical Disclosure
Control for Outputs*, SDAP 2019; the SACRO guide to output checking, 2023): every
published count, and every count derived from two published ones, must be zero or at least
the threshold. OpenSAFELY's ``kaplan-meier-function`` reusable action rounds the cumulative
event and censoring counts until every step has at least ``min_count`` events; ACRO's
``surv_func`` reports a step only when the threshold has accumulated. trenv publishes exact
counts and instead merges adjacent intervals, so that every number in the table is the true
count of a coarser step, and the server can re-check every step from the record.

The protection, per group (``protect_group``):

1. **Coarsening.** A duration ``d`` is counted at the end of its interval: step boundaries are
   multiples of ``width`` (``d`` in ``((k-1) width, k width]`` counts at ``k width``, ``d = 0``
   at 0), so no published time is a person's own date. ``default_interval`` picks a width
   from the data's scale (about 25-50 intervals over the longest follow-up).
2. **Merging.** Intervals are merged from the start, and a step is closed at the first
   interval where all hold: events are 0 or at least the threshold; the drop of the risk set
   (events + censored) is 0 or at least the threshold; and the people left at risk after the
   step are 0 or at least the threshold (they are the next step's risk set, and the last
   step's ``at_risk - events - censored`` would reveal them). So every step starts with at
   least the threshold at risk.
3. **The tail.** What is left when the data runs out and cannot be closed as a step is joined
   to the last step if that makes a valid step (the usual case: a few events among the many
   censored at the end of follow-up); otherwise it is cut, and the curve ends where at least
   the threshold were still at risk (``cut``).
4. **Groups** with fewer persons than the threshold are withheld whole.

The estimate at a step's end is the product-limit (Kaplan-Meier) estimate of the coarsened
data, ``S_k = prod_{j<=k} (1 - events_j / at_risk_j)``, with Greenwood's variance and a
log-log confidence interval (the default of lifelines and of R's ``survfit(conf.type =
"log-log")``): both functions of the published counts, so a published number carries
nothing the counts do not, and the airlock recomputes them. Censored people are at risk at
their step's end (ties: events before censorings), as in every Kaplan-Meier estimator.

Censored counts may be small: with 12 leaving a step, 10 by an event, the table says 2 were
censored. Holding them to the threshold as well would merge a whole curve into one step as
soon as one early censoring (a death, an emigration) has no nine companions; like ACRO and
OpenSAFELY, trenv protects the events and the drop of the risk set. This module is trenv's own
(no survival library) because the airlock re-checks without one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.record import RuleVerdict

# Interval widths offered for follow-up measured in days: a day, a week, two weeks, a
# month, a quarter, half a year, a year (and multiples of a year beyond).
DAY_WIDTHS = (1.0, 7.0, 14.0, 30.0, 91.0, 182.0, 365.0)
TARGET_INTERVALS = 50  # at most this many intervals over the longest follow-up by default
# The published step table's columns after its index (the ``by`` groups and ``time``, the
# step's end), as ``tre.kaplan_meier`` shows them and ``tre.save`` writes them.
STEP_COLUMNS = ("time_from", "at_risk", "events", "censored", "survival", "ci_lower", "ci_upper")


@dataclass(frozen=True)
class Step:
    """One published step: ``at_risk`` at its start, who left in ``(time_from, time]``."""

    time_from: float
    time: float
    at_risk: int
    events: int
    censored: int

    @property
    def drop(self) -> int:
        return self.events + self.censored


@dataclass
class GroupSteps:
    persons: int
    steps: list[Step] = field(default_factory=list)
    withheld: bool = False
    cut: bool = False
    intervals: int = 0  # the non-empty intervals the steps were merged from


def default_interval(longest: float, *, days: bool) -> float:
    """The smallest "round" width giving at most ``TARGET_INTERVALS`` intervals over the
    longest follow-up: calendar widths for days, else 1, 2 or 5 times a power of ten."""
    target = max(float(longest), 0.0) / TARGET_INTERVALS
    if target <= 0:
        return 1.0
    if days:
        for width in DAY_WIDTHS:
            if width >= target:
                return width
        return 365.0 * math.ceil(target / 365.0)
    power = 10.0 ** math.floor(math.log10(target))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * power >= target * (1 - 1e-12):
            return factor * power
    return 10.0 * power


def interval_ends(durations: np.ndarray, width: float) -> np.ndarray:
    """The interval index of each duration: ``ceil(d / width)`` (0 for ``d = 0``)."""
    if not width > 0 or not math.isfinite(width):
        raise DisclosureInputError(f"interval must be a positive number, not {width!r}")
    # A duration that is a whole multiple of the width up to float noise stays in its interval.
    return np.ceil(np.round(durations / width, 9)).astype(np.int64)


def _ok(count: int, threshold: int) -> bool:
    return count == 0 or count >= threshold


def step_valid(at_risk: int, events: int, censored: int, threshold: int) -> bool:
    """Whether a step with these counts may be published."""
    left = at_risk - events - censored
    return (
        at_risk >= threshold
        and _ok(events, threshold)
        and _ok(events + censored, threshold)
        and _ok(left, threshold)
    )


def merge_steps(index: np.ndarray, events: np.ndarray, width: float, threshold: int) -> GroupSteps:
    """The published steps of one group from each person's interval index and event flag."""
    persons = int(index.size)
    if persons < threshold:
        return GroupSteps(persons=persons, withheld=True)
    ids, inverse = np.unique(index, return_inverse=True)
    ev = np.bincount(inverse, weights=events.astype(np.float64), minlength=ids.size)
    ev = ev.astype(np.int64)
    ce = np.bincount(inverse, minlength=ids.size).astype(np.int64) - ev
    out = GroupSteps(persons=persons, intervals=int(ids.size))
    at_risk, start, e_acc, c_acc = persons, 0.0, 0, 0
    for k, e, c in zip(ids.tolist(), ev.tolist(), ce.tolist(), strict=True):
        e_acc += e
        c_acc += c
        if step_valid(at_risk, e_acc, c_acc, threshold):
            end = k * width
            out.steps.append(Step(start, end, at_risk, e_acc, c_acc))
            at_risk -= e_acc + c_acc
            start, e_acc, c_acc = end, 0, 0
    if e_acc + c_acc == 0:
        return out
    # The tail could not be closed by itself: join it to the last step, or cut it.
    last_end = float(ids[-1]) * width
    if out.steps:
        last = out.steps[-1]
        joined = Step(
            last.time_from, last_end, last.at_risk, last.events + e_acc, last.censored + c_acc
        )
        if step_valid(joined.at_risk, joined.events, joined.censored, threshold):
            out.steps[-1] = joined
            return out
    out.cut = True
    return out


def product_limit(at_risk: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier estimate after each step and Greenwood's sum
    ``sum_j events_j / (at_risk_j (at_risk_j - events_j))`` (infinite once the estimate is 0)."""
    n = at_risk.astype(np.float64)
    d = events.astype(np.float64)
    survival = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(d > 0, d / (n * (n - d)), 0.0)
    return survival, np.cumsum(terms)


def log_log_interval(
    survival: np.ndarray, greenwood: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise log-log interval ``exp(-exp(log(-log S) +- z sqrt(G) / |log S|))``.

    Degenerate where the estimate is 1 (no event yet: [1, 1]) or 0 (everyone at risk had
    the event: [0, 0])."""
    z = float(norm.ppf(0.5 + confidence / 2))
    lower = survival.astype(np.float64).copy()
    upper = lower.copy()
    inner = (survival > 0) & (survival < 1)
    s = survival[inner]
    log_s = np.log(s)
    theta = np.log(-log_s)
    spread = z * np.sqrt(greenwood[inner]) / np.abs(log_s)
    lower[inner] = np.exp(-np.exp(theta + spread))
    upper[inner] = np.exp(-np.exp(theta - spread))
    return lower, upper


def survival_rules(
    groups: list[tuple[list[str], GroupSteps]], width: float, threshold: int
) -> tuple[list[RuleVerdict], str]:
    """The verdicts of the protection and the record's status: ``fail`` when a group or a
    tail was withheld (the published curves are still releasable), else ``pass``."""

    def name(label: list[str]) -> str:
        return "/".join(label) if label else "all"

    withheld = [label for label, g in groups if g.withheld]
    cut = [label for label, g in groups if g.cut]
    merged = [
        f"{name(label)}: {g.intervals} intervals into {len(g.steps)} steps"
        for label, g in groups
        if not g.withheld
    ]
    rules = [
        RuleVerdict(
            rule_id="survival-group-size",
            action="suppress",
            status="fail" if withheld else "pass",
            flagged_cells=len(withheld),
            detail=f"groups with fewer than {threshold} persons withheld: "
            f"{[name(label) for label in withheld]}"
            if withheld
            else "",
            cells=[[label, []] for label in withheld],
        ),
        RuleVerdict(
            rule_id="survival-steps",
            action="suppress",
            status="pass",
            flagged_cells=0,
            detail=f"intervals of {width:g} merged until every step has at least {threshold} "
            f"at risk and 0 or at least {threshold} events, leavers and remaining: "
            + "; ".join(merged),
        ),
        RuleVerdict(
            rule_id="survival-tail",
            action="suppress",
            status="fail" if cut else "pass",
            flagged_cells=len(cut),
            detail=f"curves cut where the rest could not be published: "
            f"{[name(label) for label in cut]}"
            if cut
            else "",
            cells=[[label, []] for label in cut],
        ),
    ]
    return rules, "fail" if withheld or cut else "pass"
