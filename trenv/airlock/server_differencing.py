"""The server's differencing in the database: which earlier files a new file meets.

:mod:`trenv.airlock.differencing` compares bytes and knows no database; this module gathers
what it compares with, from the project's requests, and reads their frozen bytes only when a
comparison needs them. The notebook's own differencing verdict covers only what it saw in
the workspace; the server sees every table the project released or asks to release.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.airlock.checks import FileCheck
from trenv.airlock.differencing import EarlierFile, with_differencing
from trenv.airlock.intake import FrozenFile
from trenv.airlock.queries import content_store, decision_of, round_files, working_files
from trenv.config import Settings
from trenv.store.models import Decision, ExportRequest, RequestFile, RequestState


def with_server_differencing(
    session: Session,
    settings: Settings,
    request: ExportRequest,
    frozen: FrozenFile,
    record_bytes: bytes | None,
    check: FileCheck,
) -> FileCheck:
    """``check`` with the server's differencing verdicts added: does this table, with the
    project's earlier tables, pin down a suppressed cell or isolate a few people?"""
    if record_bytes is None and frozen.kind not in ("table", "spreadsheet"):
        return check
    store = content_store(settings)
    earlier = [
        EarlierFile(
            name=f"{f.path} (request {f.request_id})",
            kind=f.kind,
            header_rows=int((f.checks or {}).get("header_rows", 1)),
            read=lambda sha=f.sha256: store.get(sha),
            read_record=(lambda sha=f.record_sha256: store.get(sha)) if f.record_sha256 else None,
        )
        for f in earlier_files(session, request, exclude_path=frozen.path)
    ]
    return with_differencing(
        check,
        path=frozen.path,
        kind=frozen.kind,
        data=frozen.data,
        record=record_bytes,
        earlier=earlier,
        policy=request.policy,
    )


def earlier_files(
    session: Session, request: ExportRequest, *, exclude_path: str
) -> list[RequestFile]:
    """The files a new file of ``request`` is compared with, oldest request first: the
    approved files of the project's released requests, the current files of its other open
    requests (a checker could approve both; of an approved request only its approved
    files), and this request's other files. Rejected and withdrawn requests never leave."""
    query = (
        select(ExportRequest)
        .where(
            ExportRequest.project_id == request.project_id,
            ExportRequest.id != request.id,
            ExportRequest.state.not_in([RequestState.rejected, RequestState.withdrawn]),
        )
        .order_by(ExportRequest.id)
    )
    files: list[RequestFile] = []
    for other in session.scalars(query):
        if other.state in (RequestState.released, RequestState.approved):
            outcome = decision_of(other)
            files += [
                f for f in round_files(other, other.round) if outcome.get(f.id) == Decision.approve
            ]
        else:
            files += working_files(other)
    files += [f for f in working_files(request) if f.path != exclude_path]
    return files
