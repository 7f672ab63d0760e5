"""The manifest contract: what publish writes is what every reader parses."""

from __future__ import annotations

import json
from pathlib import Path

from trenv.config import Settings
from trenv.layout import project_data_dir
from trenv.vault.manifest import (
    MANIFEST,
    Manifest,
    published_references,
    read_manifest,
    read_manifest_at,
)

ENTRY = {
    "dataset": "convictions",
    "version": "2024.1",
    "file": "convictions.parquet",
    "sha256": "a" * 64,
    "rows": 12,
    "columns": ["person_pseudonym", "offence"],
    "pseudonym_columns": ["person_pseudonym"],
    "record_key_columns": [],
    "column_rules": None,
    "codebook": {"offence": {"type": "category"}},
    "linkage_report": None,
}


def _write(data: Path, body: object) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / MANIFEST).write_text(json.dumps(body), encoding="utf-8")


def test_a_written_manifest_reads_back_with_references(settings: Settings) -> None:
    body = {"project": "p", "published_at": "2026-01-01T00:00:00+00:00", "datasets": [ENTRY]}
    _write(project_data_dir(settings, "p"), body)
    manifest = read_manifest(settings, "p")
    assert manifest is not None
    assert manifest.references() == ["convictions@2024.1"]
    assert manifest.entry("convictions") is not None
    assert manifest.entry("convictions").rows == 12  # type: ignore[union-attr]
    assert manifest.entry("police") is None
    assert published_references(settings, "p") == ["convictions@2024.1"]
    # Writing the model gives back the same JSON document.
    assert json.loads(manifest.to_json()) == body


def test_nothing_published_and_malformed_manifests_read_as_none(
    settings: Settings, tmp_path: Path
) -> None:
    assert read_manifest(settings, "never") is None
    assert published_references(settings, "never") == []
    broken = tmp_path / "broken"
    _write(broken, {"project": "p", "datasets": [ENTRY]})  # published_at missing
    assert read_manifest_at(broken) is None
    (broken / MANIFEST).write_text("{not json", encoding="utf-8")
    assert read_manifest_at(broken) is None
    _write(broken, {"project": "p", "published_at": "x", "datasets": [{"dataset": "d"}]})
    assert read_manifest_at(broken) is None  # an entry without version and file


def test_older_manifests_with_extra_keys_still_read(tmp_path: Path) -> None:
    entry = {**ENTRY, "supplier_note": "kept"}
    _write(tmp_path, {"project": "p", "published_at": "t", "datasets": [entry], "extra": 1})
    manifest = read_manifest_at(tmp_path)
    assert isinstance(manifest, Manifest)
    assert json.loads(manifest.to_json())["datasets"][0]["supplier_note"] == "kept"
