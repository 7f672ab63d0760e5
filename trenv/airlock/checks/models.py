"""What a server-side check reports: findings per rule, with the cells they concern.

A check's status is the worst of its findings, so adding a finding can only make a file
harder to release, never easier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["pass", "review", "fail"]
_RANK: dict[str, int] = {"pass": 0, "review": 1, "fail": 2}
# More cells than this in one finding are summarised by the message, not listed.
MAX_CELLS = 500


class Finding(BaseModel):
    rule_id: str
    status: Status
    message: str
    # (row, column), 0-based over the previewed table's data rows and all its columns
    # (index columns included); for notebooks (cell index, 0).
    cells: list[tuple[int, int]] = Field(default_factory=list)


class FileCheck(BaseModel):
    kind: str
    status: Status
    findings: list[Finding]
    summary: str
    # Header rows above the data in the previewed table (more than one for tables with
    # multi-level columns saved by tre.save); 0 for files that are not tables.
    header_rows: int = 1


@dataclass(frozen=True)
class DPLedgerEntry:
    """The server's ledger entry for one DP spend, as the service looks it up."""

    spend_id: int
    project: str
    dataset: str
    state: str
    plan_hash: str
    rho: float
    release: dict[str, Any] | None


def worst(statuses: Iterable[str]) -> Status:
    out: Status = "pass"
    for s in statuses:
        if _RANK[s] > _RANK[out]:
            out = s  # type: ignore[assignment]
    return out


def finding(
    rule_id: str, status: Status, message: str, cells: Iterable[tuple[int, int]] = ()
) -> Finding:
    """A finding with at most :data:`MAX_CELLS` cells (the message says how many)."""
    listed = list(cells)
    if len(listed) > MAX_CELLS:
        message = f"{message} (first {MAX_CELLS} of {len(listed)} cells marked)"
        listed = listed[:MAX_CELLS]
    return Finding(rule_id=rule_id, status=status, message=message, cells=listed)


def summarise(kind: str, findings: list[Finding], header_rows: int = 1) -> FileCheck:
    status = worst(f.status for f in findings)
    counts = {s: sum(f.status == s for f in findings) for s in ("fail", "review")}
    if status == "pass":
        summary = "All automatic checks passed."
    else:
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        first = next(f for f in findings if f.status == status)
        summary = f"{' and '.join(parts)} finding(s); first: {first.message}"
    return FileCheck(
        kind=kind, status=status, findings=findings, summary=summary, header_rows=header_rows
    )
