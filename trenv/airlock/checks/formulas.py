"""Cells that a spreadsheet program would run as formulas: CSV/formula injection and DDE.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or
``@`` as a formula, in a CSV as much as in a workbook. Such a cell can call out
(``=HYPERLINK``, ``=WEBSERVICE``, ``=IMPORTXML``), start a program through DDE
(``=cmd|' /C calc'!A0``), or show the checker a computed value instead of what the file
holds. None of that belongs in a released table, so every such cell fails, named by its
spreadsheet reference. Signed numbers (``-3.5``, ``+12``, ``-4%``) and placeholders made
of dashes are values, not formulas; leading whitespace is skipped, because some programs
strip it before they look. In a workbook the cell's type decides too: a live formula
fails even when it computes a harmless number.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trenv.airlock.checks.grid import MAX_SHEET_ROWS
from trenv.airlock.checks.models import Finding, finding

_TRIGGERS = "=+-@"
_SIGNED_NUMBER = re.compile(r"^[+-]\s*(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?$")
_DASHES = re.compile(r"^[-+]+$")
# References listed in a message; the rest are counted.
MAX_NAMED = 12


def looks_like_formula(value: str) -> bool:
    """True if a spreadsheet program would run ``value`` as a formula."""
    text = value.lstrip(" \t\r\n")
    if len(text) < 2 or text[0] not in _TRIGGERS:
        return False
    return not (_SIGNED_NUMBER.match(text) or _DASHES.match(text))


def cell_ref(row: int, column: int) -> str:
    """The spreadsheet reference of 0-based (row, column) of the whole grid: (2, 0) is A3."""
    letters = ""
    n = column + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


def _message(prefix: str, refs: list[str], what: str) -> str:
    named = ", ".join(refs[:MAX_NAMED]) + (
        f" and {len(refs) - MAX_NAMED} more" if len(refs) > MAX_NAMED else ""
    )
    cells = "1 cell" if len(refs) == 1 else f"{len(refs)} cells"
    return (
        f"{prefix}{cells} {what} ({named}): a spreadsheet program would run them "
        "(formula injection, DDE, links out). Write the value itself, or put a ' before "
        "the leading =, +, - or @."
    )


def grid_formulas(
    rows: list[list[str]], *, header_rows: int = 1, where: str = "", positions: bool = True
) -> list[Finding]:
    """A failing finding naming every formula-like cell of a CSV grid (header included);
    marked cells are (data row, column) under ``header_rows`` header rows."""
    hits = [
        (i, j) for i, row in enumerate(rows) for j, v in enumerate(row) if looks_like_formula(v)
    ]
    if not hits:
        return []
    prefix = f"{where}: " if where else ""
    refs = [cell_ref(i, j) for i, j in hits]
    marked = [(i - header_rows, j) for i, j in hits if i >= header_rows] if positions else []
    return [finding("formula", "fail", _message(prefix, refs, "looking like a formula"), marked)]


@dataclass(frozen=True)
class SheetFormulas:
    name: str
    refs: list[str]  # spreadsheet references, e.g. "B3"
    cells: list[tuple[int, int]]  # 0-based (row, column) of the whole sheet


def _formula_cells(cells: Iterable[Any]) -> Iterable[tuple[str, int, int]]:
    for cell in cells:
        value = getattr(cell, "value", None)  # empty cells of read-only sheets have no type
        if value is None:
            continue
        live = cell.data_type == "f"  # formulas, array formulas, data-table formulas
        if live or (isinstance(value, str) and looks_like_formula(value)):
            yield cell.coordinate, cell.row - 1, cell.column - 1


def xlsx_formulas(data: bytes, max_rows: int = MAX_SHEET_ROWS) -> list[SheetFormulas]:
    """Per sheet, the cells that hold a formula (by type) or text that starts like one."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False)
    try:
        out = []
        for ws in wb.worksheets:
            found: list[tuple[str, int, int]] = []
            for n, row in enumerate(ws.iter_rows()):
                if n >= max_rows:
                    break  # the sheet is failed for its size by the workbook check
                found += _formula_cells(row)
            out.append(
                SheetFormulas(ws.title, [f[0] for f in found], [(f[1], f[2]) for f in found])
            )
        return out
    finally:
        wb.close()


def workbook_formulas(data: bytes) -> list[Finding]:
    """Failing findings, one per sheet with formula cells; only the first sheet (the one
    previewed) has its cells marked, as (data row, column) under one header row."""
    out = []
    for n, sheet in enumerate(xlsx_formulas(data)):
        if not sheet.refs:
            continue
        marked = [(i - 1, j) for i, j in sheet.cells if i >= 1] if n == 0 else []
        message = _message(
            f"sheet {sheet.name!r}: ", sheet.refs, "holding a formula or looking like one"
        )
        out.append(finding("formula", "fail", message, marked))
    return out
