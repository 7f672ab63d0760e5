"""The audit log is append-only and any tampering is detected (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from trenv import audit
from trenv.config import Settings
from trenv.store import get_engine, transaction

Tx = Callable[[], AbstractContextManager[Session]]


def append(tx: Tx, count: int) -> None:
    for number in range(count):
        with tx() as session:
            audit.record(
                session,
                actor="stella",
                action="project.update",  # any AuditAction: record() writes no others
                object_type="thing",
                object_id=number,
                detail={"n": number, "note": "ünïcode"},
            )


def tamper(settings: Settings, *statements: str) -> None:
    """Run SQL with the append-only triggers out of the way, as a hostile DBA would."""
    engine = get_engine(settings)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        else:
            conn.exec_driver_sql("SET session_replication_role = replica")
        for statement in statements:
            conn.exec_driver_sql(statement)
        conn.commit()


def verify(settings: Settings) -> audit.Verification:
    with transaction(settings) as session:
        return audit.verify(session, settings.audit_anchor)


def test_untouched_chain_verifies(settings: Settings, tx: Tx) -> None:
    append(tx, 5)
    result = verify(settings)
    assert result.ok and result.checked == 5


def test_rolled_back_change_leaves_no_event(settings: Settings, tx: Tx) -> None:
    with pytest.raises(RuntimeError), tx() as session:
        audit.record(session, actor="a", action="user.add", object_type="t", object_id=1)
        raise RuntimeError("the change failed")
    assert verify(settings).checked == 0


@pytest.mark.parametrize(
    "verb", ["UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"]
)
def test_database_refuses_update_and_delete(settings: Settings, tx: Tx, verb: str) -> None:
    append(tx, 2)
    with pytest.raises(DBAPIError, match="append-only"), tx() as session:
        session.execute(text(verb))
    assert verify(settings).ok


def test_truncate_cannot_empty_the_log(settings: Settings, tx: Tx) -> None:
    append(tx, 2)
    # PostgreSQL's statement trigger refuses TRUNCATE; SQLite has no TRUNCATE statement at all.
    expected = "append-only" if get_engine(settings).dialect.name == "postgresql" else "syntax"
    with pytest.raises(DBAPIError, match=expected), tx() as session:
        session.execute(text("TRUNCATE audit_events"))
    assert verify(settings).checked == 2


def test_edited_detail_is_detected(settings: Settings, tx: Tx) -> None:
    append(tx, 5)
    tamper(settings, "UPDATE audit_events SET detail = '{\"n\":99}' WHERE id = 3")
    result = verify(settings)
    assert not result.ok and result.bad_event_id == 3 and "edited" in (result.problem or "")


def test_edited_row_with_recomputed_hash_breaks_the_next_link(settings: Settings, tx: Tx) -> None:
    append(tx, 4)
    with transaction(settings) as session:
        row = session.get(audit.AuditEvent, 2)
        assert row is not None
        forged = audit.event_hash(
            id=2,
            occurred_at=row.occurred_at,
            actor="mallory",
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            detail=row.detail,
            prev_hash=row.prev_hash,
        )
    tamper(settings, f"UPDATE audit_events SET actor='mallory', hash='{forged}' WHERE id = 2")
    result = verify(settings)
    assert not result.ok and result.bad_event_id == 3


def test_deleted_middle_row_is_detected(settings: Settings, tx: Tx) -> None:
    append(tx, 5)
    tamper(settings, "DELETE FROM audit_events WHERE id = 2")
    result = verify(settings)
    assert not result.ok and result.bad_event_id == 2 and "missing" in (result.problem or "")


def test_deleted_tail_is_detected_by_the_anchor(settings: Settings, tx: Tx) -> None:
    append(tx, 5)
    tamper(settings, "DELETE FROM audit_events WHERE id >= 4")
    result = verify(settings)
    assert not result.ok and result.bad_event_id == 4
    assert "anchor" in (result.problem or "")


def test_reordered_rows_are_detected(settings: Settings, tx: Tx) -> None:
    append(tx, 4)
    # Swap the contents of events 2 and 3 while keeping ids contiguous.
    tamper(
        settings,
        "UPDATE audit_events SET id = 100 WHERE id = 2",
        "UPDATE audit_events SET id = 2 WHERE id = 3",
        "UPDATE audit_events SET id = 3 WHERE id = 100",
    )
    result = verify(settings)
    assert not result.ok and result.bad_event_id == 2


def test_inserted_row_is_detected(settings: Settings, tx: Tx) -> None:
    append(tx, 3)
    tamper(
        settings,
        "INSERT INTO audit_events (id, occurred_at, actor, action, object_type, object_id, "
        "detail, prev_hash, hash) VALUES (4, '2026-01-01T00:00:00+00:00', 'mallory', 'x', 't', "
        f"'1', '{{}}', '{'1' * 64}', '{'2' * 64}')",
    )
    result = verify(settings)
    assert not result.ok and result.bad_event_id == 4


def test_concurrent_appends_keep_one_chain(settings: Settings) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for number in range(10):
                with transaction(settings) as session:
                    audit.record(
                        session, actor="w", action="user.add", object_type="t", object_id=number
                    )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = verify(settings)
    assert result.ok and result.checked == 60
