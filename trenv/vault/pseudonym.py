"""Pseudonyms: HMAC-SHA256 of normalised identifiers under a key hierarchy.

* The vault master key (a 0600 file by default) never leaves the key store.
* The linkage key is derived from it with HKDF; it gives every person one stable pseudonym
  inside the vault, so sources can be joined there.
* A project key is derived with HKDF from the master key and a random per-project salt.
  Project pseudonyms are HMAC(project key, linkage pseudonym): the same person gets unrelated
  pseudonyms in two projects. Destroying the salt destroys the project key for good, so the
  project's pseudonyms can no longer be linked to anything.
* Record keys (case, report, stay numbers, ...) are re-keyed for a project with a subkey of the
  project key (``record_key_pseudonymiser``): HMAC(subkey, the supplier's value).

``KeyStore`` is a protocol so that a key service can replace the file store.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Pseudonyms are the first 128 bits of the HMAC as hex: collisions are negligible even for
# tens of millions of people, and the files stay half the size of full digests.
PSEUDONYM_HEX_CHARS = 32
KEY_BYTES = 32
_BLOCK = 64  # SHA-256 block size, the HMAC pad length
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LINKAGE_INFO = b"trenv/linkage-pseudonym/v1"
_PROJECT_INFO = b"trenv/project-pseudonym/v1:"
RECORD_KEY_INFO = b"trenv/record-key/v1"
# Below this many ids, starting worker processes costs more than it saves.
_PARALLEL_MIN = 400_000


class KeyStoreError(Exception):
    """Base for key store errors; messages never contain key material."""


class KeyPermissionError(KeyStoreError):
    pass


class ProjectKeyDestroyedError(KeyStoreError):
    pass


class InvalidProjectSlugError(KeyStoreError, ValueError):
    pass


def check_slug(project: str) -> str:
    if not _SLUG.match(project):
        raise InvalidProjectSlugError(
            f"project slug {project!r} is not valid: use 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    return project


def hkdf_sha256(key: bytes, *, salt: bytes | None, info: bytes, length: int = KEY_BYTES) -> bytes:
    """RFC 5869 HKDF with SHA-256, from the ``cryptography`` package."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


class Pseudonymiser:
    """Keyed HMAC-SHA256 over many identifiers, fast.

    The key's inner and outer padded hash states are computed once; each identifier then costs
    two ``copy()`` calls and two short hash updates instead of a full ``hmac.new`` set-up, which
    is about twice as fast. Large batches can also be spread over worker processes.
    The key is kept only as its padded blocks and hash states; ``repr`` shows a label and
    pickling is refused.
    """

    __slots__ = ("_inner", "_label", "_outer", "_pads")

    def __init__(self, key: bytes, *, label: str = "pseudonymiser") -> None:
        if len(key) < 16:
            raise ValueError("a pseudonym key must be at least 16 bytes")
        block_key = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        block_key = block_key.ljust(_BLOCK, b"\0")
        inner_pad = bytes(b ^ 0x36 for b in block_key)
        outer_pad = bytes(b ^ 0x5C for b in block_key)
        self._pads = (inner_pad, outer_pad)
        self._inner = hashlib.sha256(inner_pad)
        self._outer = hashlib.sha256(outer_pad)
        self._label = label

    def __repr__(self) -> str:
        return f"<Pseudonymiser {self._label}>"

    def __reduce__(self) -> tuple[object, ...]:
        # Refuse pickling so that a key cannot slip into a log, cache or queue by accident.
        raise TypeError("Pseudonymiser objects hold key material and cannot be pickled")

    def digest(self, message: bytes) -> bytes:
        """Full HMAC-SHA256 of ``message`` (used for the RFC 4231 test vectors)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def pseudonym(self, value: str) -> str:
        return self.digest(value.encode("utf-8")).hex()[:PSEUDONYM_HEX_CHARS]

    def derive(self, purpose: bytes) -> Pseudonymiser:
        """A pseudonymiser under a subkey for ``purpose``, unrelated to this one's output.

        The subkey is HKDF-Expand (RFC 5869) with this key as the pseudorandom key, ``purpose``
        as the info and one block of output: HMAC(key, purpose || 0x01). Publication uses it to
        re-key record keys (case numbers, ...) with a key of the project that differs from the
        one for person pseudonyms, so a record key can never coincide with a pseudonym.
        """
        return Pseudonymiser(
            self.digest(purpose + b"\x01"), label=f"{self._label}/{purpose.decode()}"
        )

    def pseudonymise(self, values: Sequence[str], *, workers: int = 1) -> list[str]:
        """Pseudonyms of ``values`` in order.

        ``workers`` > 1 spreads batches of 400k ids or more over forked processes. It pays off
        only on a vault host with idle cores: on the shared two-core test machine one process
        was faster (see benchmarks/README.md), hence the default of 1.
        """
        n = len(values)
        if workers <= 1 or n < _PARALLEL_MIN:
            return _hmac_chunk(self._inner, self._outer, values)
        # The workers are forked: they inherit the pads and the input, so neither key material
        # nor ids are pickled. The input is packed into one NUL-separated bytes object per
        # chunk, so the children touch a few large objects instead of millions of small ones
        # (whose reference counts would force copy-on-write of the parent's memory).
        size = -(-n // (workers * 4))
        blobs = ["\0".join(values[i : i + size]).encode() for i in range(0, n, size)]
        with _FORK_LOCK:  # one parallel batch at a time: the input travels in a global
            return self._parallel(values, blobs, size, workers)

    def _parallel(
        self, values: Sequence[str], blobs: list[bytes], size: int, workers: int
    ) -> list[str]:
        global _FORK_BLOBS, _FORK_COUNTS
        _FORK_BLOBS = blobs
        _FORK_COUNTS = [min(size, len(values) - i) for i in range(0, len(values), size)]
        k = PSEUDONYM_HEX_CHARS
        out: list[str] = []
        try:
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=get_context("fork"),
                initializer=_worker_init,
                initargs=(self._pads,),
            ) as pool:
                for index, joined in enumerate(pool.map(_worker_chunk, range(len(blobs)))):
                    if joined is None:  # an id contained NUL: do this chunk here, unpacked
                        chunk = values[index * size : (index + 1) * size]
                        out.extend(_hmac_chunk(self._inner, self._outer, chunk))
                    else:
                        out.extend(joined[j : j + k] for j in range(0, len(joined), k))
        finally:
            _FORK_BLOBS = _FORK_COUNTS = None
        return out


def pseudonymise_array(
    pseudonymiser: Pseudonymiser, values: pa.Array | pa.ChunkedArray, *, workers: int = 1
) -> pa.Array:
    """Pseudonyms of an Arrow string column; nulls stay null.

    Each distinct value is hashed once: a person with ten cases costs one HMAC, not ten.
    """
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    distinct = pc.unique(array.drop_null())
    mapped = pa.array(
        pseudonymiser.pseudonymise(distinct.to_pylist(), workers=workers), pa.string()
    )
    return mapped.take(pc.index_in(array, value_set=distinct))


def _hmac_chunk(inner: hashlib._Hash, outer: hashlib._Hash, values: Iterable[str]) -> list[str]:
    icopy, ocopy, k = inner.copy, outer.copy, PSEUDONYM_HEX_CHARS
    out = []
    append = out.append
    for value in values:
        i = icopy()
        i.update(value.encode())
        o = ocopy()
        o.update(i.digest())
        append(o.hexdigest()[:k])
    return out


_WORKER_STATE: tuple[hashlib._Hash, hashlib._Hash] | None = None
_FORK_BLOBS: list[bytes] | None = None
_FORK_COUNTS: list[int] | None = None
_FORK_LOCK = threading.Lock()


def _worker_init(pads: tuple[bytes, bytes]) -> None:
    global _WORKER_STATE
    _WORKER_STATE = (hashlib.sha256(pads[0]), hashlib.sha256(pads[1]))


def _worker_chunk(index: int) -> str | None:
    assert _WORKER_STATE is not None and _FORK_BLOBS is not None and _FORK_COUNTS is not None
    parts = _FORK_BLOBS[index].split(b"\0")
    if len(parts) != _FORK_COUNTS[index]:
        return None
    icopy, ocopy, k = _WORKER_STATE[0].copy, _WORKER_STATE[1].copy, PSEUDONYM_HEX_CHARS
    out = []
    append = out.append
    for value in parts:
        i = icopy()
        i.update(value)
        o = ocopy()
        o.update(i.digest())
        append(o.hexdigest()[:k])
    return "".join(out)


@runtime_checkable
class KeyStore(Protocol):
    """Where key material lives. Implement this to plug in a key service."""

    def linkage_key(self) -> bytes:
        """The vault-wide linkage key."""
        ...

    def project_key(self, project: str) -> bytes:
        """The project's key, created on first use; raises ProjectKeyDestroyedError after
        ``destroy_project_key``."""
        ...

    def destroy_project_key(self, project: str) -> None:
        """Make the project's key unrecoverable, so its pseudonyms become unlinkable."""
        ...


def linkage_pseudonymiser(store: KeyStore) -> Pseudonymiser:
    return Pseudonymiser(store.linkage_key(), label="linkage")


def project_pseudonymiser(store: KeyStore, project: str) -> Pseudonymiser:
    return Pseudonymiser(store.project_key(check_slug(project)), label=f"project:{project}")


def record_key_pseudonymiser(project: Pseudonymiser) -> Pseudonymiser:
    """The project's pseudonymiser for record keys (case numbers, report numbers, ...).

    A record key is re-keyed as HMAC(record subkey, the supplier's value), 32 hex digits like a
    person pseudonym: the same value gets the same key in every dataset of one project (so
    ``convictions.case_id`` still meets ``prosecution_cases.case_id``) and unrelated keys in
    two projects. Destroying the project key destroys this subkey with it.
    """
    return project.derive(RECORD_KEY_INFO)


class FileKeyStore:
    """Keys in files under one owner-only directory (default ``vault_dir/keys``).

    ``master.key`` holds 32 random bytes, created on first use with mode 0600; a key file that
    group or others can read is refused. ``projects/<slug>.salt`` holds each project's random
    salt; ``projects/<slug>.destroyed`` is the tombstone left when a project is closed.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.directory)!r})"

    @property
    def master_path(self) -> Path:
        return self.directory / "master.key"

    def _ensure_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)

    def _read_secret(self, path: Path) -> bytes:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyPermissionError(
                f"key file {path} has permissions {mode:04o}; group and others must have no "
                f"access: run `chmod 600 {path}` (and check who may have read it)"
            )
        data = path.read_bytes()
        if len(data) != KEY_BYTES:
            raise KeyStoreError(
                f"key file {path} is corrupt (expected {KEY_BYTES} bytes); restore it from the "
                "vault backup"
            )
        return data

    def _create_secret(self, path: Path) -> bytes:
        self._ensure_dir(path.parent)
        secret = secrets.token_bytes(KEY_BYTES)
        # O_EXCL: two processes creating the master key at once must not both win.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._read_secret(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        return secret

    def _master(self) -> bytes:
        return self._kept(self.master_path, "the vault's master key")

    def _kept(self, path: Path, what: str) -> bytes:
        """The secret at ``path``, made on first use only. A ``.made`` marker beside it
        records that it once existed: a lost key file is then refused rather than silently
        replaced, since a new key would change every pseudonym derived from it (the marker
        is also written for key files older than it, on their first read)."""
        made = path.with_name(path.name + ".made")
        if path.exists():
            secret = self._read_secret(path)
            if not made.exists():
                made.touch(mode=0o600)
            return secret
        if made.exists():
            raise KeyStoreError(
                f"{what} ({path}) is missing but existed before; a new one would change "
                "every pseudonym made with it: restore the file from the vault's key backup"
            )
        secret = self._create_secret(path)
        made.touch(mode=0o600)
        return secret

    def linkage_key(self) -> bytes:
        return hkdf_sha256(self._master(), salt=None, info=_LINKAGE_INFO)

    def _project_paths(self, project: str) -> tuple[Path, Path]:
        base = self.directory / "projects"
        return base / f"{check_slug(project)}.salt", base / f"{project}.destroyed"

    def project_key(self, project: str) -> bytes:
        salt_path, tombstone = self._project_paths(project)
        if tombstone.exists():
            raise ProjectKeyDestroyedError(
                f"the key of project {project!r} was destroyed when the project was closed; "
                "its data cannot be published again (open a new project instead)"
            )
        salt = self._kept(salt_path, f"the key salt of project {project!r}")
        return hkdf_sha256(self._master(), salt=salt, info=_PROJECT_INFO + project.encode())

    def has_project_key(self, project: str) -> bool:
        return self._project_paths(project)[0].exists()

    def destroy_project_key(self, project: str) -> None:
        salt_path, tombstone = self._project_paths(project)
        self._ensure_dir(salt_path.parent)
        tombstone.touch(mode=0o600)
        if salt_path.exists():
            # Overwrite before unlinking so the salt does not linger in the file's old blocks
            # (best effort: copy-on-write filesystems and backups are outside our reach).
            with open(salt_path, "r+b") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
            salt_path.unlink()
