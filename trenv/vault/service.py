"""The vault's bookkeeping: ingest, linkage, publication and closure against the registry.

The data functions in this package take paths and return results; this module checks the
registry before they run, registers what they produced and writes the audit events, so that
the CLI and (later) the web pages share one set of rules.

Transactions. Ingest and linkage take minutes on real extracts; holding a database write lock
that long would stall every other command (SQLite locks the whole database). They therefore
take a transaction *opener* and use short transactions: check, do the file work outside any
transaction, then register and audit in one transaction, deleting the new files if that
transaction does not commit. Publication holds its transaction (and a lock on the project
row) across the file work instead, so a closure or another publication cannot interleave
with the switch of the view. Closure commits the registry change first and then does file
work that is idempotent, so running it again completes a closure that was interrupted.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.config import Settings
from trenv.errors import Conflict, Invalid, NotFound
from trenv.hashing import file_sha256
from trenv.layout import datasets_dir, linkage_run_dir, project_dir, vault_keys_dir
from trenv.registry.datasets import get_dataset, parse_classification, register_dataset
from trenv.registry.grants import effective_grants
from trenv.registry.organisations import get_organisation
from trenv.registry.validation import check_version
from trenv.store.models import Dataset, Grant, Project, ProjectStatus
from trenv.vault.ingest import IngestError, ingest, trenv_metadata
from trenv.vault.linkage import PERSON, LinkageError, LinkSource, link
from trenv.vault.manifest import read_manifest
from trenv.vault.pseudonym import (
    FileKeyStore,
    KeyStoreError,
    linkage_pseudonymiser,
    project_pseudonymiser,
)
from trenv.vault.publish import PublishError, PublishItem, publish, withdraw
from trenv.vault.schema import Schema, SchemaError, builtin_schema_path, load_schema
from trenv.vault.validate import ValidationFailed, ValidationReport

Progress = Callable[[str, int, int], None]
OpenTransaction = Callable[[], AbstractContextManager[Session]]

# Codebook keys starting with "_" are vault bookkeeping: publication reads only "columns",
# so these never reach a researcher, and grants check column names against "columns" only.
LINKAGE_REPORT_KEY = "_linkage_report"
LINKED_FROM_KEY = "_linked_from"
_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}[a-z0-9]$")
_LINKED_COLUMNS = {
    PERSON: {
        "type": "pseudonym",
        "role": "identifier",
        "description": "Pseudonym of the linked person (project-specific in published views)",
    },
    "match_probability": {
        "type": "float",
        "role": "attribute",
        "description": "Probability that the record was linked to the right person (Splink)",
    },
}


def keystore(settings: Settings) -> FileKeyStore:
    return FileKeyStore(vault_keys_dir(settings))


# --------------------------------------------------------------------------- schemas


def resolve_schema(value: str) -> Path:
    """A built-in schema by name (``persons``) or a path to a YAML file."""
    builtin = builtin_schema_path(value) if re.fullmatch(r"[a-z][a-z0-9_]*", value) else None
    path = Path(value)
    if path.is_file():
        return path
    if builtin is not None and builtin.is_file():
        return builtin
    known = ", ".join(sorted(p.stem for p in builtin_schema_path("x").parent.glob("*.yaml")))
    raise Invalid(
        f"no schema file {value!r}.",
        f"Give the path of a schema YAML file or a built-in schema name ({known}).",
    )


def read_schema(value: str) -> Schema:
    try:
        return load_schema(resolve_schema(value))
    except SchemaError as error:
        raise Invalid(str(error) + ".", "Correct the schema file (see docs/vault.md).") from None


def _check_dataset_name(name: str) -> str:
    # The name is a directory in the vault and a file name in the view: lower_snake_case.
    if not _DATASET_NAME.fullmatch(name):
        raise Invalid(
            f"dataset name {name!r} is not valid.",
            "Use 2-64 lowercase letters, digits and '_', starting with a letter "
            "(e.g. 'cyber_reports').",
        )
    return name


def _reserve_version(session: Session, name: str, version: str) -> None:
    existing = session.scalar(
        select(Dataset).where(Dataset.name == name, Dataset.version == version)
    )
    if existing is not None:
        raise Conflict(
            f"dataset {name}@{version} is already registered.",
            "Versions are immutable: pass another --version.",
        )


# --------------------------------------------------------------------------- ingest


class IngestRefused(Invalid):
    """The extract failed validation; ``report`` lists the problems. Nothing was stored."""

    def __init__(self, report: ValidationReport) -> None:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(report.counts.items()))
        super().__init__(
            f"{report.path.name}: {report.problem_count} problem(s) against schema "
            f"{report.dataset} ({kinds}); nothing was stored.",
            "Fix them in the extract (or the schema) and deliver it again.",
        )
        self.report = report


@dataclass(frozen=True)
class IngestRequest:
    file: Path
    dataset: str
    supplier: str
    schema: str  # built-in name or path
    version: str | None = None  # default: today's date
    classification: str = "special-category"
    description: str | None = None  # default: the schema's description


@dataclass(frozen=True)
class IngestOutcome:
    reference: str
    directory: Path
    rows: int
    sha256: str
    columns: list[str]
    pseudonym_columns: list[str]


def ingest_dataset(
    open_tx: OpenTransaction,
    settings: Settings,
    request: IngestRequest,
    *,
    actor: str,
    max_listed: int = 100,
    progress: Progress | None = None,
    today: dt.date | None = None,
) -> IngestOutcome:
    """Validate and store a supplier's extract, then register it; all or nothing.

    A refused extract raises ``IngestRefused`` after recording ``data.ingest.refused`` in its
    own transaction: the refusal is itself an event worth keeping.
    """
    schema = read_schema(request.schema)
    name = _check_dataset_name(request.dataset)
    version = check_version(request.version or (today or dt.date.today()).isoformat())
    classification = parse_classification(request.classification)
    dest = datasets_dir(settings) / name / version
    with open_tx() as session:
        get_organisation(session, request.supplier)
        _reserve_version(session, name, version)
    if dest.exists():
        raise Conflict(
            f"{dest} exists but {name}@{version} is not registered: an earlier ingest was "
            "interrupted.",
            f"Check and remove {dest}, then ingest again.",
        )
    try:
        result = ingest(
            request.file,
            schema,
            dest,
            linkage_pseudonymiser(keystore(settings)),
            max_listed=max_listed,
            progress=progress,
        )
    except ValidationFailed as failed:
        with open_tx() as session:
            audit.record(
                session,
                actor=actor,
                action=AuditAction.data_ingest_refused,
                object_type="dataset",
                object_id=f"{name}@{version}",
                detail={
                    "supplier": request.supplier,
                    "file": Path(request.file).name,
                    "schema": schema.dataset,
                    "rows": failed.report.rows,
                    "problem_count": failed.report.problem_count,
                    "counts": dict(failed.report.counts),
                },
            )
        raise IngestRefused(failed.report) from None
    except (IngestError, KeyStoreError) as error:
        raise Invalid(f"{error}.") from None

    try:
        with open_tx() as session:
            dataset = register_dataset(
                session,
                actor=actor,
                supplier=request.supplier,
                name=name,
                version=version,
                classification=classification,
                row_count=result.rows,
                sha256=result.sha256,
                path=str(result.data_path.absolute()),
                description=request.description
                if request.description is not None
                else schema.description,
                codebook={"description": schema.description, "columns": result.codebook},
            )
            audit.record(
                session,
                actor=actor,
                action=AuditAction.data_ingest,
                object_type="dataset",
                object_id=dataset.reference,
                detail={
                    "supplier": request.supplier,
                    "file": Path(request.file).name,
                    "source_sha256": result.source_sha256,
                    "schema": schema.dataset,
                    "rows": result.rows,
                    "sha256": result.sha256,
                    "columns": result.columns,
                    "pseudonym_columns": result.pseudonym_columns,
                },
            )
            reference = dataset.reference
    except BaseException:
        # The directory is ours (ingest created it); without a registry row it must go.
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return IngestOutcome(
        reference=reference,
        directory=dest,
        rows=result.rows,
        sha256=result.sha256,
        columns=result.columns,
        pseudonym_columns=result.pseudonym_columns,
    )


# --------------------------------------------------------------------------- linkage


@dataclass(frozen=True)
class LinkRequest:
    spine: str  # NAME or NAME@VERSION
    sources: Sequence[str]
    ground_truth: Path | None = None
    version: str | None = None  # of the linked versions; default "<source version>-linked"
    threshold: float = 0.5
    seed: int = 0


@dataclass
class LinkOutcome:
    run: str
    directory: Path
    report: dict[str, Any]
    registered: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Planned:
    source: LinkSource
    reference: str
    supplier: str
    classification: str
    description: str
    codebook: dict[str, Any]
    new_version: str | None  # set when linkage writes a new version of this dataset


def _link_source(dataset: Dataset) -> LinkSource:
    data_path = _vault_file(dataset)
    linkage = data_path.parent / "linkage.parquet"
    # The ground truth names sources as the schema did; the catalogue name may differ.
    schema_name = trenv_metadata(data_path).get("dataset")
    return LinkSource(
        dataset.name,
        data_path,
        linkage if linkage.is_file() else None,
        truth_name=schema_name if schema_name and schema_name != dataset.name else None,
    )


def _plan(
    session: Session, reference: str, version: str | None, *, spine: bool = False
) -> _Planned:
    dataset = get_dataset(session, reference)
    origin = dataset.codebook.get(LINKED_FROM_KEY)
    if origin:
        raise Invalid(
            f"{dataset.reference} is the output of a linkage run; it cannot be linked again.",
            f"Name the ingested version instead: {origin}.",
        )
    source = _link_source(dataset)
    has_person = PERSON in trenv_metadata(source.data_path).get("pseudonym_columns", [])
    new_version = None
    if not spine and not has_person and source.linkage_path is not None:
        new_version = check_version(version or f"{dataset.version}-linked")
        _reserve_version(session, dataset.name, new_version)
    return _Planned(
        source=source,
        reference=dataset.reference,
        supplier=dataset.supplier.slug,
        classification=dataset.classification.value,
        description=dataset.description,
        codebook=dict(dataset.codebook),
        new_version=new_version,
    )


def _linked_codebook(planned: _Planned, report_path: Path) -> dict[str, Any]:
    columns = planned.codebook.get("columns")
    book = dict(columns) if isinstance(columns, dict) else {}
    book.update(_LINKED_COLUMNS)
    return {
        "description": planned.codebook.get("description", planned.description),
        "columns": book,
        LINKAGE_REPORT_KEY: str(report_path.absolute()),
        LINKED_FROM_KEY: planned.reference,
    }


def link_datasets(
    open_tx: OpenTransaction,
    settings: Settings,
    request: LinkRequest,
    *,
    actor: str,
    progress: Progress | None = None,
) -> LinkOutcome:
    """Link ingested dataset versions to the spine and register the linked versions."""
    if not request.sources:
        raise Invalid("no source to link.", "Pass one or more --source DATASET.")
    names = [r.partition("@")[0] for r in request.sources]
    if len(set(names)) != len(names) or request.spine.partition("@")[0] in names:
        raise Invalid("each dataset may appear once in a linkage run.", "Drop the duplicates.")
    if request.ground_truth is not None and not Path(request.ground_truth).is_file():
        raise Invalid(f"no ground-truth file at {request.ground_truth}.", "Check the path.")
    with open_tx() as session:
        spine = _plan(session, request.spine, None, spine=True)
        planned = [_plan(session, r, request.version) for r in request.sources]
    run = f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    run_dir = linkage_run_dir(settings, run)
    try:
        result = link(
            spine.source,
            [p.source for p in planned],
            run_dir,
            ground_truth=request.ground_truth,
            threshold=request.threshold,
            seed=request.seed,
            progress=progress,
        )
    except LinkageError as error:
        raise Invalid(f"{error}.") from None

    registered: list[str] = []
    try:
        with open_tx() as session:
            for plan in planned:
                path = result.linked.get(plan.source.name)
                if path is None:
                    continue
                assert plan.new_version is not None
                dataset = register_dataset(
                    session,
                    actor=actor,
                    supplier=plan.supplier,
                    name=plan.source.name,
                    version=plan.new_version,
                    classification=parse_classification(plan.classification),
                    row_count=pq.read_metadata(path).num_rows,
                    sha256=result.linked_sha256[plan.source.name],
                    path=str(path.absolute()),
                    description=plan.description,
                    codebook=_linked_codebook(plan, result.report_path),
                )
                registered.append(dataset.reference)
            audit.record(
                session,
                actor=actor,
                action=AuditAction.data_link,
                object_type="linkage",
                object_id=run,
                detail={
                    "spine": spine.reference,
                    "sources": [p.reference for p in planned],
                    "registered": registered,
                    "threshold": request.threshold,
                    "seed": request.seed,
                    "ground_truth": request.ground_truth is not None,
                    "results": link_summary(result.report),
                },
            )
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return LinkOutcome(run=run, directory=run_dir, report=result.report, registered=registered)


def link_summary(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per source: method, counts and, with a ground truth, precision and recall."""
    summary: dict[str, dict[str, Any]] = {}
    for name, entry in report["sources"].items():
        row = {k: entry[k] for k in ("method", "records", "matched", "match_rate")}
        evaluation = entry.get("evaluation")
        if evaluation:
            row["precision"] = evaluation["precision"]
            row["recall"] = evaluation["recall"]
        summary[name] = row
    return summary


# --------------------------------------------------------------------------- publication


@dataclass
class PublishOutcome:
    project: str
    data_dir: Path
    datasets: list[dict[str, Any]]
    removed: list[str]
    withdrawn: bool  # no effective grant: the view was removed


def _vault_file(dataset: Dataset) -> Path:
    if not dataset.path:
        raise Invalid(
            f"dataset {dataset.reference} has no file in the vault.",
            "Ingest it with `trenv data ingest` (or register it with --file).",
        )
    path = Path(dataset.path)
    if not path.is_file():
        raise Invalid(
            f"the file of dataset {dataset.reference} is missing ({path}).",
            "Restore the vault from its backup.",
        )
    return path


def _publish_item(grant: Grant) -> PublishItem:
    dataset = grant.dataset
    path = _vault_file(dataset)
    # The registered checksum is what the supplier's controller approved: refuse other bytes.
    if file_sha256(path) != dataset.sha256:
        raise Invalid(
            f"the file of dataset {dataset.reference} changed after it was registered "
            "(sha256 differs).",
            "Restore it from the vault backup, or ingest and grant a new version.",
        )
    report = dataset.codebook.get(LINKAGE_REPORT_KEY)
    report_path = Path(report) if isinstance(report, str) else None
    if report_path is not None and not report_path.is_file():
        raise Invalid(
            f"the linkage report of {dataset.reference} is missing ({report_path}).",
            "Restore the vault from its backup.",
        )
    return PublishItem(
        dataset=dataset.name,
        version=dataset.version,
        parquet_path=path,
        columns=grant.columns,
        codebook=dataset.codebook,
        linkage_report=report_path,
        rules=grant.column_rules,
    )


def _locked_project(session: Session, slug: str) -> Project:
    # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers): a
    # closure waits for a running publication and vice versa.
    project = session.scalar(select(Project).where(Project.slug == slug).with_for_update())
    if project is None:
        raise NotFound(f"unknown project {slug!r}.", "See `trenv project list`.")
    return project


def publish_project(
    session: Session,
    settings: Settings,
    slug: str,
    *,
    actor: str,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> PublishOutcome:
    """Publish exactly what the project's effective grants allow (or withdraw the view)."""
    project = _locked_project(session, slug)
    if project.status == ProjectStatus.closed:
        raise Invalid(f"project {slug!r} is closed.", "A closed project keeps no data.")
    if not project.is_active(today):
        raise Invalid(
            f"project {slug!r} is not active (it runs {project.start_date} to {project.end_date}).",
            "Publish once it has started, or close it with `trenv project close`.",
        )
    grants = effective_grants(session, slug, today)
    target = project_dir(settings, slug)
    by_name: dict[str, str] = {}
    for grant in grants:
        other = by_name.setdefault(grant.dataset.name, grant.dataset.reference)
        if other != grant.dataset.reference:
            raise Invalid(
                f"project {slug!r} has grants on two versions of {grant.dataset.name} "
                f"({other}, {grant.dataset.reference}).",
                "A view holds one version per dataset: revoke one of the grants.",
            )
    if not grants:
        removed = withdraw(target)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.data_publish,
            object_type="project",
            object_id=slug,
            detail={"datasets": [], "removed": removed, "withdrawn": True},
        )
        return PublishOutcome(slug, target / "data", [], removed, withdrawn=True)
    items = [_publish_item(g) for g in grants]
    try:
        key = project_pseudonymiser(keystore(settings), slug)
        result = publish(slug, items, target, key, progress=progress)
    except PublishError as error:
        raise Invalid(f"{error.problem}.", error.fix) from None
    except KeyStoreError as error:
        raise Invalid(f"{error}.") from None
    entries = [
        {
            "dataset": e["dataset"],
            "version": e["version"],
            "sha256": e["sha256"],
            "rows": e["rows"],
            "columns": e["columns"],
            "record_key_columns": e["record_key_columns"],
            "column_rules": e["column_rules"],
            "grant": g.id,
        }
        for e, g in zip(result.manifest["datasets"], grants, strict=True)
    ]
    audit.record(
        session,
        actor=actor,
        action=AuditAction.data_publish,
        object_type="project",
        object_id=slug,
        detail={
            "publication": result.publication_dir.name,
            "datasets": entries,
            "removed": result.removed,
            "withdrawn": False,
        },
    )
    return PublishOutcome(slug, result.data_dir, entries, result.removed, withdrawn=False)


# --------------------------------------------------------------------------- closure


@dataclass(frozen=True)
class CloseOutcome:
    project: str
    already_closed: bool
    withdrawn: list[str]  # datasets that were visible until now
    key_destroyed: bool  # a key existed and was destroyed by this run


def _visible(settings: Settings, slug: str) -> list[str]:
    manifest = read_manifest(settings, slug)
    return [] if manifest is None else [e.dataset for e in manifest.datasets]


def close_project(
    open_tx: OpenTransaction, settings: Settings, slug: str, *, actor: str
) -> CloseOutcome:
    """Close a project: no new servers or publications, view withdrawn, key destroyed.

    Stopping servers and archiving workspaces follow in :mod:`trenv.admin.closure`.
    """
    target = project_dir(settings, slug)
    with open_tx() as session:
        project = _locked_project(session, slug)
        already = project.status == ProjectStatus.closed
        if not already:
            project.status = ProjectStatus.closed
            audit.record(
                session,
                actor=actor,
                action=AuditAction.project_close,
                object_type="project",
                object_id=slug,
                detail={
                    "published": _visible(settings, slug),
                    "steps": ["withdraw view", "destroy project key"],
                },
            )
    # From here the project is closed in the registry, so nothing publishes for it again;
    # both steps are idempotent, so a re-run finishes an interrupted closure.
    withdrawn = withdraw(target)
    keys = keystore(settings)
    had_key = keys.has_project_key(slug)
    keys.destroy_project_key(slug)
    if already and (withdrawn or had_key):
        with open_tx() as session:
            audit.record(
                session,
                actor=actor,
                action=AuditAction.project_close_completed,
                object_type="project",
                object_id=slug,
                detail={"withdrawn": withdrawn, "key_destroyed": had_key},
            )
    return CloseOutcome(slug, already, withdrawn, had_key)
