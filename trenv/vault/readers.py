"""Read a supplier extract (CSV or Parquet) as batches of string columns.

Validation and ingest both look at every value as the text the supplier wrote, so one reader
serves both and a value is never silently coerced before it has been checked.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BATCH_ROWS = 256_000
_CSV_BLOCK = 16 << 20


class UnsupportedFormatError(ValueError):
    pass


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise UnsupportedFormatError(
        f"{path.name}: unsupported file type {suffix or '(none)'}; deliver CSV (.csv) or Parquet "
        "(.parquet)"
    )


@dataclass(frozen=True)
class EncodingProblem:
    line: int
    byte_offset: int


def scan_encoding(path: Path, encoding: str, limit: int) -> tuple[int, list[EncodingProblem]]:
    """Find bytes that are not valid in ``encoding``: (total count, first ``limit`` problems).

    Decoding is streamed in blocks split at newlines, so a 1 GB extract needs little memory
    and each problem is reported with its line number.
    """
    codec = codecs.lookup(encoding).name
    total = 0
    found: list[EncodingProblem] = []
    line = 1
    offset = 0
    carry = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_CSV_BLOCK)
            data = carry + block
            if not data:
                break
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if cut == 0:
                carry = data
                continue
            chunk, carry = data[:cut], data[cut:]
            if offset == 0 and codec == "utf-8" and chunk.startswith(codecs.BOM_UTF8):
                chunk_start = len(codecs.BOM_UTF8)
            else:
                chunk_start = 0
            pos = chunk_start
            while pos < len(chunk):
                try:
                    chunk[pos:].decode(codec)
                    break
                except UnicodeDecodeError as exc:
                    bad = pos + exc.start
                    total += 1
                    if len(found) < limit:
                        lines_before = chunk.count(b"\n", 0, bad)
                        found.append(EncodingProblem(line + lines_before, offset + bad))
                    # Resume after the offending bytes so every bad spot is counted once.
                    pos = pos + max(exc.end, exc.start + 1)
            line += chunk.count(b"\n")
            offset += len(chunk)
            if not block:
                break
    return total, found


def csv_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    with open(path, "rb") as handle:
        first = handle.readline()
    text = first.decode(encoding, errors="replace").lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return list(rows[0]) if rows else []


def parquet_columns(path: Path) -> list[str]:
    return list(pq.ParquetFile(path).schema_arrow.names)


def iter_string_batches(
    path: Path,
    *,
    encoding: str,
    delimiter: str,
    columns: list[str],
    on_invalid_row: Callable[[int | None, int, int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Yield batches whose columns (those of ``columns`` present in the file) are strings.

    Empty CSV fields become nulls. ``on_invalid_row(line, expected, actual)`` is called for a
    CSV row with the wrong number of fields, which is then skipped.
    """
    if file_format(path) == "parquet":
        parquet = pq.ParquetFile(path)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
            arrays = [_as_string(batch.column(i)) for i in range(batch.num_columns)]
            yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
        return

    header = csv_header(path, encoding, delimiter)

    def handler(row: pacsv.InvalidRow) -> str:
        if on_invalid_row is not None:
            on_invalid_row(row.number, row.expected_columns, row.actual_columns)
        return "skip"

    reader = pacsv.open_csv(
        path,
        # Threads off: the invalid-row handler then knows each row's line number.
        read_options=pacsv.ReadOptions(encoding=encoding, use_threads=False, block_size=_CSV_BLOCK),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=handler),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            include_columns=[c for c in columns if c in header],
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    for batch in reader:
        yield from _split(batch, batch_rows)


def _split(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _as_string(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_large_string(array.type) or pa.types.is_dictionary(array.type):
        return pc.cast(array, pa.string())
    if pa.types.is_boolean(array.type):
        return pc.if_else(array, "true", "false")
    return pc.cast(array, pa.string())
