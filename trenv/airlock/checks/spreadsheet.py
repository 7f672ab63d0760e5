"""Workbooks: every sheet is inspected like a CSV (and its totals audited); hidden sheets
fail because the checker would not see them, and the preview shows the first sheet only.
Formulas are found by the cells' types, not only their text."""

from __future__ import annotations

from trenv.airlock.checks.formulas import workbook_formulas
from trenv.airlock.checks.grid import xlsx_sheets
from trenv.airlock.checks.margins import margin_findings
from trenv.airlock.checks.models import Finding, finding
from trenv.airlock.checks.tabular import inspect_grid


def check_workbook(data: bytes, policy: str) -> list[Finding]:
    try:
        sheets = xlsx_sheets(data)
        formulas = workbook_formulas(data)
    except Exception as exc:  # openpyxl raises many types for malformed parts
        return [finding("workbook", "fail", f"The workbook cannot be read ({type(exc).__name__}).")]
    if not sheets:
        return [finding("workbook", "fail", "The workbook has no sheets.")]
    out: list[Finding] = []
    if len(sheets) > 1:
        out.append(
            finding(
                "sheets",
                "review",
                f"The workbook has {len(sheets)} sheets; the "
                f"preview shows the first ({sheets[0].name!r}), a checker must open "
                "the others.",
            )
        )
    for n, sheet in enumerate(sheets):
        if sheet.state != "visible":
            out.append(
                finding(
                    "hidden-sheet",
                    "fail",
                    f"Sheet {sheet.name!r} is hidden: its content would not be seen by a checker.",
                )
            )
        if sheet.truncated:
            out.append(
                finding(
                    "row-limit",
                    "fail",
                    f"Sheet {sheet.name!r} has too many rows to check; export a summary instead.",
                )
            )
        where = f"sheet {sheet.name!r}"
        out += inspect_grid(sheet.rows, policy=policy, where=where, positions=n == 0)
        out += margin_findings(sheet.rows, policy=policy, where=where, positions=n == 0)
    return out + formulas
