"""Bodies of the DP query API (``POST /api/dp/query``, ``GET /api/dp/budget``).

The web API (trenv/web/api/dp.py) validates the query with :class:`DPQuery` and answers with
:class:`DPResult` and :class:`BudgetReport`; ``tre.dp`` in the notebook (trenv/lab/dp.py)
builds its query with the same model and reads the answers with the same models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Below the trenv API URL (TRENV_API_URL, ending in /services/trenv/api).
QUERY_PATH = "dp/query"
BUDGET_PATH = "dp/budget"

Statistic = Literal["count", "sum", "mean", "quantile", "histogram"]

# Strict types: a JSON string ("0.01") or a boolean (true) is refused where a number belongs,
# never converted. A number is a JSON number with or without a decimal point: JSON has one
# number type and JavaScript writes 1.0 as 1, so an integer is accepted where a float is
# expected (rho 1 is rho 1.0); NaN and infinities are refused. Counts (max_contributions)
# must be integers: 2.0 is refused.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Name = Annotated[str, Field(strict=True, min_length=1)]


class DPQuery(BaseModel):
    """A DP query as a client sends it: everything but the data's own facts."""

    model_config = ConfigDict(extra="forbid")

    dataset: Name = Field(description="Dataset name in the project's published data.")
    statistic: Statistic
    column: Name | None = Field(None, description="Value column (sum, mean, quantile, histogram).")
    bounds: tuple[Number, Number] | None = Field(
        None,
        description="(lower, upper) for sum, mean, quantile: from the codebook, never the data.",
    )
    group_by: list[Name] = Field(
        default_factory=list,
        description="Columns to group by; their public keys come from the codebook.",
    )
    rho: Number = Field(
        description="zCDP budget to spend on this query: a JSON number (> 0) within the "
        "project policy's per-query limits (default 1e-6 to 1)."
    )
    alpha: Number | None = Field(None, description="Quantile in (0, 1), e.g. 0.5 for the median.")
    bins: list[Number] | None = Field(None, description="Histogram bin edges, increasing.")
    max_contributions: int = Field(
        1, strict=True, description="Rows one person may contribute (an integer)."
    )


class DPResult(BaseModel):
    """A DP release with its ledger entry: the airlock verifies outputs against it."""

    dp: Literal[True] = True
    spend_id: int
    project: str
    dataset: str
    dataset_version: str
    statistic: str
    plan_hash: str
    rho: float
    epsilon: float
    delta: float
    release: dict[str, Any]
    budget: dict[str, Any] = Field(description="The budget on this dataset after the query.")


class BudgetReport(BaseModel):
    """The privacy budgets of the project of the caller's running server."""

    project: str
    budgets: list[dict[str, Any]]
