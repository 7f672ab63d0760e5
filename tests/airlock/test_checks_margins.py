"""Plain tables whose blanked cells the printed margins give back.

A researcher who blanks a small cell by hand but keeps the total has published the cell:
total minus the others. The server audits every uploaded table with margins the way the
engine audits tables made with ``tre.save`` (linear programming over the additive
relations), with the blanked cells as unknowns.
"""

from __future__ import annotations

import pytest

from tests.airlock.test_checks_files import by_rule, check, frozen, xlsx


def recovered(text: str, name: str = "t.csv") -> list:
    c = check(frozen(name, text))
    return [f for f in by_rule(c, "margins-recover") if f.status == "fail"]


@pytest.mark.parametrize("blank", ["", "-", "x", "X", "*"])
def test_a_blank_cell_that_the_total_row_gives_back_fails(blank: str) -> None:
    text = f"offence,n\ntheft,120\nfraud,{blank}\nburglary,95\nTotal,218\n"
    c = check(frozen("t.csv", text))
    assert c.status == "fail"
    (hit,) = by_rule(c, "margins-recover")
    assert hit.status == "fail" and hit.cells == [(1, 1)]
    assert "fraud" in hit.message and "= 3" in hit.message


@pytest.mark.parametrize("name", ["total", "TOTAAL", "All", "sum", "Subtotal"])
def test_margins_are_found_by_name(name: str) -> None:
    text = f"region,theft,fraud,{name}\nnorth,50,,62\nsouth,40,30,70\n"
    (hit,) = recovered(text)
    assert "north" in hit.message and "fraud" in hit.message and "= 12" in hit.message
    assert hit.cells == [(0, 2)]


def test_margins_are_found_by_arithmetic() -> None:
    # The last row has no label, but it is the sum of the rows above in the 2022 column.
    text = "offence,2021,2022\ntheft,100,110\nfraud,x,20\nburglary,50,60\n,153,190\n"
    (hit,) = recovered(text)
    assert "fraud" in hit.message and "2021" in hit.message and "= 3" in hit.message
    # A column that is the sum of the others in every complete row is a margin too.
    text = "region,men,women,boys,everyone\nnorth,60,50,10,120\nsouth,*,40,12,56\n"
    (hit,) = recovered(text)
    assert "south" in hit.message and "men" in hit.message and "= 4" in hit.message


def test_subtotals_sum_their_own_block() -> None:
    text = (
        "offence,n\ntheft,120\nburglary,95\nsubtotal,215\n"
        "fraud,-\nforgery,40\nsubtotal,47\ntotal,262\n"
    )
    (hit,) = recovered(text)
    assert "fraud" in hit.message and "= 7" in hit.message


def test_a_cell_narrowed_below_the_protection_or_the_threshold_fails() -> None:
    # Two blanks in a row whose total is 4: each lies in [0, 4], narrower than the
    # policy's protection of 5.
    (hit, *_) = recovered("offence,men,women,total\ntheft,100,50,150\nfraud,,,4\n")
    assert "[0, 4]" in hit.message and "protection" in hit.message
    # A lies in [4, 9]: wide enough, but certainly a small non-zero count.
    text = "g,c1,c2,total\nA,,,9\nB,,,32\nC,40,50,90\ntotal,76,55,131\n"
    hits = recovered(text)
    first = next(h for h in hits if h.cells == [(0, 1)])
    assert "[4, 9]" in first.message and "threshold of 10" in first.message


def test_well_protected_blanks_pass_and_say_so() -> None:
    # The suppression pattern of a crosstab with margins: every hidden cell can move by 43.
    text = "region,fraud,theft,All\neast,,,43\nnorth,,,80\nsouth,40,40,80\nAll,83,120,203\n"
    c = check(frozen("t.csv", text))
    assert c.status == "pass"
    (audit,) = by_rule(c, "margins-recover")
    assert audit.status == "pass" and "4 blank cells" in audit.message


@pytest.mark.parametrize(
    "text",
    [
        "offence,n\ntheft,120\nfraud,\nburglary,95\n",  # no margins
        "region,mean_age\nnorth,34.5\nsouth,\nTotal,35.1\n",  # a total of means is no sum
        "offence,n\ntheft,120\nfraud,\nburglary,95\nTotal,200\n",  # people in several rows
        "offence,n\ntheft,120\nfraud,40\nburglary,95\nTotal,255\n",  # nothing blanked
    ],
    ids=["no-margins", "means", "not-a-sum", "complete"],
)
def test_tables_without_recoverable_blanks_keep_their_result(text: str) -> None:
    c = check(frozen("t.csv", text))
    assert c.status == "pass" and recovered(text) == []


def test_a_placeholder_does_not_hide_small_counts_in_its_column() -> None:
    c = check(frozen("t.csv", "offence,n\ntheft,120\nfraud,-\nforgery,3\n"))
    assert by_rule(c, "small-counts")[0].cells == [(2, 1)]


def test_workbook_sheets_are_audited_too() -> None:
    data = xlsx(
        ("counts", [["offence", "n"], ["theft", 120], ["fraud", None], ["total", 125]], "visible")
    )
    c = check(frozen("t.xlsx", data))
    (hit,) = [f for f in by_rule(c, "margins-recover") if f.status == "fail"]
    assert "= 5" in hit.message and hit.cells == [(1, 1)]
