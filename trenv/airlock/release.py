"""Releasing an approved request and handing its bundle to the requester.

The disclosure record is assembled from the database (votes, history, server-side checks)
and the frozen sidecars (the output record's public view and the code that produced it, a
DP output's ledger entry); never from anything the client sends at release time.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from trenv import __version__, audit, signing
from trenv.airlock import permissions as may
from trenv.airlock.bundle import RECORD_SCHEMA, build_bundle
from trenv.airlock.queries import RequestContext, content_store, decision_of, round_files
from trenv.airlock.service import move_request
from trenv.airlock.states import Move, next_state
from trenv.audit_actions import AuditAction
from trenv.config import Settings
from trenv.disclosure.record import OutputRecord
from trenv.errors import Conflict, Forbidden
from trenv.privacy.releases import zcdp_to_approx_dp
from trenv.store.models import Decision, ExportRequest, utcnow


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _output_record(settings: Settings, sha256: str | None) -> dict[str, Any] | None:
    if sha256 is None:
        return None
    raw = content_store(settings).get(sha256)
    try:
        # The full record holds suppressed cells' true values: only the public view leaves.
        return OutputRecord.model_validate_json(raw).public()
    except ValueError:
        return None


def _dp(settings: Settings, sha256: str | None) -> dict[str, Any] | None:
    if sha256 is None:
        return None
    try:
        data = json.loads(content_store(settings).get(sha256))
    except ValueError:
        return None
    rho = float(data.get("rho", 0.0))
    return {
        "spend_id": data.get("spend_id"),
        "dataset": data.get("dataset"),
        "plan_hash": data.get("plan_hash"),
        "rho": rho,
        "epsilon": zcdp_to_approx_dp(rho) if rho > 0 else 0.0,
    }


def disclosure_record(settings: Settings, request: ExportRequest) -> dict[str, Any]:
    """The machine-readable account of everything checked and decided for ``request``."""
    outcomes = decision_of(request)
    files = []
    for f in round_files(request, request.round):
        outcome = outcomes.get(f.id)
        record = _output_record(settings, f.record_sha256)
        files.append(
            {
                "path": f.path,
                "sha256": f.sha256,
                "size": f.size,
                "media_type": f.media_type,
                "kind": f.kind,
                "justification": f.justification,
                "checks": f.checks,
                "outcome": None if outcome is None else outcome.value,
                "released": outcome == Decision.approve,
                "output_record": record,
                "code": None if record is None else record.get("code"),
                "dp": _dp(settings, f.dp_sha256),
            }
        )
    by_id = {f.id: f.path for f in request.files}
    dp_rho = sum(f["dp"]["rho"] for f in files if f["dp"] and f["released"])
    return {
        "schema_version": RECORD_SCHEMA,
        "trenv_version": __version__,
        "request": {
            "id": request.id,
            "title": request.title,
            "project": request.project.slug,
            "requester": request.requester,
            "policy": request.policy,
            "policy_version": request.policy_version,
            "approvals_required": request.approvals_required,
            "rounds": request.round,
            "created_at": _iso(request.created_at),
            "submitted_at": _iso(request.submitted_at),
            "decided_at": _iso(request.decided_at),
            "released_at": _iso(request.released_at),
        },
        "provenance": request.provenance,
        "files": files,
        "dp_spend": {"rho": dp_rho, "epsilon": zcdp_to_approx_dp(dp_rho) if dp_rho else 0.0},
        "votes": [
            {
                "round": v.round,
                "file": by_id.get(v.file_id),
                "checker": v.checker,
                "decision": v.decision.value,
                "comment": v.comment,
                "at": _iso(v.created_at),
            }
            for v in request.votes
        ],
        "history": [
            {
                "from": t.from_state,
                "to": t.to_state,
                "actor": t.actor,
                "comment": t.comment,
                "at": _iso(t.at),
            }
            for t in request.transitions
        ],
    }


def release(session: Session, settings: Settings, ctx: RequestContext) -> ExportRequest:
    """Build the bundle of an approved request, store it by sha256 and mark it released."""
    if not ctx.locked:
        raise RuntimeError("a release needs the request loaded with lock=True")
    request, who = ctx.request, ctx.actor
    actor = who.username
    if not may.may_release(who, ctx.facts):
        if who.in_container:
            raise Forbidden(
                "outputs cannot be released into a notebook container.",
                "Log in to the trenv pages from your own computer to release and download.",
            )
        if who.username != request.requester:
            raise Forbidden("only the requester releases a request.")
        next_state(request.state, Move.release)
        raise Forbidden("this request cannot be released now.")
    request.released_at = utcnow()
    # The history must already say "released" inside the record that goes out.
    move_request(session, request, Move.release, actor=actor)
    session.flush()
    session.refresh(request)
    key = _signing_key(session, settings, actor)
    record = disclosure_record(settings, request)
    record["signer"] = key.identity.as_record()
    # The chain's head inside this transaction (the release event just written): a copy of
    # the bundle kept by its recipient witnesses the audit log up to here.
    head = audit.head(session)
    assert head is not None
    record["audit_head"] = {"event_id": head[0], "hash": head[1]}
    store = content_store(settings)
    contents = {f["sha256"]: store.get(f["sha256"]) for f in record["files"] if f["released"]}
    bundle = build_bundle(record, contents, sign=key.sign)
    request.bundle_sha256 = store.put(bundle)
    audit.record(
        session,
        actor=actor,
        action=AuditAction.airlock_bundle,
        object_type="export_request",
        object_id=request.id,
        detail={
            "bundle_sha256": request.bundle_sha256,
            "files": {f["path"]: f["sha256"] for f in record["files"] if f["released"]},
            "signer": key.identity.fingerprint,
            "audit_head": record["audit_head"],
        },
    )
    return request


def _signing_key(session: Session, settings: Settings, actor: str) -> signing.SigningKey:
    """The installation's key; made here if `trenv init` has not (as the vault's keys are)."""
    try:
        key, created = signing.ensure_signing_key(settings)
    except (signing.SigningKeyError, OSError) as error:
        raise Conflict(
            f"the release cannot be signed: {error}",
            "Ask the administrator to fix the signing key (docs/operations.md).",
        ) from None
    if created:
        audit.record(
            session,
            actor=actor,
            action=AuditAction.system_signing_key,
            object_type="system",
            object_id="signing",
            detail={
                "installation": key.identity.installation,
                "fingerprint": key.identity.fingerprint,
            },
        )
    return key


def bundle_for_download(
    session: Session, settings: Settings, ctx: RequestContext
) -> tuple[str, bytes]:
    """The released zip's file name and bytes, for the requester outside the TRE."""
    request, who = ctx.request, ctx.actor
    if not may.may_download(who, ctx.facts) or request.bundle_sha256 is None:
        if who.in_container:
            raise Forbidden(
                "released outputs cannot be downloaded into a notebook container.",
                "Log in to the trenv pages from your own computer.",
            )
        raise Forbidden(
            "only the requester downloads a released request.",
            "Ask the requester; the release is theirs.",
        )
    data = content_store(settings).get(request.bundle_sha256)  # re-verifies the sha256
    audit.record(
        session,
        actor=who.username,
        action=AuditAction.airlock_download,
        object_type="export_request",
        object_id=request.id,
        detail={"bundle_sha256": request.bundle_sha256},
    )
    return f"trenv-release-{request.project.slug}-{request.id}.zip", data
