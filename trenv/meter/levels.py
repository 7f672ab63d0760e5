"""The meter's levels and periods from a policy profile, and the state a count is in. Pure.

Text and images are metered per UTC clock hour (a figure is large, so images have their own
levels); uploads per UTC day. Both the web API (authoritative) and the notebook server (when
the API cannot be reached) use these, so the two never disagree about a level.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from trenv.disclosure.policy import Policy
from trenv.meter.wire import KindState, MeterKind, State

KB = 1024
MB = 1024 * 1024
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Levels:
    """Bytes at which the meter warns (an audit event) and stops (output withheld)."""

    warn: int
    hard: int


def levels(policy: Policy, kind: MeterKind) -> Levels:
    """The levels of ``kind`` under ``policy``: ``egress`` per hour, uploads per day.

    Uploads have one level, the cap: past it an upload is refused, nothing is withheld.
    """
    egress = policy.egress
    if kind == "text":
        return Levels(egress.text_warn_kb_per_hour * KB, egress.text_hard_kb_per_hour * KB)
    if kind == "image":
        return Levels(egress.image_warn_mb_per_hour * MB, egress.image_hard_mb_per_hour * MB)
    if kind == "upload":
        cap = int(policy.airlock.max_upload_mb_per_day * MB)
        return Levels(cap, cap)
    raise ValueError(f"unknown meter kind {kind!r}; use text, image or upload")


def _utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("pass an aware datetime (dt.datetime.now(dt.UTC)), not a naive one")
    return now.astimezone(dt.UTC)


def hour_start(now: dt.datetime) -> dt.datetime:
    return _utc(now).replace(minute=0, second=0, microsecond=0)


def day_start(now: dt.datetime) -> dt.datetime:
    return _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)


def period_start(kind: MeterKind, now: dt.datetime) -> dt.datetime:
    """Where the count of ``kind`` starts: the clock hour, or the day for uploads."""
    return day_start(now) if kind == "upload" else hour_start(now)


def resets_at(kind: MeterKind, now: dt.datetime) -> dt.datetime:
    return period_start(kind, now) + (DAY if kind == "upload" else HOUR)


def state_of(used: int, level: Levels) -> State:
    """stopped at or past the hard level, warn at or past the warning level, else ok."""
    if used >= level.hard:
        return "stopped"
    if used >= level.warn:
        return "warn"
    return "ok"


def reading(policy: Policy, kind: MeterKind, used: int, now: dt.datetime) -> KindState:
    """The meter of ``kind`` with ``used`` bytes counted in the period that holds ``now``."""
    level = levels(policy, kind)
    return KindState(
        used=used,
        warn=level.warn,
        hard=level.hard,
        state=state_of(used, level),
        resets_at=resets_at(kind, now),
    )


def upload_allowed(day_used: int, nbytes: int, policy: Policy) -> bool:
    """May ``nbytes`` more be uploaded today? The cap may be reached, not passed."""
    return day_used + nbytes <= levels(policy, "upload").hard
