"""The differencing check for a table made in a notebook: ``POST /api/differencing/check``.

The notebook combines a new table only with what was saved in its own workspace; the airlock
combines it with every table of the project that has left or could leave, which it sees and
the notebook does not. This route gives the notebook the airlock's answer before anything is
submitted, so a researcher learns at ``tre.crosstab`` time, not at review time. The project
is the project of the caller's running server (never one the body names); the caller must
be one of its active members, calling with the notebook server's own token from its container
(never a browser). Nothing is stored: the answer is advisory, and the airlock
checks again when the table is requested.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request

from trenv.airlock.server_differencing import project_differencing
from trenv.config import Settings
from trenv.disclosure.record import OutputRecord
from trenv.errors import Forbidden, Invalid
from trenv.privacy.service import check_member
from trenv.registry.projects import get_project
from trenv.store.engine import transaction
from trenv.web.deps import AppSettings, CurrentUser, ServerProject
from trenv.web.network_origin import request_from_notebook
from trenv.wire.differencing import DifferencingCheck, DifferencingFinding, DifferencingReport

router = APIRouter(prefix="/differencing", tags=["disclosure control"])


def _check(settings: Settings, username: str, project: str, record: bytes) -> DifferencingReport:
    with transaction(settings) as session:
        check_member(session, username=username, project=project)
        proj = get_project(session, project)
        findings, compared = project_differencing(session, settings, proj.id, record)
    return DifferencingReport(
        project=project,
        compared=compared,
        findings=[
            DifferencingFinding.model_validate(f.model_dump(exclude={"cells"})) for f in findings
        ],
    )


@router.post("/check", summary="Combine a new table's record with the project's tables")
async def check(
    request: Request,
    body: DifferencingCheck,
    user: CurrentUser,
    project: ServerProject,
    settings: AppSettings,
) -> DifferencingReport:
    """Does this table, with the tables the project released or asked to release, pin down a
    suppressed cell or isolate a few people? The same findings the airlock will give.

    Only a notebook server's own call, from its container: the findings quote other
    requests' cells (intervals of hidden ones among them), which may reach a kernel, whose
    output to the browser is judged and metered, but never a browser directly."""
    if not request_from_notebook(request, user):
        raise Forbidden(
            "the differencing check answers notebook servers only, from their container.",
            "Make the table in your notebook: tre.crosstab and tre.pivot_table run it.",
        )
    try:
        record = OutputRecord.model_validate(body.record)
    except ValueError as exc:
        raise Invalid(
            f"the record is not an output record ({str(exc).splitlines()[0]}).",
            "Send the record of a table made with tre.crosstab or tre.pivot_table.",
        ) from None
    payload = json.dumps(record.model_dump(mode="json")).encode()
    return await asyncio.to_thread(_check, settings, user.name, project, payload)
