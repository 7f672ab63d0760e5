"""`trenv signing rotate`: a new signing key; the old public key is kept as retired (its
private key destroyed), and what it signed before stays verifiable on the installation."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.foundation.test_audit import append
from tests.foundation.test_audit_anchor import (
    STRANGER,
    bundle_witnessing,
    export_anchor,
    head,
    trenv,
)
from trenv import audit, signing
from trenv.config import Settings
from trenv.store import transaction
from trenv.web.app import create_app
from trenv.web.auth import StaticIdentity

Tx = Callable[[], AbstractContextManager[Session]]


@pytest.fixture
def key(settings: Settings) -> signing.SigningKey:
    made, _ = signing.ensure_signing_key(settings, "justice-tre")
    return made


def rotate() -> str:
    code, output = trenv("signing", "rotate")
    assert code == 0, output
    return output


def test_rotation_makes_a_new_key_and_destroys_the_old_private_key(
    settings: Settings, key: signing.SigningKey
) -> None:
    old_private = signing.key_path(settings).read_bytes()
    output = rotate()
    new = signing.load_signing_key(settings)
    assert new.identity.fingerprint != key.identity.fingerprint
    assert new.identity.installation == "justice-tre"
    assert new.identity.fingerprint in output and key.identity.fingerprint in output
    assert signing.read_identity(settings) == new.identity
    directory = signing.key_dir(settings)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
    assert {n: m for n, m in modes.items() if n.startswith("signing")} == {
        "signing.key": 0o400,
        "signing.pub.json": 0o444,
        "signing.retired.json": 0o444,
    }
    assert not [n for n in modes if n.startswith(".signing")]  # no copy left behind
    for path in directory.iterdir():
        assert old_private not in path.read_bytes()
    retired = signing.retired_keys(settings)
    assert list(retired) == [key.identity.fingerprint]
    assert retired[key.identity.fingerprint].identity == key.identity
    # The retired file holds public keys only.
    published = json.loads(signing.retired_path(settings).read_text())
    assert published["retired"][0]["public_key"] == key.identity.public_key
    assert published["retired"][0]["retired_at"]


def test_rotation_is_audited_with_both_fingerprints(
    settings: Settings, key: signing.SigningKey
) -> None:
    rotate()
    new = signing.load_signing_key(settings)
    with transaction(settings) as session:
        events = [e for e in audit.events(session) if e.action == "system.signing_key.rotate"]
    assert len(events) == 1
    detail = json.loads(events[0].detail)
    assert detail["old_fingerprint"] == key.identity.fingerprint
    assert detail["new_fingerprint"] == new.identity.fingerprint


def test_rotating_twice_keeps_every_retired_key(
    settings: Settings, key: signing.SigningKey
) -> None:
    rotate()
    second = signing.load_signing_key(settings).identity.fingerprint
    rotate()
    assert list(signing.retired_keys(settings)) == [key.identity.fingerprint, second]
    code, output = trenv("signing", "show")
    assert code == 0 and key.identity.fingerprint in output.replace(" ", "")


def test_without_a_key_there_is_nothing_to_rotate(settings: Settings) -> None:
    signing.key_path(settings).unlink(missing_ok=True)
    code, output = trenv("signing", "rotate")
    assert code == 2 and "trenv init" in output


def test_an_anchor_exported_before_rotation_verifies_after_it_as_retired(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 2)
    before = tmp_path / "anchor-before.json"
    export_anchor(before)
    rotate()
    after = tmp_path / "anchor-after.json"
    export_anchor(after)
    new = signing.load_signing_key(settings)
    signer = json.loads(after.read_text())["anchor"]["signer"]["fingerprint"]
    assert signer == new.identity.fingerprint  # new anchors: the new key
    code, output = trenv("audit", "verify", "--against", str(before), "--against", str(after))
    assert code == 0, output
    assert "event 3 matches the anchor anchor-before.json (signed by a retired key" in output
    assert key.identity.fingerprint in output.replace(" ", "")
    assert "matches the anchor anchor-after.json;" in output + ";"  # current key: no note
    assert "anchor-after.json (signed by" not in output


def test_a_bundle_released_before_rotation_verifies_after_it_on_the_installation(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 2)
    bundle = bundle_witnessing(settings, tmp_path / "release.zip", key, head(settings))
    rotate()
    code, output = trenv("airlock", "verify", str(bundle))
    assert code == 0, output
    assert "a retired key of this installation" in output
    assert key.identity.fingerprint in output.replace(" ", "")
    code, output = trenv("audit", "verify", "--against", str(bundle))
    assert code == 0, output
    assert "release.zip (request 7) (signed by a retired key" in output
    # A new release is signed with the new key, and verifies without a note.
    new, created = signing.ensure_signing_key(settings)
    assert not created and new.identity.fingerprint != key.identity.fingerprint
    fresh = bundle_witnessing(settings, tmp_path / "fresh.zip", new, head(settings))
    code, output = trenv("airlock", "verify", str(fresh))
    assert code == 0 and "retired" not in output.split("; every file")[0]


def test_a_key_never_listed_is_still_refused_after_rotation(
    settings: Settings, tx: Tx, key: signing.SigningKey, tmp_path: Path
) -> None:
    append(tx, 2)
    rotate()
    at = head(settings)
    forged = tmp_path / "forged.json"
    forged.write_bytes(audit.export_anchor(STRANGER, at[0], at[1], "2026-12-01T00:00:00+00:00"))
    code, output = trenv("audit", "verify", "--against", str(forged))
    assert code == 2 and "signed by installation 'elsewhere-tre'" in output
    bundle = bundle_witnessing(settings, tmp_path / "foreign.zip", STRANGER, at)
    code, output = trenv("audit", "verify", "--against", str(bundle))
    assert code == 2 and "cannot witness the audit log" in output
    code, output = trenv("airlock", "verify", str(bundle))
    assert code == 1 and "UNTRUSTED" in output


def test_a_rotation_stopped_before_publishing_is_repaired(
    settings: Settings, key: signing.SigningKey
) -> None:
    """The new key is in place but signing.pub.json still names the (retired) old one."""
    old_identity = signing.identity_path(settings).read_text()
    rotate()
    path = signing.identity_path(settings)
    path.chmod(0o644)
    path.write_text(old_identity)
    repaired = signing.load_signing_key(settings)
    assert repaired.identity.fingerprint != key.identity.fingerprint
    assert signing.read_identity(settings) == repaired.identity


def test_the_public_page_lists_retired_fingerprints(
    settings: Settings, key: signing.SigningKey
) -> None:
    rotate()
    client = TestClient(create_app(settings, StaticIdentity(users={})), base_url="http://t")
    page = client.get("/services/trenv/signing-key", headers={"accept": "text/html"})
    assert page.status_code == 200 and key.identity.fingerprint in page.text
    published = client.get("/services/trenv/signing-key.json").json()
    assert [r["fingerprint"] for r in published["retired"]] == [key.identity.fingerprint]
    assert published["fingerprint"] == signing.read_identity(settings).fingerprint  # type: ignore[union-attr]
