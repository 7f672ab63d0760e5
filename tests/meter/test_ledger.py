"""The meter's ledger on SQLite and PostgreSQL: counts add up, even when reports race, and
each level's audit event is written once per user, hour and kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, get_args

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv import audit
from trenv.config import Settings
from trenv.disclosure.policy import load_policy
from trenv.meter import ledger
from trenv.meter import levels as lv
from trenv.meter.wire import METER_KINDS, MeterKind, Report
from trenv.registry import projects
from trenv.store import transaction
from trenv.store.models import AuditEvent, EgressKind, EgressUsage, MemberRole

Tx = Callable[[], AbstractContextManager[Session]]
NOW = dt.datetime(2026, 3, 14, 15, 9, tzinfo=dt.UTC)
KB = 1024
POLICY = load_policy("trenv-default")
TEXT = lv.levels(POLICY, "text")
IMAGE = lv.levels(POLICY, "image")
UPLOAD_CAP = lv.levels(POLICY, "upload").hard


@pytest.fixture
def world(tx: Tx) -> Tx:
    """rita in 'reoffending' and in 'other' (both on the trenv-default profile)."""
    with tx() as session:
        populate(session)
        projects.create_project(session, actor=OPERATOR, slug="other", title="Other",
                                end_date=dt.date.today() + dt.timedelta(days=30),
                                policy_profile="trenv-default")  # fmt: skip
        projects.add_member(session, actor=OPERATOR, slug="other", username="rita",
                            role=MemberRole.researcher)  # fmt: skip
    return tx


def report(tx: Tx, *, now: dt.datetime = NOW, project: str = "reoffending", user: str = "rita",
           **body: Any) -> Any:  # fmt: skip
    with tx() as session:
        return ledger.apply_report(session, username=user, project=project,
                                   report=Report.model_validate(body), now=now)  # fmt: skip


def text(nbytes: int, channel: str = "kernel") -> dict[str, Any]:
    return {"channel": channel, "kind": "text", "bytes": nbytes}


def rows(tx: Tx) -> list[tuple[str, str, str, int]]:
    with tx() as session:
        found = session.scalars(select(EgressUsage))
        return sorted((r.username, r.project, r.kind.value, r.bytes) for r in found)


def actions(tx: Tx, prefix: str = "egress.") -> list[tuple[str, dict[str, Any]]]:
    import json

    with tx() as session:
        found = audit.events(session, action_prefix=prefix)
        return [(e.action, json.loads(e.detail)) for e in found]


def test_kinds_in_the_table_and_on_the_wire_agree() -> None:
    assert {k.value for k in EgressKind} == set(METER_KINDS) == set(get_args(MeterKind))


def test_counts_add_up_per_user_project_hour_and_kind(world: Tx) -> None:
    image = {"channel": "kernel", "kind": "image", "bytes": 3000}
    first = report(world, counts=[text(100), text(50, "terminal"), text(7, "contents"), image])
    assert first.project == "reoffending"
    assert (first.kinds["text"].used, first.kinds["image"].used) == (157, 3000)
    assert first.kinds["text"].state == "ok" and first.kinds["text"].hard == TEXT.hard
    assert first.kinds["text"].resets_at == dt.datetime(2026, 3, 14, 16, tzinfo=dt.UTC)
    again = report(world, counts=[text(43)])
    assert again.kinds["text"].used == 200
    assert rows(world) == [("rita", "reoffending", "image", 3000),
                           ("rita", "reoffending", "text", 200)]  # fmt: skip

    # The next hour starts from zero; the earlier hour stays on record.
    later = report(world, now=NOW + dt.timedelta(hours=1), counts=[text(5)])
    assert later.kinds["text"].used == 5 and later.kinds["image"].used == 0
    assert len(rows(world)) == 3

    # A user's meter is the person's, whatever project the bytes came from.
    other = report(world, project="other", counts=[text(800)])
    assert other.project == "other" and other.kinds["text"].used == 1000
    assert ("rita", "other", "text", 800) in rows(world)


def test_an_empty_report_answers_the_state_and_counts_nothing(world: Tx) -> None:
    report(world, counts=[text(321)])
    state = report(world)
    assert state.kinds["text"].used == 321 and state.upload is None
    assert state.kinds["upload"].hard == UPLOAD_CAP
    assert rows(world) == [("rita", "reoffending", "text", 321)]


def test_concurrent_reports_lose_no_counts_and_cross_each_level_once(
    world: Tx, settings: Settings
) -> None:
    # 4 threads x 20 reports of 40 KB: 3,200 KB, past both text levels (512 and 2,048 KB).
    def send(_: int) -> None:
        for _ in range(20):
            with transaction(settings) as session:
                ledger.apply_report(session, username="rita", project="reoffending",
                                    report=Report(counts=[text(40 * KB)]), now=NOW)  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, range(4)))
    assert rows(world) == [("rita", "reoffending", "text", 80 * 40 * KB)]
    assert [a for a, _ in actions(world)] == ["egress.warn", "egress.stopped"]
    with world() as session:
        assert audit.verify(session).ok


def test_warn_and_stop_are_written_once_per_user_hour_and_kind(world: Tx) -> None:
    assert report(world, counts=[text(TEXT.warn - 1)]).kinds["text"].state == "ok"
    assert actions(world) == []
    assert report(world, counts=[text(1)]).kinds["text"].state == "warn"
    report(world, counts=[text(10)])
    report(world, project="other", counts=[text(10)])  # same person, same hour: no new event
    assert [a for a, _ in actions(world)] == ["egress.warn"]
    _, detail = actions(world)[0]
    assert detail == {"project": "reoffending", "kind": "text", "used": TEXT.warn,
                      "level": TEXT.warn, "hour": "2026-03-14T15:00:00+00:00",
                      "resets_at": "2026-03-14T16:00:00+00:00"}  # fmt: skip
    assert report(world, counts=[text(TEXT.hard)]).kinds["text"].state == "stopped"
    report(world, counts=[text(1)])
    assert [a for a, _ in actions(world)] == ["egress.warn", "egress.stopped"]
    with world() as session:
        stopped = session.scalars(select(AuditEvent).where(AuditEvent.action == "egress.stopped"))
        event = stopped.one()
        assert (event.actor, event.object_type, event.object_id) == ("rita", "server", "rita")

    # Straight past both levels in one report (images): both events, once.
    report(world, counts=[{"channel": "kernel", "kind": "image", "bytes": IMAGE.hard}])
    report(world, counts=[{"channel": "kernel", "kind": "image", "bytes": 1}])
    image = [(a, d["kind"]) for a, d in actions(world) if d["kind"] == "image"]
    assert image == [("egress.warn", "image"), ("egress.stopped", "image")]

    # A new hour is a new meter, with its own events.
    next_hour = NOW + dt.timedelta(hours=1)
    assert report(world, now=next_hour, counts=[text(TEXT.warn)]).kinds["text"].state == "warn"
    assert [a for a, _ in actions(world)][-1] == "egress.warn"
    assert len(actions(world)) == 5


def test_events_are_recorded_with_the_user_and_the_servers_project(world: Tx) -> None:
    long = "x" * 5000
    report(world, events=[
        {"action": "egress.cut", "detail": {"rule": "blob", "chars": 9000, "project": "forged"}},
        {"action": "egress.refused", "detail": {"rule": "data-read", "path": long,
                                                "nested": {"a": [1, 2]}}},
    ])  # fmt: skip
    recorded = actions(world)
    assert [a for a, _ in recorded] == ["egress.cut", "egress.refused"]
    assert recorded[0][1] == {"rule": "blob", "chars": 9000, "project": "reoffending"}
    refused = recorded[1][1]
    assert len(refused["path"]) <= 300 and refused["nested"] == '{"a": [1, 2]}'
    with world() as session:
        rows_ = session.scalars(select(AuditEvent).where(AuditEvent.action.startswith("egress")))
        assert {(e.actor, e.object_type, e.object_id) for e in rows_} == {
            ("rita", "server", "rita")
        }


def test_uploads_are_capped_per_user_and_utc_day(world: Tx) -> None:
    nine_mb = 9 * 1024 * 1024
    day_used = 0
    for hour in range(5):  # five 9 MB uploads over five hours of one day: 45 MB of 50
        upload = {"path": "a.bin", "bytes": nine_mb}
        answer = report(world, now=NOW.replace(hour=hour), upload=upload)
        day_used += nine_mb
        assert answer.upload.allowed and answer.upload.used == day_used
        assert answer.kinds["upload"].used == day_used
    refused = report(world, now=NOW.replace(hour=6), project="other",
                     upload={"path": "b.bin", "bytes": nine_mb})  # fmt: skip
    assert not refused.upload.allowed
    assert (refused.upload.used, refused.upload.limit) == (day_used, UPLOAD_CAP)
    assert refused.upload.resets_at == dt.datetime(2026, 3, 15, tzinfo=dt.UTC)
    # Refused means not counted: exactly what is left still fits.
    rest = {"path": "c.bin", "bytes": UPLOAD_CAP - day_used}
    fits = report(world, now=NOW.replace(hour=7), upload=rest)
    assert fits.upload.allowed and fits.upload.used == UPLOAD_CAP
    assert not report(world, upload={"path": "d", "bytes": 1}).upload.allowed
    # The next UTC day starts again.
    tomorrow = report(world, now=NOW + dt.timedelta(days=1), upload={"path": "e", "bytes": 1})
    assert tomorrow.upload.allowed and tomorrow.upload.used == 1
    assert sum(b for _, _, kind, b in rows(world) if kind == "upload") == UPLOAD_CAP + 1


def test_add_bytes_refuses_to_subtract(world: Tx) -> None:
    with world() as session, pytest.raises(ValueError, match="only adds"):
        ledger.add_bytes(session, username="rita", project="reoffending", kind="text",
                         nbytes=-5, now=NOW)  # fmt: skip
