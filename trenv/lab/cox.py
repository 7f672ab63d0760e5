"""``tre.cox``: a Cox proportional hazards model's coefficient table, checked like every
model summary (:mod:`trenv.disclosure.models`): residual degrees of freedom are events minus
coefficients, and every category level needs enough persons, events and censored follow-ups.
Estimated with statsmodels' ``PHReg``; only coefficients are published, never the baseline
hazard (a survival table of its own: :func:`trenv.lab.survival.kaplan_meier`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import DisclosureInputError, Policy
from trenv.disclosure.models import check_model
from trenv.lab import session
from trenv.lab.models import finish_model
from trenv.lab.outputs import Output
from trenv.lab.survival import as_list, one_row_per_person, statsmodels_duration


def _design(frame: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """The covariates as model columns: numbers as they are, categories as indicators
    ``name[T.level]`` against their first level (a categorical's first category)."""
    columns: dict[str, np.ndarray] = {}
    for name in covariates:
        col = frame[name]
        if col.isna().any():
            raise DisclosureInputError(
                f"{int(col.isna().sum())} persons have no {name!r}: drop or fill them first "
                "(rows are never dropped silently)"
            )
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            columns[name] = col.to_numpy(dtype=float)
            continue
        cat = col.astype("category") if not isinstance(col.dtype, pd.CategoricalDtype) else col
        levels = [lvl for lvl in cat.cat.categories if (cat == lvl).any()]
        for level in levels[1:]:
            columns[f"{name}[T.{level}]"] = (cat == level).to_numpy(dtype=float)
    return pd.DataFrame(columns, index=frame.index)


def _level_counts(exog: pd.DataFrame, events: np.ndarray) -> dict[str, dict[str, int]]:
    """Persons, events and censored per indicator column, on both sides, and for the
    reference level of a category with several indicators (all of them 0)."""
    out: dict[str, dict[str, int]] = {}
    families: dict[str, list[str]] = {}
    for name in exog.columns:
        col = exog[name].to_numpy(dtype=float)
        if not set(np.unique(col).tolist()) <= {0.0, 1.0} or np.unique(col).size != 2:
            continue
        counts: dict[str, int] = {}
        for value in (1, 0):
            on = col == value
            counts[f"level={value}"] = int(on.sum())
            counts[f"level={value},event=1"] = int((on & events).sum())
            counts[f"level={value},event=0"] = int((on & ~events).sum())
        out[str(name)] = counts
        if "[T." in str(name):
            families.setdefault(str(name).split("[T.", 1)[0], []).append(str(name))
    for members in families.values():
        if len(members) < 2:
            continue  # one indicator: its level=0 side is the reference
        reference = (exog[members].to_numpy(dtype=float) == 0).all(axis=1)
        for name in members:
            out[name]["reference"] = int(reference.sum())
            out[name]["reference,event=1"] = int((reference & events).sum())
            out[name]["reference,event=0"] = int((reference & ~events).sum())
    return out


def cox(
    data: Any,
    duration: str,
    event: str,
    covariates: Sequence[str] | None = None,
    *,
    formula: str | None = None,
    contributor: str,
    alpha: float = 0.05,
    ties: str = "efron",
    policy: str | Path | Policy | None = None,
) -> Output:
    """A Cox proportional hazards model's coefficient table (hazard ratios, their
    confidence interval and p-values), checked like every model summary.

    ``data`` has one row per person (see :func:`trenv.lab.survival.kaplan_meier`). The
    model is given either as ``covariates`` (column names; text and categorical columns
    become indicators against their first level) or as the right-hand side of a
    ``formula`` (``"C(offence) + age"``, statsmodels' formula syntax). Residual degrees of
    freedom are events minus coefficients and must reach ``policy.model.min_dof``; every
    indicator needs
    ``policy.model.min_level_count`` persons, events and censored on both sides (and its
    category's reference level too). Only coefficients are published: the baseline hazard
    and individual survival predictions are a survival table of their own
    (use :func:`trenv.lab.survival.kaplan_meier`).
    """
    if (covariates is None) == (formula is None):
        raise DisclosureInputError("give the model either as covariates=[...] or as formula=")
    if not 0 < alpha < 1:
        raise DisclosureInputError(f"alpha must be between 0 and 1, not {alpha!r}")
    if ties not in ("efron", "breslow"):
        raise DisclosureInputError(f"ties must be 'efron' or 'breslow', not {ties!r}")
    _, hazard_regression = statsmodels_duration()
    if formula is not None:
        extra = [c for c in list(data.columns) if c not in (duration, event, contributor)]
    else:
        extra = as_list(covariates)
    frame, durations, events, _ = one_row_per_person(data, duration, event, contributor, extra)
    if formula is not None:
        design = frame.drop(columns=[duration, event, contributor]).assign(__duration__=durations)
        try:
            model = hazard_regression.PHReg.from_formula(
                f"__duration__ ~ {formula}",
                design,
                status=events.astype(float),
                ties=ties,
                missing="raise",
            )
        except Exception as exc:  # formula errors come from several parsers
            raise DisclosureInputError(
                f"the formula {formula!r} cannot be used ({type(exc).__name__}: {exc}); "
                "covariates with missing values must be filled or dropped first"
            ) from exc
        exog = pd.DataFrame(model.exog, columns=list(model.exog_names))
    else:
        exog = _design(frame, as_list(covariates)).reset_index(drop=True)
        if exog.shape[1] == 0:
            raise DisclosureInputError("the covariates give the model nothing to estimate")
        model = hazard_regression.PHReg(
            durations, exog, status=events.astype(float), ties=ties, missing="raise"
        )
    result = model.fit()
    names = [str(c) for c in exog.columns]
    params = np.asarray(result.params, dtype=float)
    bounds = np.asarray(result.conf_int(alpha=alpha), dtype=float)
    level = f"{100 * (1 - alpha):g}%"
    table = pd.DataFrame(
        {
            "coef": params,
            "exp(coef)": np.exp(params),
            "se(coef)": np.asarray(result.bse, dtype=float),
            f"exp(coef) lower {level}": np.exp(bounds[:, 0]),
            f"exp(coef) upper {level}": np.exp(bounds[:, 1]),
            "p": np.asarray(result.pvalues, dtype=float),
        },
        index=pd.Index(names, name="covariate"),
    )
    n_events = int(events.sum())
    verdict = check_model(
        "CoxPH",
        int(events.size),
        float(n_events - len(names)),
        _level_counts(exog, events),
        policy or session.default_policy(),
        events=n_events,
        parameters=len(names),
    )
    out = finish_model(table, verdict)
    out.record = out.record.model_copy(update={"contributor": contributor, "values": duration})
    return out
