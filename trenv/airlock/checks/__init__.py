"""Server-side checks of frozen request files; results are never taken from the client.

``check_file`` picks the check for a file's kind (one module each) and combines the
findings: a file's status is its worst finding.
"""

from __future__ import annotations

from collections.abc import Callable

from trenv.airlock.checks.dp import check_dp
from trenv.airlock.checks.formulas import grid_formulas
from trenv.airlock.checks.grid import csv_rows
from trenv.airlock.checks.margins import margin_findings
from trenv.airlock.checks.media import check_figure, check_text, image_findings
from trenv.airlock.checks.models import (
    DPLedgerEntry,
    FileCheck,
    Finding,
    finding,
    summarise,
    worst,
)
from trenv.airlock.checks.notebook import scan_notebook
from trenv.airlock.checks.saved import check_saved
from trenv.airlock.checks.spreadsheet import check_workbook
from trenv.airlock.checks.tabular import inspect_grid
from trenv.airlock.intake import FrozenFile

__all__ = ["DPLedgerEntry", "FileCheck", "Finding", "check_file", "worst"]


def _no_ledger(_spend_id: int) -> DPLedgerEntry | None:
    return None


def check_file(
    frozen: FrozenFile,
    *,
    project: str,
    policy: str,
    record: bytes | None = None,
    dp_output: bytes | None = None,
    dp_lookup: Callable[[int], DPLedgerEntry | None] = _no_ledger,
) -> FileCheck:
    """Check one frozen file under the project's ``policy``. ``record`` and ``dp_output``
    are the sidecars read next to the file (untrusted descriptions to verify)."""
    if dp_output is not None:
        return summarise(
            "dp-output", check_dp(frozen, dp_output, project=project, dp_lookup=dp_lookup)
        )
    if frozen.kind == "table":
        rows = csv_rows(frozen.data)
        if record is not None:
            findings, header_rows = check_saved(frozen, record, policy)
            findings += grid_formulas(rows, header_rows=header_rows)
            return summarise("table", findings, header_rows)
        found = [
            *inspect_grid(rows, policy=policy),
            *margin_findings(rows, policy=policy),
            *grid_formulas(rows),
        ]
        if not any(f.status != "pass" for f in found):
            found.insert(
                0, finding("table", "pass", "No small counts, identifiers or row-level data found.")
            )
        return summarise("table", found)
    if frozen.kind == "spreadsheet":
        found = check_workbook(frozen.data, policy)
        if not any(f.status != "pass" for f in found):
            found.insert(
                0, finding("table", "pass", "No small counts, identifiers or row-level data found.")
            )
        return summarise("spreadsheet", found)
    if frozen.kind == "figure":
        if record is not None and frozen.media_type == "image/png":
            findings, _ = check_saved(frozen, record, policy)
            return summarise("figure", [*findings, *image_findings(frozen)], header_rows=0)
        return summarise("figure", check_figure(frozen), header_rows=0)
    if frozen.kind in ("text", "document"):
        return summarise(frozen.kind, check_text(frozen), header_rows=0)
    if frozen.kind == "notebook":
        return summarise("notebook", scan_notebook(frozen.data), header_rows=0)
    return summarise(
        frozen.kind,
        [finding("kind", "fail", f"Files of kind {frozen.kind!r} cannot be checked.")],
        header_rows=0,
    )
