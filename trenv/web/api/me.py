"""``GET /api/me``: who the hub says the caller is (a quick check of a token)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from trenv.web.deps import AppIdentity, CurrentUser

router = APIRouter(tags=["identity"])


class Me(BaseModel):
    name: str
    scopes: list[str]
    from_server: bool
    server_project: str | None


@router.get("/me", summary="The caller as the hub identifies its token")
async def me(user: CurrentUser, identity: AppIdentity) -> Me:
    return Me(
        name=user.name,
        scopes=sorted(user.scopes),
        from_server=user.from_server,
        server_project=await identity.server_project(user.name),
    )
