"""Kaplan-Meier protection (trenv.disclosure.survival) and its server re-check
(trenv.disclosure.survival_recheck): after protection no published step has 1..t-1 events,
leavers or remaining people, the estimates are the product-limit estimates of the published
counts, and a record tampered to publish more than that fails the re-check."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.duration.survfunc import SurvfuncRight

import trenv.lab as tre
from trenv.disclosure import OutputRecord, load_policy, recheck
from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.populations import near_populations, near_survival
from trenv.disclosure.survival import (
    default_interval,
    interval_ends,
    log_log_interval,
    merge_steps,
    product_limit,
    step_valid,
)
from trenv.disclosure.survival_recheck import cox_problems, survival_problems

T = 10  # trenv-default's threshold


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TRENV_POLICY", raising=False)
    return tmp_path


def cohort(n: int = 2000, seed: int = 3, *, follow_up: float = 730.0) -> pd.DataFrame:
    """Time to reoffence, censored at the end of a two-year follow-up, and some deaths."""
    rng = np.random.default_rng(seed)
    days = np.round(rng.exponential(500, n))
    died = rng.random(n) < 0.03
    days = np.where(died, np.round(rng.uniform(0, follow_up, n)), days)
    event = (days <= follow_up) & ~died
    return pd.DataFrame(
        {
            "pid": [f"p{i:05d}" for i in range(n)],
            "days": np.minimum(days, follow_up),
            "reoffended": event,
            "offence": rng.choice(["theft", "violence", "drugs"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def km_record(df: pd.DataFrame | None = None, **kwargs: object) -> OutputRecord:
    out = tre.kaplan_meier(
        cohort() if df is None else df, "days", "reoffended", contributor="pid", **kwargs
    )
    return out.record


def reestimate(record: OutputRecord) -> OutputRecord:
    """What an attacker who knows the formulas does after editing counts: recompute every
    published estimate and interval so that they match the edited counts."""
    check = record.survival
    assert check is not None
    for group in check.groups:
        if not group.steps:
            continue
        at_risk = np.array([s.at_risk for s in group.steps])
        events = np.array([s.events for s in group.steps])
        survival, greenwood = product_limit(at_risk, events)
        lower, upper = log_log_interval(survival, greenwood, check.confidence)
        group.steps = [
            s.model_copy(
                update={"survival": survival[k], "ci_lower": lower[k], "ci_upper": upper[k]}
            )
            for k, s in enumerate(group.steps)
        ]
    return record


def problems(record: OutputRecord, policy: str = "trenv-default") -> list[str]:
    return recheck(record, policy).problems


# --- the protection -----------------------------------------------------------------------


def test_default_interval_follows_the_scale() -> None:
    assert default_interval(730, days=True) == 30  # a month for a two-year follow-up
    assert default_interval(60, days=True) == 7
    assert default_interval(20, days=True) == 1
    assert default_interval(40 * 365, days=True) == 365
    assert default_interval(60 * 365, days=True) == 2 * 365
    assert default_interval(730, days=False) == 20  # 1, 2 or 5 times a power of ten
    assert default_interval(5, days=False) == 0.1
    assert default_interval(0, days=False) == 1


def test_times_are_counted_at_the_end_of_their_interval() -> None:
    got = interval_ends(np.array([0.0, 0.5, 20.0, 20.000000001, 21.0, 40.0]), 20.0)
    assert got.tolist() == [0, 1, 1, 1, 2, 2]
    with pytest.raises(DisclosureInputError, match="positive"):
        interval_ends(np.array([1.0]), 0.0)


def _persons(counts: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """People per (interval index, events, censored)."""
    index: list[int] = []
    events: list[bool] = []
    for k, e, c in counts:
        index += [k] * (e + c)
        events += [True] * e + [False] * c
    return np.array(index), np.array(events)


def test_small_steps_are_merged_until_they_pass() -> None:
    # 40 people; per interval 1..4: (events, censored) = (4, 0), (7, 1), (10, 0), (0, 18).
    index, events = _persons([(1, 4, 0), (2, 7, 1), (3, 10, 0), (4, 0, 18)])
    got = merge_steps(index, events, 5.0, T)
    assert [(s.time_from, s.time, s.at_risk, s.events, s.censored) for s in got.steps] == [
        (0.0, 10.0, 40, 11, 1),  # 4 events alone are too few: merged with the next interval
        (10.0, 15.0, 28, 10, 0),
        (15.0, 20.0, 18, 0, 18),
    ]
    assert not got.cut and not got.withheld and got.intervals == 4


def test_a_tail_of_few_events_is_joined_to_the_last_step() -> None:
    # 2 events among the 30 censored at the end of follow-up cannot be a step of their own.
    index, events = _persons([(1, 12, 0), (2, 2, 30)])
    got = merge_steps(index, events, 1.0, T)
    assert [(s.time_from, s.time, s.at_risk, s.events, s.censored) for s in got.steps] == [
        (0.0, 2.0, 44, 14, 30)
    ]
    assert not got.cut


def test_a_tail_that_cannot_be_published_is_cut() -> None:
    # 20 censored, then 3 events and 7 censored among the last 10: the tail's 3 events can
    # neither stand alone nor join the censored-only step before them.
    index, events = _persons([(1, 0, 20), (2, 3, 0), (3, 0, 7)])
    got = merge_steps(index, events, 1.0, T)
    assert [(s.at_risk, s.events, s.censored) for s in got.steps] == [(30, 0, 20)]
    assert got.cut


def test_groups_below_the_threshold_are_withheld() -> None:
    got = merge_steps(np.array([1, 2, 3]), np.array([True, True, False]), 1.0, T)
    assert got.withheld and got.steps == [] and got.persons == 3


@settings(max_examples=300, deadline=None)
@given(
    durations=st.lists(st.integers(0, 60), min_size=0, max_size=250),
    flags=st.lists(st.booleans(), min_size=250, max_size=250),
    threshold=st.integers(1, 12),
    width=st.sampled_from([1.0, 2.0, 5.0, 7.0]),
)
def test_no_published_step_reveals_fewer_than_the_threshold(
    durations: list[int], flags: list[bool], threshold: int, width: float
) -> None:
    d = np.array(durations, dtype=float)
    e = np.array(flags[: len(durations)], dtype=bool)
    index = interval_ends(d, width)
    got = merge_steps(index, e, width, threshold)
    if len(durations) < threshold:
        assert got.withheld and not got.steps
        return
    at_risk = len(durations)
    previous_end = 0.0
    ends = index * width
    for j, s in enumerate(got.steps):
        assert s.at_risk == at_risk >= threshold
        assert s.events == 0 or s.events >= threshold
        assert s.drop == 0 or s.drop >= threshold
        left = s.at_risk - s.drop
        assert left == 0 or left >= threshold
        assert s.time_from == previous_end and s.time >= s.time_from
        assert math.isclose(s.time / width, round(s.time / width))
        # The step's counts are the true counts of the people whose interval it covers.
        inside = (ends <= s.time) & ((ends > s.time_from) if j > 0 else True)
        assert (int(inside.sum()), int((inside & e).sum())) == (s.drop, s.events)
        at_risk, previous_end = left, s.time
    assert (at_risk == 0) == (not got.cut)


def test_with_a_threshold_of_one_the_estimate_is_the_exact_kaplan_meier() -> None:
    rng = np.random.default_rng(0)
    days = rng.integers(0, 100, 300).astype(float)
    event = rng.random(300) < 0.6
    steps = merge_steps(interval_ends(days, 1.0), event, 1.0, 1)
    at_risk = np.array([s.at_risk for s in steps.steps])
    events = np.array([s.events for s in steps.steps])
    survival, greenwood = product_limit(at_risk, events)
    exact = SurvfuncRight(days, event.astype(int))
    ends = np.array([s.time for s in steps.steps])
    with_events = events > 0
    np.testing.assert_allclose(survival[with_events], exact.surv_prob, rtol=1e-12)
    np.testing.assert_array_equal(ends[with_events], exact.surv_times)
    np.testing.assert_array_equal(at_risk[with_events], exact.n_risk)
    se = survival * np.sqrt(greenwood)
    finite = np.isfinite(exact.surv_prob_se)
    np.testing.assert_allclose(se[with_events][finite], exact.surv_prob_se[finite], rtol=1e-9)


def test_log_log_interval() -> None:
    # 10 at risk, 1 event: R's survfit(conf.type = "log-log") gives 0.473 to 0.985.
    s, g = product_limit(np.array([10, 9]), np.array([1, 0]))
    lower, upper = log_log_interval(s, g, 0.95)
    assert s.tolist() == pytest.approx([0.9, 0.9])
    assert lower[0] == pytest.approx(0.4730, abs=5e-4)
    assert upper[0] == pytest.approx(0.9853, abs=5e-4)
    wide_lo, wide_hi = log_log_interval(s, g, 0.99)
    assert wide_lo[0] < lower[0] and wide_hi[0] > upper[0]
    # Degenerate ends: no event yet, and everyone at risk had the event.
    s, g = product_limit(np.array([10, 10]), np.array([0, 10]))
    lower, upper = log_log_interval(s, g, 0.95)
    assert (lower.tolist(), upper.tolist()) == ([1.0, 0.0], [1.0, 0.0])


def test_step_valid() -> None:
    assert step_valid(40, 10, 0, T)
    assert not step_valid(40, 9, 1, T)  # 9 events
    assert step_valid(40, 10, 2, T)  # 12 leave, 2 of them censored (see the module's note)
    assert not step_valid(40, 0, 5, T)  # 5 leave
    assert not step_valid(15, 10, 0, T)  # 5 left after it
    assert not step_valid(9, 0, 9, T)  # fewer than 10 at risk


# --- the record and the re-check ---------------------------------------------------------


def test_genuine_record_passes_and_round_trips() -> None:
    record = km_record(by="offence")
    assert record.kind == "survival" and record.schema_version == "trenv.output-record/1"
    assert problems(record) == []
    again = OutputRecord.model_validate_json(record.model_dump_json())
    assert again == record and problems(again) == []
    steps = [s for g in record.survival.groups for s in g.steps]  # type: ignore[union-attr]
    assert steps and all(s.events == 0 or s.events >= T for s in steps)


def test_a_record_of_an_older_trenv_still_validates() -> None:
    data = km_record().model_dump(mode="json")
    table = {k: v for k, v in data.items() if k != "survival"} | {"kind": "table"}
    assert OutputRecord.model_validate(table).survival is None


def test_steps_split_back_apart_fail() -> None:
    """The attacker replaces a merged step by its true parts (estimates recomputed)."""
    df = cohort(400, seed=8)
    record = km_record(df, interval=1)
    fine = km_record(df, interval=1, policy=_policy_with_threshold(1))
    group, fine_group = record.survival.groups[0], fine.survival.groups[0]  # type: ignore[union-attr]
    # A published step made of several one-day steps.
    k = next(i for i, s in enumerate(group.steps) if i > 0 and s.time - s.time_from > 1)
    merged = group.steps[k]
    parts = [s for s in fine_group.steps if merged.time_from < s.time <= merged.time]
    assert len(parts) > 1 and sum(p.events for p in parts) == merged.events
    group.steps[k : k + 1] = parts
    found = problems(reestimate(record))
    assert found and all("group all step" in p for p in found)
    assert any("events, fewer than 10" in p or "drops by" in p for p in found)


def test_a_small_step_inserted_fails() -> None:
    record = km_record()
    group = record.survival.groups[0]  # type: ignore[union-attr]
    first = group.steps[0]
    # Split the first step's interval: 3 events first, the rest afterwards (chain kept).
    mid = first.time_from + (first.time - first.time_from) / 2
    head = first.model_copy(update={"time": mid, "events": 3, "censored": 0})
    tail = first.model_copy(
        update={"time_from": mid, "at_risk": first.at_risk - 3, "events": first.events - 3}
    )
    group.steps[0:1] = [head, tail]
    found = problems(reestimate(record))
    assert any("step 1 [0, " in p and "3 events, fewer than 10" in p for p in found)


def test_counts_edited_to_pass_fail() -> None:
    record = km_record(cohort(300, seed=5), interval=1)
    step = record.survival.groups[0].steps[0]  # type: ignore[union-attr]
    # Raise the events of the first step without touching the estimate: it no longer
    # matches its counts.
    record.survival.groups[0].steps[0] = step.model_copy(update={"events": step.events + 5})  # type: ignore[union-attr]
    found = problems(record)
    assert any("but its counts give" in p for p in found)
    # With the estimates recomputed, the risk sets no longer chain.
    found = problems(reestimate(record))
    assert any("the previous step's risk set less its drop" in p for p in found)


def test_estimates_must_come_from_the_counts() -> None:
    record = km_record()
    group = record.survival.groups[0]  # type: ignore[union-attr]
    s = group.steps[2]
    group.steps[2] = s.model_copy(update={"survival": s.survival + 1e-4})
    assert any("step 3" in p and "but its counts give" in p for p in problems(record))
    record = km_record()
    group = record.survival.groups[0]  # type: ignore[union-attr]
    s = group.steps[1]
    group.steps[1] = s.model_copy(update={"ci_lower": s.ci_upper, "ci_upper": s.ci_lower})
    assert any("are not ordered" in p for p in problems(record))


def test_boundaries_must_be_on_the_interval() -> None:
    record = km_record(interval=30)
    group = record.survival.groups[0]  # type: ignore[union-attr]
    group.steps[0] = group.steps[0].model_copy(update={"time": 137.0})
    group.steps[1] = group.steps[1].model_copy(update={"time_from": 137.0})
    assert any("not multiples of the interval 30" in p for p in problems(record))


def test_withheld_and_small_groups() -> None:
    df = cohort(1000)
    df.loc[:6, "offence"] = "arson"  # 7 people
    record = km_record(df, by="offence")
    groups = {tuple(g.label): g for g in record.survival.groups}  # type: ignore[union-attr]
    assert groups[("arson",)].withheld and not groups[("arson",)].steps
    assert record.status == "fail"
    assert any(r.rule_id == "survival-group-size" and r.status == "fail" for r in record.rules)
    assert problems(record) == []
    # Publishing the small group (with any steps) fails.
    donor = groups[("theft",)].steps[:1]
    groups[("arson",)].steps = donor
    assert any("marked withheld but publishes 1 steps" in p for p in problems(record))
    groups[("arson",)].withheld = False
    assert any("published with 7 persons, fewer than 10" in p for p in problems(record))
    # The public view of the record does not say how small the withheld group was.
    public = km_record(df, by="offence").public()
    arson = next(g for g in public["survival"]["groups"] if g["label"] == ["arson"])
    assert arson["persons"] is None


def test_a_curve_not_marked_cut_must_end_with_nobody_left() -> None:
    record = km_record()
    group = record.survival.groups[0]  # type: ignore[union-attr]
    assert not group.cut
    group.steps = group.steps[:-1]  # drop the last step: people are left over
    assert any("not marked cut" in p for p in problems(record))


def test_the_project_policy_decides() -> None:
    record = km_record(cohort(600, seed=2), interval=1, policy="opensafely")  # threshold 8
    found = problems(record, "trenv-default")
    assert any("checked under opensafely" in p for p in found)
    assert any("fewer than 10" in p for p in found)
    assert problems(record, "opensafely") == []


def test_a_record_without_steps_or_contributor() -> None:
    record = km_record()
    assert any(
        "contributor" in p for p in problems(record.model_copy(update={"contributor": None}))
    )
    bare = record.model_copy(update={"survival": None})
    assert [str(p) for p in survival_problems(bare, load_policy("trenv-default"))] == [
        "the survival record has no steps to re-check"
    ]


def test_cox_record_arithmetic() -> None:
    df = cohort(1500)
    out = tre.cox(df, "days", "reoffended", ["offence"], contributor="pid")
    model = out.record.model
    assert model is not None and model.events == int(df.reoffended.sum())
    names = list(out.result.index)
    assert cox_problems(model, names) == []
    assert any("residual degrees of freedom" in p for p in cox_problems(
        model.model_copy(update={"df_resid": 5000.0}), names))  # fmt: skip
    assert any("coefficients, its record says" in p for p in cox_problems(model, names[:1]))
    edited = {k: dict(v) for k, v in model.level_counts.items()}
    first = next(iter(edited))
    edited[first]["level=1"] += 20  # a level made to look big enough
    assert any("do not add up to n" in p for p in cox_problems(
        model.model_copy(update={"level_counts": edited}), names))  # fmt: skip


def _policy_with_threshold(threshold: int):  # type: ignore[no-untyped-def]
    base = load_policy("trenv-default")
    return base.model_copy(
        update={
            "threshold": base.threshold.model_copy(update={"min_contributors": threshold}),
            "name": f"threshold-{threshold}",
        }
    )


def test_two_curves_of_populations_a_few_people_apart_are_flagged() -> None:
    df = cohort(800, seed=6)
    whole = km_record(df)
    but_three = km_record(df.iloc[3:])
    found = near_populations([whole], but_three, names=["the first curve"])
    assert any("at risk 0: 797 here, 800 in the first curve" in p for p in found)
    # Curves of other groups, other events or populations far apart are not compared.
    other = km_record(df.iloc[200:])
    assert not any("at risk 0:" in p for p in near_populations([whole], other))
    other_event = tre.kaplan_meier(
        df.iloc[3:].rename(columns={"reoffended": "died"}), "days", "died", contributor="pid"
    ).record
    assert near_survival([whole], other_event) == []
    by_group = km_record(df.iloc[3:], by="offence")
    assert near_survival([whole], by_group) == []
