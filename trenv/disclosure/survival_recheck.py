"""Re-check a survival record under the project's policy (the airlock's deciding check).

The record of ``tre.kaplan_meier`` holds every published step (per group: the interval, the
people at risk, the events, the censored and the published estimate with its interval) and
nothing below it. From that alone, under the server's policy:

- every step is held to the rules of ``trenv.disclosure.survival``: at least the threshold at
  risk; events, the drop of the risk set and the people left after it each 0 or at least the
  threshold; boundaries on multiples of the recorded interval; groups published only with
  at least the threshold persons;
- the record must be consistent with itself: a group's first step starts at 0 with all its
  persons at risk, each step's risk set is the previous one's less its events and
  censorings, a curve that is not marked cut ends with nobody left, and every published
  estimate and confidence bound is the product-limit estimate, Greenwood's variance and the
  log-log interval recomputed from the recorded counts (so a number cannot carry what the
  counts do not), with ``0 <= lower <= survival <= upper <= 1``.

A record that merges steps back apart, inserts a small step or edits counts so that they
pass therefore fails here: the counts that pass the rules no longer produce the published
estimates, or the risk sets no longer chain. ``cox_problems`` checks a Cox model record's
own arithmetic (its residual degrees of freedom are events minus coefficients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trenv.disclosure.policy import Policy
from trenv.disclosure.record import ModelCheck, OutputRecord, SurvivalGroup
from trenv.disclosure.survival import log_log_interval, product_limit

TOLERANCE = 1e-9  # estimates recomputed in another order differ in the last bits


@dataclass(frozen=True)
class StepProblem:
    """A problem of one group (``step`` None) or one published step (0-based)."""

    group: int
    step: int | None
    message: str

    def __str__(self) -> str:
        return self.message


def group_name(group: SurvivalGroup) -> str:
    return "/".join(group.label) if group.label else "all"


def _where(group: SurvivalGroup, k: int) -> str:
    s = group.steps[k]
    opening = "[" if k == 0 else "("
    return f"group {group_name(group)} step {k + 1} {opening}{s.time_from:g}, {s.time:g}]"


def _on_grid(value: float, width: float) -> bool:
    ratio = value / width
    return math.isclose(ratio, round(ratio), rel_tol=0, abs_tol=1e-6)


def _small(count: int, threshold: int) -> bool:
    return 0 < count < threshold


def _step_rules(gi: int, group: SurvivalGroup, width: float, t: int) -> list[StepProblem]:
    out: list[StepProblem] = []
    previous_time = 0.0
    expected_at_risk = group.persons
    for k, s in enumerate(group.steps):
        where = _where(group, k)

        def problem(text: str, k: int = k, where: str = where) -> None:
            out.append(StepProblem(gi, k, f"{where}: {text}"))

        if min(s.at_risk, s.events, s.censored) < 0 or s.events + s.censored > s.at_risk:
            problem(
                f"{s.events} events and {s.censored} censored of {s.at_risk} at risk "
                "cannot be counts of one risk set"
            )
        if s.at_risk != expected_at_risk:
            what = "the group's persons" if k == 0 else "the previous step's risk set less its drop"
            problem(f"{s.at_risk} at risk, but {what} is {expected_at_risk}")
        if not math.isclose(s.time_from, previous_time, rel_tol=0, abs_tol=1e-9):
            problem(f"starts at {s.time_from:g}, not where the previous step ended")
        if s.time < s.time_from or (k > 0 and s.time <= s.time_from):
            problem("ends before it starts")
        if not (_on_grid(s.time, width) and _on_grid(s.time_from, width)):
            problem(f"its boundaries are not multiples of the interval {width:g}")
        if s.at_risk < t:
            problem(f"{s.at_risk} at risk, fewer than {t}")
        if _small(s.events, t):
            problem(f"{s.events} events, fewer than {t}")
        if _small(s.events + s.censored, t):
            problem(f"the risk set drops by {s.events + s.censored}, fewer than {t}")
        left = s.at_risk - s.events - s.censored
        if _small(left, t):
            problem(f"{left} left at risk after it, fewer than {t}")
        previous_time = s.time
        expected_at_risk = left
    if group.steps:
        last = group.steps[-1]
        left = last.at_risk - last.events - last.censored
        if left > 0 and not group.cut:
            out.append(
                StepProblem(
                    gi,
                    None,
                    f"group {group_name(group)}: {left} people are still "
                    "at risk after the last step, but the curve is not marked cut",
                )
            )
    elif not group.cut:
        out.append(StepProblem(gi, None, f"group {group_name(group)}: no steps, not marked cut"))
    return out


def _estimates(gi: int, group: SurvivalGroup, confidence: float) -> list[StepProblem]:
    if not group.steps:
        return []
    at_risk = np.array([s.at_risk for s in group.steps], dtype=np.int64)
    events = np.array([s.events for s in group.steps], dtype=np.int64)
    if (at_risk <= 0).any():
        return []  # already a problem of the counts; nothing to recompute from
    survival, greenwood = product_limit(at_risk, events)
    lower, upper = log_log_interval(survival, greenwood, confidence)
    out = []
    for k, s in enumerate(group.steps):
        where = _where(group, k)
        if not (0.0 <= s.ci_lower <= s.survival <= s.ci_upper <= 1.0):
            out.append(
                StepProblem(
                    gi,
                    k,
                    f"{where}: the estimate {s.survival:g} and its interval "
                    f"[{s.ci_lower:g}, {s.ci_upper:g}] are not ordered within [0, 1]",
                )
            )
            continue
        recomputed = (survival[k], lower[k], upper[k])
        shown = (s.survival, s.ci_lower, s.ci_upper)
        if not all(
            math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE)
            for a, b in zip(shown, recomputed, strict=True)
        ):
            out.append(
                StepProblem(
                    gi,
                    k,
                    f"{where}: publishes {s.survival:.12g} "
                    f"[{s.ci_lower:.12g}, {s.ci_upper:.12g}], but its counts give "
                    f"{survival[k]:.12g} [{lower[k]:.12g}, {upper[k]:.12g}]",
                )
            )
    return out


def survival_problems(record: OutputRecord, policy: Policy) -> list[StepProblem]:
    """Every problem of ``record``'s published steps under ``policy`` (empty if it passes)."""
    check = record.survival
    if check is None:
        return [StepProblem(-1, None, "the survival record has no steps to re-check")]
    width = check.interval
    if not (math.isfinite(width) and width > 0):
        return [StepProblem(-1, None, f"the interval {width!r} is not a positive number")]
    if not 0 < check.confidence < 1:
        return [
            StepProblem(-1, None, f"the confidence level {check.confidence!r} is not in (0, 1)")
        ]
    t = policy.threshold.min_contributors
    out: list[StepProblem] = []
    labels = [tuple(g.label) for g in check.groups]
    if len(set(labels)) != len(labels):
        out.append(StepProblem(-1, None, "a group appears twice"))
    for gi, group in enumerate(check.groups):
        if len(group.label) != len(check.by):
            out.append(
                StepProblem(
                    gi,
                    None,
                    f"group {group_name(group)} has {len(group.label)} "
                    f"labels for {len(check.by)} by-variables",
                )
            )
        if group.withheld:
            if group.steps:
                out.append(
                    StepProblem(
                        gi,
                        None,
                        f"group {group_name(group)} is marked withheld "
                        f"but publishes {len(group.steps)} steps",
                    )
                )
            continue
        if group.persons is None or group.persons < t:
            out.append(
                StepProblem(
                    gi,
                    None,
                    f"group {group_name(group)} is published with "
                    f"{group.persons} persons, fewer than {t}",
                )
            )
            continue
        out += _step_rules(gi, group, width, t)
        out += _estimates(gi, group, check.confidence)
    return out


def cox_problems(model: ModelCheck, coefficients: list[str]) -> list[str]:
    """A Cox model record against its own arithmetic and its coefficient table's rows."""
    if model.events is None or model.parameters is None:
        return ["the Cox model's record does not say how many events and coefficients it has"]
    out = []
    if not 0 <= model.events <= model.n_obs:
        out.append(f"{model.events} events among {model.n_obs} persons")
    if not math.isclose(model.df_resid, model.events - model.parameters, abs_tol=1e-9):
        out.append(
            f"residual degrees of freedom {model.df_resid:g}, but events minus coefficients "
            f"is {model.events - model.parameters}"
        )
    if len(coefficients) != model.parameters:
        out.append(
            f"the table has {len(coefficients)} coefficients, its record says {model.parameters}"
        )
    unknown = sorted(set(model.level_counts) - set(coefficients))
    if unknown:
        out.append(f"level counts for coefficients the table does not have: {unknown[:10]}")
    for name, counts in model.level_counts.items():
        with_level = counts.get("level=1")
        if with_level is None or counts.get("level=0") is None:
            out.append(f"{name}: the record lacks the persons with and without the level")
            continue
        if with_level + counts["level=0"] != model.n_obs:
            out.append(f"{name}: persons with and without the level do not add up to n")
        events = [counts.get(f"level={v},event=1") for v in (1, 0)]
        if None not in events and sum(e for e in events if e is not None) != model.events:
            out.append(f"{name}: events with and without the level do not add up")
    return out
