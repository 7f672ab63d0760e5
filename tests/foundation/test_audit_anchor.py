"""Witnesses outside the database: a rewritten history that the anchor file no longer catches
(it was rewritten too) is caught by a release bundle or a signed anchor export kept
elsewhere (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.airlock.test_bundle import FIGURE, TABLE, record
from tests.foundation.test_audit import append, tamper
from trenv import audit, signing
from trenv.airlock.bundle import build_bundle
from trenv.cli import app
from trenv.config import Settings
from trenv.store import transaction
from trenv.store.models import AuditEvent

Tx = Callable[[], AbstractContextManager[Session]]
runner = CliRunner()
STRANGER = signing.SigningKey(Ed25519PrivateKey.generate(), "elsewhere-tre")


def trenv(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())  # one line: Rich wraps


@pytest.fixture
def key(settings: Settings) -> signing.SigningKey:
    made, _ = signing.ensure_signing_key(settings, "justice-tre")
    return made


def head(settings: Settings) -> tuple[int, str]:
    with transaction(settings) as session:
        found = audit.head(session)
    assert found is not None
    return found


def bundle_witnessing(
    settings: Settings, path: Path, key: signing.SigningKey, at: tuple[int, str]
) -> Path:
    """A release bundle whose signed record carries the chain head ``at``."""
    rec = record()
    rec["signer"] = key.identity.as_record()
    rec["audit_head"] = {"event_id": at[0], "hash": at[1]}
    contents = {hashlib.sha256(b).hexdigest(): b for b in (TABLE, FIGURE)}
    path.write_bytes(build_bundle(rec, contents, sign=key.sign))
    return path


def export_anchor(path: Path) -> str:
    code, output = trenv("audit", "anchor", "export", str(path))
    assert code == 0, output
    return output


def rewrite_history(settings: Settings, event_id: int) -> None:
    """What an attacker holding the database and the anchor file does: change an event,
    recompute every hash from there on, and write the anchor file to match."""
    with transaction(settings) as session:
        rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        events = [
            {c: getattr(r, c) for c in ("id", "occurred_at", "actor", "action",
                                        "object_type", "object_id", "detail", "prev_hash")}
            for r in rows
        ]  # fmt: skip
    statements, prev = [], None
    for event in events:
        if event["id"] < event_id:
            prev = audit.event_hash(**event)
            continue
        if event["id"] == event_id:
            event["actor"] = "mallory"
        event["prev_hash"] = prev or audit.GENESIS_HASH
        prev = audit.event_hash(**event)
        statements.append(
            f"UPDATE audit_events SET actor = '{event['actor']}', "
            f"prev_hash = '{event['prev_hash']}', hash = '{prev}' WHERE id = {event['id']}"
        )
    tamper(settings, *statements)
    assert settings.audit_anchor is not None and prev is not None
    settings.audit_anchor.write_text(json.dumps({"id": events[-1]["id"], "hash": prev}))


def test_untouched_history_verifies_against_a_bundle_and_an_anchor(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 3)
    bundle = bundle_witnessing(settings, tmp_path / "release.zip", key, head(settings))
    append(tx, 2)
    anchor = tmp_path / "anchor-day1.json"
    assert "anchor of event 6 signed by installation 'justice-tre'" in export_anchor(anchor)
    append(tx, 2)
    code, output = trenv("audit", "verify", "--against", str(bundle), "--against", str(anchor))
    assert code == 0, output
    assert "audit chain intact: 8 events verified" in output
    assert "event 3 matches the release bundle release.zip (request 7)" in output
    assert "event 6 matches the anchor anchor-day1.json" in output


def test_anchor_export_is_signed_audited_read_only_and_never_overwritten(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 2)
    anchor = tmp_path / "anchor.json"
    export_anchor(anchor)
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o444
    witness = audit.read_anchor_export(anchor.read_bytes(), {key.identity.fingerprint}, "a")
    with tx() as session:
        event = session.get(AuditEvent, witness.event_id)
        assert event is not None and event.action == "audit.anchor_export"
        assert event.hash == witness.hash  # the export witnesses its own event
    code, output = trenv("audit", "anchor", "export", str(anchor))
    assert code == 2 and "never overwritten" in output


def test_a_rewritten_event_before_the_head_is_caught_by_a_bundle(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 5)
    bundle = bundle_witnessing(settings, tmp_path / "release.zip", key, head(settings))
    append(tx, 1)
    rewrite_history(settings, 3)
    code, output = trenv("audit", "verify")  # the gap this closes: both were rewritten
    assert code == 0, output
    code, output = trenv("audit", "verify", "--against", str(bundle))
    assert code == 1
    assert "event 5 differs from the release bundle release.zip (request 7)" in output
    assert "the log was rewritten at or before event 5" in output


def head_at(settings: Settings, event_id: int) -> str:
    with transaction(settings) as session:
        row = session.get(AuditEvent, event_id)
        assert row is not None
        return row.hash


def test_a_rewritten_event_before_the_head_is_caught_by_an_anchor(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 4)
    anchor = tmp_path / "anchor.json"
    export_anchor(anchor)  # event 5: the export itself
    append(tx, 3)
    rewrite_history(settings, 2)
    assert trenv("audit", "verify")[0] == 0
    code, output = trenv("audit", "verify", "--against", str(anchor))
    assert code == 1
    assert "event 5 differs from the anchor anchor.json" in output
    with transaction(settings) as session:
        witness = audit.read_anchor_export(
            anchor.read_bytes(), {key.identity.fingerprint}, "the anchor"
        )
        result = audit.verify(session, settings.audit_anchor, [witness])
    assert not result.ok and result.bad_event_id == 5


def test_a_deleted_tail_with_a_rewritten_anchor_file_is_caught(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 4)
    anchor = tmp_path / "anchor.json"
    export_anchor(anchor)  # event 5
    tamper(settings, "DELETE FROM audit_events WHERE id >= 4")
    assert settings.audit_anchor is not None
    settings.audit_anchor.write_text(json.dumps({"id": 3, "hash": head_at(settings, 3)}))
    assert trenv("audit", "verify")[0] == 0
    code, output = trenv("audit", "verify", "--against", str(anchor))
    assert code == 1 and "events 4..5 are missing" in output


def test_a_forged_anchor_is_refused(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 3)
    anchor = tmp_path / "anchor.json"
    export_anchor(anchor)
    document = json.loads(anchor.read_text())
    rewrite_history(settings, 2)  # the attacker rewrites and moves the anchor to match
    document["anchor"]["hash"] = head_at(settings, document["anchor"]["event_id"])
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    code, output = trenv("audit", "verify", "--against", str(forged))
    assert code == 2
    assert "refused: the anchor forged.json: the signature does not match the anchor" in output


def test_an_anchor_signed_by_another_installation_is_refused(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 2)
    at = head(settings)
    foreign = tmp_path / "foreign.json"
    foreign.write_bytes(audit.export_anchor(STRANGER, at[0], at[1], "2026-12-01T00:00:00+00:00"))
    code, output = trenv("audit", "verify", "--against", str(foreign))
    assert code == 2 and "signed by installation 'elsewhere-tre'" in output
    assert key.identity.fingerprint in output
    bundle = bundle_witnessing(settings, tmp_path / "foreign.zip", STRANGER, at)
    code, output = trenv("audit", "verify", "--against", str(bundle))
    assert code == 2 and "cannot witness the audit log" in output
    assert "'elsewhere-tre'" in output


def test_witnesses_need_this_installations_key(settings: Settings, tx: Tx, tmp_path: Path) -> None:
    append(tx, 1)
    code, output = trenv("audit", "verify", "--against", str(tmp_path / "any.json"))
    assert code == 2 and "no signing key yet" in output


def test_a_bundle_without_an_audit_head_cannot_witness(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 1)
    rec = record()
    rec["signer"] = key.identity.as_record()
    del rec["audit_head"]
    contents = {hashlib.sha256(b).hexdigest(): b for b in (TABLE, FIGURE)}
    path = tmp_path / "old.zip"
    path.write_bytes(build_bundle(rec, contents, sign=key.sign))
    code, output = trenv("audit", "verify", "--against", str(path))
    assert code == 2 and "carries no audit chain head" in output
