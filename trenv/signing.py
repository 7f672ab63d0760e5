"""The installation's signing key: Ed25519, kept like the vault's keys.

A release's disclosure record and an exported audit anchor are signed with it, so that a
recipient can check where a bundle came from without trusting the zip it arrived in, and so
that copies of either kept outside the TRE witness the audit chain's head.

Files, in the installation's owner-only key directory (``home/keys``, 0700; the key of the
database's secrets, :mod:`trenv.store.secrets`, lives there too):

* ``signing.key``: the 32-byte Ed25519 private key, mode 0400, created by ``trenv init`` (or
  on the first release, whichever comes first, as the vault's keys are made on first use);
  refused when group or others may read it.
* ``signing.pub.json``: the public identity (installation name, public key in base64 of its
  32 raw bytes, fingerprint ``sha256:<hex of the raw key>``), published on the trenv pages.
* ``signing.retired.json`` (0444, from the first ``trenv signing rotate`` on): the public
  identities of the keys this installation signed with before, each with ``retired_at``. Their
  private keys are destroyed; the installation still accepts what they signed (bundles and
  audit anchors made before the rotation), naming them as retired.

Only the standard library and ``cryptography`` are imported: ``trenv airlock verify`` loads
this module and must start fast.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from trenv.layout import keys_dir

if TYPE_CHECKING:
    from trenv.config import Settings

ALGORITHM = "Ed25519"
KEY_FILE = "signing.key"
IDENTITY_FILE = "signing.pub.json"
RETIRED_FILE = "signing.retired.json"
KEY_MODE = 0o400
_RAW_BYTES = 32
_FINGERPRINT_PREFIX = "sha256:"
_MAX_NAME = 100


class SigningKeyError(Exception):
    """The signing key is missing, unreadable, exposed or inconsistent (never holds key bytes)."""


def fingerprint_of(public_raw: bytes) -> str:
    """``sha256:`` and the hex sha256 of the 32 raw public-key bytes."""
    return _FINGERPRINT_PREFIX + hashlib.sha256(public_raw).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not base64 ({error})") from None


def check_installation_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        raise ValueError(
            f"an installation name is 1 to {_MAX_NAME} printable characters; got {name!r}"
        )
    return name


@dataclass(frozen=True)
class PublicIdentity:
    """Who signs: the installation's name and its Ed25519 public key."""

    installation: str
    public_key: str  # base64 of the 32 raw bytes

    def __post_init__(self) -> None:
        raw = _unb64(self.public_key)
        if len(raw) != _RAW_BYTES:
            raise ValueError(f"an {ALGORITHM} public key is {_RAW_BYTES} bytes, not {len(raw)}")

    @property
    def raw(self) -> bytes:
        return _unb64(self.public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.raw)

    def describe(self) -> str:
        return f"installation {self.installation!r} (key {self.fingerprint})"

    def as_record(self) -> dict[str, str]:
        return {
            "installation": self.installation,
            "algorithm": ALGORITHM,
            "public_key": self.public_key,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_record(cls, data: Any) -> PublicIdentity:
        """Parse :meth:`as_record`'s shape; the fingerprint, when given, must fit the key."""
        if not isinstance(data, dict):
            raise ValueError("the signer is not an object")
        if data.get("algorithm", ALGORITHM) != ALGORITHM:
            raise ValueError(f"unknown signature algorithm {data.get('algorithm')!r}")
        identity = cls(str(data.get("installation") or "?"), str(data.get("public_key") or ""))
        stated = data.get("fingerprint")
        if stated is not None and stated != identity.fingerprint:
            raise ValueError(
                f"the stated fingerprint {stated} is not that of the public key "
                f"({identity.fingerprint})"
            )
        return identity

    def verifies(self, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


class SigningKey:
    """The private key in memory; ``repr`` names the installation only, pickling is refused."""

    def __init__(self, private: Ed25519PrivateKey, installation: str) -> None:
        self._private = private
        raw = private.public_key().public_bytes_raw()
        self.identity = PublicIdentity(check_installation_name(installation), _b64(raw))

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey({self.identity.describe()})"

    def __reduce__(self) -> Any:
        raise TypeError("SigningKey objects hold key material and cannot be pickled")


def key_dir(settings: Settings) -> Path:
    """The installation's key directory (``home/keys``)."""
    return keys_dir(settings)


def key_path(settings: Settings) -> Path:
    return key_dir(settings) / KEY_FILE


def identity_path(settings: Settings) -> Path:
    return key_dir(settings) / IDENTITY_FILE


def retired_path(settings: Settings) -> Path:
    return key_dir(settings) / RETIRED_FILE


def default_installation_name() -> str:
    return socket.getfqdn() or "trenv"


def _read_private(path: Path) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningKeyError(
            f"signing key {path} has permissions {mode:04o}; group and others must have no "
            f"access: run `chmod 400 {path}` (and check who may have read it)"
        )
    data = path.read_bytes()
    if len(data) != _RAW_BYTES:
        raise SigningKeyError(
            f"signing key {path} is corrupt (expected {_RAW_BYTES} bytes); restore it from "
            "the key backup"
        )
    return Ed25519PrivateKey.from_private_bytes(data)


def _write_identity(path: Path, identity: PublicIdentity) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-pub-")
    with os.fdopen(fd, "w") as handle:
        json.dump(identity.as_record(), handle, indent=2)
        handle.write("\n")
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)


def read_identity(settings: Settings) -> PublicIdentity | None:
    """The published identity (never reads the private key); None before the key exists."""
    try:
        data = json.loads(identity_path(settings).read_text())
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise SigningKeyError(f"{identity_path(settings)} is not valid JSON ({error})") from None
    try:
        return PublicIdentity.from_record(data)
    except ValueError as error:
        raise SigningKeyError(f"{identity_path(settings)}: {error}") from None


def load_signing_key(settings: Settings) -> SigningKey:
    """The installation's key; SigningKeyError when it does not exist (run ``trenv init``)."""
    path = key_path(settings)
    if not path.exists():
        raise SigningKeyError(f"no signing key at {path}: run `trenv init` to create it")
    private = _read_private(path)
    published = read_identity(settings)
    if published is None:  # a crash between the two writes: publish it again
        key = SigningKey(private, default_installation_name())
        _write_identity(identity_path(settings), key.identity)
        return key
    key = SigningKey(private, published.installation)
    if key.identity != published and published.fingerprint in retired_keys(settings):
        # A rotation stopped between the new key and its publication: publish it now.
        _write_identity(identity_path(settings), key.identity)
        return key
    if key.identity != published:
        raise SigningKeyError(
            f"{identity_path(settings)} names key {published.fingerprint}, but {path} is key "
            f"{key.identity.fingerprint}: restore both files from the same backup"
        )
    return key


def ensure_signing_key(
    settings: Settings, installation: str | None = None
) -> tuple[SigningKey, bool]:
    """Load the key, creating it (mode 0400, in a 0700 directory) on first use.
    Returns the key and whether it was created now. ``installation`` names a new key only."""
    path = key_path(settings)
    if path.exists():
        return load_signing_key(settings), False
    name = check_installation_name(installation or default_installation_name())
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    private = Ed25519PrivateKey.generate()
    # Written whole under a temporary name, then linked into place: two processes creating
    # the key at once must not both win, and neither may read a half-written key.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".signing-key-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(private.private_bytes_raw())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, KEY_MODE)
        os.link(tmp, path)
    except FileExistsError:
        return load_signing_key(settings), False
    finally:
        os.unlink(tmp)
    key = SigningKey(private, name)
    _write_identity(identity_path(settings), key.identity)
    return key, True


@dataclass(frozen=True)
class RetiredKey:
    """A key this installation signed with before a rotation; its private key is destroyed."""

    identity: PublicIdentity
    retired_at: str  # ISO 8601, UTC

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    def describe(self) -> str:
        return f"a retired key of this installation ({self.fingerprint}, retired {self.retired_at})"

    def as_record(self) -> dict[str, str]:
        return self.identity.as_record() | {"retired_at": self.retired_at}


def retired_keys(settings: Settings) -> dict[str, RetiredKey]:
    """This installation's retired keys by fingerprint (empty before the first rotation)."""
    path = retired_path(settings)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise SigningKeyError(f"{path} is not valid JSON ({error})") from None
    found: dict[str, RetiredKey] = {}
    try:
        for entry in data["retired"]:
            retired = RetiredKey(PublicIdentity.from_record(entry), str(entry["retired_at"]))
            found[retired.fingerprint] = retired
    except (ValueError, TypeError, KeyError) as error:
        raise SigningKeyError(f"{path}: not a list of retired keys ({error!r})") from None
    return found


def installation_trust(settings: Settings) -> tuple[PublicIdentity | None, dict[str, RetiredKey]]:
    """What this installation trusts: its current identity (None before the key exists) and
    its retired keys. SigningKeyError when either file is unreadable."""
    return read_identity(settings), retired_keys(settings)


def _write_retired(path: Path, retired: list[RetiredKey]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-retired-")
    with os.fdopen(fd, "w") as handle:
        json.dump({"retired": [r.as_record() for r in retired]}, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)


def _destroy(path: Path) -> None:
    """Overwrite a private key file with random bytes, then unlink it. (On copy-on-write or
    journalling storage and in backups old blocks may survive: see docs/operations.md.)"""
    os.chmod(path, 0o600)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(os.urandom(max(size, _RAW_BYTES)))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def rotate_signing_key(settings: Settings) -> tuple[RetiredKey, SigningKey]:
    """Replace the signing key: a new key (same installation name) signs from now on, the
    old public key is kept in ``signing.retired.json`` and its private key is overwritten and
    unlinked. Returns the retired key and the new one. One rotation at a time (a lock on the
    key directory); SigningKeyError when there is no key to rotate or it is unusable."""
    directory = key_dir(settings)
    if not key_path(settings).exists():
        raise SigningKeyError(
            f"no signing key at {key_path(settings)} to rotate: run `trenv init` to create it"
        )
    lock = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = load_signing_key(settings)
        retired = RetiredKey(old.identity, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        kept = [
            r for r in retired_keys(settings).values() if r.fingerprint != old.identity.fingerprint
        ]
        # 1. The old public key joins the retired ones first: from here on, whichever key
        #    the files name, what either signed is accepted.
        _write_retired(retired_path(settings), [*kept, retired])
        private = Ed25519PrivateKey.generate()
        new = SigningKey(private, old.identity.installation)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".signing-key-")
        aside = directory / f".signing-key-old-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(private.private_bytes_raw())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, KEY_MODE)
            # 2. Keep a second name for the old key's file, so that it can be overwritten
            #    after 3. swaps the new key in atomically.
            os.link(key_path(settings), aside)
            os.replace(tmp, key_path(settings))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            aside.unlink(missing_ok=True)
            raise
        # 4. Publish the new key (a crash before this is repaired by load_signing_key).
        _write_identity(identity_path(settings), new.identity)
        # 5. Destroy the old private key.
        _destroy(aside)
        return retired, new
    finally:
        os.close(lock)  # releases the lock


def trusted_fingerprint(value: str) -> str:
    """A fingerprint from what a recipient was given: ``sha256:<hex>``, a base64 public key,
    the ``signing.pub.json`` file, or a file holding one of those."""
    text = value.strip()
    candidate = Path(text)
    if len(text) < 4096 and candidate.is_file():
        text = candidate.read_text().strip()
    if text.startswith("{"):
        try:
            return PublicIdentity.from_record(json.loads(text)).fingerprint
        except ValueError as error:
            raise ValueError(f"{value}: not a trenv public key file ({error})") from None
    if text.startswith(_FINGERPRINT_PREFIX):
        digest = text.removeprefix(_FINGERPRINT_PREFIX).lower()
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return _FINGERPRINT_PREFIX + digest
        raise ValueError(f"{value}: a fingerprint is sha256: and 64 hex digits")
    try:
        return PublicIdentity("?", text).fingerprint
    except ValueError as error:
        raise ValueError(
            f"{value}: neither a fingerprint (sha256:...), a base64 {ALGORITHM} public key "
            f"nor a file holding one ({error})"
        ) from None
