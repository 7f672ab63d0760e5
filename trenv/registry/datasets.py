"""The dataset catalogue: versions of suppliers' data held in the vault, with codebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.errors import Conflict, Invalid, NotFound
from trenv.registry.organisations import get_organisation
from trenv.registry.validation import check_slug, check_version
from trenv.store.models import Classification, Dataset, DatasetStatus


def parse_classification(value: str) -> Classification:
    try:
        return Classification(value)
    except ValueError:
        known = ", ".join(c.value for c in Classification)
        raise Invalid(f"unknown classification {value!r}.", f"Choose from: {known}.") from None


def file_row_count(path: Path) -> int:
    """Rows in a Parquet file (from its footer) or a CSV file (lines after the header)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # hub-side only; keeps `import trenv.registry` light

        return int(pq.read_metadata(path).num_rows)
    if suffix == ".csv":
        with path.open("rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        with path.open("rb") as handle:
            handle.seek(max(path.stat().st_size - 1, 0))
            ends_with_newline = handle.read(1) == b"\n"
        return max(lines - 1 + (0 if ends_with_newline else 1), 0)
    raise Invalid(f"{path.name}: unsupported file type {suffix!r}.", "Use .parquet or .csv.")


def codebook_columns(codebook: dict[str, Any]) -> list[str] | None:
    columns = codebook.get("columns")
    if isinstance(columns, dict):
        return list(columns)
    if isinstance(columns, list):
        return [c["name"] if isinstance(c, dict) else str(c) for c in columns]
    return None


def register_dataset(
    session: Session,
    *,
    actor: str,
    supplier: str,
    name: str,
    version: str,
    classification: Classification,
    row_count: int,
    sha256: str,
    path: str = "",
    description: str = "",
    codebook: dict[str, Any] | None = None,
) -> Dataset:
    check_slug(name.replace("_", "-"), "dataset")
    check_version(version)
    org = get_organisation(session, supplier)
    if session.scalar(select(Dataset).where(Dataset.name == name, Dataset.version == version)):
        raise Conflict(
            f"dataset {name}@{version} is already registered.",
            "Versions are immutable: register a new version.",
        )
    if row_count < 0 or len(sha256) != 64:
        raise Invalid("a dataset needs a row count >= 0 and a sha256 of 64 hex digits.")
    dataset = Dataset(
        supplier=org,
        name=name,
        version=version,
        classification=classification,
        row_count=row_count,
        sha256=sha256,
        path=path,
        description=description,
        codebook=codebook or {},
        status=DatasetStatus.available,
    )
    session.add(dataset)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.dataset_register,
        object_type="dataset",
        object_id=dataset.reference,
        detail={
            "supplier": supplier,
            "classification": classification.value,
            "rows": row_count,
            "sha256": sha256,
        },
    )
    return dataset


def get_dataset(session: Session, reference: str) -> Dataset:
    """``name@version``, or ``name`` for the newest available version."""
    name, _, version = reference.partition("@")
    query = select(Dataset).where(Dataset.name == name)
    if version:
        query = query.where(Dataset.version == version)
    else:
        query = query.where(Dataset.status == DatasetStatus.available).order_by(
            Dataset.created_at.desc(), Dataset.id.desc()
        )
    dataset = session.scalars(query.limit(1)).first()
    if dataset is None:
        raise NotFound(f"unknown dataset {reference!r}.", "See `trenv dataset list`.")
    return dataset


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.name, Dataset.version)))
