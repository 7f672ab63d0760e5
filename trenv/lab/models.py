"""``tre.model_summary``: coefficient tables of fitted models, checked for DoF and levels.

Accepts fitted statsmodels OLS/Logit results (``sm.OLS(...).fit()``, ``smf.logit(...)``)
and scikit-learn ``LinearRegression``/``LogisticRegression`` with the ``X``/``y`` they were
fitted on (scikit-learn keeps neither the data nor the degrees of freedom).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trenv.disclosure import DisclosureInputError, Policy
from trenv.disclosure.models import ModelVerdict, check_model
from trenv.lab import session
from trenv.lab.outputs import Output, register


def _is_dummy(col: np.ndarray) -> bool:
    vals = np.unique(col[~np.isnan(col)])
    return len(vals) == 2 and set(vals.tolist()) == {0.0, 1.0}


def _level_counts(exog: pd.DataFrame, y: np.ndarray | None) -> dict[str, dict[str, int]]:
    """Records per dummy level (both sides), and per outcome for binary outcomes."""
    out: dict[str, dict[str, int]] = {}
    for name in exog.columns:
        col = exog[name].to_numpy(dtype=float)
        if not _is_dummy(col):
            continue
        counts = {"level=1": int((col == 1).sum()), "level=0": int((col == 0).sum())}
        if y is not None:
            for outcome in np.unique(y):
                counts[f"level=1,y={outcome:g}"] = int(((col == 1) & (y == outcome)).sum())
        out[str(name)] = counts
    return out


def _from_statsmodels(result: Any) -> tuple[str, pd.DataFrame, int, float, dict]:
    model = result.model
    names = list(model.exog_names)
    exog = pd.DataFrame(model.exog, columns=names)
    kind = type(model).__name__
    y = np.asarray(model.endog, dtype=float) if kind in ("Logit", "Probit") else None
    table = pd.DataFrame(
        {
            "coef": np.asarray(result.params),
            "std err": np.asarray(result.bse),
            "P>|z|" if y is not None else "P>|t|": np.asarray(result.pvalues),
        },
        index=names,
    )
    return kind, table, int(result.nobs), float(result.df_resid), _level_counts(exog, y)


def _from_sklearn(model: Any, x: Any, y: Any) -> tuple[str, pd.DataFrame, int, float, dict]:
    if x is None or y is None:
        raise DisclosureInputError(
            "scikit-learn models do not keep their data: call model_summary(model, X, y) "
            "with the X and y the model was fitted on"
        )
    xf = x.to_pandas() if type(x).__module__.startswith("polars") else pd.DataFrame(x)
    yv = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=float).ravel()
    coef = np.atleast_2d(model.coef_)
    if coef.shape[0] != 1:
        raise DisclosureInputError("only single-outcome (binary or continuous) models")
    names = [str(c) for c in xf.columns]
    intercept = np.atleast_1d(getattr(model, "intercept_", 0.0))
    fitted_intercept = bool(getattr(model, "fit_intercept", False))
    table = pd.DataFrame({"coef": coef[0]}, index=names)
    if fitted_intercept:
        table = pd.concat([pd.DataFrame({"coef": [float(intercept[0])]}, index=["const"]), table])
    n = len(yv)
    df_resid = float(n - len(names) - int(fitted_intercept))
    kind = type(model).__name__
    logistic = kind == "LogisticRegression"
    return kind, table, n, df_resid, _level_counts(xf, yv if logistic else None)


def model_summary(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    policy: str | Path | Policy | None = None,
) -> Output:
    """The coefficient table of a fitted model, with coefficients of too-small levels (or all
    of them, if the residual degrees of freedom are too few) withheld."""
    if hasattr(model, "model") and hasattr(model, "params"):
        kind, table, n, dof, levels = _from_statsmodels(model)
    elif hasattr(model, "coef_"):
        kind, table, n, dof, levels = _from_sklearn(model, X, y)
    else:
        raise DisclosureInputError(
            f"{type(model).__name__} is not a fitted statsmodels result or scikit-learn "
            "linear/logistic model; fit it first"
        )
    verdict = check_model(kind, n, dof, levels, policy or session.default_policy())
    return finish_model(table, verdict)


def finish_model(table: pd.DataFrame, verdict: ModelVerdict) -> Output:
    """The coefficient table with what the verdict withholds blanked and flagged, as an
    output of the session."""
    safe = table.copy()
    pol_action = verdict.record.policy_parameters["model"]["action"]
    if pol_action == "suppress":
        if not verdict.dof_ok:
            safe.loc[:, :] = np.nan
        else:
            safe.loc[[c for c in verdict.small_levels if c in safe.index], :] = np.nan
    flags = pd.DataFrame("", index=safe.index, columns=safe.columns)
    for name in verdict.small_levels:
        if name in flags.index:
            flags.loc[name, :] = "model-level-count"
    if not verdict.dof_ok:
        flags.loc[:, :] = "model-dof"
    record = verdict.record.model_copy(
        update={"code": session.calling_code(), "trenv_version": session.trenv_version()}
    )
    return register(Output(result=safe, record=record, flags=flags))
