"""Server-side DP queries on a project's published data, charged to the ledger.

The web API (trenv/web/api/dp.py) calls :func:`run_query` with the caller's name and the
project of their running server. Everything the client could lie about is decided here:
the file comes from the project's published view, the privacy unit is the dataset's
pseudonym column from the publication manifest, and group keys come from the codebook.

Order of work (the ledger's rules, see ledger.py):
1. access, the dataset, rho against the project policy's per-query limits, the spec, the
   data's schema, the bounds against the column's type and the noise's calibration are
   checked: nothing is charged;
2. ``reserve`` in its own committed transaction (refused, with what is left, if it would
   overspend);
3. a worker process is leased (trenv/privacy/workers.py); if none is free within the
   policy's ``queue_wait_s`` the reservation is *cancelled* (no data was touched) and the
   query refused with 503;
4. ``mark_running`` committed: from here the spend stays even if this process dies;
5. the release runs in the worker, for at most the policy's ``release_timeout_s``; a timed-out
   (504) or failed (500) release stays charged, with a ``privacy.release.failed`` audit event;
6. ``commit`` with the release JSON and a ``privacy.release`` audit event, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.config import Settings
from trenv.disclosure.policy import PrivacySetting, load_policy
from trenv.errors import Conflict, Forbidden, Invalid, NotFound, TrenvError
from trenv.layout import project_data_dir
from trenv.privacy import ledger
from trenv.privacy.releases import (
    DEFAULT_DELTA,
    DPRelease,
    _cells,
    _key_frame,
    check_calibration,
    plan_hash,
    release,
)
from trenv.privacy.spec import Key, QuerySpec, check_against_schema
from trenv.privacy.workers import Busy, ReleasePool, shared_pool
from trenv.registry.grants import effective_grants
from trenv.registry.projects import find_membership, get_project
from trenv.registry.users import get_user
from trenv.store.engine import transaction
from trenv.vault.manifest import read_manifest
from trenv.wire.dp import DPQuery, DPResult


@dataclass(frozen=True)
class PublishedDataset:
    name: str
    version: str
    path: Path
    unit_column: str
    codebook: dict[str, Any]


def published_dataset(settings: Settings, project: str, dataset: str) -> PublishedDataset:
    """The dataset as published for ``project`` (file, version, pseudonym column, codebook)."""
    manifest = read_manifest(settings, project)
    if manifest is None:
        raise NotFound(
            f"project {project!r} has no published data.",
            "A data steward publishes the project's granted data (`trenv data publish`).",
        )
    entry = manifest.entry(dataset)
    if entry is None:
        names = sorted(e.dataset for e in manifest.datasets)
        raise NotFound(
            f"unknown dataset {dataset!r} in project {project!r}.",
            f"Published datasets: {', '.join(names) or 'none'}.",
        )
    codebook: dict[str, Any] = entry.codebook
    pseudonyms = list(entry.pseudonym_columns) or [
        col for col, info in codebook.items() if (info or {}).get("type") == "pseudonym"
    ]
    if not pseudonyms:
        raise Invalid(
            f"dataset {dataset!r} has no pseudonym column, so a person cannot be the privacy unit.",
            "DP queries need person-level data; use output checking instead.",
        )
    unit = "person_pseudonym" if "person_pseudonym" in pseudonyms else pseudonyms[0]
    data = project_data_dir(settings, project)
    return PublishedDataset(dataset, entry.version, data / entry.file, unit, codebook)


def public_keys(published: PublishedDataset, column: str) -> list[Key]:
    """A grouping column's public key list: the codes its codebook lists, else refused."""
    info = published.codebook.get(column)
    if info is None:
        raise Invalid(
            f"unknown column {column!r} in {published.name}.",
            f"Use one of: {', '.join(published.codebook)}.",
        )
    if isinstance(info.get("codes"), dict) and info["codes"]:
        return list(info["codes"])
    if isinstance(info.get("keys"), list) and info["keys"]:
        return list(info["keys"])
    public = [c for c, i in published.codebook.items() if (i or {}).get("codes") or
              (i or {}).get("keys")]  # fmt: skip
    raise Invalid(
        f"the keys of column {column!r} are not public: the codebook of {published.name} "
        "lists no codes for it, and keys are never taken from the data.",
        f"Group by a column with codes in the codebook: {', '.join(public) or 'none'}.",
    )


def check_access(session: Session, *, username: str, project: str, dataset: str) -> None:
    """An active member of an active project with an effective grant of ``dataset``."""
    user = get_user(session, username)
    proj = get_project(session, project)
    if not user.active:
        raise Forbidden(f"account {username!r} is deactivated.")
    if find_membership(session, proj, user) is None:
        raise Forbidden(f"{username!r} is not a member of project {project!r}.")
    if not proj.is_active():
        raise Forbidden(f"project {project!r} is not active.")
    if not any(g.dataset.name == dataset for g in effective_grants(session, project)):
        raise Forbidden(
            f"project {project!r} has no effective grant of dataset {dataset!r}.",
            "A data steward proposes a grant and the data's controller approves it.",
        )


def check_member(session: Session, *, username: str, project: str) -> None:
    user = get_user(session, username)
    proj = get_project(session, project)
    if not user.active or find_membership(session, proj, user) is None:
        raise Forbidden(f"{username!r} is not an active member of project {project!r}.")


def project_limits(session: Session, project: str) -> PrivacySetting:
    """The ``privacy`` section of the project's disclosure policy profile."""
    return load_policy(get_project(session, project).policy_profile).privacy


def check_rho(rho: float, limits: PrivacySetting) -> None:
    """rho within the policy's per-query limits (refused before anything is reserved)."""
    if rho <= 0 or rho != rho:  # rho != rho: NaN, when called from Python
        raise Invalid(f"rho must be a positive number, got {rho!r}.", "Ask for e.g. rho=0.01.")
    lo, hi = limits.min_rho_per_query, limits.max_rho_per_query
    if not lo <= rho <= hi:
        raise Invalid(
            f"rho {rho:g} is outside this project's limits for one query: at least {lo:g} "
            f"and at most {hi:g}.",
            f"Ask for a rho from {lo:g} to {hi:g}; a larger total is spent in several queries."
            if rho > hi
            else f"Ask for rho of at least {lo:g}; with less the answer is almost all noise.",
        )


def build_spec(published: PublishedDataset, query: DPQuery) -> QuerySpec:
    """The full spec: the client's question plus the server's facts (file, unit, keys)."""
    if len(set(query.group_by)) != len(query.group_by):
        raise Invalid("a group_by column is listed twice.", "List each column once.")
    group_by = {col: public_keys(published, col) for col in query.group_by}
    return QuerySpec(
        dataset=published.path,
        statistic=query.statistic,
        unit_column=published.unit_column,
        rho=query.rho,
        column=query.column,
        bounds=query.bounds,
        group_by=group_by,
        alpha=query.alpha,
        bins=query.bins,
        max_contributions=query.max_contributions,
    )


ReleaseJob = Callable[[QuerySpec, float], DPRelease]


def run_query(
    settings: Settings,
    *,
    username: str,
    project: str,
    query: DPQuery,
    via: str = "api",
    pool: ReleasePool | None = None,
    limits: PrivacySetting | None = None,
    job: ReleaseJob = release,
) -> DPResult:
    """Check, reserve, run, commit. Refusals before step 2 charge nothing.

    ``pool`` is the worker pool (default: the process's shared pool); ``limits`` replace the
    project policy's ``privacy`` section; ``job`` is the function the worker runs,
    ``job(spec, delta) -> DPRelease`` (default :func:`trenv.privacy.releases.release`),
    importable by name since it is sent to another process. Tests pass a small timeout and
    a deliberately slow job; the service itself never passes anything but the defaults.
    """
    with transaction(settings) as session:
        check_access(session, username=username, project=project, dataset=query.dataset)
        ledger.status(session, project=project, dataset=query.dataset)  # a budget must exist
        if limits is None:
            limits = project_limits(session, project)
    check_rho(query.rho, limits)
    published = published_dataset(settings, project, query.dataset)
    spec = build_spec(published, query)
    schema = check_against_schema(spec)  # columns, and bounds within the column's type
    keys = _key_frame(spec, schema)  # key types checked now, so a mismatch is refused uncharged
    check_calibration(spec, _cells(spec, keys))  # the noise can be calibrated
    plan = plan_hash(spec)
    try:
        with transaction(settings) as session:
            spend_id = ledger.reserve(
                session, actor=username, project=project, dataset=query.dataset,
                rho=query.rho, plan_hash=plan,
            ).id  # fmt: skip
    except ledger.BudgetExceeded as exc:
        raise Conflict(exc.problem, exc.fix) from None
    try:
        lease = (pool or shared_pool()).acquire(username, wait=limits.queue_wait_s)
    except Busy:
        with transaction(settings) as session:
            ledger.cancel(session, spend_id)  # never ran: the reservation is returned
        raise
    with lease:
        with transaction(settings) as session:
            ledger.mark_running(session, spend_id)
        # From here on the spend is never returned, whatever happens.
        try:
            result: DPRelease = lease.run(job, spec, DEFAULT_DELTA,
                                          timeout=limits.release_timeout_s)  # fmt: skip
        except TrenvError as exc:
            _failed(settings, exc, spend_id=spend_id, username=username, project=project,
                    query=query, plan=plan, via=via)  # fmt: skip
            raise type(exc)(
                f"{exc.problem} Its rho {query.rho:g} stays spent (ledger entry #{spend_id}): "
                "the data had been read.",
                exc.fix,
            ) from None
    body = result.to_dict()
    with transaction(settings) as session:
        ledger.commit(session, spend_id, body)
        audit.record(
            session,
            actor=username,
            action=AuditAction.privacy_release,
            object_type="privacy_spend",
            object_id=spend_id,
            detail={"project": project, "dataset": query.dataset,
                    "version": published.version, "statistic": query.statistic,
                    "rho": query.rho, "plan_hash": plan, "via": via},
        )  # fmt: skip
        status = ledger.status(session, project=project, dataset=query.dataset)
    return DPResult(
        spend_id=spend_id,
        project=project,
        dataset=query.dataset,
        dataset_version=published.version,
        statistic=query.statistic,
        plan_hash=plan,
        rho=result.rho_spent,
        epsilon=result.epsilon,
        delta=result.delta,
        release=body,
        budget=status.to_dict(),
    )


def _failed(
    settings: Settings, exc: TrenvError, *, spend_id: int, username: str, project: str,
    query: DPQuery, plan: str, via: str,
) -> None:  # fmt: skip
    """Audit a release that timed out or failed after the data was touched (stays charged)."""
    with transaction(settings) as session:
        audit.record(
            session,
            actor=username,
            action=AuditAction.privacy_release_failed,
            object_type="privacy_spend",
            object_id=spend_id,
            detail={"project": project, "dataset": query.dataset,
                    "statistic": query.statistic, "rho": query.rho, "plan_hash": plan,
                    "status": exc.status_code, "problem": exc.problem, "via": via},
        )  # fmt: skip


def budgets(settings: Settings, *, username: str, project: str) -> list[dict[str, Any]]:
    """The project's budgets, for one of its active members."""
    with transaction(settings) as session:
        check_member(session, username=username, project=project)
        return [s.to_dict() for s in ledger.statuses(session, project=project)]
