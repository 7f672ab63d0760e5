"""The release bundle is deterministic, describes itself, and betrays any changed byte."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import pytest

from trenv.airlock.bundle import CRATE_NAME, RECORD_NAME, build_bundle, verify_bundle

TABLE = b"region,count\nnoord,40\nzuid,55\n"
FIGURE = b"\x89PNG\r\n\x1a\nnot really"


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
        "schema_version": "trenv.disclosure-record/1",
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


def bundle() -> bytes:
    return build_bundle(record(), {sha(TABLE): TABLE, sha(FIGURE): FIGURE})


def test_bundle_holds_approved_files_record_and_crate_only() -> None:
    with zipfile.ZipFile(io.BytesIO(bundle())) as zf:
        assert sorted(zf.namelist()) == sorted([CRATE_NAME, RECORD_NAME, "files/outputs/t.csv"])
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


def test_verify_accepts_the_bundle() -> None:
    assert verify_bundle(bundle()) == []


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
    assert any("files/outputs/t.csv: sha256" in p for p in verify_bundle(tampered))


def test_verify_names_a_missing_and_an_extra_file() -> None:
    problems = verify_bundle(_rewrite(bundle(), "files/outputs/t.csv", None, "files/raw.csv"))
    assert any("missing" in p for p in problems)
    assert any("files/raw.csv" in p for p in problems)


def test_build_refuses_bytes_that_do_not_match_their_hash() -> None:
    with pytest.raises(ValueError, match="do not match"):
        build_bundle(record(), {sha(TABLE): b"other", sha(FIGURE): FIGURE})
