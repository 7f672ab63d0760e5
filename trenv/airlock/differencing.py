"""The server's differencing: a new file against the project's earlier tables.

Which earlier tables count (:func:`trenv.airlock.server_differencing.earlier_files` gathers
them from the database): the approved files of the project's released requests, every
current file of the project's other open requests (draft, submitted, in review, changes
requested; of an approved one its approved files), since checkers could approve both, and
the request's own other files. Rejected and withdrawn requests and rejected files never
leave, so they do not count. This module compares bytes and knows no database.

Two comparisons, each only adding findings:

- tables saved with ``tre.save`` carry output records: the new record is combined with the
  earlier records (``differencing-server``: does the combination pin down a suppressed
  cell?) and compared cell by cell (``population-difference``: two counts of the same cell
  a few people apart);
- any table, plain or saved, CSV or workbook sheet, that reads as a count table
  (:mod:`trenv.airlock.checks.counts`) is compared cell by cell with every earlier table
  that does (``population-difference``), unless both have records (the first comparison
  covers those).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from trenv.airlock.checks.counts import Key, count_cells, near_counts
from trenv.airlock.checks.grid import csv_rows, xlsx_sheets
from trenv.airlock.checks.models import FileCheck, Finding, worst
from trenv.airlock.checks.tabular import threshold_of
from trenv.disclosure.differencing import Ledger
from trenv.disclosure.populations import differencing_findings, near_populations
from trenv.disclosure.record import OutputRecord
from trenv.errors import TrenvError

# Findings quoted in one message; the rest are counted.
MAX_QUOTED = 20


@dataclass(frozen=True)
class EarlierFile:
    """One earlier file as the comparison needs it; bytes are read only when used."""

    name: str  # path and request, e.g. "outputs/a.csv (request 3)"
    kind: str  # "table", "spreadsheet", ...
    header_rows: int
    read: Callable[[], bytes]
    read_record: Callable[[], bytes] | None  # None: not saved with tre.save


def _quoted(problems: list[str]) -> str:
    more = len(problems) - MAX_QUOTED
    return "; ".join(problems[:MAX_QUOTED]) + (f"; and {more} more" if more > 0 else "")


def tables_of(
    name: str, kind: str, read: Callable[[], bytes], header_rows: int
) -> list[tuple[str, dict[Key, float]]]:
    """The count tables of one file, by name: a CSV (with one header row, as plain tables
    and one-level saved tables have), or each sheet of a workbook."""
    try:
        if kind == "table" and header_rows == 1:
            return [(name, count_cells(csv_rows(read())))]
        if kind == "spreadsheet":
            return [
                (f"{name} [sheet {s.name!r}]", count_cells(s.rows)) for s in xlsx_sheets(read())
            ]
    except Exception:  # openpyxl raises many types for malformed parts
        pass  # an unreadable file was failed by its own check; it compares with nothing
    return []


def record_findings(new_record: bytes, earlier: list[EarlierFile]) -> list[Finding]:
    """Differencing of a saved table against the earlier saved tables' records."""
    try:
        new = OutputRecord.model_validate_json(new_record)
    except ValueError:
        return []  # the saved-output check already failed this record
    ledger = Ledger()
    names: list[str] = []
    for f in earlier:
        if f.read_record is None:
            continue
        try:
            ledger.add(OutputRecord.model_validate_json(f.read_record()))
        except (ValueError, OSError, TrenvError):
            continue
        names.append(f.name)
    hits = differencing_findings(ledger.records, new)  # tables of other data left out
    out = [
        Finding(
            rule_id="differencing-server",
            status="fail" if hits else "pass",
            message=_quoted(
                [f"{'/'.join(h.row)} x {'/'.join(h.column)}: {h.reason()}" for h in hits]
            )
            if hits
            else f"no suppressed cell is pinned down with {len(ledger.records)} other tables",
        )
    ]
    near = near_populations(ledger.records, new, names=names)
    if near:
        out.append(Finding(rule_id="population-difference", status="fail", message=_quoted(near)))
    return out


def plain_findings(
    name: str,
    kind: str,
    data: bytes,
    *,
    saved: bool,
    earlier: list[EarlierFile],
    policy: str,
) -> list[Finding]:
    """Counts of the new file a few people away from the same cells of earlier tables."""
    mine = [t for t in tables_of(name, kind, lambda: data, 1) if t[1]]
    if not mine:
        return []
    others = [
        table
        for f in earlier
        if not (saved and f.read_record is not None)
        for table in tables_of(f.name, f.kind, f.read, f.header_rows)
        if table[1]
    ]
    threshold = threshold_of(policy)
    problems = [
        problem
        for table_name, cells in mine
        for problem in near_counts(others, cells, threshold=threshold, name=table_name)
    ]
    if not problems:
        return []
    return [
        Finding(
            rule_id="population-difference",
            status="fail",
            message=f"{_quoted(problems)}. Two tables of almost the same people give those "
            "people away: release one of them, or make both from the same population.",
        )
    ]


def with_differencing(
    check: FileCheck,
    *,
    path: str,
    kind: str,
    data: bytes,
    record: bytes | None,
    earlier: list[EarlierFile],
    policy: str,
) -> FileCheck:
    """``check`` with the server's differencing findings added."""
    found: list[Finding] = []
    if record is not None:
        found += record_findings(record, earlier)
    if kind in ("table", "spreadsheet"):
        name = posixpath.normpath(path)
        found += plain_findings(
            name, kind, data, saved=record is not None, earlier=earlier, policy=policy
        )
    if not found:
        return check
    findings = [*check.findings, *found]
    return check.model_copy(
        update={"findings": findings, "status": worst(f.status for f in findings)}
    )
