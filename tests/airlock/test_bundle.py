"""The release bundle is deterministic, describes itself, is signed by the installation,
and betrays any changed byte."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trenv.airlock.bundle import (
    CRATE_NAME,
    RECORD_NAME,
    RECORD_SCHEMA,
    SIGNATURE_NAME,
    build_bundle,
    check_bundle,
    verify_bundle,
)
from trenv.signing import SigningKey

TABLE = b"region,count\nnoord,40\nzuid,55\n"
FIGURE = b"\x89PNG\r\n\x1a\nnot really"
# Fixed keys, so that bundles are byte-identical between calls (Ed25519 is deterministic).
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(b"\x01" * 32), "justice-tre")
OTHER_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(b"\x02" * 32), "elsewhere-tre")
TRUSTED = {KEY.identity.fingerprint}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record() -> dict[str, Any]:
    def entry(path: str, data: bytes, released: bool) -> dict[str, Any]:
        return {
            "path": path,
            "sha256": sha(data),
            "size": len(data),
            "media_type": "text/csv",
            "kind": "table",
            "justification": "for the report",
            "released": released,
        }

    return {
        "schema_version": RECORD_SCHEMA,
        "signer": KEY.identity.as_record(),
        "audit_head": {"event_id": 12, "hash": "a" * 64},
        "request": {
            "id": 7,
            "title": "Reoffending by region",
            "project": "reoffending",
            "requester": "rosa",
            "policy": "trenv-default",
            "policy_version": "1.0",
            "decided_at": "2026-11-25T10:00:00+00:00",
        },
        "provenance": {
            "image": {"reference": "trenv/notebook:1", "digest": "sha256:abc"},
            "datasets": [{"dataset": "cases", "version": "2026-1", "sha256": "f" * 64}],
        },
        "files": [entry("outputs/t.csv", TABLE, True), entry("outputs/f.png", FIGURE, False)],
    }


def bundle(key: SigningKey = KEY) -> bytes:
    rec = record()
    rec["signer"] = key.identity.as_record()
    return build_bundle(rec, {sha(TABLE): TABLE, sha(FIGURE): FIGURE}, sign=key.sign)


def test_bundle_holds_approved_files_record_signature_and_crate_only() -> None:
    with zipfile.ZipFile(io.BytesIO(bundle())) as zf:
        names = [CRATE_NAME, RECORD_NAME, SIGNATURE_NAME, "files/outputs/t.csv"]
        assert sorted(zf.namelist()) == sorted(names)
        assert zf.read("files/outputs/t.csv") == TABLE
        crate = json.loads(zf.read(CRATE_NAME))
    ids = {node["@id"]: node for node in crate["@graph"]}
    assert ids["./"]["hasPart"] == [{"@id": "files/outputs/t.csv"}, {"@id": RECORD_NAME}]
    assert ids["files/outputs/t.csv"]["sha256"] == sha(TABLE)
    action = ids["#request-7"]
    assert action["instrument"] == [{"@id": "#image-sha256:abc"}]
    assert action["object"] == [{"@id": "#dataset-cases-2026-1"}]


def test_bundle_bytes_are_deterministic() -> None:
    assert bundle() == bundle()


def test_verify_accepts_the_bundle_and_names_its_signer() -> None:
    assert verify_bundle(bundle(), TRUSTED) == []
    checked = check_bundle(bundle(), TRUSTED)
    assert checked.ok and checked.signer == KEY.identity
    assert checked.record is not None and checked.record["request"]["id"] == 7


def _rewrite(data: bytes, name: str, content: bytes | None, extra: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            if item == name:
                if content is not None:
                    dst.writestr(item, content)
            else:
                dst.writestr(item, src.read(item))
        if extra:
            dst.writestr(extra, b"smuggled")
    return out.getvalue()


def test_verify_names_a_changed_file() -> None:
    tampered = _rewrite(bundle(), "files/outputs/t.csv", b"region,count\nnoord,3\n")
    assert any("files/outputs/t.csv: sha256" in p for p in verify_bundle(tampered, TRUSTED))


def test_verify_names_a_missing_and_an_extra_file() -> None:
    tampered = _rewrite(bundle(), "files/outputs/t.csv", None, "files/raw.csv")
    problems = verify_bundle(tampered, TRUSTED)
    assert any("missing" in p for p in problems)
    assert any("files/raw.csv" in p for p in problems)


def edit_file_and_record(data: bytes) -> bytes:
    """What a forger does: change a file and write its new sha256 into the record."""
    forged = b"region,count\nnoord,3\nzuid,1\n"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        rec = json.loads(zf.read(RECORD_NAME))
    rec["files"][0]["sha256"] = sha(forged)
    rec["files"][0]["size"] = len(forged)
    step = _rewrite(data, "files/outputs/t.csv", forged)
    return _rewrite(step, RECORD_NAME, (json.dumps(rec, indent=2, sort_keys=True) + "\n").encode())


def test_editing_a_file_and_the_record_together_fails() -> None:
    problems = verify_bundle(edit_file_and_record(bundle()), TRUSTED)
    assert problems == [
        f"{RECORD_NAME} does not match its signature: the record was changed after "
        f"installation 'justice-tre' (key {KEY.identity.fingerprint}) signed it, or the "
        "signature was not made with that key"
    ]


def test_a_bundle_signed_by_another_installation_fails_naming_it() -> None:
    checked = check_bundle(bundle(OTHER_KEY), TRUSTED)
    assert checked.signer is None
    assert [kind for kind, _ in checked.found] == ["untrusted"]
    assert "'elsewhere-tre'" in checked.problems[0]
    assert OTHER_KEY.identity.fingerprint in checked.problems[0]
    assert KEY.identity.fingerprint in checked.problems[0]  # and what was expected


def _add(data: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, src.read(item))
        dst.writestr(name, content)
    return out.getvalue()


def test_a_signature_by_another_key_than_the_named_signer_fails() -> None:
    unsigned = build_bundle(record(), {sha(TABLE): TABLE, sha(FIGURE): FIGURE})  # names KEY
    with zipfile.ZipFile(io.BytesIO(unsigned)) as zf:
        raw = zf.read(RECORD_NAME)
    forged = _add(unsigned, SIGNATURE_NAME, base64.b64encode(OTHER_KEY.sign(raw)))
    assert any("does not match its signature" in p for p in verify_bundle(forged, TRUSTED))


def test_an_unsigned_bundle_fails() -> None:
    unsigned = _rewrite(bundle(), SIGNATURE_NAME, None)
    assert verify_bundle(unsigned, TRUSTED) == [f"{RECORD_NAME} is not signed "
                                                f"({SIGNATURE_NAME} is missing)"]  # fmt: skip


def test_without_trusted_keys_only_the_named_key_is_checked() -> None:
    assert verify_bundle(bundle(OTHER_KEY)) == []
    assert check_bundle(bundle(OTHER_KEY)).signer == OTHER_KEY.identity


def _with_directory_entries(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for directory in ("files/", "files/outputs/"):
            dst.writestr(zipfile.ZipInfo(directory), b"")
        for item in src.namelist():
            dst.writestr(item, src.read(item))
    return out.getvalue()


def test_directory_entries_are_not_mismatches() -> None:
    assert verify_bundle(_with_directory_entries(bundle()), TRUSTED) == []


def test_a_bundle_unpacked_and_zipped_again_with_zip_r_verifies(tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(bundle())) as zf:
        zf.extractall(unpacked)
    target = tmp_path / "again.zip"
    subprocess.run(["zip", "-q", "-r", str(target), "."], cwd=unpacked, check=True)
    with zipfile.ZipFile(target) as zf:
        assert "files/" in zf.namelist() and "files/outputs/" in zf.namelist()
    assert verify_bundle(target.read_bytes(), TRUSTED) == []


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_file_entered_twice_is_named() -> None:
    data = _add(bundle(), "files/outputs/t.csv", b"region,count\nnoord,1\n")
    assert "files/outputs/t.csv is in the bundle 2 times" in verify_bundle(data, TRUSTED)


def test_build_refuses_a_signer_that_did_not_sign() -> None:
    with pytest.raises(ValueError, match="not the key that signed"):
        build_bundle(record(), {sha(TABLE): TABLE, sha(FIGURE): FIGURE}, sign=OTHER_KEY.sign)


def test_build_refuses_bytes_that_do_not_match_their_hash() -> None:
    with pytest.raises(ValueError, match="do not match"):
        build_bundle(record(), {sha(TABLE): b"other", sha(FIGURE): FIGURE})
