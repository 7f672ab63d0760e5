"""Administration pages under ``<prefix>admin``: one module per area, one router here."""

from __future__ import annotations

from fastapi import APIRouter

from trenv.web.pages.admin import audit, data, grants, images, index, people, projects, usage

router = APIRouter(include_in_schema=False)
for _area in (index, projects, people, data, grants, images, usage, audit):
    router.include_router(_area.router)
