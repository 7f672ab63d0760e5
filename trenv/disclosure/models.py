"""Checks for fitted models: residual degrees of freedom and per-category counts.

A regression with few residual degrees of freedom is close to a saturated model that
reproduces individual records; a coefficient of a category level seen in a handful of
records (or, for logistic models, a level x outcome combination) describes those people.
"""

from __future__ import annotations

from dataclasses import dataclass

from trenv.disclosure.policy import Policy, load_policy
from trenv.disclosure.record import ModelCheck, OutputRecord, RuleVerdict


@dataclass(frozen=True)
class ModelVerdict:
    record: OutputRecord
    dof_ok: bool
    small_levels: list[str]  # names of coefficients whose level has too few records


def check_model(
    model_type: str,
    n_obs: int,
    df_resid: float,
    level_counts: dict[str, dict[str, int]],
    policy: str | Policy = "trenv-default",
    *,
    events: int | None = None,
    parameters: int | None = None,
) -> ModelVerdict:
    """``level_counts`` maps a coefficient (dummy column) to counts per group, e.g.
    ``{"offence[T.arson]": {"all": 7}}`` or, for logistic models, per outcome value.
    Survival models also record their ``events`` and fitted ``parameters`` (their
    ``df_resid`` is events minus parameters)."""
    pol = load_policy(policy)
    rules = []
    action = pol.model.action
    dof_ok = df_resid >= pol.model.min_dof
    small = sorted(
        name
        for name, counts in level_counts.items()
        if any(n < pol.model.min_level_count for n in counts.values())
    )
    if action != "off":
        rules.append(
            RuleVerdict(
                rule_id="model-dof",
                action=action,
                status="pass" if dof_ok else ("fail" if action == "suppress" else "review"),
                flagged_cells=0 if dof_ok else 1,
                detail=f"residual degrees of freedom {df_resid:g} "
                f"(at least {pol.model.min_dof} needed)",
            )
        )
        rules.append(
            RuleVerdict(
                rule_id="model-level-count",
                action=action,
                status="pass" if not small else ("fail" if action == "suppress" else "review"),
                flagged_cells=len(small),
                detail=(
                    f"levels with fewer than {pol.model.min_level_count} records: {small}"
                    if small
                    else ""
                ),
                cells=[[[name], []] for name in small],
            )
        )
    failing = any(r.status == "fail" for r in rules)
    reviewing = any(r.status == "review" for r in rules)
    record = OutputRecord(
        kind="model",
        statistic=model_type,
        policy=pol.name,
        policy_version=pol.version,
        policy_parameters=pol.model_dump(mode="json"),
        status="fail" if failing else ("review" if reviewing else "pass"),
        rules=rules,
        model=ModelCheck(
            model_type=model_type,
            n_obs=n_obs,
            df_resid=df_resid,
            level_counts=level_counts,
            events=events,
            parameters=parameters,
        ),
    )
    return ModelVerdict(record=record, dof_ok=dof_ok, small_levels=small)
