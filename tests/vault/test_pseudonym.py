from __future__ import annotations

import hmac
import os
import pickle
from pathlib import Path

import pytest

from trenv.vault.pseudonym import (
    FileKeyStore,
    InvalidProjectSlugError,
    KeyPermissionError,
    KeyStore,
    KeyStoreError,
    ProjectKeyDestroyedError,
    Pseudonymiser,
    linkage_pseudonymiser,
    project_pseudonymiser,
)

# RFC 4231 HMAC-SHA256 test vectors: (key, data, expected digest in hex).
RFC4231 = [
    (
        bytes([0x0B] * 20),
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        bytes([0xAA] * 20),
        bytes([0xDD] * 50),
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        bytes([0xCD] * 50),
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        bytes([0xAA] * 131),
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        bytes([0xAA] * 131),
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


def _pseudonymiser(key: bytes) -> Pseudonymiser:
    # trenv refuses keys under 16 bytes; HMAC pads keys with zeros to the block size, so a
    # short RFC key padded with zeros to 16 bytes gives exactly the same HMAC.
    return Pseudonymiser(key if len(key) >= 16 else key.ljust(16, b"\0"))


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_rfc4231_vectors(key: bytes, data: bytes, expected: str) -> None:
    assert _pseudonymiser(key).digest(data).hex() == expected


def test_rfc4231_truncated_vector() -> None:
    p = Pseudonymiser(bytes([0x0C] * 20))
    assert p.digest(b"Test With Truncation")[:16].hex() == "a3b6167473100ee06e0c796c2955552b"


# Short and long keys (a key over the 64-byte block is hashed first) and values of every
# kind: empty, ASCII, non-ASCII, NUL, longer than a block.
KEYS = [bytes(range(16)), os.urandom(32), bytes(range(64)), os.urandom(100)]
VALUES = ["", "123456782", "012345672", "Zoë d'Hondt", "12\x0034", "x" * 200]


@pytest.mark.parametrize("key", KEYS)
def test_pseudonyms_are_the_standard_librarys_hmac(key: bytes) -> None:
    p = Pseudonymiser(key)
    expected = [hmac.new(key, v.encode(), "sha256").hexdigest()[:32] for v in VALUES]
    assert p.pseudonymise(VALUES) == expected
    assert [p.pseudonym(v) for v in VALUES] == expected
    assert p.digest(b"abc") == hmac.new(key, b"abc", "sha256").digest()


def test_batch_matches_hmac_module() -> None:
    key = os.urandom(32)
    ids = [f"{i:09d}" for i in range(50_000)]
    got = Pseudonymiser(key).pseudonymise(ids)
    assert len(got) == len(ids)
    for i in (0, 12345, 49_999):
        assert got[i] == hmac.new(key, ids[i].encode(), "sha256").hexdigest()[:32]


def test_store_creates_0600_master_key_and_is_a_keystore(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    assert isinstance(store, KeyStore)
    first = linkage_pseudonymiser(store).pseudonym("123456782")
    assert (store.master_path.stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "keys").stat().st_mode & 0o777) == 0o700
    again = linkage_pseudonymiser(FileKeyStore(tmp_path / "keys")).pseudonym("123456782")
    assert first == again


def test_refuses_key_file_readable_by_others(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    store.linkage_key()
    store.master_path.chmod(0o644)
    with pytest.raises(KeyPermissionError, match="chmod 600"):
        store.linkage_key()


def test_project_pseudonyms_stable_within_and_unrelated_across_projects(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    link = linkage_pseudonymiser(store).pseudonym("123456782")
    a1 = project_pseudonymiser(store, "recidivism-2025").pseudonym(link)
    a2 = project_pseudonymiser(FileKeyStore(tmp_path / "keys"), "recidivism-2025").pseudonym(link)
    b = project_pseudonymiser(store, "xtc-markets").pseudonym(link)
    assert a1 == a2
    assert a1 != b
    assert link not in (a1, b)
    assert store.project_key("recidivism-2025") != store.linkage_key()


def test_destroyed_project_key_cannot_be_used_or_recreated(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    store.project_key("closing")
    assert store.has_project_key("closing")
    store.destroy_project_key("closing")
    assert not store.has_project_key("closing")
    assert not (tmp_path / "keys" / "projects" / "closing.salt").exists()
    with pytest.raises(ProjectKeyDestroyedError):
        project_pseudonymiser(store, "closing")
    # Other projects are untouched.
    assert len(store.project_key("still-open")) == 32


def test_bad_slug_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidProjectSlugError):
        FileKeyStore(tmp_path).project_key("../escape")


def test_keys_never_shown_or_pickled(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    key = store.linkage_key()
    p = linkage_pseudonymiser(store)
    assert key.hex() not in repr(p) and key.hex() not in repr(store)
    with pytest.raises(TypeError):
        pickle.dumps(p)
    store.master_path.chmod(0o640)
    with pytest.raises(KeyPermissionError) as info:
        store.linkage_key()
    master = store.master_path.read_bytes()
    assert master.hex() not in str(info.value)


def test_array_pseudonyms_keep_order_and_nulls() -> None:
    import pyarrow as pa

    from trenv.vault.pseudonym import pseudonymise_array

    p = Pseudonymiser(os.urandom(32))
    values = pa.chunked_array([["111222333", None], ["123456782", "111222333"]])
    out = pseudonymise_array(p, values).to_pylist()
    assert out[1] is None
    assert out[0] == out[3] == p.pseudonym("111222333")
    assert out[2] == p.pseudonym("123456782")


def test_a_lost_master_key_is_refused_not_replaced(tmp_path: Path) -> None:
    """A new master key would change every pseudonym: a lost one must come from the backup."""
    store = FileKeyStore(tmp_path / "keys")
    store.linkage_key()
    store.master_path.unlink()
    with pytest.raises(KeyStoreError, match="restore the file from the vault's key backup"):
        store.linkage_key()
    assert not store.master_path.exists()  # nothing was made in its place


def test_a_lost_project_salt_is_refused_not_replaced(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    store.project_key("reoffending")
    (tmp_path / "keys" / "projects" / "reoffending.salt").unlink()
    with pytest.raises(KeyStoreError, match="key salt of project 'reoffending'"):
        store.project_key("reoffending")


def test_a_key_from_before_the_marker_is_protected_after_its_first_read(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    key = store.linkage_key()
    (tmp_path / "keys" / "master.key.made").unlink()  # as an installation made before markers
    assert store.linkage_key() == key  # read as before, and now marked
    store.master_path.unlink()
    with pytest.raises(KeyStoreError, match="missing but existed before"):
        store.linkage_key()
