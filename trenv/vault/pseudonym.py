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
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trenv.identifiers import PSEUDONYM_HEX_CHARS

KEY_BYTES = 32
_BLOCK = 64  # SHA-256 block size, the HMAC pad length
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LINKAGE_INFO = b"trenv/linkage-pseudonym/v1"
_PROJECT_INFO = b"trenv/project-pseudonym/v1:"
RECORD_KEY_INFO = b"trenv/record-key/v1"


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

    The key's inner and outer padded hash states (RFC 2104) are computed once; each
    identifier then costs two ``copy()`` calls and two short hash updates. This is the
    standard library's ``hmac`` done by hand, on purpose: ``hmac.new(key,
    digestmod="sha256")`` created once and ``.copy()``-ed per value gives the same bytes but
    took 1.5-2.1x as long here (Python 3.11, OpenSSL 3.0, whose HMAC context copy is
    costly), a plain ``hmac.new`` per value 2.2-2.5x. ``test_pseudonym.py`` holds the output
    to ``hmac.new`` and to the RFC 4231 vectors.
    The key is kept only as its hash states; ``repr`` shows a label and pickling is refused.
    """

    __slots__ = ("_inner", "_label", "_outer")

    def __init__(self, key: bytes, *, label: str = "pseudonymiser") -> None:
        if len(key) < 16:
            raise ValueError("a pseudonym key must be at least 16 bytes")
        block_key = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        block_key = block_key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block_key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block_key))
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

    def pseudonymise(self, values: Iterable[str]) -> list[str]:
        """Pseudonyms of ``values`` in order."""
        icopy, ocopy, k = self._inner.copy, self._outer.copy, PSEUDONYM_HEX_CHARS
        out = []
        append = out.append
        for value in values:
            inner = icopy()
            inner.update(value.encode())
            outer = ocopy()
            outer.update(inner.digest())
            append(outer.hexdigest()[:k])
        return out


def pseudonymise_array(
    pseudonymiser: Pseudonymiser, values: pa.Array | pa.ChunkedArray
) -> pa.Array:
    """Pseudonyms of an Arrow string column; nulls stay null.

    Each distinct value is hashed once: a person with ten cases costs one HMAC, not ten.
    """
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    distinct = pc.unique(array.drop_null())
    mapped = pa.array(pseudonymiser.pseudonymise(distinct.to_pylist()), pa.string())
    return mapped.take(pc.index_in(array, value_set=distinct))


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
