"""``tre.kaplan_meier``: Kaplan-Meier curves with disclosure control (and the input checks
that ``tre.cox`` shares).

The protection of a Kaplan-Meier table is trenv's own and pure
(:mod:`trenv.disclosure.survival`: coarsened time, merged steps, cut tails, withheld
groups); the estimation is statsmodels' (``SurvfuncRight`` for the product-limit estimate
and Greenwood's standard error, ``PHReg`` for the Cox model), which the notebook image
already ships. lifelines was the first choice, but its current release (0.30.3) requires
pandas < 3 and the image runs pandas 3.

Both functions take one row per person: the time to the first event or to censoring, and
whether the event happened. Several rows for one contributor are refused, since a person
counted twice is not protected by a threshold of persons.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import DisclosureInputError, Policy, load_policy
from trenv.disclosure.frames import to_pandas
from trenv.disclosure.record import (
    OutputRecord,
    SurvivalCheck,
    SurvivalGroup,
    SurvivalStep,
)
from trenv.disclosure.survival import (
    STEP_COLUMNS,
    GroupSteps,
    default_interval,
    interval_ends,
    log_log_interval,
    merge_steps,
    survival_rules,
)
from trenv.lab import session
from trenv.lab.ledger import with_differencing
from trenv.lab.outputs import Output, register


def statsmodels_duration() -> Any:
    try:
        import statsmodels.duration.hazard_regression as hazard_regression
        import statsmodels.duration.survfunc as survfunc
    except ImportError as exc:
        raise DisclosureInputError(
            "survival analysis needs statsmodels: pip install statsmodels "
            "(the notebook image ships it)"
        ) from exc
    return survfunc, hazard_regression


def as_list(x: str | Sequence[str] | None) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else [str(c) for c in x]


def one_row_per_person(
    data: Any, duration: str, event: str, contributor: str, extra: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, str | None]:
    """The rows, durations (days for date differences), event flags and the time unit,
    refused with the fix when they are not one row per person."""
    if not isinstance(contributor, str):
        raise DisclosureInputError(
            "contributor must name the person-id column of the data (one row per person)"
        )
    frame = to_pandas(data, [duration, event, contributor, *extra])
    ids = frame[contributor]
    if ids.isna().any():
        raise DisclosureInputError(
            f"{int(ids.isna().sum())} rows have no {contributor!r}: every row must be a person"
        )
    repeated = int(ids.duplicated().sum())
    if repeated:
        raise DisclosureInputError(
            f"{repeated} rows repeat a {contributor!r} already seen: survival analysis needs "
            "one row per person (the time to their first event, or to the end of their "
            "follow-up). Keep each person's first event, e.g. "
            f"data.sort_values({duration!r}).drop_duplicates({contributor!r})"
        )
    raw = frame[duration]
    unit: str | None = None
    if pd.api.types.is_timedelta64_dtype(raw):
        values = (raw / pd.Timedelta(days=1)).to_numpy(dtype=float)
        unit = "days"
    elif pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=float, na_value=np.nan)
    else:
        raise DisclosureInputError(
            f"{duration!r} must be numbers or time differences (e.g. end - start), not {raw.dtype}"
        )
    if np.isnan(values).any():
        raise DisclosureInputError(
            f"{int(np.isnan(values).sum())} persons have no {duration!r}: give everyone the "
            "time to their event or to the end of their follow-up (censoring)"
        )
    if (values < 0).any() or not np.isfinite(values).all():
        raise DisclosureInputError(
            f"{duration!r} has negative or infinite times: follow-up is measured from its "
            "start (0) onwards"
        )
    flag = frame[event]
    if flag.isna().any():
        raise DisclosureInputError(
            f"{int(flag.isna().sum())} persons have no {event!r}: use False (0) for "
            "censored follow-ups"
        )
    if pd.api.types.is_bool_dtype(flag):
        events = flag.to_numpy(dtype=bool)
    else:
        numbers = pd.to_numeric(flag, errors="coerce")
        if numbers.isna().any() or not numbers.isin([0, 1]).all():
            raise DisclosureInputError(
                f"{event!r} must be True/False or 1/0 (1: the event happened)"
            )
        events = numbers.to_numpy(dtype=float) == 1
    return frame, values, events, unit


def _estimates(
    index: np.ndarray, events: np.ndarray, steps: GroupSteps, width: float, confidence: float
) -> list[SurvivalStep]:
    """statsmodels' product-limit estimate of the coarsened data at each step's end, with
    the log-log interval from its Greenwood standard error."""
    if not steps.steps:
        return []
    survfunc, _ = statsmodels_duration()
    ends = np.array([s.time for s in steps.steps], dtype=float)
    own = index.astype(np.float64) * width
    # Each person counts at the end of the step holding their interval; people of a cut
    # tail are at risk beyond the last step and change nothing published.
    pos = np.searchsorted(ends, own - 1e-9 * width, side="left")
    coarse = np.where(pos < ends.size, ends[np.minimum(pos, ends.size - 1)], ends[-1] + width)
    fit = survfunc.SurvfuncRight(coarse, events.astype(np.int64))
    # The estimate just after each step's end; 1 (and no error) before the first event.
    times = np.r_[-np.inf, fit.surv_times]
    at = np.searchsorted(times, ends, side="right") - 1
    survival = np.r_[1.0, fit.surv_prob][at]
    se = np.nan_to_num(np.r_[0.0, fit.surv_prob_se][at], nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.where(survival > 0, (se / survival) ** 2, np.inf)
    lower, upper = log_log_interval(survival, greenwood, confidence)
    return [
        SurvivalStep(
            time_from=s.time_from,
            time=s.time,
            at_risk=s.at_risk,
            events=s.events,
            censored=s.censored,
            survival=float(survival[k]),
            ci_lower=float(lower[k]),
            ci_upper=float(upper[k]),
        )
        for k, s in enumerate(steps.steps)
    ]


def _step_table(groups: list[SurvivalGroup], by: list[str]) -> pd.DataFrame:
    rows = [
        [*g.label, s.time, *(getattr(s, c) for c in STEP_COLUMNS)]
        for g in groups
        if not g.withheld
        for s in g.steps
    ]
    table = pd.DataFrame(rows, columns=[*by, "time", *STEP_COLUMNS])
    for c in ("at_risk", "events", "censored"):
        table[c] = table[c].astype(np.int64)
    for c in ("time", "time_from", "survival", "ci_lower", "ci_upper"):
        table[c] = table[c].astype(np.float64)
    return table.set_index([*by, "time"])


def _draw(groups: list[SurvivalGroup], check: SurvivalCheck, ax: Any) -> Any:
    """Step curves drawn from the published steps only (nothing else is known here)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
        plt.close(fig)  # the Output carries it; don't also leak it into the next cell
    else:
        fig = ax.figure
    for g in groups:
        if g.withheld or not g.steps:
            continue
        x = [0.0, *(s.time for s in g.steps)]
        y = [1.0, *(s.survival for s in g.steps)]
        lo = [1.0, *(s.ci_lower for s in g.steps)]
        hi = [1.0, *(s.ci_upper for s in g.steps)]
        label = "/".join(g.label) if g.label else None
        (line,) = ax.step(x, y, where="post", label=label)
        ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=line.get_color())
    unit = f" ({check.time_unit})" if check.time_unit else ""
    ax.set_xlabel(f"{check.duration}{unit}")
    ax.set_ylabel(f"without {check.event}")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    if check.by and any(not g.withheld and g.steps for g in groups):
        ax.legend(title="/".join(check.by), fontsize="small")
    notes = []
    withheld = sum(g.withheld for g in groups)
    if withheld:
        notes.append(f"{withheld} group(s) withheld")
    cut = sum(g.cut for g in groups)
    if cut:
        notes.append(f"{cut} curve(s) cut where few remained")
    if notes:
        ax.set_title("; ".join(notes), fontsize="small")
    return fig


def kaplan_meier(
    data: Any,
    duration: str,
    event: str,
    *,
    contributor: str,
    by: str | Sequence[str] | None = None,
    interval: float | None = None,
    alpha: float = 0.05,
    policy: str | Path | Policy | None = None,
    ax: Any = None,
) -> Output:
    """Kaplan-Meier curves safe to publish: the step table (``.result``), its figure
    (``.figure``) and the output record.

    ``data`` has one row per person: ``duration`` the time from the start of the follow-up
    to the event or to censoring (numbers, or time differences, counted in days), ``event``
    whether the event happened (True/1) or the follow-up was censored (False/0),
    ``contributor`` the person-id column. ``by`` names the column(s) of groups drawn as
    separate curves. Time is counted in intervals of ``interval`` (default: a round width
    giving at most 50 intervals over the longest follow-up), and intervals are merged until
    every published step passes the policy's threshold (see :mod:`trenv.disclosure.survival`).
    ``alpha`` sets the confidence level of the pointwise interval (0.05: 95%).
    """
    if not 0 < alpha < 1:
        raise DisclosureInputError(f"alpha must be between 0 and 1, not {alpha!r}")
    by_cols = as_list(by)
    frame, durations, events, unit = one_row_per_person(data, duration, event, contributor, by_cols)
    if by_cols:
        gaps = frame[by_cols].isna().any(axis=1)
        if gaps.any():
            raise DisclosureInputError(
                f"{int(gaps.sum())} persons have no value for {by_cols}: fill in a group "
                "(e.g. 'unknown') or leave them out first"
            )
    if interval is None:
        width = default_interval(float(durations.max(initial=0.0)), days=unit == "days")
    else:
        width = float(interval)
    index = interval_ends(durations, width)
    pol = load_policy(policy or session.default_policy())
    threshold = pol.threshold.min_contributors
    confidence = 1.0 - alpha

    if by_cols:
        grouped = frame.groupby(by_cols, observed=True, sort=True).indices
        parts = [
            ([str(v) for v in (key if isinstance(key, tuple) else (key,))], rows)
            for key, rows in grouped.items()
        ]
    else:
        parts = [([], np.arange(len(frame)))]
    protected: list[tuple[list[str], GroupSteps]] = []
    groups: list[SurvivalGroup] = []
    for label, rows in parts:
        steps = merge_steps(index[rows], events[rows], width, threshold)
        protected.append((label, steps))
        groups.append(
            SurvivalGroup(
                label=label,
                persons=steps.persons,
                withheld=steps.withheld,
                cut=steps.cut,
                steps=_estimates(index[rows], events[rows], steps, width, confidence),
            )
        )
    check = SurvivalCheck(
        duration=duration,
        event=event,
        by=by_cols,
        interval=width,
        time_unit=unit,
        confidence=confidence,
        groups=groups,
    )
    rules, status = survival_rules(protected, width, threshold)
    record = OutputRecord(
        kind="survival",
        statistic="kaplan-meier",
        values=duration,
        index=by_cols,
        contributor=contributor,
        policy=pol.name,
        policy_version=pol.version,
        policy_parameters=pol.model_dump(mode="json"),
        status=status,  # type: ignore[arg-type]
        rules=rules,
        survival=check,
        code=session.calling_code(),
        trenv_version=session.trenv_version(),
    )
    table = _step_table(groups, by_cols)
    record = with_differencing(record)  # curves of populations a few people apart
    return register(Output(result=table, record=record, figure=_draw(groups, check, ax)))
