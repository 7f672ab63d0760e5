"""Excel workbooks: refused at intake if they carry macros, links to other workbooks,
embedded objects, controls or encrypted parts; then every sheet is inspected like a CSV.

Every sheet's totals are audited too. Hidden sheets fail because the checker would not see
them, and the preview shows the first sheet only. Formulas are found by the cells' types,
not only their text.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from trenv.airlock.checks.formulas import workbook_formulas
from trenv.airlock.checks.grid import xlsx_sheets
from trenv.airlock.checks.margins import margin_findings
from trenv.airlock.checks.models import FileCheck, Finding, finding, summarise
from trenv.airlock.checks.tabular import inspect_grid, or_clean_table
from trenv.errors import Invalid

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile

_XLSX_MAX_UNCOMPRESSED = 256 * 1024 * 1024
_XLSX_FORBIDDEN = (
    ("vbaproject.bin", "macros"),
    ("/externallinks/", "links to other workbooks"),
    ("/embeddings/", "embedded objects"),
    ("/activex/", "ActiveX controls"),
    ("oleobject", "embedded OLE objects"),
    ("/ctrlprops/", "form controls"),
)


# --- intake ----------------------------------------------------------------------------------


def xlsx_problems(data: bytes) -> list[str]:
    """Why an .xlsx may not leave (empty if it is a plain workbook); ``ValueError`` if it
    is not a workbook at all."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError("not a zip archive") from exc
    with archive:
        infos = archive.infolist()
        names = {i.filename for i in infos}
        if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
            raise ValueError("no workbook inside")
        problems: set[str] = set()
        total = 0
        for info in infos:
            lower = "/" + info.filename.lower()
            for needle, why in _XLSX_FORBIDDEN:
                if needle in lower:
                    problems.add(why)
            if info.flag_bits & 0x1:
                problems.add("encrypted parts")
            total += info.file_size
        if total > _XLSX_MAX_UNCOMPRESSED:
            problems.add("more content than can be checked (it unpacks to over 256 MiB)")
        types = archive.read("[Content_Types].xml").lower()
        if b"macroenabled" in types or b"vbaproject" in types:
            problems.add("macros")
        if b"externallink" in types:
            problems.add("links to other workbooks")
        if b"oleobject" in types or b"activex" in types:
            problems.add("embedded OLE objects")
    return sorted(problems)


def validate(path: str, data: bytes) -> None:
    try:
        problems = xlsx_problems(data)
    except ValueError as exc:
        raise Invalid(
            f"{path} is named .xlsx but is not an Excel workbook ({exc}).",
            "save the table as .xlsx from pandas (to_excel) or export it as CSV",
        ) from None
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError) as exc:
        raise Invalid(f"{path} is a damaged workbook ({exc}).", "save it again") from None
    if problems:
        raise Invalid(
            f"{path} contains {', '.join(problems)}, which cannot leave the TRE.",
            "export the table as CSV or save a plain workbook with only values",
        )


# --- checks ----------------------------------------------------------------------------------


def check(frozen: FrozenFile, *, policy: str, record: bytes | None) -> FileCheck:
    """``tre.save`` writes CSV, so a workbook is always inspected as it is."""
    return summarise("spreadsheet", or_clean_table(workbook_findings(frozen.data, policy)))


def workbook_findings(data: bytes, policy: str) -> list[Finding]:
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
