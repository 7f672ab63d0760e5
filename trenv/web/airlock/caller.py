"""The caller of an airlock route: who, whether from inside a container, and which project.

Pseudonyms are project-specific so that two projects' outputs cannot be joined; a container
therefore reaches only the requests of the project it was started for, never another
project's files or previews (even one the same researcher also works on). Outside a
container the registry's permissions alone decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from trenv.airlock.queries import RequestContext, load_context
from trenv.errors import Forbidden, NotFound
from trenv.web.auth import WebUser
from trenv.web.deps import AppIdentity, CurrentUser
from trenv.web.network_origin import request_in_container


@dataclass(frozen=True)
class Caller:
    user: WebUser
    in_container: bool
    # The project of the caller's running server when calling from a container (None: none).
    server_project: str | None

    @property
    def name(self) -> str:
        return self.user.name

    def may_touch(self, project: str) -> bool:
        return not self.in_container or self.server_project == project

    def container_project(self) -> str:
        """The project a call from a container acts for; Forbidden without a running server."""
        if self.server_project is None:
            raise Forbidden(
                "there is no running notebook server to take the project from.",
                "Start your server for the project, or use the trenv pages from your computer.",
            )
        return self.server_project


async def airlock_caller(request: Request, user: CurrentUser, identity: AppIdentity) -> Caller:
    inside = request_in_container(request, user)
    project = await identity.server_project(user.name) if inside else None
    return Caller(user=user, in_container=inside, server_project=project)


AirlockCaller = Annotated[Caller, Depends(airlock_caller)]


def load(
    session: Session, caller: Caller, request_id: int, *, lock: bool = False
) -> RequestContext:
    """The request and the caller's facts, or NotFound if the caller may not see it.

    A route loads it once (``lock`` when it changes the request) and passes it to the
    commands, which do not load the request again."""
    ctx = load_context(
        session, request_id, caller.name, in_container=caller.in_container, lock=lock
    )
    if not caller.may_touch(ctx.request.project.slug):
        raise NotFound(f"no export request {request_id}.", "See the list of your requests.")
    return ctx


def outside_only(caller: Caller, what: str) -> None:
    """Refuse ``what`` (reviewing, say) from inside a container."""
    if caller.in_container:
        raise Forbidden(
            f"{what} is not possible from inside a notebook container.",
            "Use the trenv pages from your own computer.",
        )
