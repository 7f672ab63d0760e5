"""The egress report: what a notebook server sends to ``POST <api>/egress/report`` and what it
gets back, and the audit actions of the meter. The one home of this contract: the web API
(trenv/web/api/egress.py) and the container (trenv/lab/server/meter.py) both import it.

A report carries bytes just sent to the browser (``counts``), audit events of the output
judges (``events``) and optionally one upload to check against the day's cap (``upload``).
The server decides the user (the server token), the project (the user's running server)
and the levels (the project's policy); nothing in the body can choose them. A hostile
container can only add bytes, never subtract: counts are non-negative and bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Below the trenv API URL (TRENV_API_URL, ending in /services/trenv/api).
REPORT_PATH = "egress/report"

Channel = Literal["kernel", "terminal", "contents"]
Kind = Literal["text", "image"]  # what output is counted as
MeterKind = Literal["text", "image", "upload"]  # what the answer reports
State = Literal["ok", "warn", "stopped"]
CHANNELS: tuple[Channel, ...] = ("kernel", "terminal", "contents")
KINDS: tuple[Kind, ...] = ("text", "image")
METER_KINDS: tuple[MeterKind, ...] = ("text", "image", "upload")

# Audit actions. The container may send only CUT and REFUSED; the server writes WARN and
# STOPPED itself when a user's hour crosses a level.
CUT = "egress.cut"  # kernel or terminal output cut on its way to the browser
REFUSED = "egress.refused"  # a contents read or an upload refused
WARN = "egress.warn"
STOPPED = "egress.stopped"
ContainerAction = Literal["egress.cut", "egress.refused"]
CONTAINER_ACTIONS: tuple[ContainerAction, ...] = (CUT, REFUSED)

# Far above what can reach a browser between two reports (about 2 s apart), far below what
# overflows a BIGINT when added up: a nonsense number is refused, not stored.
MAX_COUNT_BYTES = 1 << 30
MAX_COUNTS = 16  # 3 channels x 2 kinds, with room to split a backlog
MAX_EVENTS = 64
# An audit event's detail is a short note (which rule, how many characters), not a copy
# of the output: keys and values are truncated, never refused, so an event is never lost.
DETAIL_MAX_KEYS = 16
DETAIL_MAX_KEY_CHARS = 64
DETAIL_MAX_VALUE_CHARS = 300
MAX_PATH_CHARS = 500

Bytes = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT_BYTES)]
DetailValue = str | int | float | bool | None


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_detail(raw: Mapping[object, object]) -> dict[str, DetailValue]:
    """A bounded copy of an event's detail: at most DETAIL_MAX_KEYS keys, keys and string
    values truncated, anything nested written as (truncated) JSON text."""
    clean: dict[str, DetailValue] = {}
    for key, value in list(raw.items())[:DETAIL_MAX_KEYS]:
        name = _truncate(str(key), DETAIL_MAX_KEY_CHARS)
        if value is None or isinstance(value, bool | int):
            clean[name] = value
        elif isinstance(value, float):
            clean[name] = value if math.isfinite(value) else str(value)
        elif isinstance(value, str):
            clean[name] = _truncate(value, DETAIL_MAX_VALUE_CHARS)
        else:
            text = json.dumps(value, default=str, ensure_ascii=False)
            clean[name] = _truncate(text, DETAIL_MAX_VALUE_CHARS)
    return clean


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Count(_Strict):
    channel: Channel
    kind: Kind
    bytes: Bytes


class Event(_Strict):
    action: ContainerAction
    detail: dict[str, object] = Field(default_factory=dict)

    @field_validator("detail", mode="after")
    @classmethod
    def _bounded(cls, detail: dict[str, object]) -> dict[str, object]:
        return dict(clean_detail(detail))


class Upload(_Strict):
    """One upload or save to check against the day's cap (counted only when allowed)."""

    path: str
    bytes: Bytes

    @field_validator("path", mode="after")
    @classmethod
    def _short(cls, path: str) -> str:
        return _truncate(path, MAX_PATH_CHARS)


class Report(_Strict):
    """The body of ``POST egress/report``. An empty report asks for the state only."""

    counts: list[Count] = Field(default_factory=list, max_length=MAX_COUNTS)
    events: list[Event] = Field(default_factory=list, max_length=MAX_EVENTS)
    upload: Upload | None = None


class KindState(BaseModel):
    """One kind's meter: bytes used in the period (hour; day for uploads) and the levels."""

    used: int
    warn: int
    hard: int
    state: State
    resets_at: dt.datetime  # when the period ends (UTC)


class UploadAnswer(BaseModel):
    allowed: bool
    bytes: int  # the upload asked about
    used: int  # the day's uploads, this one included when allowed
    limit: int
    resets_at: dt.datetime


class ReportAnswer(BaseModel):
    project: str
    kinds: dict[MeterKind, KindState]
    upload: UploadAnswer | None = None
