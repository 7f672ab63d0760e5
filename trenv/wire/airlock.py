"""Bodies of the airlock's JSON API (``/api/airlock/...``).

:class:`CreateIn` is what the web API accepts from any caller; :class:`ExportRequestIn` is the
stricter body a notebook server's Outputs panel may forward (trenv/lab/server/endpoints.py):
the same limits, checked in the container before anything is sent, and nothing else carried
along (the server's token decides the project).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

# Below the trenv API URL (TRENV_API_URL, ending in /services/trenv/api).
REQUESTS_PATH = "airlock/requests"

MAX_TITLE = 300
MAX_JUSTIFICATION = 5000
MAX_COMMENT = 5000


class FileIn(BaseModel):
    path: str = Field(description="path relative to your project workspace, e.g. outputs/t.csv")
    justification: str = Field(description="why this output is needed and why it is safe")


class CreateIn(BaseModel):
    title: str = Field(max_length=MAX_TITLE)
    project: str | None = Field(
        None,
        description="the project (from the browser); a notebook server's token always acts "
        "for the project of its running server",
    )
    files: list[FileIn] = Field(default_factory=list)
    submit: bool = Field(False, description="submit for review at once")


class CommentIn(BaseModel):
    comment: str = Field("", max_length=MAX_COMMENT)


def _stripped(text: str) -> str:
    """Surrounding white space removed; refused when nothing else is left."""
    if not text.strip():
        raise ValueError("is blank")
    return text.strip()


def _inside_workspace(path: str) -> str:
    if path.startswith("/") or ".." in path.split("/"):
        raise ValueError("is not a path inside the workspace")
    return path


# The limits apply to the text as sent, before its white space is stripped.
Title = Annotated[
    str, Field(strict=True, min_length=1, max_length=MAX_TITLE), AfterValidator(_stripped)
]
Justification = Annotated[
    str, Field(strict=True, min_length=1, max_length=MAX_JUSTIFICATION), AfterValidator(_stripped)
]
WorkspacePath = Annotated[str, Field(strict=True, min_length=1), AfterValidator(_inside_workspace)]


class ExportFileIn(BaseModel):
    path: WorkspacePath = Field(description="relative to the workspace, without '..'")
    justification: Justification


class ExportRequestIn(BaseModel):
    """An export request as a notebook server forwards it: a non-blank title, at least one
    file, each justified, and ``submit`` a real boolean. Other fields (a ``project``, say)
    are dropped, never forwarded."""

    model_config = ConfigDict(extra="ignore")

    title: Title
    files: list[ExportFileIn] = Field(min_length=1)
    submit: StrictBool = True
