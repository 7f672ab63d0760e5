"""Reading tau-ARGUS's protected table back and comparing its pattern with trenv's, on
hand-made tau-ARGUS outputs in the format its <WRITETABLE> (1,3,AS+FL+QU+,...) writes:
``"code","code",value,status`` with the variable names and "Status" on the first line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.disclosure.tau_records import build, court_table, flat_axis
from trenv.disclosure import DisclosureInputError
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.tauargus import tau_table
from trenv.disclosure.tauargus_compare import compare, compare_file, read_safe_table

# court_table: rows north R001, south R002, east R003; columns theft C001, fraud C002.
# trenv: (east, fraud) primary; (east, theft), (north, fraud), (north, theft) secondary.


def tau_output(
    record: OutputRecord, statuses: dict[tuple[str, ...], int], *, header: bool = True,
    quotes: bool = True, values: dict[tuple[str, ...], str] | None = None,
) -> str:  # fmt: skip
    """What tau-ARGUS writes for the record's batch, with the given statuses (else Safe)."""
    table = tau_table(record)
    lines = ['"region","offence","Value","Status"'] if header else []
    for cell in table.cells:
        value = (values or {}).get(cell.codes, str(table.written[cell.codes]))
        codes = [f'"{c}"' if quotes else c for c in cell.codes]
        lines.append(",".join([*codes, value, str(statuses.get(cell.codes, 1))]))
    return "\n".join(lines) + "\n"


def test_an_independent_run_with_another_rectangle() -> None:
    record = court_table("count")
    # tau-ARGUS: the same primary (Unsafe (freq)), partners in south instead of north
    out = tau_output(
        record,
        {("R003", "C002"): 5, ("R003", "C001"): 11, ("R002", "C002"): 11, ("R002", "C001"): 11},
    )
    result = compare(record, read_safe_table(out, 2))
    assert not result.audit
    assert {c.codes for c in result.both} == {("R003", "C002"), ("R003", "C001")}
    assert {tuple(c.row) for c in result.only_trenv} == {("north",)}
    assert {tuple(c.row) for c in result.only_tau} == {("south",)}
    assert len(result.same_kind) == 2 and result.other_kind == []
    only_tau = result.only_tau[0]
    assert only_tau.tau == "secondary" and only_tau.tau_status == 11
    assert "partner cell" in only_tau.note
    summary = result.summary
    assert summary.startswith("Independent run")
    assert "trenv suppressed 4 cell(s) (1 primary, 3 secondary)" in summary
    assert "2 by both, 2 only by trenv, 2 only by tau-ARGUS" in summary
    assert result.as_dict()["only_tau_argus"] == 2


def test_a_primary_only_tau_argus_flags_is_named() -> None:
    record = court_table("count")
    out = tau_output(record, {("R003", "C002"): 5, ("R001", "Total"): 3, ("R003", "C001"): 11,
                              ("R001", "C001"): 11, ("R001", "C002"): 11})  # fmt: skip
    result = compare(record, read_safe_table(out, 2))
    extra = result.only_tau
    assert [(c.row, c.column, c.tau) for c in extra] == [(["north"], ["All"], "primary")]
    assert extra[0].note == "tau-ARGUS: Unsafe; no trenv rule flagged it"


def test_kinds_that_differ_are_counted() -> None:
    record = court_table("count")
    out = tau_output(record, {("R003", "C002"): 11, ("R003", "C001"): 5, ("R001", "C001"): 11,
                              ("R001", "C002"): 11})  # fmt: skip
    result = compare(record, read_safe_table(out, 2))
    assert len(result.both) == 4 and len(result.other_kind) == 2
    assert {c.note for c in result.other_kind} == {
        "trenv: primary, tau-ARGUS: secondary", "trenv: secondary, tau-ARGUS: primary"
    }  # fmt: skip


def test_an_audit_run_that_adds_nothing() -> None:
    record = court_table("count")
    trenv_cells = {("R003", "C002"), ("R003", "C001"), ("R001", "C002"), ("R001", "C001")}
    result = compare(record, read_safe_table(tau_output(record, dict.fromkeys(trenv_cells, 9)), 2))
    assert result.audit and len(result.both) == 4 and not result.only_tau
    assert result.same_kind == [] and result.other_kind == []  # a priori: not an opinion
    assert "tau-ARGUS added no suppression" in result.summary
    assert "kept 4 of them as loaded a priori" in result.summary


def test_an_audit_run_that_adds_a_cell_says_so() -> None:
    record = court_table("count")
    statuses = dict.fromkeys([("R003", "C002"), ("R003", "C001"), ("R001", "C002"),
                              ("R001", "C001")], 9)  # fmt: skip
    statuses[("R002", "C002")] = 11
    statuses[("R002", "C001")] = 11
    result = compare(record, read_safe_table(tau_output(record, statuses), 2))
    assert len(result.only_tau) == 2
    assert all("added by tau-ARGUS to trenv's pattern" in c.note for c in result.only_tau)
    assert "The 2 added cell(s) (0 primary under tau-ARGUS's own rules, 2 secondary)" in (
        result.summary
    )
    assert "Look at each before approving" in result.summary


def test_an_empty_cell_trenv_suppressed_is_explained() -> None:
    inner = {((r,), (o,)): (float(n), n, []) for r, o, n in
             [("a", "x", 0), ("a", "y", 30), ("b", "x", 30), ("b", "y", 30)]}  # fmt: skip
    record = build(
        inner, flat_axis(["a", "b"]), flat_axis(["x", "y"]),
        suppressed={(("a",), ("x",)): "primary"}, flags={(("a",), ("x",)): ["zeros"]},
    )  # fmt: skip
    out = tau_output(record, {("R001", "C001"): 14}, values={("R001", "C001"): "-"})
    result = compare(record, read_safe_table(out, 2))
    assert [c.note for c in result.only_trenv] == [
        "empty cell: tau-ARGUS never suppresses an empty cell"
    ]
    assert "1 of the cells only trenv suppressed are empty" in result.summary


def test_a_cell_flagged_by_a_rule_tau_argus_lacks() -> None:
    record = court_table("count")
    flags = [list(f) for f in record.cells.flags]
    i = next(k for k, s in enumerate(record.cells.suppressed) if s == "primary")
    flags[i] = ["class-disclosure"]
    record = record.model_copy(update={"cells": record.cells.model_copy(update={"flags": flags})})
    result = compare(record, read_safe_table(tau_output(record, {}), 2))
    primary = next(c for c in result.only_trenv if c.trenv == "primary")
    assert primary.note == "flagged by class-disclosure, which tau-ARGUS does not have"


def test_the_reader_takes_the_file_without_header_or_quotes(tmp_path: Path) -> None:
    record = court_table("sum")
    text = tau_output(record, {("R003", "C002"): 3}, header=False, quotes=False)
    path = tmp_path / "safe.csv"
    path.write_text(text, encoding="utf-8")
    result = compare_file(record, path)
    assert [c.codes for c in result.both] == [("R003", "C002")]


def test_an_output_of_another_table_is_refused() -> None:
    record = court_table("count")
    out = tau_output(record, {}, values={("R001", "C001"): "999"})
    with pytest.raises(DisclosureInputError, match=r"999\.0 in the tau-ARGUS output but 20"):
        compare(record, read_safe_table(out, 2))
    short = "\n".join(tau_output(record, {}).splitlines()[:-1])
    with pytest.raises(DisclosureInputError, match="lacks cells"):
        compare(record, read_safe_table(short, 2))
    renamed = tau_output(record, {}).replace('"region"', '"province"', 1)
    with pytest.raises(DisclosureInputError, match="names the variables"):
        compare(record, read_safe_table(renamed, 2))
    with pytest.raises(DisclosureInputError, match="lacks cells"):
        compare(court_table("sum"), read_safe_table(tau_output(build(
            {((r,), (o,)): (15.0, 15, []) for r in "ab" for o in "xy"},
            flat_axis(["a", "b"]), flat_axis(["x", "y"])), {}), 2))  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"R001","C001",20', "a file written without AS\\+ has no status"),
        ('"R001","C001",20,15', "'15' is not a tau-ARGUS cell status"),
        ('"R001","C001",x,3', "the value 'x' is not a number"),
        ('"R001","C001",20,1\n"R001","C001",20,1', "appears twice"),
    ],
)
def test_malformed_outputs_are_refused(line: str, message: str) -> None:
    with pytest.raises(DisclosureInputError, match=message):
        read_safe_table(f'"region","offence","Value","Status"\n{line}\n', 2)


def test_an_empty_or_unreadable_output_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DisclosureInputError, match="empty"):
        read_safe_table("\n\n", 2)
    with pytest.raises(DisclosureInputError, match="cannot read"):
        compare_file(court_table("count"), tmp_path / "missing.csv")
