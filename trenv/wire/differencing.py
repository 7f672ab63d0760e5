"""Bodies of the differencing check (``POST /api/differencing/check``).

A notebook sends the output record of a table it has just made (``tre.crosstab``,
``tre.pivot_table``, ...); the server answers with its findings against every table of the
project that has left or could leave the TRE, which the notebook cannot see (other members'
workspaces and requests). The record stays a plain JSON object here: the server validates it
as an output record (trenv.disclosure.record), and only pydantic is imported in this package.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Below the trenv API URL (TRENV_API_URL, ending in /services/trenv/api).
CHECK_PATH = "differencing/check"


class DifferencingCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any] = Field(description="The table's output record, as tre.save writes it.")


class DifferencingFinding(BaseModel):
    rule_id: Literal["differencing-server", "population-difference"]
    status: Literal["pass", "review", "fail"]
    message: str


class DifferencingReport(BaseModel):
    project: str
    compared: int = Field(description="Saved tables of the project the record was combined with.")
    findings: list[DifferencingFinding]
