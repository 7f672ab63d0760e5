"""The egress meter's API: ``POST /api/egress/report`` from a notebook server.

Only a notebook server's own token (``JUPYTERHUB_API_TOKEN`` in its container) may report:
the user is the token's owner and the project that of the user's running server, asked of
the hub, never taken from the body. The levels come from that project's policy. The work
is in trenv/meter/ledger.py; the body and answer are trenv/meter/wire.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from trenv.errors import Forbidden
from trenv.meter.ledger import apply_report
from trenv.meter.wire import Report, ReportAnswer
from trenv.web.auth import WebUser
from trenv.web.deps import AppIdentity, CurrentUser, DbSession

router = APIRouter(prefix="/egress", tags=["egress meter"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {"application/json": {"example": {"problem": "...", "fix": "..."}}},
    }
    for code, text in {
        400: "A count that is not a non-negative integer up to 1 GiB, an unknown channel, "
        "kind or action, or too many counts or events.",
        401: "No valid hub token.",
        403: "Not a notebook server's own token, or the user has no running server.",
        404: "The server's project is not in the registry.",
    }.items()
}


async def server_caller(user: CurrentUser) -> WebUser:
    """The caller, if it is a notebook server: a person's token may not feed the meter."""
    if not user.from_server:
        raise Forbidden(
            "egress reports are accepted only from a notebook server's own token, "
            f"not from {user.name!r}'s personal or browser token.",
            "The notebook server reports by itself (trenv.lab.server.meter); nothing to do.",
        )
    return user


ServerCaller = Annotated[WebUser, Depends(server_caller)]


async def running_project(user: ServerCaller, identity: AppIdentity) -> str:
    """The project of the caller's running server: its policy sets the levels."""
    project = await identity.server_project(user.name)
    if project is None:
        raise Forbidden(
            f"{user.name!r} has no running notebook server.",
            "The meter counts for the project of a running server; a server that is still "
            "starting keeps its counts and reports again a moment later.",
        )
    return project


RunningProject = Annotated[str, Depends(running_project)]


@router.post("/report", summary="Report bytes sent to the browser; answer the meter",
             responses=_ERRORS)  # fmt: skip
def report(
    body: Report, user: ServerCaller, project: RunningProject, session: DbSession
) -> ReportAnswer:
    """Adds the counts to the user's hour, writes the events (``egress.cut``,
    ``egress.refused``) and, the first time the hour reaches a level, ``egress.warn`` or
    ``egress.stopped``; checks and counts ``upload`` against the day's cap. Answers the
    meter per kind: used, warn, hard, state (ok/warn/stopped) and resets_at."""
    return apply_report(session, username=user.name, project=project, report=body)
