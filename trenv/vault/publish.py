"""Publish a project's read-only view of its granted data: the directory mounted at /data.

For each granted dataset version (and only its granted columns) the view holds a Parquet file
in which every identifier is project-specific: each linkage pseudonym is replaced by the
project's pseudonym, and each record key the schema declares (``key: record``: case numbers,
report numbers, ...) by HMAC(project record-key subkey, value), so keys join inside the project
and nowhere else. The grant's column rules then drop columns and coarsen others (dates to month
or year, numbers to bands). A manifest lists versions, checksums, codebooks and linkage
reports. A publication is written to a new directory and switched in by atomically replacing
the ``data`` symlink, so a container never sees half a publication; datasets no longer granted
are simply absent from the new one. Every item is checked (columns, rules) before anything is
written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trenv.hashing import file_sha256
from trenv.identifiers import looks_like_id
from trenv.layout import DATA_LINK, PUBLICATIONS
from trenv.registry.grant_rules import (
    BandCoarsening,
    ColumnRules,
    DateCoarsening,
    band_labels,
    parse_rules,
)
from trenv.vault.ingest import trenv_metadata
from trenv.vault.manifest import MANIFEST, Manifest, read_manifest_at
from trenv.vault.normalise import generalise
from trenv.vault.pseudonym import (
    Pseudonymiser,
    check_slug,
    pseudonymise_array,
    record_key_pseudonymiser,
)

Progress = Callable[[str, int, int], None]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_EXTRA_CODEBOOK = {
    "person_pseudonym": {
        "type": "pseudonym",
        "role": "identifier",
        "description": "Pseudonym of the linked person, specific to this project",
    },
    "match_probability": {
        "type": "float",
        "role": "attribute",
        "description": "Probability that the record was linked to the right person (Splink)",
    },
}


RECORD_KEY_NOTE = " (re-keyed; project-specific in published views)"


class PublishError(Exception):
    """What cannot be published: ``problem`` and, where one exists, the ``fix``."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class PublishItem:
    """One granted dataset version. ``columns`` None means every column is granted;
    ``rules`` are the grant's column rules (columns to drop and to coarsen)."""

    dataset: str
    version: str
    parquet_path: Path
    columns: Sequence[str] | None = None
    codebook: Mapping[str, Any] | None = None
    linkage_report: Path | None = None
    rules: ColumnRules | Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Plan:
    """An item checked against its file: what to read and what to do with each column."""

    item: PublishItem
    columns: list[str]  # published, in the dataset's order
    pseudonyms: list[str]
    record_keys: list[str]
    rules: ColumnRules


@dataclass
class PublishResult:
    data_dir: Path  # the stable path the spawner mounts (a symlink)
    publication_dir: Path  # the directory it points to now
    manifest: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # datasets in the previous view, not now


def _read_only(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    root.chmod(0o555)


def _remove_tree(root: Path) -> None:
    # Read-only directories cannot be emptied; give the owner write access back first.
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(stat.S_IRWXU)
    shutil.rmtree(root, ignore_errors=True)


def _previous_datasets(data_link: Path) -> list[str]:
    manifest = read_manifest_at(data_link)
    return [] if manifest is None else [e.dataset for e in manifest.datasets]


def _codebook(item: PublishItem, columns: list[str]) -> dict[str, Any]:
    book: Mapping[str, Any] = item.codebook or {}
    if "columns" in book and isinstance(book["columns"], Mapping):
        book = book["columns"]
    return {c: book.get(c) or _EXTRA_CODEBOOK.get(c, {"description": ""}) for c in columns}


def record_key_columns(meta: Mapping[str, Any], available: Sequence[str]) -> list[str]:
    """The record keys of a vault file: as declared in its schema (``key: record``), or, for a
    file ingested before schemas declared them, its key column and every column named like an
    id (re-keying too much is safe, publishing a supplier's key is not)."""
    declared = meta.get("record_key_columns")
    if declared is None:
        declared = [meta.get("key_column"), *(c for c in available if looks_like_id(c))]
    pseudonyms = set(meta.get("pseudonym_columns", []))
    return [c for c in dict.fromkeys(declared) if c in available and c not in pseudonyms]


def _plan(item: PublishItem) -> _Plan:
    where = f"{item.dataset} {item.version}"
    if not _NAME.match(item.dataset):
        raise PublishError(f"dataset name {item.dataset!r} is not a valid file name")
    source = Path(item.parquet_path)
    if not source.is_file():
        raise PublishError(f"{where}: {source} does not exist")
    schema = pq.read_schema(source)
    available = schema.names
    if item.columns is None:
        granted = list(available)
    else:
        unknown = [c for c in item.columns if c not in available]
        if unknown:
            raise PublishError(
                f"{where}: granted column(s) {', '.join(unknown)} do not exist in the dataset; "
                "correct the grant"
            )
        # Keep the dataset's own column order, whatever order the grant lists.
        granted = [c for c in available if c in set(item.columns)]
    meta = trenv_metadata(source)
    rules = parse_rules(item.rules)
    pseudonyms = [c for c in meta.get("pseudonym_columns", []) if c in available]
    record_keys = record_key_columns(meta, available)
    _check_rules(where, rules, schema, granted, set(pseudonyms) | set(record_keys))
    columns = [c for c in granted if c not in rules.drop]
    return _Plan(
        item=item,
        columns=columns,
        pseudonyms=[c for c in pseudonyms if c in columns],
        record_keys=[c for c in record_keys if c in columns],
        rules=rules,
    )


def _check_rules(
    where: str, rules: ColumnRules, schema: pa.Schema, granted: list[str], keys: set[str]
) -> None:
    """The grant's rules against the file itself (the registry checked them against the
    codebook when the grant was proposed; this holds even for a codebook that was wrong)."""
    fix = "Revoke the grant and propose it again with rules that fit the dataset."
    named = list(dict.fromkeys([*rules.drop, *rules.coarsen]))
    unknown = [c for c in named if c not in schema.names]
    if unknown:
        raise PublishError(
            f"{where}: the grant's column rules name column(s) {', '.join(unknown)}, which the "
            "dataset does not have",
            fix,
        )
    outside = [c for c in named if c not in granted]
    if outside:
        raise PublishError(
            f"{where}: the grant's column rules name column(s) {', '.join(outside)}, which the "
            "grant does not include",
            fix,
        )
    for column, rule in rules.coarsen.items():
        kind = schema.field(column).type
        if column in keys:
            problem = "it is an identifier, re-keyed for the project"
        elif column in rules.drop:
            problem = "the same grant drops it"
        elif isinstance(rule, DateCoarsening) and not (
            pa.types.is_date(kind) or pa.types.is_timestamp(kind)
        ):
            problem = f"{rule.date} needs dates and it holds {kind}"
        elif isinstance(rule, BandCoarsening) and not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind)
        ):
            problem = f"bands need numbers and it holds {kind}"
        else:
            continue
        raise PublishError(f"{where}: cannot coarsen column {column} ({problem})", fix)
    if not [c for c in granted if c not in rules.drop]:
        raise PublishError(f"{where}: the grant's rules drop every granted column", fix)


def _coarsen(values: pa.ChunkedArray, rule: DateCoarsening | BandCoarsening) -> pa.Array:
    array = values.combine_chunks()
    if isinstance(rule, DateCoarsening):
        return generalise(array, rule.date)
    numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    band = np.searchsorted(np.asarray(rule.bands, dtype=np.float64), numbers, side="right")
    labels = pa.array(band_labels(rule.bands), pa.string()).take(pa.array(band, pa.int64()))
    missing = pc.is_null(array, nan_is_null=True)
    return pc.if_else(missing, pa.scalar(None, pa.string()), labels)


def _published_codebook(plan: _Plan, book: dict[str, Any]) -> dict[str, Any]:
    """The codebook of what the view holds: record keys and coarsened columns as published."""
    out = {}
    for column, raw in book.items():
        entry = dict(raw) if isinstance(raw, Mapping) else {"description": ""}
        if column in plan.record_keys:
            entry.update(type="record_key", key="record")
            description = str(entry.get("description") or "Record key")
            if RECORD_KEY_NOTE not in description:
                entry["description"] = description + RECORD_KEY_NOTE
        rule = plan.rules.coarsen.get(column)
        if isinstance(rule, DateCoarsening):
            entry.pop("range", None)
            entry.update(type="integer" if rule.date == "year" else "string", coarsened=rule.date)
        elif isinstance(rule, BandCoarsening):
            entry.pop("range", None)
            entry.update(
                type="string",
                coarsened={"bands": list(rule.bands)},
                codes={label: "" for label in band_labels(rule.bands)},
            )
        out[column] = entry
    return out


def _write_item(
    plan: _Plan, key: Pseudonymiser, record_key: Pseudonymiser, target: Path
) -> dict[str, Any]:
    item = plan.item
    table = pq.read_table(Path(item.parquet_path), columns=plan.columns)
    for name in plan.pseudonyms:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pseudonymise_array(key, table.column(name)))
    for name in plan.record_keys:
        index = table.schema.get_field_index(name)
        values = pc.cast(table.column(name), pa.string())
        table = table.set_column(index, name, pseudonymise_array(record_key, values))
    for name, rule in plan.rules.coarsen.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, _coarsen(table.column(name), rule))
    path = target / f"{item.dataset}.parquet"
    # No trenv metadata in the view: it would describe vault internals researchers need not see.
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")
    entry: dict[str, Any] = {
        "dataset": item.dataset,
        "version": item.version,
        "file": path.name,
        "sha256": file_sha256(path),
        "rows": table.num_rows,
        "columns": plan.columns,
        "pseudonym_columns": plan.pseudonyms,
        "record_key_columns": plan.record_keys,
        "column_rules": plan.rules.as_json(),
        "codebook": _published_codebook(plan, _codebook(item, plan.columns)),
        "linkage_report": None,
    }
    if item.linkage_report is not None:
        entry["linkage_report"] = _copy_report(item, target)
    return entry


def _copy_report(item: PublishItem, target: Path) -> dict[str, Any]:
    assert item.linkage_report is not None
    report_path = Path(item.linkage_report)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    folder = target / f"{item.dataset}.linkage"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    for chart in report.get("charts", []):
        chart_path = report_path.parent / Path(chart).name
        if chart_path.is_file():
            shutil.copyfile(chart_path, folder / chart_path.name)
    return {"directory": folder.name, "report": report}


def publish(
    project: str,
    items: Sequence[PublishItem],
    project_dir: Path,
    project_key: Pseudonymiser,
    *,
    progress: Progress | None = None,
) -> PublishResult:
    """Write the project's view of ``items`` and switch ``project_dir/data`` to it."""
    check_slug(project)
    names = [i.dataset for i in items]
    if len(names) != len(set(names)):
        raise PublishError("each dataset may be published once per project; drop duplicates")
    # Check every item (columns, rules) before writing anything.
    plans = [_plan(item) for item in items]
    record_key = record_key_pseudonymiser(project_key)
    project_dir = Path(project_dir)
    store = project_dir / PUBLICATIONS
    store.mkdir(parents=True, exist_ok=True)
    data_link = project_dir / DATA_LINK
    if data_link.exists() and not data_link.is_symlink():
        raise PublishError(
            f"{data_link} is a real directory, not a trenv publication link; move it away"
        )
    now = datetime.now(UTC)
    target = store / f"{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    target.mkdir(mode=0o755)
    try:
        entries = []
        files: dict[str, Path] = {}
        for i, plan in enumerate(plans, start=1):
            item = plan.item
            entries.append(_write_item(plan, project_key, record_key, target))
            files[item.dataset] = data_link / f"{item.dataset}.parquet"
            if progress is not None:
                progress(f"publish {item.dataset}", i, len(items))
        # Built through the model, so what is written is what every reader can parse.
        manifest = Manifest.model_validate(
            {
                "project": project,
                "published_at": now.isoformat(timespec="seconds"),
                "datasets": entries,
            }
        )
        (target / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        _read_only(target)
        previous = _previous_datasets(data_link)
        # rename() over an existing symlink is atomic: readers see the old or the new view.
        tmp_link = project_dir / f".{DATA_LINK}.{uuid.uuid4().hex}"
        os.symlink(Path(PUBLICATIONS) / target.name, tmp_link)
        os.replace(tmp_link, data_link)
    except BaseException:
        _remove_tree(target)
        raise
    # Drop every earlier publication (also any left by a crash): revoked data must go.
    for stale in store.iterdir():
        if stale != target:
            _remove_tree(stale)
    return PublishResult(
        data_dir=data_link,
        publication_dir=target,
        manifest=manifest.model_dump(mode="json"),
        files=files,
        removed=[name for name in previous if name not in names],
    )


def withdraw(project_dir: Path) -> list[str]:
    """Remove the project's published view (``trenv project close``, or all grants revoked).

    Returns the datasets that were visible. The ``data`` link is removed first, so a new
    container finds no data even while the old files are being deleted.
    """
    project_dir = Path(project_dir)
    data_link = project_dir / DATA_LINK
    previous = _previous_datasets(data_link) if data_link.is_symlink() else []
    if data_link.is_symlink():
        data_link.unlink()
    store = project_dir / PUBLICATIONS
    if store.exists():
        for publication in store.iterdir():
            _remove_tree(publication)
    return previous
