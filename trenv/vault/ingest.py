"""Ingest a validated supplier extract into the vault, all or nothing.

validate -> convert to declared types -> pseudonymise identifiers with the linkage key -> keep
the linkage fields (normalised) in a vault-only table -> drop direct identifiers -> generalise
quasi-identifiers -> write Parquet into a temporary directory -> rename it into place.
Any failure removes the temporary directory, so a failed ingest leaves nothing behind; the
caller registers the result and writes the audit event.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trenv.hashing import file_sha256
from trenv.vault.normalise import generalise, linkage_value, typed
from trenv.vault.pseudonym import Pseudonymiser, pseudonymise_array
from trenv.vault.readers import iter_string_batches
from trenv.vault.schema import Role, Schema
from trenv.vault.validate import ValidationFailed, ValidationReport, validate_file

Progress = Callable[[str, int, int], None]

DATA_FILE = "data.parquet"
LINKAGE_FILE = "linkage.parquet"
CODEBOOK_FILE = "codebook.json"
METADATA_KEY = b"trenv"
RECORD_KEY = "record_key"


class IngestError(Exception):
    pass


@dataclass(frozen=True)
class IngestResult:
    dataset: str
    directory: Path
    data_path: Path
    linkage_path: Path | None
    codebook_path: Path
    sha256: str
    source_sha256: str
    rows: int
    columns: list[str]
    pseudonym_columns: list[str]
    codebook: dict[str, dict[str, Any]] = field(repr=False)
    validation: ValidationReport = field(repr=False)


def trenv_metadata(path: Path) -> dict[str, Any]:
    """The trenv block stored in a vault Parquet file's key-value metadata."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def write_parquet(table: pa.Table, path: Path, meta: dict[str, Any]) -> None:
    existing = dict(table.schema.metadata or {})
    existing[METADATA_KEY] = json.dumps(meta, sort_keys=True).encode()
    pq.write_table(table.replace_schema_metadata(existing), path, compression="zstd")
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def ingest(
    source: Path,
    schema: Schema,
    dest_dir: Path,
    linkage: Pseudonymiser,
    *,
    max_listed: int = 100,
    progress: Progress | None = None,
) -> IngestResult:
    """Validate ``source`` against ``schema`` and store it as a new directory ``dest_dir``.

    Raises ``ValidationFailed`` (with the full report) when the extract has problems and
    ``IngestError`` when ``dest_dir`` already exists; in both cases nothing is written.
    """
    source, dest_dir = Path(source), Path(dest_dir)
    if dest_dir.exists():
        raise IngestError(
            f"{dest_dir} already exists; a dataset version is written once; ingest as a new "
            "version instead"
        )
    report = validate_file(source, schema, max_listed=max_listed, progress=progress)
    if not report.ok:
        raise ValidationFailed(report)

    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir.parent / f".{dest_dir.name}.tmp-{uuid.uuid4().hex}"
    try:
        tmp.mkdir(mode=0o700)
        result = _build(source, schema, tmp, dest_dir, linkage, report, progress)
        os.rename(tmp, dest_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _build(
    source: Path,
    schema: Schema,
    tmp: Path,
    dest_dir: Path,
    linkage: Pseudonymiser,
    report: ValidationReport,
    progress: Progress | None,
) -> IngestResult:
    batches = list(
        iter_string_batches(
            source,
            encoding=schema.encoding,
            delimiter=schema.delimiter,
            columns=[c.name for c in schema.columns],
        )
    )
    raw = pa.Table.from_batches(batches) if batches else None
    rows = raw.num_rows if raw is not None else 0

    def column(name: str) -> pa.Array:
        if raw is None:
            return pa.array([], pa.string())
        return raw.column(name).combine_chunks()

    # Insertion order is schema order, so the research table reads like the codebook.
    data: dict[str, pa.Array] = {}
    link: dict[str, pa.Array] = {}
    pseudonym_columns: list[str] = []
    key = schema.key_column
    if key is not None:
        link[RECORD_KEY] = typed(column(key.name), key)
    for col in schema.columns:
        values = typed(column(col.name), col)
        if col.role is Role.identifier:
            assert col.pseudonym_name is not None
            out = pseudonymise_array(linkage, values)
            data[col.pseudonym_name] = out
            link[col.pseudonym_name] = out
            pseudonym_columns.append(col.pseudonym_name)
            if progress is not None:
                progress("pseudonymise", rows, rows)
            continue
        if col.linkage is not None:
            link[col.linkage] = linkage_value(values, col.linkage)
        if col.role is Role.direct_identifier:
            continue
        data[col.name] = generalise(values, col.generalise) if col.generalise else values

    meta = {
        "dataset": schema.dataset,
        "pseudonym_columns": pseudonym_columns,
        "key_column": key.name if key is not None else None,
        # Declared record keys (schema ``key: record``): publication re-keys them per project.
        "record_key_columns": schema.record_key_columns,
    }
    if not data:
        raise IngestError(
            f"schema {schema.dataset} keeps no column in the research data; give at least one "
            "column a role other than direct_identifier"
        )
    table = pa.table(data)
    write_parquet(table, tmp / DATA_FILE, meta)
    linkage_path = None
    has_fields = any(k not in (RECORD_KEY, *pseudonym_columns) for k in link)
    if key is not None and has_fields:
        write_parquet(pa.table(link), tmp / LINKAGE_FILE, {**meta, "vault_only": True})
        linkage_path = dest_dir / LINKAGE_FILE
    codebook = schema.codebook()
    (tmp / CODEBOOK_FILE).write_text(
        json.dumps(
            {"dataset": schema.dataset, "description": schema.description, "columns": codebook},
            indent=2,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return IngestResult(
        dataset=schema.dataset,
        directory=dest_dir,
        data_path=dest_dir / DATA_FILE,
        linkage_path=linkage_path,
        codebook_path=dest_dir / CODEBOOK_FILE,
        sha256=file_sha256(tmp / DATA_FILE),
        source_sha256=file_sha256(source),
        rows=rows,
        columns=table.column_names,
        pseudonym_columns=pseudonym_columns,
        codebook=codebook,
        validation=report,
    )
