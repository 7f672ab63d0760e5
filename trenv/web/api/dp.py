"""The DP query API: ``POST /api/dp/query`` and ``GET /api/dp/budget``.

Authenticated by hub token (from a notebook: the server's own ``JUPYTERHUB_API_TOKEN``).
The project is always the project of the caller's running server, asked of the hub; it is
never taken from the request. The work itself is in trenv/privacy/service.py; the bodies
are the wire schema's (trenv/wire/dp.py), which ``tre.dp`` in the notebook builds and reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from trenv.privacy.service import budgets, run_query
from trenv.web.deps import AppSettings, CurrentUser, ServerProject
from trenv.wire.dp import BudgetReport, DPQuery, DPResult

router = APIRouter(prefix="/dp", tags=["differential privacy"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {"application/json": {"example": {"problem": "...", "fix": "..."}}},
    }
    for code, text in {
        400: "Invalid query, nothing charged: a wrong type (a number sent as a string or a "
        "boolean), unknown column, missing bounds, bounds outside the column's type or too "
        "wide to calibrate, keys not public, rho outside the policy's per-query limits, ...",
        401: "No valid hub token.",
        403: "No running server for a project, not a member, or no grant of the dataset.",
        404: "Unknown dataset, nothing published, or no budget set for the dataset.",
        409: "The query would overspend the budget: nothing was charged; shows what is left.",
        500: "The release failed in its worker after reading the data: the rho stays spent.",
        503: "No DP worker was free within the policy's queue_wait_s: nothing was charged.",
        504: "The release overran the policy's release_timeout_s and was stopped: the rho "
        "stays spent (the data had been read).",
    }.items()
}


@router.post("/query", summary="Run a DP query and charge the project's budget",
             responses=_ERRORS)  # fmt: skip
async def query(
    body: DPQuery, user: CurrentUser, project: ServerProject, settings: AppSettings
) -> DPResult:
    """Checks the query (nothing is charged when it is refused), reserves ``rho`` in the
    ledger, runs the release on the project's published data in a worker process with a time
    limit, and commits the spend."""
    return await asyncio.to_thread(
        run_query, settings, username=user.name, project=project, query=body,
        via="server" if user.from_server else "token",
    )  # fmt: skip


@router.get("/budget", summary="The privacy budgets of the project of your running server",
            responses=_ERRORS)  # fmt: skip
async def budget(user: CurrentUser, project: ServerProject, settings: AppSettings) -> BudgetReport:
    items = await asyncio.to_thread(budgets, settings, username=user.name, project=project)
    return BudgetReport(project=project, budgets=items)
