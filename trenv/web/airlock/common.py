"""What the airlock's JSON API and its pages share beyond the view models: which project a
new request belongs to, and how a released bundle is sent."""

from __future__ import annotations

from fastapi import Response

from trenv.errors import Forbidden, Invalid
from trenv.web.airlock.caller import Caller


def create_project(caller: Caller, named: str | None) -> str:
    """The project a new request belongs to."""
    if caller.in_container:
        project = caller.container_project()
        if named is not None and named != project:
            raise Forbidden(
                f"this notebook server works on project {project!r}, not {named!r}.",
                "Ask for outputs of another project from that project's server.",
            )
        return project
    if not named:
        raise Invalid("name the project the outputs belong to.", "Add 'project' to the body.")
    return named


def zip_response(name: str, data: bytes) -> Response:
    return Response(
        content=data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
