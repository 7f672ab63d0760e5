"""The project's ledger of release candidates: the records saved in ``outputs/``."""

from __future__ import annotations

import json

from trenv.disclosure.differencing import Ledger
from trenv.disclosure.populations import differencing_findings
from trenv.disclosure.record import OutputRecord, RuleVerdict
from trenv.lab import session


def saved_ledger() -> Ledger:
    """Every table record saved in the workspace, oldest first."""
    folder = session.workspace() / "outputs"
    records = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.record.json"), key=lambda p: p.stat().st_mtime):
            try:
                records.append(OutputRecord.model_validate(json.loads(path.read_text())))
            except (ValueError, OSError):
                continue  # not a trenv record (or unreadable): nothing to combine with
    return Ledger(records)


def with_differencing(record: OutputRecord) -> OutputRecord:
    """Add the ``differencing`` verdict: does this table, with what was saved, pin a
    suppressed cell down?"""
    if record.kind != "table":
        return record
    # Tables about other data (contradicting totals) are left out, not combined.
    findings = differencing_findings(saved_ledger().records, record)
    verdict = RuleVerdict(
        rule_id="differencing",
        action="suppress",
        status="fail" if findings else "pass",
        flagged_cells=len(findings),
        detail="; ".join(f"{f.row}/{f.column}: {f.reason()}" for f in findings),
        cells=[[f.row, f.column] for f in findings],
    )
    status = "fail" if findings else record.status
    return record.model_copy(update={"rules": [*record.rules, verdict], "status": status})
