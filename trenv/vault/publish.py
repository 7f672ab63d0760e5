"""Publish a project's read-only view of its granted data: the directory mounted at /data.

For each granted dataset version (and only its granted columns) the view holds a Parquet file
in which every linkage pseudonym is replaced by the project's pseudonym, plus a manifest with
versions, checksums, codebooks and linkage reports. A publication is written to a new
directory and switched in by atomically replacing the ``data`` symlink, so a container never
sees half a publication; datasets no longer granted are simply absent from the new one.
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

import pyarrow.parquet as pq

from trenv.hashing import file_sha256
from trenv.vault.ingest import trenv_metadata
from trenv.vault.pseudonym import Pseudonymiser, check_slug, pseudonymise_array

Progress = Callable[[str, int, int], None]
DATA_LINK = "data"
PUBLICATIONS = ".publications"
MANIFEST = "manifest.json"
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


class PublishError(Exception):
    pass


@dataclass(frozen=True)
class PublishItem:
    """One granted dataset version. ``columns`` None means every column is granted."""

    dataset: str
    version: str
    parquet_path: Path
    columns: Sequence[str] | None = None
    codebook: Mapping[str, Any] | None = None
    linkage_report: Path | None = None


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
    manifest = data_link / MANIFEST
    if not manifest.exists():
        return []
    return [d["dataset"] for d in json.loads(manifest.read_text(encoding="utf-8"))["datasets"]]


def _codebook(item: PublishItem, columns: list[str]) -> dict[str, Any]:
    book: Mapping[str, Any] = item.codebook or {}
    if "columns" in book and isinstance(book["columns"], Mapping):
        book = book["columns"]
    return {c: book.get(c) or _EXTRA_CODEBOOK.get(c, {"description": ""}) for c in columns}


def _write_item(item: PublishItem, key: Pseudonymiser, target: Path) -> dict[str, Any]:
    if not _NAME.match(item.dataset):
        raise PublishError(f"dataset name {item.dataset!r} is not a valid file name")
    source = Path(item.parquet_path)
    if not source.is_file():
        raise PublishError(f"{item.dataset} {item.version}: {source} does not exist")
    available = pq.read_schema(source).names
    if item.columns is None:
        columns = list(available)
    else:
        unknown = [c for c in item.columns if c not in available]
        if unknown:
            raise PublishError(
                f"{item.dataset} {item.version}: granted column(s) {', '.join(unknown)} do not "
                "exist in the dataset; correct the grant"
            )
        # Keep the dataset's own column order, whatever order the grant lists.
        columns = [c for c in available if c in set(item.columns)]
    table = pq.read_table(source, columns=columns)
    pseudonyms = [c for c in trenv_metadata(source).get("pseudonym_columns", []) if c in columns]
    for name in pseudonyms:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pseudonymise_array(key, table.column(name)))
    path = target / f"{item.dataset}.parquet"
    # No trenv metadata in the view: it would describe vault internals researchers need not see.
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")
    entry: dict[str, Any] = {
        "dataset": item.dataset,
        "version": item.version,
        "file": path.name,
        "sha256": file_sha256(path),
        "rows": table.num_rows,
        "columns": columns,
        "pseudonym_columns": pseudonyms,
        "codebook": _codebook(item, columns),
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
        for i, item in enumerate(items, start=1):
            entries.append(_write_item(item, project_key, target))
            files[item.dataset] = data_link / f"{item.dataset}.parquet"
            if progress is not None:
                progress(f"publish {item.dataset}", i, len(items))
        manifest = {
            "project": project,
            "published_at": now.isoformat(timespec="seconds"),
            "datasets": entries,
        }
        (target / MANIFEST).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
        )
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
        manifest=manifest,
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
