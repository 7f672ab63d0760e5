"""A checker's cross-check of a saved table in tau-ARGUS: the batch input for a request file
and the comparison of tau-ARGUS's pattern with trenv's, checked and audited.

Writing the batch reads the table's unsuppressed values out of the record frozen with the
request, so it is allowed to exactly whom the review gives a file's bytes
(:func:`~trenv.airlock.permissions.may_read_file_bytes`: an independent checker, from
outside the TRE, while the request waits for or is under review). A refusal is audited as
an export attempt, as on the web pages; a write or a comparison is audited with what it
read. The formats are :mod:`trenv.disclosure.tauargus` and
:mod:`trenv.disclosure.tauargus_compare`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session

from trenv import audit
from trenv.airlock import permissions as may
from trenv.airlock.checks.saved import parse_record
from trenv.airlock.intake import normalise_path
from trenv.airlock.permissions import Actor
from trenv.airlock.queries import RequestContext, frozen_bytes, load_context, working_files
from trenv.audit_actions import AuditAction
from trenv.config import Settings
from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.tauargus import write_batch
from trenv.disclosure.tauargus_compare import Comparison, compare_file
from trenv.errors import Forbidden, Invalid, NotFound
from trenv.store.models import ExportRequest, RequestFile


class TauArgusRefused(Forbidden):
    """The caller may not read this request's table; audited by :func:`audit_refusal`."""

    def __init__(self, problem: str, request_id: int, file_id: int, path: str) -> None:
        super().__init__(problem, "Only an independent checker reviewing the request may.")
        self.request_id, self.file_id, self.path = request_id, file_id, path


@dataclass(frozen=True)
class Loaded:
    ctx: RequestContext
    file: RequestFile
    record: OutputRecord


def _why_not(actor: Actor, req: ExportRequest) -> str:
    if actor.username == req.requester:
        return f"request {req.id} is yours: a requester never reviews their own request."
    if actor.project_member:
        return f"you are or were a member of project {req.project.slug}."
    if not actor.is_checker:
        return "only output checkers cross-check a request's tables in tau-ARGUS."
    state = req.state.value.replace("_", " ")
    return f"request {req.id} is {state}: its tables are read only while it is under review."


def load_for_checker(
    session: Session, settings: Settings, request_id: int, path: str, username: str
) -> Loaded:
    """The request file at ``path`` (current round) and its output record, for a checker who
    may review the request; TauArgusRefused for anyone else who may see it."""
    ctx = load_context(session, request_id, username)
    wanted = normalise_path(path)
    row = next((f for f in working_files(ctx.request) if f.path == wanted), None)
    if row is None:
        raise NotFound(
            f"request {request_id} has no file {wanted} in its current round.",
            "See `trenv airlock list` and the request page for its files.",
        )
    if not may.may_read_file_bytes(ctx.actor, ctx.facts):
        raise TauArgusRefused(_why_not(ctx.actor, ctx.request), ctx.request.id, row.id, row.path)
    if row.record_sha256 is None:
        raise Invalid(
            f"{row.path} has no output record: only tables saved with tre.save carry one.",
            "Review this file on the request page.",
        )
    try:
        record = parse_record(frozen_bytes(settings, row.record_sha256))
    except ValueError as exc:
        raise Invalid(f"{row.path}: {exc}.") from None
    return Loaded(ctx, row, record)


def audit_refusal(session: Session, username: str, refused: TauArgusRefused) -> None:
    audit.record(
        session,
        actor=username,
        action=AuditAction.airlock_file_refused,
        object_type="export_request",
        object_id=refused.request_id,
        detail={
            "file_id": refused.file_id,
            "path": refused.path,
            "why": refused.problem,
            "via": "trenv airlock tau-argus",
        },
    )


def batch_name(request_id: int, path: str) -> str:
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"request{request_id}-{re.sub(r'[^A-Za-z0-9_-]', '_', stem)}"[:64]


def write_request_batch(
    session: Session,
    loaded: Loaded,
    outdir: Path,
    *,
    method: Literal["MOD", "GH", "OPT"] = "MOD",
    interactive: bool = False,
) -> dict[str, Path]:
    """Write the tau-ARGUS files of the loaded table into ``outdir``; audited first, so a
    failed write leaves neither files nor event (the caller's transaction rolls back)."""
    name = batch_name(loaded.ctx.request.id, loaded.file.path)
    audit.record(
        session,
        actor=loaded.ctx.actor.username,
        action=AuditAction.airlock_tau_argus,
        object_type="export_request",
        object_id=loaded.ctx.request.id,
        detail={
            "file_id": loaded.file.id,
            "path": loaded.file.path,
            "record_sha256": loaded.file.record_sha256,
            "outdir": str(outdir.resolve()),
            "name": name,
            "method": method,
        },
    )
    try:
        return write_batch(loaded.record, outdir, name, method=method, interactive=interactive)
    except DisclosureInputError as exc:
        raise Invalid(f"{loaded.file.path}: {exc}.") from None


def compare_request(session: Session, loaded: Loaded, tau_output: Path) -> Comparison:
    """Compare tau-ARGUS's written table with the request file's pattern; audited."""
    try:
        data = tau_output.read_bytes()
        comparison = compare_file(loaded.record, tau_output)
    except OSError as exc:
        raise Invalid(f"cannot read {tau_output}: {exc.strerror}.") from None
    except DisclosureInputError as exc:
        raise Invalid(f"{tau_output}: {exc}.") from None
    audit.record(
        session,
        actor=loaded.ctx.actor.username,
        action=AuditAction.airlock_tau_argus_compare,
        object_type="export_request",
        object_id=loaded.ctx.request.id,
        detail={
            "file_id": loaded.file.id,
            "path": loaded.file.path,
            "tau_output": str(tau_output.resolve()),
            "tau_output_sha256": hashlib.sha256(data).hexdigest(),
            "run": "audit" if comparison.audit else "independent",
            "both": len(comparison.both),
            "only_trenv": len(comparison.only_trenv),
            "only_tau_argus": len(comparison.only_tau),
        },
    )
    return comparison
