"""The manifest of a project's published view: a typed contract owned by the vault.

``trenv/vault/publish.py`` writes ``manifest.json`` next to the Parquet files of every
publication; the launcher (what a server mounts and whether a grant still covers it), the
airlock (provenance in the disclosure record), the DP service (which file and pseudonym
column a query reads), the admin usage page and the demo read it, all through
:func:`read_manifest`. A manifest that cannot be read or does not match the model counts as
no publication: nothing is mounted or queried from a view trenv cannot describe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trenv.config import Settings
from trenv.layout import project_data_dir

MANIFEST = "manifest.json"


class ManifestEntry(BaseModel):
    """One dataset in the view: its file, version, columns and how they were derived."""

    model_config = ConfigDict(extra="allow")  # older publications may carry more keys

    dataset: str
    version: str
    file: str
    sha256: str = ""
    rows: int = 0
    columns: list[str] = Field(default_factory=list)
    pseudonym_columns: list[str] = Field(default_factory=list)
    record_key_columns: list[str] = Field(default_factory=list)
    column_rules: dict[str, Any] | None = None
    codebook: dict[str, Any] = Field(default_factory=dict)
    linkage_report: dict[str, Any] | None = None

    @property
    def reference(self) -> str:
        """``name@version``, as grants and the disclosure record name a dataset."""
        return f"{self.dataset}@{self.version}"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    project: str
    published_at: str
    datasets: list[ManifestEntry] = Field(default_factory=list)

    def entry(self, dataset: str) -> ManifestEntry | None:
        return next((e for e in self.datasets if e.dataset == dataset), None)

    def references(self) -> list[str]:
        return sorted(e.reference for e in self.datasets)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False)


def read_manifest_at(data_dir: Path) -> Manifest | None:
    """The manifest in ``data_dir`` (a publication, or the project's ``data`` link), or None."""
    try:
        text = (Path(data_dir) / MANIFEST).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    try:
        return Manifest.model_validate_json(text)
    except ValidationError:
        return None


def read_manifest(settings: Settings, project: str) -> Manifest | None:
    """The project's current view, or None while nothing (readable) is published."""
    return read_manifest_at(project_data_dir(settings, project))


def published_references(settings: Settings, project: str) -> list[str]:
    """``name@version`` of every dataset in the project's current view ([] if none)."""
    manifest = read_manifest(settings, project)
    return [] if manifest is None else manifest.references()
