"""Validate a supplier extract against its declared schema. Reads only; never writes.

Every problem is reported with its row (1-based, the header not counted) and column. The
listing is capped; the total count and a count per kind are always complete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trenv.identifiers import valid_bsn_mask
from trenv.vault.readers import (
    UnsupportedFormatError,
    csv_header,
    file_format,
    iter_string_batches,
    parquet_columns,
    scan_encoding,
)
from trenv.vault.schema import Column, ColumnType, Role, Schema

Progress = Callable[[str, int, int], None]

# Problem kinds; the names are part of the interface (tests and the CLI use them).
MISSING_FILE = "missing_file"
UNSUPPORTED_FORMAT = "unsupported_format"
EMPTY_FILE = "empty_file"
ENCODING = "encoding"
MISSING_COLUMN = "missing_column"
UNEXPECTED_COLUMN = "unexpected_column"
MALFORMED_ROW = "malformed_row"
MISSING_VALUE = "missing_value"
WRONG_TYPE = "wrong_type"
NOT_IN_CODE_LIST = "not_in_code_list"
OUT_OF_RANGE = "out_of_range"
INVALID_BSN = "invalid_bsn"
DUPLICATE_KEY = "duplicate_key"

_INT = r"^[+-]?\d+$"
_FLOAT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_BOOL = ["true", "false", "True", "False", "TRUE", "FALSE", "0", "1", "yes", "no", "ja", "nee"]
_TRUE = ["true", "True", "TRUE", "1", "yes", "ja"]
_ECHO_ROLES = (Role.attribute, Role.key)


@dataclass(frozen=True)
class Problem:
    kind: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where) or 'file'}: {self.message}"


@dataclass
class ValidationReport:
    path: Path
    dataset: str
    rows: int = 0
    problem_count: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    max_listed: int = 100

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        self.counts[problem.kind] += 1
        if len(self.problems) < self.max_listed:
            self.problems.append(problem)

    @property
    def room(self) -> int:
        """How many more problems will be listed (the rest are only counted)."""
        return max(self.max_listed - len(self.problems), 0)

    def count_only(self, kind: str, n: int) -> None:
        self.problem_count += n
        self.counts[kind] += n

    def summary(self) -> str:
        if self.ok:
            return f"{self.path.name}: {self.rows} rows valid against schema {self.dataset}"
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.counts.items()))
        listed = "\n".join(f"  {p}" for p in self.problems)
        more = self.problem_count - len(self.problems)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        return (
            f"{self.path.name}: {self.problem_count} problem(s) against schema {self.dataset} "
            f"({kinds}); fix them in the extract (or the schema) and deliver again:\n"
            f"{listed}{tail}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "dataset": self.dataset,
            "rows": self.rows,
            "ok": self.ok,
            "problem_count": self.problem_count,
            "counts": dict(self.counts),
            "problems": [p.__dict__ for p in self.problems],
        }


class ValidationFailed(Exception):
    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


def normalise_bsn_array(values: pa.Array) -> pa.Array:
    """Vectorised ``bsn.normalise_bsn``: drop spaces, dots, dashes; pad 8 digits to 9."""
    clean = pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"[ .\-]", "")
    return pc.if_else(pc.equal(pc.utf8_length(clean), 8), pc.utf8_lpad(clean, 9, "0"), clean)


def bsn_valid(values: pa.Array) -> np.ndarray:
    """Boolean mask (nulls count as valid; they are a separate problem)."""
    norm = normalise_bsn_array(values)
    shaped = pc.fill_null(pc.match_substring_regex(norm, r"^\d{9}$"), False)
    numbers = pc.cast(pc.if_else(shaped, norm, "0"), pa.int64()).to_numpy(zero_copy_only=False)
    ok = np.asarray(shaped.to_numpy(zero_copy_only=False), dtype=bool) & valid_bsn_mask(numbers)
    return ok | np.asarray(pc.is_null(values).to_numpy(zero_copy_only=False), dtype=bool)


def parse_date(values: pa.Array) -> pa.Array:
    """Dates written YYYY-MM-DD as date32; anything else (including 2023-02-30) -> null."""
    shaped = pc.fill_null(pc.match_substring_regex(values, _DATE), False)
    parsed = pc.strptime(
        pc.if_else(shaped, values, pa.scalar(None, pa.string())),
        format="%Y-%m-%d",
        unit="s",
        error_is_null=True,
    )
    # strptime rolls impossible days over (30 February -> 1 March); a round trip catches it.
    same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), values)
    return pc.cast(pc.if_else(pc.fill_null(same, False), parsed, None), pa.date32())


def parse_boolean(values: pa.Array) -> pa.Array:
    return pc.is_in(values, value_set=pa.array(_TRUE))


def _mask(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


class _Checker:
    """Runs the per-value checks of one column over string batches."""

    def __init__(self, column: Column) -> None:
        self.col = column
        self.echo = column.role in _ECHO_ROLES
        self.codes = pa.array(list(column.allowed)) if column.allowed else None

    def check(self, values: pa.Array) -> list[tuple[str, np.ndarray, str]]:
        """Return (kind, batch indices, message) triples; rows are numbered by the caller."""
        col = self.col
        found: list[tuple[str, np.ndarray, str]] = []
        null = _mask(pc.is_null(values))
        if (col.required or col.role is Role.key) and null.any():
            found.append(
                (MISSING_VALUE, np.flatnonzero(null), "value is missing but the column is required")
            )
        present = ~null
        numeric: pa.Array | None = None
        if col.type is ColumnType.integer:
            bad = present & ~_mask(pc.match_substring_regex(values, _INT))
            found.append((WRONG_TYPE, np.flatnonzero(bad), "not an integer"))
            numeric = pc.cast(pc.if_else(pa.array(bad), "0", values), pa.int64())
        elif col.type is ColumnType.float:
            bad = present & ~_mask(pc.match_substring_regex(values, _FLOAT))
            found.append((WRONG_TYPE, np.flatnonzero(bad), "not a number"))
            numeric = pc.cast(pc.if_else(pa.array(bad), "0", values), pa.float64())
        elif col.type is ColumnType.date:
            bad = present & _mask(pc.is_null(parse_date(values)))
            found.append((WRONG_TYPE, np.flatnonzero(bad), "not a valid date (YYYY-MM-DD)"))
        elif col.type is ColumnType.boolean:
            bad = present & ~_mask(pc.is_in(values, value_set=pa.array(_BOOL)))
            found.append((WRONG_TYPE, np.flatnonzero(bad), "not a boolean (true/false)"))
        elif col.type is ColumnType.bsn:
            bad = ~bsn_valid(values)
            found.append(
                (INVALID_BSN, np.flatnonzero(bad), "not a valid BSN (9 digits passing the 11-test)")
            )
        else:
            bad = np.zeros(len(values), dtype=bool)
        if self.codes is not None:
            outside = present & ~bad & ~_mask(pc.is_in(values, value_set=self.codes))
            found.append(
                (NOT_IN_CODE_LIST, np.flatnonzero(outside), "value is not in the code list")
            )
        if numeric is not None and (col.minimum is not None or col.maximum is not None):
            num = np.asarray(numeric.to_numpy(zero_copy_only=False), dtype=float)
            out = np.zeros(len(values), dtype=bool)
            if col.minimum is not None:
                out |= num < col.minimum
            if col.maximum is not None:
                out |= num > col.maximum
            out &= present & ~bad
            found.append(
                (OUT_OF_RANGE, np.flatnonzero(out), f"outside [{col.minimum}, {col.maximum}]")
            )
        return [(k, rows, m) for k, rows, m in found if rows.size]


def validate_file(
    path: Path,
    schema: Schema,
    *,
    max_listed: int = 100,
    progress: Progress | None = None,
) -> ValidationReport:
    """Check ``path`` against ``schema`` and return a report of every problem."""
    path = Path(path)
    report = ValidationReport(path=path, dataset=schema.dataset, max_listed=max_listed)
    if not path.is_file():
        report.add(Problem(MISSING_FILE, None, None, f"{path} does not exist or is not a file"))
        return report
    try:
        fmt = file_format(path)
    except UnsupportedFormatError as exc:
        report.add(Problem(UNSUPPORTED_FORMAT, None, None, str(exc)))
        return report
    if path.stat().st_size == 0:
        report.add(Problem(EMPTY_FILE, None, None, "the file is empty; expected a header row"))
        return report

    if fmt == "csv":
        total, bad_bytes = scan_encoding(path, schema.encoding, max_listed)
        for spot in bad_bytes:
            report.add(
                Problem(
                    ENCODING,
                    spot.line - 1 if spot.line > 1 else None,
                    None,
                    f"line {spot.line} (byte {spot.byte_offset}) is not valid "
                    f"{schema.encoding}; re-export the file as {schema.encoding} or declare "
                    "its encoding in the schema",
                )
            )
        for _ in range(total - len(bad_bytes)):
            report.add(Problem(ENCODING, None, None, f"not valid {schema.encoding}"))
        if total:
            # The text cannot be parsed reliably; value checks would only add noise.
            return report
        names = csv_header(path, schema.encoding, schema.delimiter)
    else:
        names = parquet_columns(path)

    declared = [c.name for c in schema.columns]
    for name in declared:
        if name not in names:
            report.add(
                Problem(
                    MISSING_COLUMN,
                    None,
                    name,
                    f"declared column is missing from the file (file has: {', '.join(names)})",
                )
            )
    if not schema.allow_extra_columns:
        for name in names:
            if name not in declared:
                report.add(
                    Problem(
                        UNEXPECTED_COLUMN,
                        None,
                        name,
                        "column is not declared in the schema; declare it or remove it",
                    )
                )

    skipped: list[int] = []
    malformed: list[Problem] = []

    def on_invalid(line: int | None, expected: int, actual: int) -> None:
        row = line - 1 if line is not None else None
        if row is not None:
            skipped.append(row)
        malformed.append(
            Problem(MALFORMED_ROW, row, None, f"expected {expected} fields, found {actual}")
        )

    checkers = {c.name: _Checker(c) for c in schema.columns if c.name in names}
    key = schema.key_column
    keys: list[pa.Array] = []
    cell_problems: list[tuple[str, np.ndarray, str, str, pa.Array | None, bool]] = []
    parsed = 0
    for batch in iter_string_batches(
        path,
        encoding=schema.encoding,
        delimiter=schema.delimiter,
        columns=list(checkers),
        on_invalid_row=on_invalid,
    ):
        for name, checker in checkers.items():
            values = batch.column(batch.schema.get_field_index(name))
            for kind, rows, message in checker.check(values):
                # Keep values only for the listed problems, and only where echoing is safe.
                sample = values.take(pa.array(rows[:max_listed])) if checker.echo else None
                cell_problems.append((kind, rows + parsed, name, message, sample, checker.echo))
        if key is not None and key.name in checkers:
            keys.append(batch.column(batch.schema.get_field_index(key.name)))
        parsed += batch.num_rows
        if progress is not None:
            progress("validate", parsed, 0)

    report.rows = parsed
    skipped_sorted = sorted(skipped)

    def to_file_rows(indices: np.ndarray) -> np.ndarray:
        rows = indices.astype(np.int64) + 1
        for s in skipped_sorted:  # each skipped row shifts the later parsed rows down by one
            rows = rows + (rows >= s)
        return rows

    for problem in malformed:
        report.add(problem)
    for kind, indices, name, message, sample, echo in cell_problems:
        listed = min(report.room, len(indices))
        report.count_only(kind, len(indices) - listed)
        rows = to_file_rows(indices[:listed])
        for i, row in enumerate(rows):
            text = message
            if echo and sample is not None and i < len(sample):
                shown = sample[i].as_py()
                if shown is not None:
                    text = f"{message} (value {shown[:40]!r})"
            report.add(Problem(kind, int(row), name, text))

    if keys:
        series = pd.Series(pa.chunked_array(keys).to_numpy(zero_copy_only=False))
        dup = series.duplicated(keep="first") & series.notna()
        if dup.any():
            first_seen = series[~series.duplicated(keep="first")]
            first_index = pd.Series(first_seen.index, index=first_seen.values)
            dup_idx = np.flatnonzero(dup.to_numpy())
            listed = min(report.room, len(dup_idx))
            report.count_only(DUPLICATE_KEY, len(dup_idx) - listed)
            dup_idx = dup_idx[:listed]
            rows = to_file_rows(dup_idx)
            for idx, row in zip(dup_idx, rows, strict=True):
                first = int(to_file_rows(np.array([first_index[series.iat[idx]]]))[0])
                report.add(
                    Problem(
                        DUPLICATE_KEY,
                        int(row),
                        key.name,
                        f"key repeats the key of row {first}; keys must be unique",
                    )
                )
    report.problems.sort(key=lambda p: (p.row if p.row is not None else -1, p.column or ""))
    return report
