"""The content-addressed store: idempotent, read-only objects, tamper detection."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from trenv.airlock.store import ContentStore, ObjectTampered, check_sha256
from trenv.errors import NotFound


def test_put_get_roundtrip(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    digest = store.put(b"region,n\nnorth,12\n")
    assert digest == hashlib.sha256(b"region,n\nnorth,12\n").hexdigest()
    path = store.path(digest)
    assert path == tmp_path / "store" / "objects" / digest[:2] / digest[2:]
    assert stat.S_IMODE(path.stat().st_mode) == 0o440
    assert store.exists(digest)
    assert store.get(digest) == b"region,n\nnorth,12\n"
    assert store.put(b"region,n\nnorth,12\n") == digest  # idempotent
    leftovers = [p for p in (tmp_path / "store").iterdir() if p.name != "objects"]
    assert leftovers == []


def test_empty_object(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    assert store.get(store.put(b"")) == b""


def test_tampered_object_is_detected(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = store.put(b"approved bytes")
    path = store.path(digest)
    os.chmod(path, 0o640)
    path.write_bytes(b"changed bytes")
    with pytest.raises(ObjectTampered, match="changed after it was stored"):
        store.get(digest)
    # Storing the genuine bytes again repairs the object.
    assert store.put(b"approved bytes") == digest
    assert store.get(digest) == b"approved bytes"


def test_object_replaced_by_a_symlink_is_not_followed(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "s")
    digest = store.put(b"x")
    path = store.path(digest)
    path.unlink()
    (tmp_path / "other").write_bytes(b"x")
    path.symlink_to(tmp_path / "other")
    assert not store.exists(digest)
    with pytest.raises(ObjectTampered):
        store.get(digest)


def test_missing_object(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = "0" * 64
    assert not store.exists(digest)
    with pytest.raises(NotFound):
        store.get(digest)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../" + "a" * 61,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "aa/" + "b" * 61,
        "a" * 63 + "\n",
    ],
)
def test_hashes_are_validated(tmp_path: Path, bad: str) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(ValueError):
        check_sha256(bad)
    with pytest.raises(ValueError):
        store.path(bad)
    with pytest.raises(ValueError):
        store.get(bad)
    with pytest.raises(ValueError):
        store.exists(bad)
