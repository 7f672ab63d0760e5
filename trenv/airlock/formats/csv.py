"""CSV tables: UTF-8 text that Python's csv module reads, checked cell by cell.

A CSV saved with ``tre.save`` is matched against its output record and re-checked under the
project's policy (:mod:`trenv.airlock.checks.saved`); any other CSV is inspected for what
its cells show: small counts, identifiers, row-level data, and totals that give suppressed
cells away. Cells that a spreadsheet program would run as formulas fail in both.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from trenv.airlock.checks.formulas import grid_formulas
from trenv.airlock.checks.grid import csv_rows
from trenv.airlock.checks.margins import margin_findings
from trenv.airlock.checks.models import FileCheck, summarise
from trenv.airlock.checks.saved import check_saved
from trenv.airlock.checks.tabular import inspect_grid, or_clean_table
from trenv.airlock.formats.text import utf8_text
from trenv.errors import Invalid

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile


def validate(path: str, data: bytes) -> None:
    text = utf8_text(path, data, "CSV table")
    try:
        for _row in csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")):
            pass
    except csv.Error as exc:
        raise Invalid(
            f"{path} is not a readable CSV table ({exc}).", "save it with to_csv"
        ) from None


def check(frozen: FrozenFile, *, policy: str, record: bytes | None) -> FileCheck:
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
    return summarise("table", or_clean_table(found))
