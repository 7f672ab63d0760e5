"""Append-only, hash-chained audit log.

Each event's hash covers its id, time, actor, action, object, detail and the previous event's
hash, serialised canonically; so editing, deleting, inserting or reordering any row breaks the
chain from that row on. Deleting the newest rows leaves a shorter but valid chain, so the head
(id and hash) is also written after every commit to an anchor file outside the database; an
operator can copy that file to write-once storage. Database triggers refuse UPDATE and DELETE
on the table (see migration 0001).

Whoever controls both the database and the anchor file can still rewrite the chain and the
anchor together. Witnesses kept elsewhere catch that: every release's signed disclosure
record carries the head at release, and :func:`export_anchor` writes a signed anchor (daily,
from cron) to be copied off the host. ``verify(..., witnesses=...)`` then checks that the
chain still has, at each witnessed event id, the witnessed hash.

Written here rather than taken from a library: no maintained Python package provides a
hash-chained log inside the application's own SQL transaction, which is what makes an event
commit if and only if the change it describes commits.

:func:`record` writes only the actions named in :class:`trenv.audit_actions.AuditAction`, so
the log's vocabulary is closed and documented; verifying and reading never consult it, so
rows of any age stay valid.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from trenv.audit_actions import AuditAction, parse_action
from trenv.config import Settings, get_settings
from trenv.signing import PublicIdentity, SigningKey
from trenv.store.models import AuditEvent

GENESIS_HASH = "0" * 64
ANCHOR_EXPORT_SCHEMA = "trenv.audit-anchor/1"
# Any constant: the advisory lock that serialises appends on PostgreSQL.
_PG_APPEND_LOCK = 0x7472_656E_7661_7564  # "trenvaud"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(
    *,
    id: int,
    occurred_at: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: str,
    prev_hash: str,
) -> str:
    payload = canonical_json(
        {
            "id": id,
            "occurred_at": occurred_at,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "detail": detail,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _hash_of(row: AuditEvent) -> str:
    return event_hash(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        detail=row.detail,
        prev_hash=row.prev_hash,
    )


def _settings_of(session: Session) -> Settings:
    return session.info.get("settings") or get_settings()


def record(
    session: Session,
    *,
    actor: str,
    action: AuditAction | str,
    object_type: str,
    object_id: str | int,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event inside the caller's transaction: it commits iff the change commits.

    ValueError, before anything is written, when ``action`` is not an :class:`AuditAction`.
    """
    known = parse_action(action)
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_APPEND_LOCK})
    # On SQLite the session already holds the write lock (BEGIN IMMEDIATE, see store.engine).
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    new_id, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    fields = {
        "id": new_id,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": known.value,  # the plain string: the hash must not depend on the enum
        "object_type": object_type,
        "object_id": str(object_id),
        "detail": canonical_json(detail or {}),
        "prev_hash": prev_hash,
    }
    row = AuditEvent(**fields, hash=event_hash(**fields))
    session.add(row)
    session.flush()
    _remember_head(session, row.id, row.hash)
    return row


def _remember_head(session: Session, event_id: int, event_hash_: str) -> None:
    first_time = "trenv_audit_head" not in session.info
    session.info["trenv_audit_head"] = (event_id, event_hash_)
    if first_time:
        event.listen(session, "after_commit", _write_anchor_after_commit)
        event.listen(session, "after_rollback", _forget_head)


def _forget_head(session: Session) -> None:
    session.info.pop("trenv_audit_head", None)


def _write_anchor_after_commit(session: Session) -> None:
    head = session.info.pop("trenv_audit_head", None)
    if head is None:
        return
    anchor_path = _settings_of(session).audit_anchor
    assert anchor_path is not None
    write_anchor(anchor_path, head[0], head[1])


def read_anchor(path: Path) -> tuple[int, str] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return int(data["id"]), str(data["hash"])


def write_anchor(path: Path, event_id: int, event_hash_: str) -> None:
    """Atomically move the anchor forward; never backwards (concurrent writers may race)."""
    current = read_anchor(path)
    if current is not None and current[0] >= event_id:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-anchor-")
    with os.fdopen(fd, "w") as handle:
        json.dump({"id": event_id, "hash": event_hash_}, handle)
    os.replace(tmp, path)


def head(session: Session) -> tuple[int, str] | None:
    """The newest event's id and hash, as this session sees them (None for an empty log)."""
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    return None if last is None else (int(last[0]), str(last[1]))


@dataclass(frozen=True)
class Witness:
    """A copy of the chain's head kept outside the database: ``source`` names it."""

    event_id: int
    hash: str
    source: str


class AnchorError(ValueError):
    """An exported anchor that cannot be used as a witness (unreadable, forged, foreign)."""


def export_anchor(key: SigningKey, event_id: int, event_hash_: str, exported_at: str) -> bytes:
    """A signed anchor: the head, the installation and the signature over the canonical JSON
    of ``anchor``. Copy it off this host; :func:`read_anchor_export` checks it."""
    anchor = {
        "schema": ANCHOR_EXPORT_SCHEMA,
        "event_id": event_id,
        "hash": event_hash_,
        "exported_at": exported_at,
        "signer": key.identity.as_record(),
    }
    signature = key.sign(canonical_json(anchor).encode())
    document = {"anchor": anchor, "signature": base64.b64encode(signature).decode("ascii")}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def read_anchor_export(data: bytes, trusted: Collection[str], source: str) -> Witness:
    """The witness in an exported anchor, if its signature is valid and made by a key whose
    fingerprint is in ``trusted``; AnchorError naming the problem otherwise."""
    try:
        document = json.loads(data)
        anchor = document["anchor"]
        signature = base64.b64decode(document["signature"], validate=True)
        if anchor.get("schema") != ANCHOR_EXPORT_SCHEMA:
            raise AnchorError(f"{source}: unknown anchor schema {anchor.get('schema')!r}")
        event_id, event_hash_ = int(anchor["event_id"]), str(anchor["hash"])
        if event_id < 1:
            raise AnchorError(f"{source}: event id {event_id} is not an audit event")
    except AnchorError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise AnchorError(f"{source} is not a trenv audit anchor ({error!r})") from None
    try:
        signer = PublicIdentity.from_record(anchor.get("signer"))
    except ValueError as error:
        raise AnchorError(f"{source} names no valid signer ({error})") from None
    if not signer.verifies(signature, canonical_json(anchor).encode()):
        raise AnchorError(
            f"{source}: the signature does not match the anchor: it was changed after "
            f"{signer.describe()} signed it, or forged"
        )
    if signer.fingerprint not in trusted:
        raise AnchorError(
            f"{source} is signed by {signer.describe()}, not by this installation's key "
            f"({', '.join(sorted(trusted)) or 'none'})"
        )
    return Witness(event_id, event_hash_, source)


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    bad_event_id: int | None = None
    problem: str | None = None
    witnessed: int = 0  # witnesses the chain was found to agree with


def verify(
    session: Session, anchor_path: Path | None = None, witnesses: Sequence[Witness] = ()
) -> Verification:
    """Recompute the chain; report the first event that breaks it. Then compare it with the
    anchor file and with each witness: the chain must still hold the witnessed event with the
    witnessed hash (else the log was rewritten at or before that event)."""
    expected_id, prev_hash, checked = 1, GENESIS_HASH, 0
    witnessed_hashes: dict[int, str] = {}
    anchor = read_anchor(anchor_path) if anchor_path else None
    wanted = {w.event_id for w in witnesses} | ({anchor[0]} if anchor else set())
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
    for row in rows.yield_per(2000):
        if row.id != expected_id:
            return Verification(
                False,
                checked,
                expected_id,
                f"event {expected_id} is missing (the next stored event is {row.id}): "
                "a row was deleted or its id changed",
            )
        if row.prev_hash != prev_hash:
            return Verification(
                False,
                checked,
                row.id,
                f"event {row.id} does not follow event {row.id - 1}: "
                "a row was inserted, deleted or reordered",
            )
        if _hash_of(row) != row.hash:
            return Verification(
                False, checked, row.id, f"event {row.id} was edited: its hash does not match"
            )
        if row.id in wanted:
            witnessed_hashes[row.id] = row.hash
        prev_hash, expected_id, checked = row.hash, expected_id + 1, checked + 1
    if anchor:
        anchor_id, anchor_hash = anchor
        if anchor_id > checked:
            return Verification(
                False,
                checked,
                checked + 1,
                f"events {checked + 1}..{anchor_id} are missing: the anchor file records "
                f"event {anchor_id} but the log ends at {checked}",
            )
        if witnessed_hashes.get(anchor_id) != anchor_hash:
            return Verification(
                False,
                checked,
                anchor_id,
                f"event {anchor_id} differs from the anchor file: the log was rewritten",
            )
    for witness in sorted(witnesses, key=lambda w: w.event_id):
        if witness.event_id > checked:
            return Verification(
                False,
                checked,
                checked + 1,
                f"events {checked + 1}..{witness.event_id} are missing: {witness.source} "
                f"witnessed event {witness.event_id} but the log ends at {checked}",
            )
        found = witnessed_hashes.get(witness.event_id)
        if found != witness.hash:
            return Verification(
                False,
                checked,
                witness.event_id,
                f"event {witness.event_id} differs from {witness.source}: the log now has "
                f"hash {found} there, the witness {witness.hash}; the log was rewritten at or "
                f"before event {witness.event_id}",
            )
    return Verification(True, checked, witnessed=len(witnesses))


def tail(session: Session, limit: int = 20) -> list[AuditEvent]:
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit))
    return list(reversed(rows.scalars().all()))


def events(session: Session, *, action_prefix: str | None = None) -> Iterator[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action_prefix:
        query = query.where(AuditEvent.action.startswith(action_prefix))
    yield from session.execute(query).scalars()
