"""The researcher API for survival analysis: tre.kaplan_meier and tre.cox."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.figure
import numpy as np
import pandas as pd
import polars as pl
import pytest
from statsmodels.duration.hazard_regression import PHReg

import trenv.lab as tre
from trenv.disclosure import DisclosureInputError


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TRENV_POLICY", raising=False)
    return tmp_path


@pytest.fixture
def people() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 2400
    group = rng.choice(["theft", "violence", "drugs"], n, p=[0.5, 0.3, 0.2])
    hazard = np.where(group == "violence", 1 / 400, np.where(group == "drugs", 1 / 250, 1 / 600))
    days = np.round(rng.exponential(1 / hazard))
    event = days <= 730
    start = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return pd.DataFrame(
        {
            "pid": [f"p{i:05d}" for i in range(n)],
            "start": start,
            "end": start + pd.to_timedelta(np.minimum(days, 730), unit="D"),
            "days": np.minimum(days, 730),
            "reoffended": event,
            "offence": group,
            "age": rng.integers(18, 70, n),
            "male": rng.random(n) < 0.8,
        }
    )


def test_kaplan_meier_step_table_and_figure(people: pd.DataFrame) -> None:
    km = tre.kaplan_meier(people, "days", "reoffended", contributor="pid", by="offence")
    table = km.result
    assert list(table.index.names) == ["offence", "time"]
    assert list(table.columns) == [
        "time_from",
        "at_risk",
        "events",
        "censored",
        "survival",
        "ci_lower",
        "ci_upper",
    ]
    assert set(table.index.get_level_values("offence")) == {"theft", "violence", "drugs"}
    theft = table.loc["theft"]
    assert theft["at_risk"].iloc[0] == (people.offence == "theft").sum()
    assert theft["events"].sum() == people[people.offence == "theft"].reoffended.sum()
    assert ((theft["events"] == 0) | (theft["events"] >= 10)).all()
    assert (theft["ci_lower"] <= theft["survival"]).all()
    assert (theft["survival"] <= theft["ci_upper"]).all()
    assert km.record.kind == "survival" and km.record.contributor == "pid"
    assert km.record.survival is not None and km.record.survival.interval == 20
    assert "tre.kaplan_meier(people" in km.record.code
    assert isinstance(km.figure, matplotlib.figure.Figure)
    lines = km.figure.axes[0].get_lines()
    assert len(lines) == 3  # one step curve per group, from the safe table only
    np.testing.assert_allclose(lines[0].get_ydata()[1:], table.loc["drugs"]["survival"])


def test_date_differences_are_counted_in_days(people: pd.DataFrame) -> None:
    frame = people.assign(followed=people.end - people.start)
    km = tre.kaplan_meier(frame, "followed", "reoffended", contributor="pid")
    check = km.record.survival
    assert check is not None and check.time_unit == "days" and check.interval == 30
    assert km.result.index.name == "time"
    assert (km.result.index % 30 == 0).all()
    by_number = tre.kaplan_meier(people, "days", "reoffended", contributor="pid", interval=30)
    pd.testing.assert_frame_equal(km.result, by_number.result)


def test_polars_input(people: pd.DataFrame) -> None:
    frame = pl.from_pandas(people[["pid", "days", "reoffended", "offence"]])
    km = tre.kaplan_meier(frame, "days", "reoffended", contributor="pid", by=["offence"])
    direct = tre.kaplan_meier(people, "days", "reoffended", contributor="pid", by="offence")
    pd.testing.assert_frame_equal(km.result, direct.result)


def test_small_group_is_withheld(people: pd.DataFrame) -> None:
    people.loc[:5, "offence"] = "arson"
    km = tre.kaplan_meier(people, "days", "reoffended", contributor="pid", by="offence")
    assert "arson" not in km.result.index.get_level_values("offence")
    assert km.record.status == "fail"
    assert "1 group(s) withheld" in km.figure.axes[0].get_title()


def test_one_row_per_person_is_required(people: pd.DataFrame) -> None:
    twice = pd.concat([people, people.iloc[:3]])
    with pytest.raises(DisclosureInputError, match="one row per person") as err:
        tre.kaplan_meier(twice, "days", "reoffended", contributor="pid")
    assert "drop_duplicates('pid')" in str(err.value)
    with pytest.raises(DisclosureInputError, match="one row per person"):
        tre.cox(twice, "days", "reoffended", ["age"], contributor="pid")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("days", np.nan, "have no 'days'"),
        ("days", -3.0, "negative"),
        ("reoffended", np.nan, "have no 'reoffended'"),
        ("reoffended", 2, "True/False or 1/0"),
        ("offence", None, "no value for"),
        ("pid", None, "have no 'pid'"),
    ],
)
def test_bad_input_is_refused_with_the_fix(
    people: pd.DataFrame, column: str, value: object, message: str
) -> None:
    frame = people.astype({"reoffended": object, "days": float})
    frame.loc[7, column] = value
    with pytest.raises(DisclosureInputError, match=message):
        tre.kaplan_meier(frame, "days", "reoffended", contributor="pid", by="offence")


def test_bad_arguments(people: pd.DataFrame) -> None:
    with pytest.raises(DisclosureInputError, match="interval"):
        tre.kaplan_meier(people, "days", "reoffended", contributor="pid", interval=0)
    with pytest.raises(DisclosureInputError, match="alpha"):
        tre.kaplan_meier(people, "days", "reoffended", contributor="pid", alpha=1.5)
    with pytest.raises(DisclosureInputError, match="numbers or time differences"):
        tre.kaplan_meier(people, "offence", "reoffended", contributor="pid")
    with pytest.raises(DisclosureInputError, match="not in the data"):
        tre.kaplan_meier(people, "nope", "reoffended", contributor="pid")


def test_save_writes_table_figure_and_record(people: pd.DataFrame, workspace: Path) -> None:
    km = tre.kaplan_meier(people, "days", "reoffended", contributor="pid", by="offence")
    written = tre.save(km, "km")
    assert set(written) == {"km.csv", "km.png", "km.record.json"}
    record = json.loads(written["km.record.json"].read_text())
    assert set(record["files"]) == {"km.csv", "km.png"}
    assert record["survival"]["groups"][0]["steps"][0]["at_risk"] > 0
    assert written["km.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = pd.read_csv(written["km.csv"], index_col=[0, 1])
    np.testing.assert_allclose(again["survival"], km.result["survival"])
    with pytest.raises(FileExistsError):
        tre.save(km, "km")


def test_cox_hazard_ratios_match_statsmodels(people: pd.DataFrame) -> None:
    out = tre.cox(people, "days", "reoffended", ["offence", "age", "male"], contributor="pid")
    table = out.result
    assert list(table.index) == ["offence[T.theft]", "offence[T.violence]", "age", "male[T.True]"]
    assert list(table.columns) == [
        "coef",
        "exp(coef)",
        "se(coef)",
        "exp(coef) lower 95%",
        "exp(coef) upper 95%",
        "p",
    ]
    exog = pd.DataFrame(
        {
            "theft": (people.offence == "theft").astype(float),
            "violence": (people.offence == "violence").astype(float),
            "age": people.age.astype(float),
            "male": people.male.astype(float),
        }
    )
    ref = PHReg(people.days, exog, status=people.reoffended.astype(float), ties="efron").fit()
    np.testing.assert_allclose(table["coef"], ref.params, rtol=1e-6)
    np.testing.assert_allclose(table["exp(coef)"], np.exp(ref.params), rtol=1e-6)
    # Drugs reoffend fastest (the reference), theft slowest: hazard ratios below 1.
    assert (
        table.loc["offence[T.theft]", "exp(coef)"]
        < table.loc["offence[T.violence]", "exp(coef)"]
        < 1
    )
    model = out.record.model
    assert out.record.status == "pass" and model is not None
    assert model.model_type == "CoxPH" and model.events == int(people.reoffended.sum())
    assert model.parameters == 4 and model.df_resid == model.events - 4
    theft = model.level_counts["offence[T.theft]"]
    assert theft["level=1"] == (people.offence == "theft").sum()
    assert theft["reference"] == (people.offence == "drugs").sum()


def test_cox_formula(people: pd.DataFrame) -> None:
    out = tre.cox(people, "days", "reoffended", formula="C(offence) + age", contributor="pid")
    assert list(out.result.index) == ["C(offence)[T.theft]", "C(offence)[T.violence]", "age"]
    by_list = tre.cox(people, "days", "reoffended", ["offence", "age"], contributor="pid")
    np.testing.assert_allclose(out.result["coef"], by_list.result["coef"], rtol=1e-6)
    assert out.record.model.level_counts.keys() == {  # type: ignore[union-attr]
        "C(offence)[T.theft]",
        "C(offence)[T.violence]",
    }


def test_cox_withholds_small_levels_and_too_few_events(people: pd.DataFrame) -> None:
    people.loc[:7, "offence"] = "vandalism"  # 8 people, not the reference (first) level
    out = tre.cox(people, "days", "reoffended", ["offence", "age"], contributor="pid")
    assert out.result.loc["offence[T.vandalism]"].isna().all()
    assert out.result.loc["age"].notna().all()
    assert out.flags.loc["offence[T.vandalism]", "coef"] == "model-level-count"  # type: ignore[union-attr]
    # A reference level that is too small withholds every coefficient of its category.
    few = people.copy()
    few.loc[few.offence == "drugs", "offence"] = "theft"
    few.loc[:5, "offence"] = "drugs"  # 6 people in the reference level
    out = tre.cox(few, "days", "reoffended", ["offence", "age"], contributor="pid")
    assert out.result.filter(like="offence", axis=0).isna().all().all()
    # 12 persons with 11 events and 3 coefficients: 8 residual degrees of freedom.
    small = people.iloc[:12].assign(reoffended=[True] * 11 + [False])
    out = tre.cox(small, "days", "reoffended", ["age", "male", "offence"], contributor="pid")
    assert out.result.isna().all().all() and out.record.status == "fail"


def test_cox_arguments(people: pd.DataFrame) -> None:
    with pytest.raises(DisclosureInputError, match="either as covariates"):
        tre.cox(people, "days", "reoffended", contributor="pid")
    with pytest.raises(DisclosureInputError, match="either as covariates"):
        tre.cox(people, "days", "reoffended", ["age"], formula="age", contributor="pid")
    gaps = people.astype({"age": float})
    gaps.loc[3, "age"] = np.nan
    with pytest.raises(DisclosureInputError, match="have no 'age'"):
        tre.cox(gaps, "days", "reoffended", ["age"], contributor="pid")
    with pytest.raises(DisclosureInputError, match="cannot be used"):
        tre.cox(gaps, "days", "reoffended", formula="age", contributor="pid")
    with pytest.raises(DisclosureInputError, match="ties"):
        tre.cox(people, "days", "reoffended", ["age"], ties="exact", contributor="pid")


def test_curves_without_events_or_with_everyone_at_once() -> None:
    censored = pd.DataFrame({"pid": range(30), "days": np.arange(30.0), "reoffended": False})
    km = tre.kaplan_meier(censored, "days", "reoffended", contributor="pid")
    assert (km.result["survival"] == 1).all() and (km.result["ci_lower"] == 1).all()
    assert km.result["censored"].tolist() == [10, 10, 10]
    at_once = pd.DataFrame({"pid": range(30), "days": 0.0, "reoffended": True})
    km = tre.kaplan_meier(at_once, "days", "reoffended", contributor="pid")
    assert km.result.reset_index()[["time", "events", "survival"]].values.tolist() == [
        [0.0, 30, 0.0]
    ]


def test_a_curve_of_all_but_two_people_is_flagged_in_the_notebook(people: pd.DataFrame) -> None:
    everyone = tre.kaplan_meier(people, "days", "reoffended", contributor="pid")
    verdicts = {v.rule_id: v.status for v in everyone.record.rules}
    assert verdicts["population-difference"] == "pass"
    tre.save(everyone, "everyone")
    fewer = tre.kaplan_meier(people.iloc[2:], "days", "reoffended", contributor="pid")
    verdict = {v.rule_id: v for v in fewer.record.rules}["population-difference"]
    assert verdict.status == "fail" and "isolates 2 people" in verdict.detail
    assert fewer.status == "fail"
