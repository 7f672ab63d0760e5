"""The server's differencing in the database: which earlier files a new file meets.

:mod:`trenv.airlock.differencing` compares bytes and knows no database; this module gathers
what it compares with, from the project's requests, and reads their frozen bytes only when a
comparison needs them. The notebook's own differencing verdict covers only what it saw in
the workspace; the server sees every table the project released or asks to release.

:func:`project_differencing` answers the notebook's question before any request exists
(``POST /api/differencing/check``, called by ``tre.crosstab`` and friends): does this new
table, with the project's tables, pin down a suppressed cell or isolate a few people? Its
findings quote other members' tables of the same project; every member of a project has the
same published data, so they tell a member nothing that member could not compute.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.airlock.checks import FileCheck
from trenv.airlock.checks.models import Finding
from trenv.airlock.differencing import EarlierFile, record_findings, with_differencing
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
    earlier = _as_earlier(settings, earlier_files(session, request, exclude_path=frozen.path))
    return with_differencing(
        check,
        path=frozen.path,
        kind=frozen.kind,
        data=frozen.data,
        record=record_bytes,
        earlier=earlier,
        policy=request.policy,
    )


def project_differencing(
    session: Session, settings: Settings, project_id: int, record_json: bytes
) -> tuple[list[Finding], int]:
    """The server's differencing findings for a table not yet in any request (its output
    record), against every file of the project that could leave, and how many saved tables
    it was compared with."""
    earlier = _as_earlier(settings, project_files(session, project_id))
    compared = sum(1 for f in earlier if f.read_record is not None)
    return record_findings(record_json, earlier), compared


def _as_earlier(settings: Settings, files: list[RequestFile]) -> list[EarlierFile]:
    store = content_store(settings)
    return [
        EarlierFile(
            name=f"{f.path} (request {f.request_id})",
            kind=f.kind,
            header_rows=int((f.checks or {}).get("header_rows", 1)),
            read=lambda sha=f.sha256: store.get(sha),
            read_record=(lambda sha=f.record_sha256: store.get(sha)) if f.record_sha256 else None,
        )
        for f in files
    ]


def earlier_files(
    session: Session, request: ExportRequest, *, exclude_path: str
) -> list[RequestFile]:
    """The files a new file of ``request`` is compared with, oldest request first: the
    files of the project that could leave (:func:`project_files`) but for this request's,
    then this request's other files."""
    files = project_files(session, request.project_id, except_request=request.id)
    files += [f for f in working_files(request) if f.path != exclude_path]
    return files


def project_files(
    session: Session, project_id: int, *, except_request: int | None = None
) -> list[RequestFile]:
    """The project's files that have left or could leave, oldest request first: the
    approved files of its released requests, the current files of its open requests (a
    checker could approve them; of an approved request only its approved files).
    Rejected and withdrawn requests never leave."""
    query = (
        select(ExportRequest)
        .where(
            ExportRequest.project_id == project_id,
            ExportRequest.state.not_in([RequestState.rejected, RequestState.withdrawn]),
        )
        .order_by(ExportRequest.id)
    )
    if except_request is not None:
        query = query.where(ExportRequest.id != except_request)
    files: list[RequestFile] = []
    for other in session.scalars(query):
        if other.state in (RequestState.released, RequestState.approved):
            outcome = decision_of(other)
            files += [
                f for f in round_files(other, other.round) if outcome.get(f.id) == Decision.approve
            ]
        else:
            files += working_files(other)
    return files
