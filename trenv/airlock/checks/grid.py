"""Tables as grids of strings: the one parser that both the checks and the preview use, so
a flagged (row, column) in a check is the same cell the checker sees highlighted."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

# A workbook sheet with more rows than this is not read further (and is a finding).
MAX_SHEET_ROWS = 200_000


# Delimiters a table may come with: Dutch spreadsheets write ";" (the comma is the decimal
# sign), tau-ARGUS files too; tab and "|" are common exports. Comma first: it wins ties.
DELIMITERS = (",", ";", "\t", "|")
SNIFF_CHARS = 64 * 1024  # of the start of the file read to choose the delimiter
STEADY = 0.9  # share of the rows that must have the same number of fields


def csv_rows(data: bytes) -> list[list[str]]:
    """All rows of a UTF-8 CSV (a byte-order mark is ignored), split at its delimiter.

    pandas' ``to_csv`` writes commas, but a file split at the wrong delimiter is one column
    of text, whose counts no check sees: a table of small counts written with ";" passed
    every automatic check. So the delimiter is the one of ``DELIMITERS`` that splits the
    first rows into the most fields, the same number in nearly every row."""
    text = data.decode("utf-8").removeprefix("\ufeff")
    return [list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))]


def _delimiter(text: str) -> str:
    head = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS:
        head = head[: head.rfind("\n") + 1] or head  # whole lines only
    best, best_fields = ",", 1
    for delimiter in DELIMITERS:
        widths = [len(r) for r in csv.reader(io.StringIO(head), delimiter=delimiter) if any(r)]
        if not widths:
            continue
        fields = max(set(widths), key=widths.count)
        if fields > best_fields and widths.count(fields) >= STEADY * len(widths):
            best, best_fields = delimiter, fields
    return best


@dataclass(frozen=True)
class Sheet:
    name: str
    state: str  # "visible", "hidden" or "veryHidden"
    rows: list[list[str]]
    truncated: bool


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def xlsx_sheets(data: bytes, max_rows: int = MAX_SHEET_ROWS) -> list[Sheet]:
    """Every sheet's cached values (never formulas) as strings, read-only."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    try:
        sheets = []
        for ws in wb.worksheets:
            rows: list[list[str]] = []
            truncated = False
            for row in ws.iter_rows(values_only=True):
                if len(rows) >= max_rows:
                    truncated = True
                    break
                rows.append([_text(v) for v in row])
            while rows and not any(rows[-1]):
                rows.pop()  # openpyxl reports formatted but empty trailing rows
            width = max((len(r) for r in rows), default=0)
            rows = [r + [""] * (width - len(r)) for r in rows]
            sheets.append(Sheet(ws.title, ws.sheet_state, rows, truncated))
        return sheets
    finally:
        wb.close()
