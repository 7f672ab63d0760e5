"""The output record: what was checked, how, with which verdicts, for the airlock.

The record carries the per-cell counts the verdict was based on (rows, contributors,
sums, largest contributions) so that the airlock can re-run every rule server-side from
the record and the policy; it never carries row-level data or contributor ids. Because
it holds the true values of suppressed cells it is itself confidential: ``public()``
gives the view that may travel with a release.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = "trenv.output-record/1"


class RuleVerdict(BaseModel):
    rule_id: str
    action: Literal["suppress", "review"]
    status: Literal["pass", "fail", "review"]
    flagged_cells: int
    detail: str = ""


class CellRecord(BaseModel):
    row: list[str]
    column: list[str]
    margin: bool
    published: float | None  # the safe value (None if suppressed)
    value: float | None  # the unmitigated statistic
    rows: int
    contributors: int
    sum: float
    abs_sum: float
    top: list[float]  # largest absolute per-contributor totals, largest first
    negatives: int
    missing: int
    all_equal: bool
    near: int | None = None  # contributors at/around a position statistic
    flags: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    suppressed: Literal["primary", "secondary"] | None = None
    interval: tuple[float, float] | None = None  # LP-audited feasible range if suppressed


class ModelCheck(BaseModel):
    model_type: str
    n_obs: int
    df_resid: float
    level_counts: dict[str, dict[str, int]] = Field(default_factory=dict)


class OutputRecord(BaseModel):
    schema_version: Literal["trenv.output-record/1"] = SCHEMA_VERSION
    kind: Literal["table", "figure", "model"]
    statistic: str
    values: str | None = None
    index: list[str] = Field(default_factory=list)
    columns: list[str] = Field(default_factory=list)
    contributor: str | None = None
    margins: bool = False
    normalize: str | None = None
    policy: str
    policy_version: str
    policy_parameters: dict[str, Any]
    rounding: str = "none"
    status: Literal["pass", "review", "fail"]
    rules: list[RuleVerdict]
    cells: list[CellRecord] = Field(default_factory=list)
    model: ModelCheck | None = None
    audit_passed: bool | None = None
    code: str = ""
    trenv_version: str = ""
    files: dict[str, str] = Field(default_factory=dict)  # file name -> sha256
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def flagged(self) -> list[CellRecord]:
        return [c for c in self.cells if c.flags]

    def public(self) -> dict[str, Any]:
        """The record without anything a suppressed cell's true value could be read from."""
        data = self.model_dump(mode="json")
        for cell in data["cells"]:
            if cell["suppressed"] is not None:
                for key in ("value", "sum", "abs_sum", "rows", "contributors", "near"):
                    cell[key] = None
                cell["top"] = []
                cell["interval"] = None
            # Individual contributions never leave, even for published cells.
            cell["top"] = []
        return data
