"""Read tau-ARGUS's protected table back and compare its suppression pattern with trenv's.

The batch files of :mod:`trenv.disclosure.tauargus` make tau-ARGUS 4.2 write its table with
``<WRITETABLE> (1,3,AS+FL+QU+,...)``: the code-value format with the status of every cell.
Each line holds the cell's codes (quoted; the total is ``Total``), its value (``-`` for an
empty cell; AS+ writes the value of suppressed cells too) and its status number, separated
by commas (libtauargus TauArgus::WriteCellDimCell / WriteCSVCell); with FL+ the first line
names the variables and ``Status``. The status numbers are tau-ARGUS 4.2's CellStatus
(:data:`trenv.disclosure.tauargus.STATUSES`): 3 to 9 primary unsafe (9: set unsafe by hand,
which here means by trenv's a-priori file in the audit run), 11 and 12 secondary, 13 and
14 empty. Read with the csv module; nothing else is assumed of the file.

The codes are mapped back to trenv's labels with the same layout the writer used
(:func:`~trenv.disclosure.tauargus.tau_table` is a pure function of the record), and every
value is checked against what was written, so a file from another table is refused rather
than compared.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.tauargus import (
    EMPTY_STATUSES,
    MANUAL_UNSAFE,
    PRIMARY_STATUSES,
    SECONDARY_STATUSES,
    STATUSES,
    UNTRANSLATED,
    TauTable,
    tau_table,
)

Kind = Literal["primary", "secondary"]


@dataclass(frozen=True)
class TauOutputCell:
    codes: tuple[str, ...]
    value: float | None  # None: an empty cell ("-")
    status: int


@dataclass(frozen=True)
class TauOutput:
    """tau-ARGUS's written table: its cells by codes, and the names of its first line."""

    cells: dict[tuple[str, ...], TauOutputCell]
    names: tuple[str, ...] | None = None


def _is_status(text: str) -> bool:
    return text.strip().isdigit()


def read_safe_table(text: str, dims: int) -> TauOutput:
    """Parse tau-ARGUS's code-value output with status (AS+) of a ``dims``-way table."""
    rows = [r for r in csv.reader(io.StringIO(text)) if any(f.strip() for f in r)]
    if not rows:
        raise DisclosureInputError("the tau-ARGUS output is empty")
    names = None
    if not _is_status(rows[0][-1]):
        names = tuple(f.strip() for f in rows[0])
        rows = rows[1:]
    width = dims + 2
    cells: dict[tuple[str, ...], TauOutputCell] = {}
    for number, row in enumerate(rows, start=2 if names else 1):
        if len(row) != width:
            hint = (
                " (a file written without AS+ has no status: run the batch trenv wrote, "
                "which asks for AS+)"
                if len(row) == width - 1
                else ""
            )
            raise DisclosureInputError(
                f"line {number} of the tau-ARGUS output has {len(row)} fields, expected "
                f"{width}: {dims} code(s), the value and the status{hint}"
            )
        codes = tuple(f.strip() for f in row[:dims])
        value_text, status_text = row[dims].strip(), row[dims + 1].strip()
        if not _is_status(status_text) or int(status_text) not in STATUSES:
            raise DisclosureInputError(
                f"line {number}: {status_text!r} is not a tau-ARGUS cell status (1 to 14)"
            )
        try:
            value = None if value_text == "-" else float(value_text)
        except ValueError:
            raise DisclosureInputError(
                f"line {number}: the value {value_text!r} is not a number"
            ) from None
        if codes in cells:
            raise DisclosureInputError(f"line {number}: cell {list(codes)} appears twice")
        cells[codes] = TauOutputCell(codes, value, int(status_text))
    return TauOutput(cells, names)


def tau_kind(status: int) -> Kind | None:
    if status in PRIMARY_STATUSES:
        return "primary"
    if status in SECONDARY_STATUSES:
        return "secondary"
    return None


@dataclass(frozen=True)
class CellComparison:
    """One cell that trenv, tau-ARGUS or both suppressed."""

    row: list[str]
    column: list[str]
    codes: tuple[str, ...]
    trenv: Kind | None
    tau_status: int
    note: str

    @property
    def tau(self) -> Kind | None:
        return tau_kind(self.tau_status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "codes": list(self.codes),
            "trenv": self.trenv,
            "tau_argus": self.tau,
            "tau_argus_status": f"{self.tau_status} {STATUSES[self.tau_status]}",
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    cells: list[CellComparison]  # every cell suppressed by at least one of them
    audit: bool  # the output of the audit batch (trenv's pattern loaded a priori)

    @property
    def both(self) -> list[CellComparison]:
        return [c for c in self.cells if c.trenv and c.tau]

    @property
    def only_trenv(self) -> list[CellComparison]:
        return [c for c in self.cells if c.trenv and not c.tau]

    @property
    def only_tau(self) -> list[CellComparison]:
        return [c for c in self.cells if c.tau and not c.trenv]

    @property
    def same_kind(self) -> list[CellComparison]:
        """Suppressed by both, as primary by both or as secondary by both (in the audit run
        trenv's own cells carry its status a priori, so only tau-ARGUS's new ones count)."""
        return [c for c in self.both if c.tau_status != MANUAL_UNSAFE and c.trenv == c.tau]

    @property
    def other_kind(self) -> list[CellComparison]:
        return [c for c in self.both if c.tau_status != MANUAL_UNSAFE and c.trenv != c.tau]

    @property
    def summary(self) -> str:
        return _summary(self)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": "audit" if self.audit else "independent",
            "both": len(self.both),
            "only_trenv": len(self.only_trenv),
            "only_tau_argus": len(self.only_tau),
            "same_kind": len(self.same_kind),
            "other_kind": len(self.other_kind),
            "summary": self.summary,
            "cells": [c.as_dict() for c in self.cells],
        }


def _check_values(record: OutputRecord, table: TauTable, output: TauOutput) -> None:
    at = table.at()
    missing = [codes for codes in at if codes not in output.cells]
    extra = [codes for codes in output.cells if codes not in at]
    if missing or extra:
        shown = [list(c) for c in (missing or extra)[:3]]
        raise DisclosureInputError(
            f"the tau-ARGUS output {'lacks' if missing else 'has unknown'} cells {shown}: "
            "it was not made from this record's batch files"
        )
    if output.names is not None:
        expected = tuple(a.name for a in table.axes)
        if output.names[: len(expected)] != expected:
            raise DisclosureInputError(
                f"the tau-ARGUS output names the variables {list(output.names)}, this "
                f"record's batch {list(expected)}: it was not made from this record"
            )
    slack = float(Decimal(1).scaleb(-table.decimals))
    for codes, i in at.items():
        got = output.cells[codes].value
        written = table.written[codes]
        if got is None:
            ok = record.cells.rows[i] == 0
        else:
            ok = abs(got - float(written)) <= slack * 0.5 + 1e-9 * abs(got)
        if not ok:
            raise DisclosureInputError(
                f"cell {list(codes)} is {'-' if got is None else got} in the tau-ARGUS output "
                f"but {written} in the files written for this record: compare the output of "
                "this record's own batch"
            )


def compare(record: OutputRecord, output: TauOutput) -> Comparison:
    """trenv's suppression pattern (the record) against tau-ARGUS's (its written table)."""
    table = tau_table(record)
    _check_values(record, table, output)
    audit = any(c.status == MANUAL_UNSAFE for c in output.cells.values())
    cells = record.cells
    found = []
    for codes, i in table.at().items():
        trenv: Kind | None = cells.suppressed[i]
        status = output.cells[codes].status
        if trenv is None and tau_kind(status) is None:
            continue
        found.append(
            CellComparison(
                row=cells.row[i],
                column=cells.column[i],
                codes=codes,
                trenv=trenv,
                tau_status=status,
                note=_note(trenv, status, cells.flags[i], audit),
            )
        )
    return Comparison(found, audit)


def _note(trenv: Kind | None, status: int, flags: list[str], audit: bool) -> str:
    tau = tau_kind(status)
    if trenv and tau:
        if status == MANUAL_UNSAFE:
            return f"trenv's {trenv} suppression, loaded a priori; tau-ARGUS kept it"
        return "same kind" if trenv == tau else f"trenv: {trenv}, tau-ARGUS: {tau}"
    if trenv:
        if status in EMPTY_STATUSES:
            return "empty cell: tau-ARGUS never suppresses an empty cell"
        if trenv == "secondary":
            return "trenv's partner cell; tau-ARGUS protected the primaries with other cells"
        untranslated = [f for f in flags if f in UNTRANSLATED]
        if untranslated:
            return f"flagged by {', '.join(untranslated)}, which tau-ARGUS does not have"
        return (
            f"flagged by {', '.join(flags) or 'trenv'}; tau-ARGUS's version of the rule did "
            "not flag it (NK flags more than k%, trenv k or more; see README.txt)"
        )
    description = STATUSES[status]
    if tau == "primary":
        return f"tau-ARGUS: {description}; no trenv rule flagged it"
    if audit:
        return (
            "added by tau-ARGUS to trenv's pattern: it found a cell of the pattern "
            "not protected to its level"
        )
    return "tau-ARGUS's partner cell; trenv protected the primaries with other cells"


def _summary(c: Comparison) -> str:
    trenv = [x for x in c.cells if x.trenv]
    tau = [x for x in c.cells if x.tau]
    t_p = sum(x.trenv == "primary" for x in trenv)
    a_p = sum(x.tau == "primary" for x in tau)
    counts = (
        f"trenv suppressed {len(trenv)} cell(s) ({t_p} primary, {len(trenv) - t_p} "
        f"secondary), tau-ARGUS {len(tau)} ({a_p} primary, {len(tau) - a_p} secondary): "
        f"{len(c.both)} by both, {len(c.only_trenv)} only by trenv, {len(c.only_tau)} only "
        "by tau-ARGUS."
    )
    empty = sum(x.tau_status in EMPTY_STATUSES for x in c.only_trenv)
    empty_text = (
        f" {empty} of the cells only trenv suppressed are empty, which tau-ARGUS never suppresses."
        if empty
        else ""
    )
    if c.audit:
        added = c.only_tau
        kept = sum(x.tau_status == MANUAL_UNSAFE for x in c.both)
        counts = (
            f"trenv suppressed {len(trenv)} cell(s) ({t_p} primary, {len(trenv) - t_p} "
            f"secondary); tau-ARGUS kept {kept} of them as loaded a priori and suppressed "
            f"{len(added)} more; {len(c.only_trenv)} of trenv's are published by tau-ARGUS."
        )
        if not added:
            verdict = (
                "tau-ARGUS added no suppression: under its own rules and with trenv's "
                "required widths as protection levels, it finds trenv's pattern sufficient."
            )
        else:
            primaries = sum(x.tau == "primary" for x in added)
            verdict = (
                f"The {len(added)} added cell(s) ({primaries} primary under tau-ARGUS's own "
                f"rules, {len(added) - primaries} secondary) are what tau-ARGUS finds "
                "missing from trenv's pattern. Look at each before approving: a tau-ARGUS "
                "rule trenv does not apply, its singleton protection, or a cell of trenv's "
                "pattern it cannot protect to the required width."
            )
        return f"Audit run. {counts}{empty_text} {verdict}"
    kinds = (
        f" Of the cells both suppressed, {len(c.same_kind)} have the same kind (primary or "
        f"secondary) and {len(c.other_kind)} another."
        if c.both
        else ""
    )
    return (
        f"Independent run (tau-ARGUS's own pattern under the translated rules). {counts}"
        f"{kinds}{empty_text} Primary cells differ where a rule exists in only one of "
        "them (README.txt lists them); secondary cells may differ without either pattern "
        "being unsafe, as both look for cheap partner cells by different methods. Run the "
        "audit batch to see whether tau-ARGUS accepts trenv's own pattern."
    )


def compare_file(record: OutputRecord, path: Path | str) -> Comparison:
    """Read tau-ARGUS's written table at ``path`` and compare it with ``record``."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise DisclosureInputError(f"cannot read the tau-ARGUS output {path}: {exc}") from None
    dims = 2 if record.columns else 1
    return compare(record, read_safe_table(text, dims))
