"""What every admin page shares: who may see it, the hub's servers, the hours filter.

Scopes come from the hub token (``custom:trenv:admin``, ``custom:trenv:steward``); the
registry functions called by the actions check the person's registry roles again (and the
four-eyes rule), so a page never decides on its own who may approve what.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.admin.servers import HubUnavailable, RunningServer, ServerControl
from trenv.errors import Forbidden
from trenv.store.models import OrganisationController, User
from trenv.web.auth import WebUser
from trenv.web.deps import ADMIN, STEWARD, CurrentUser
from trenv.web.templating import templates

GOVERNANCE = (ADMIN, STEWARD)


def is_admin(user: WebUser) -> bool:
    return user.has(ADMIN)


def is_governance(user: WebUser) -> bool:
    return any(user.has(s) for s in GOVERNANCE)


async def _governance(user: CurrentUser) -> WebUser:
    if not is_governance(user):
        raise Forbidden(
            f"{user.name!r} is neither an administrator nor a data steward.",
            "Ask an administrator for the role that grants it.",
        )
    return user


Governance = Annotated[WebUser, Depends(_governance)]


def servers_of(request: Request) -> ServerControl:
    control: ServerControl = request.app.state.servers
    return control


AppServers = Annotated[ServerControl, Depends(servers_of)]


def running_or_problem(servers: ServerControl) -> tuple[list[RunningServer], str | None]:
    """The running servers, or an empty list and why the hub could not say."""
    try:
        return servers.running(), None
    except HubUnavailable as problem:
        return [], problem.problem


def controlled_suppliers(session: Session, username: str) -> list[int]:
    """The organisations whose data controller ``username`` is (grants they may approve)."""
    query = (
        select(OrganisationController.organisation_id)
        .join(User, User.id == OrganisationController.user_id)
        .where(User.username == username)
    )
    return list(session.scalars(query))


def _hours(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{max(1, round(value * 60))} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} days"


templates.env.filters.setdefault("hours", _hours)
