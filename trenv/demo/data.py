"""The demo project's data, the way a real installation gets it: synth -> ingest -> link ->
grants (a steward proposes, each supplier's controller approves) -> DP budgets -> publish.

Every step is skipped when its result is already there, so `make demo` can run again and
the CI fixture can call :func:`prepare` on a fresh TRENV_HOME. Nothing here is a shortcut:
the same service functions as `trenv data ...`, `trenv grant ...` and `trenv budget set`
run, with their checks and audit events.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.config import Settings
from trenv.demo.synth import GROUND_TRUTH, SynthConfig, generate
from trenv.errors import NotFound
from trenv.layout import demo_sources_dir
from trenv.privacy import ledger
from trenv.registry import datasets, grants, organisations
from trenv.store import transaction
from trenv.store.models import Grant, GrantStatus
from trenv.vault import service
from trenv.vault.manifest import published_references

VERSION = "2024-12"  # the synthetic sources run to the end of 2024
STEWARD = "stella"
CONTROLLER = "carl"


@dataclass(frozen=True)
class Source:
    dataset: str  # also the built-in schema's name
    supplier: str
    linked: bool = False  # no BSN: linked to the population register by Splink


# The justice chain's sources of the demo project; persons is the linkage spine.
SOURCES = (
    Source("persons", "brp"),
    Source("prosecution_cases", "om"),
    Source("convictions", "rechtspraak"),
    Source("prison_stays", "dji"),
    Source("reoffending", "wodc"),
    Source("drug_seizures", "nfi"),
    Source("cyber_reports", "politie", linked=True),
)
# zCDP budgets for the notebooks' DP queries (notebook 3 spends about 0.6 per run).
BUDGETS = {"cyber_reports": 5.0, "prosecution_cases": 5.0}


@dataclass
class Prepared:
    created: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)  # name@version granted and published

    def note(self, what: str) -> None:
        self.created.append(what)


def _tx(settings: Settings) -> Callable[[], AbstractContextManager[Session]]:
    return partial(transaction, settings)


def _registered(settings: Settings, reference: str) -> bool:
    with transaction(settings) as session:
        try:
            datasets.get_dataset(session, reference)
        except NotFound:
            return False
    return True


def _synth(settings: Settings, persons: int, seed: int) -> Path:
    """The suppliers' extracts; regenerated only when missing (same seed: same bytes)."""
    out = demo_sources_dir(settings, persons, seed)
    if not (out / GROUND_TRUTH).is_file():
        generate(out, SynthConfig(persons=persons, seed=seed, formats=("parquet",)))
    return out


def _ingest(settings: Settings, src: Path, prepared: Prepared) -> None:
    for source in SOURCES:
        reference = f"{source.dataset}@{VERSION}"
        if _registered(settings, reference):
            continue
        request = service.IngestRequest(
            file=src / f"{source.dataset}.parquet",
            dataset=source.dataset,
            supplier=source.supplier,
            schema=source.dataset,
            version=VERSION,
        )
        service.ingest_dataset(_tx(settings), settings, request, actor=STEWARD)
        prepared.note(f"ingested {reference}")


def _link(settings: Settings, src: Path, prepared: Prepared) -> None:
    linked = [s.dataset for s in SOURCES if s.linked]
    if all(_registered(settings, f"{n}@{VERSION}-linked") for n in linked):
        return
    request = service.LinkRequest(
        spine=f"persons@{VERSION}",
        sources=[f"{n}@{VERSION}" for n in linked],
        ground_truth=src / GROUND_TRUTH,
    )
    outcome = service.link_datasets(_tx(settings), settings, request, actor=STEWARD)
    prepared.note(f"linked {', '.join(outcome.registered)}")


def granted_references() -> list[str]:
    return [f"{s.dataset}@{VERSION}" + ("-linked" if s.linked else "") for s in SOURCES]


def _open_grant(session: Session, project: str, reference: str) -> Grant | None:
    data = datasets.get_dataset(session, reference)
    return session.scalars(
        select(Grant).where(
            Grant.dataset_id == data.id,
            Grant.status != GrantStatus.revoked,
            Grant.project.has(slug=project),
        )
    ).first()


def _grant(settings: Settings, project: str, prepared: Prepared) -> None:
    """Four eyes: the steward proposes, the supplier's controller (another person) approves."""
    for reference in granted_references():
        with transaction(settings) as session:
            grant = _open_grant(session, project, reference)
            if grant is None:
                grant = grants.propose_grant(
                    session, proposer=STEWARD, project=project, dataset=reference
                )
                prepared.note(f"grant #{grant.id} proposed on {reference}")
            if grant.status == GrantStatus.proposed:
                grants.approve_grant(session, approver=CONTROLLER, grant_id=grant.id)
                prepared.note(f"grant #{grant.id} approved by {CONTROLLER}")


def _budgets(settings: Settings, project: str, prepared: Prepared) -> None:
    with transaction(settings) as session:
        have = {s.dataset for s in ledger.statuses(session, project=project)}
        for dataset, rho in BUDGETS.items():
            if dataset not in have:
                ledger.set_budget(
                    session, actor=STEWARD, project=project, dataset=dataset, rho_total=rho
                )
                prepared.note(f"DP budget rho {rho} on {dataset}")


def _publish(settings: Settings, project: str, prepared: Prepared) -> None:
    # Publishing again would swap the view under a running server for identical bytes.
    if published_references(settings, project) == sorted(granted_references()):
        return
    with transaction(settings) as session:
        outcome = service.publish_project(session, settings, project, actor=STEWARD)
    prepared.note(f"published {len(outcome.datasets)} datasets for {project}")


def ensure_suppliers(session: Session) -> None:
    """Suppliers the sources need that the registry lacks, with the demo controller."""
    for source in SOURCES:
        try:
            org = organisations.get_organisation(session, source.supplier)
        except NotFound:
            org = organisations.add_organisation(
                session,
                actor="system:demo",
                slug=source.supplier,
                name=SUPPLIER_NAMES[source.supplier],
            )
        if CONTROLLER not in {u.username for u in org.controllers}:
            organisations.add_controller(
                session, actor="system:demo", slug=source.supplier, username=CONTROLLER
            )


SUPPLIER_NAMES = {
    "brp": "Basisregistratie Personen (population register)",
    "om": "Openbaar Ministerie (prosecution service)",
    "rechtspraak": "De Rechtspraak (courts)",
    "dji": "Dienst Justitiële Inrichtingen (prisons)",
    "wodc": "WODC (recidivism monitor)",
    "nfi": "Nederlands Forensisch Instituut",
    "politie": "Politie (police)",
}


def prepare(settings: Settings, project: str, *, persons: int, seed: int = 1) -> Prepared:
    """Bring the project's data to its published state; return what had to be done.

    Needs the demo people (steward ``stella``, controller ``carl``) and the project.
    """
    prepared = Prepared()
    with transaction(settings) as session:
        ensure_suppliers(session)
    src = _synth(settings, persons, seed)
    _ingest(settings, src, prepared)
    _link(settings, src, prepared)
    _grant(settings, project, prepared)
    _budgets(settings, project, prepared)
    _publish(settings, project, prepared)
    prepared.datasets = published_references(settings, project)
    return prepared
