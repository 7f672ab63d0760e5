"""Differencing of plain count tables (CSV or workbook sheets not made with ``tre.save``).

Two tables of almost the same people, asked for in separate requests, give away the few
people between them: 120 thefts in one, 118 in the other. The server compares every count
table of a new file with the project's released tables and with the tables of its other
open requests (a checker could approve both), whichever way either was made.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import trenv.lab as tre
from tests.airlock.test_checks_files import xlsx
from tests.airlock.test_server_differencing import people, save_alone
from tests.web.airlock_world import Tx, World, build_world
from trenv.airlock.checks.counts import count_cells, near_counts
from trenv.airlock.checks.grid import csv_rows
from trenv.config import Settings

FIRST = b"offence,n\ntheft,120\nfraud,40\n"
SECOND = b"offence,n\ntheft,118\nfraud,40\n"


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def findings(request: dict[str, Any], path: str, rule: str) -> list[dict[str, Any]]:
    (f,) = [f for f in request["file_list"] if f["path"] == path]
    return [x for x in f["check"]["findings"] if x["rule_id"] == rule]


def test_two_plain_tables_in_separate_open_requests_fail(w: World) -> None:
    first = w.submitted(("outputs/all.csv", FIRST))
    assert findings(first, "outputs/all.csv", "population-difference") == []
    second = w.submitted(("outputs/most.csv", SECOND))
    (hit,) = findings(second, "outputs/most.csv", "population-difference")
    assert hit["status"] == "fail"
    message = hit["message"]
    assert "offence=theft" in message and "118 in outputs/most.csv" in message
    assert "outputs/all.csv" in message and f"request {first['id']}" in message
    assert "fewer than 10 people" in message
    # The other table's count is not quoted: this message travels with this file only.
    assert "120" not in message
    assert second["file_list"][0]["check"]["status"] == "fail"


def test_a_released_table_counts_and_a_withdrawn_one_does_not(w: World) -> None:
    gone = w.submitted(("outputs/gone.csv", b"offence,n\ntheft,117\nfraud,40\n"))
    assert w.call("POST", f"/requests/{gone['id']}/withdraw", "srv-rita").status_code == 200
    released = w.submitted(("outputs/all.csv", FIRST))
    w.approve_all(released)
    assert w.call("POST", f"/requests/{released['id']}/release", "t-rita").status_code == 200
    second = w.submitted(("outputs/most.csv", SECOND))
    (hit,) = findings(second, "outputs/most.csv", "population-difference")
    assert "outputs/all.csv" in hit["message"] and "gone.csv" not in hit["message"]


def test_a_workbook_sheet_is_compared_with_a_plain_csv(w: World) -> None:
    w.submitted(("outputs/all.csv", FIRST))
    book = xlsx(("by offence", [["offence", "n"], ["theft", 118], ["fraud", 40]], "visible"))
    second = w.submitted(("outputs/most.xlsx", book))
    (hit,) = findings(second, "outputs/most.xlsx", "population-difference")
    assert "sheet 'by offence'" in hit["message"] and "outputs/all.csv" in hit["message"]


def test_a_plain_table_is_compared_with_a_saved_one_both_ways(
    w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = people()  # 80 people in north, 80 in south, 43 in east
    saved = tre.pivot_table(
        df, index="region", aggfunc="count", contributor="person", policy="trenv-default"
    )
    outputs = w.workspace() / "outputs"
    outputs.mkdir(parents=True)
    for path in save_alone(tmp_path, monkeypatch, saved, "by_region").iterdir():
        shutil.copy(path, outputs / path.name)
    w.submitted(("outputs/by_region.csv", (outputs / "by_region.csv").read_bytes()))
    # The same table typed in by hand, without the two people of the east region.
    plain = w.submitted(("outputs/typed.csv", b"region,count\neast,41\nnorth,80\nsouth,80\n"))
    (hit,) = findings(plain, "outputs/typed.csv", "population-difference")
    assert "east" in hit["message"] and "outputs/by_region.csv" in hit["message"]
    # And the saved table asked for again is compared with the typed one.
    again = w.submitted(("outputs/by_region.csv", (outputs / "by_region.csv").read_bytes()))
    (hit,) = findings(again, "outputs/by_region.csv", "population-difference")
    assert "outputs/typed.csv" in hit["message"] and "region=east" in hit["message"]


def test_equal_tables_and_tables_of_other_variables_are_not_flagged(w: World) -> None:
    w.submitted(("outputs/all.csv", FIRST))
    same = w.submitted(("outputs/again.csv", FIRST))
    assert findings(same, "outputs/again.csv", "population-difference") == []
    other = w.submitted(("outputs/by_court.csv", b"court,n\ntheft,118\nfraud,40\n"))
    assert findings(other, "outputs/by_court.csv", "population-difference") == []


# --- the count tables themselves (no database) --------------------------------------------


def cells(text: str) -> dict[Any, float]:
    return count_cells(csv_rows(text.encode()))


def test_count_cells_of_long_and_wide_tables() -> None:
    long = cells("offence,n\ntheft,120\nfraud,40\n")
    wide = cells("region,theft,fraud,Total\nnorth,50,12,62\nsouth,40,30,70\n")
    assert len(long) == 2 and len(wide) == 6
    assert cells("offence,count\ntheft,120\nfraud,40\n") == long  # n and count are one measure
    # Not count tables: no label column, fractions, row-level data.
    assert cells("n\n120\n40\n") == {}
    assert cells("region,mean_age\nnorth,34.5\nsouth,40.1\n") == {}
    frame = pd.DataFrame({"offence": ["theft", "fraud"] * 600, "n": range(1200)})
    assert cells(frame.to_csv(index=False)) == {}


def test_near_counts_names_both_tables() -> None:
    earlier = [("outputs/all.csv (request 1)", cells(FIRST.decode()))]
    hits = near_counts(earlier, cells(SECOND.decode()), threshold=10, name="outputs/most.csv")
    assert len(hits) == 1
    assert "outputs/all.csv (request 1)" in hits[0] and "outputs/most.csv" in hits[0]
    far = cells("offence,n\ntheft,100\nfraud,40\n")  # 20 people apart: a count, not a few
    assert near_counts(earlier, far, threshold=10, name="x") == []
