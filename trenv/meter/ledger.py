"""The meter's counts in the database and the audit events they lead to (server side).

One row per user, project, UTC hour and kind (``EgressUsage``), only ever changed by an
atomic ``INSERT ... ON CONFLICT DO UPDATE SET bytes = bytes + excluded.bytes``, so two
reports that arrive together both count (on PostgreSQL the second waits for the row lock of
the first; SQLite serialises write transactions with ``BEGIN IMMEDIATE``). A user's meter is
the sum over their rows, whatever project the bytes came from: the levels are about a
person reading data out, and the project's policy sets them.

Crossing the warning or the hard level marks the rows (``warned_at``/``stopped_at``) with a
conditional UPDATE that only one transaction can win, and the winner writes the audit event:
one ``egress.warn`` and one ``egress.stopped`` per user, hour and kind.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from trenv import audit
from trenv.disclosure.policy import Policy, load_policy
from trenv.meter import levels as lv
from trenv.meter.wire import (
    KINDS,
    STOPPED,
    WARN,
    KindState,
    MeterKind,
    Report,
    ReportAnswer,
    Upload,
    UploadAnswer,
)
from trenv.registry.projects import get_project
from trenv.store.models import EgressKind, EgressUsage

OBJECT_TYPE = "server"  # egress events are about the user's notebook server
_TABLE = EgressUsage.__table__
_CONFLICT = ["username", "hour", "kind", "project"]  # the unique constraint, in its order


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def add_bytes(
    session: Session,
    *,
    username: str,
    project: str,
    kind: MeterKind,
    nbytes: int,
    now: dt.datetime,
) -> None:
    """Add ``nbytes`` to the row of this user, project, kind and the hour of ``now``."""
    if nbytes < 0:
        raise ValueError(f"the meter only adds: got {nbytes} bytes")
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - trenv supports these two databases only
        raise RuntimeError(f"the egress meter needs SQLite or PostgreSQL, not {dialect}")
    stmt = insert(_TABLE).values(
        username=username,
        hour=lv.hour_start(now),
        kind=EgressKind(kind),
        project=project,
        bytes=nbytes,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=_CONFLICT,
        set_={
            "bytes": _TABLE.c.bytes + stmt.excluded.bytes,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    session.execute(stmt)


def used(session: Session, *, username: str, kind: MeterKind, now: dt.datetime) -> int:
    """The user's bytes of ``kind`` in the period (hour, or day for uploads) of ``now``."""
    start = lv.period_start(kind, now)
    total = session.scalar(
        select(func.coalesce(func.sum(EgressUsage.bytes), 0)).where(
            EgressUsage.username == username,
            EgressUsage.kind == EgressKind(kind),
            EgressUsage.hour >= start,
            EgressUsage.hour < lv.resets_at(kind, now),
        )
    )
    return int(total or 0)


def _mark_once(
    session: Session,
    *,
    username: str,
    project: str,
    kind: MeterKind,
    now: dt.datetime,
    column: str,
) -> bool:
    """Set ``column`` (warned_at/stopped_at) on this project's row unless any row of the
    user's hour and kind has it already. True for the one caller that set it."""
    hour = lv.hour_start(now)
    other = aliased(EgressUsage)
    mark: ColumnElement[Any] = _TABLE.c[column]
    already = exists().where(
        and_(
            other.username == username,
            other.hour == hour,
            other.kind == EgressKind(kind),
            getattr(other, column).is_not(None),
        )
    )
    result = session.execute(
        update(_TABLE)
        .where(
            _TABLE.c.username == username,
            _TABLE.c.hour == hour,
            _TABLE.c.kind == EgressKind(kind),
            _TABLE.c.project == project,
            mark.is_(None),
            ~already,
        )
        .values({column: now})
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _audit_levels(
    session: Session,
    *,
    username: str,
    project: str,
    kind: MeterKind,
    state: KindState,
    now: dt.datetime,
) -> None:
    """Write egress.warn / egress.stopped the first time this hour's count reaches them."""
    crossings = []
    if state.state in ("warn", "stopped"):
        crossings.append(("warned_at", WARN, state.warn))
    if state.state == "stopped":
        crossings.append(("stopped_at", STOPPED, state.hard))
    for column, action, level in crossings:
        if _mark_once(
            session, username=username, project=project, kind=kind, now=now, column=column
        ):
            audit.record(
                session,
                actor=username,
                action=action,
                object_type=OBJECT_TYPE,
                object_id=username,
                detail={
                    "project": project,
                    "kind": kind,
                    "used": state.used,
                    "level": level,
                    "hour": lv.hour_start(now).isoformat(),
                    "resets_at": state.resets_at.isoformat(),
                },
            )


def check_upload(
    session: Session,
    *,
    username: str,
    project: str,
    upload: Upload,
    policy: Policy,
    now: dt.datetime,
) -> UploadAnswer:
    """Count the upload if the user's day stays within the cap, else count nothing.

    Added first and checked after, inside a savepoint: on PostgreSQL the upsert holds the row
    lock, so a second upload of the same user waits and then sees this one.
    """
    limit = lv.levels(policy, "upload").hard
    resets = lv.resets_at("upload", now)
    with session.begin_nested() as savepoint:
        add_bytes(
            session, username=username, project=project, kind="upload", nbytes=upload.bytes, now=now
        )
        total = used(session, username=username, kind="upload", now=now)
        if total <= limit:
            return UploadAnswer(
                allowed=True, bytes=upload.bytes, used=total, limit=limit, resets_at=resets
            )
        savepoint.rollback()
    before = used(session, username=username, kind="upload", now=now)
    return UploadAnswer(
        allowed=False, bytes=upload.bytes, used=before, limit=limit, resets_at=resets
    )


def apply_report(
    session: Session,
    *,
    username: str,
    project: str,
    report: Report,
    now: dt.datetime | None = None,
) -> ReportAnswer:
    """Add the report's counts, write its events and the level crossings, check its upload,
    and answer the user's meter. All in the caller's transaction: it counts iff it commits."""
    now = now or _utcnow()
    policy = load_policy(get_project(session, project).policy_profile)
    added: Counter[str] = Counter()
    for count in report.counts:
        added[count.kind] += count.bytes
    for kind, nbytes in sorted(added.items()):
        if nbytes:
            add_bytes(
                session, username=username, project=project, kind=kind, nbytes=nbytes, now=now
            )
    for event in report.events:
        audit.record(
            session,
            actor=username,
            action=event.action,
            object_type=OBJECT_TYPE,
            object_id=username,
            detail={**event.detail, "project": project},  # the server's project, not a claim
        )
    upload = None
    if report.upload is not None:
        upload = check_upload(
            session,
            username=username,
            project=project,
            upload=report.upload,
            policy=policy,
            now=now,
        )
    kinds: dict[MeterKind, KindState] = {}
    for kind in KINDS:
        state = lv.reading(policy, kind, used(session, username=username, kind=kind, now=now), now)
        _audit_levels(session, username=username, project=project, kind=kind, state=state, now=now)
        kinds[kind] = state
    kinds["upload"] = lv.reading(
        policy, "upload", used(session, username=username, kind="upload", now=now), now
    )
    return ReportAnswer(project=project, kinds=kinds, upload=upload)


def spend(
    session: Session,
    *,
    username: str,
    project: str,
    kind: MeterKind,
    nbytes: int,
    now: dt.datetime | None = None,
) -> tuple[bool, KindState]:
    """Count bytes that trenv's own pages are about to show a user outside the TRE (the
    airlock's previews), on the same meter as the notebook server's output.

    ``(False, reading)``, and nothing counted, when showing them would take the user's hour
    past the project's hard level: the page withholds them. Else ``(True, reading)`` after
    counting, with the level crossings audited as for a report.
    """
    now = now or _utcnow()
    policy = load_policy(get_project(session, project).policy_profile)
    before = used(session, username=username, kind=kind, now=now)
    if before + nbytes > lv.levels(policy, kind).hard:
        return False, lv.reading(policy, kind, before, now)
    if nbytes:
        add_bytes(session, username=username, project=project, kind=kind, nbytes=nbytes, now=now)
    state = lv.reading(policy, kind, before + nbytes, now)
    _audit_levels(session, username=username, project=project, kind=kind, state=state, now=now)
    return True, state
