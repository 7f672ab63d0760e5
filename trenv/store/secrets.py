"""Secrets kept in the database are encrypted with a key kept outside it.

A copy of ``trenv.db`` (a backup, a stray ``-wal`` file, a PostgreSQL dump) must not hand
out the second factor of every person. So every secret column holds ``fernet:<token>``:
Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``), under keys that live

- in ``TRENV_SECRET_KEYS`` (comma-separated, newest first), for operators who keep secrets
  in their service manager or a secret store; else
- in the key file ``home/keys/db-secrets.key`` (one key per line, newest first), created by
  ``trenv init`` with mode 0400 in a 0700 directory. A key file that group or others may
  read is refused.

``MultiFernet`` decrypts with any listed key and encrypts with the first, which is what
rotation needs: :func:`rotate` puts a new key first, re-encrypts every secret, and then
drops the old keys (docs/operations.md, "Secrets"). Fernet is used rather than a
hand-made AES construction because it is the maintained, authenticated recipe of the
library the project already depends on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.config import Settings
from trenv.errors import TrenvError
from trenv.layout import db_secrets_key_file

PREFIX = "fernet:"
ENV_KEYS = "TRENV_SECRET_KEYS"
KEY_FILE_MODE = 0o400


class SecretKeyError(TrenvError):
    status_code = 500


def key_file(settings: Settings) -> Path:
    return db_secrets_key_file(settings)


def _keys_from_file(path: Path) -> list[bytes]:
    if not path.exists():
        raise SecretKeyError(
            f"no key for the database's secrets: {path} is missing.",
            f"Run `trenv init` to create it, or set {ENV_KEYS}; restore it from the backup if "
            "the database already holds secrets.",
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyError(
            f"the key file {path} has permissions {mode:04o}: group and others must have none.",
            f"Run `chmod 400 {path}` and check who may have read it.",
        )
    return [line.strip().encode() for line in path.read_text().splitlines() if line.strip()]


def _keys(settings: Settings) -> list[bytes]:
    env = os.environ.get(ENV_KEYS, "").strip()
    keys = [k.strip().encode() for k in env.split(",") if k.strip()] if env else []
    return keys or _keys_from_file(key_file(settings))


def cipher(settings: Settings) -> MultiFernet:
    keys = _keys(settings)
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        raise SecretKeyError(
            "a key for the database's secrets is not a Fernet key (32 url-safe base64 bytes).",
            "Restore the key file from the backup, or generate keys with `trenv secrets rotate`.",
        ) from None


def seal(settings: Settings, value: str) -> str:
    """``value`` encrypted for a secret column."""
    return PREFIX + cipher(settings).encrypt(value.encode()).decode()


def unseal(settings: Settings, stored: str) -> str:
    """The plain value of a secret column."""
    if not stored.startswith(PREFIX):
        raise SecretKeyError(
            "a secret in the database is not encrypted.",
            "Run `trenv init` (or `trenv db upgrade`), which encrypts existing secrets.",
        )
    try:
        return cipher(settings).decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise SecretKeyError(
            "a secret in the database does not decrypt with any of the configured keys.",
            f"Check {ENV_KEYS} or {key_file(settings)}: a key was lost or replaced before the "
            "secrets were re-encrypted.",
        ) from None


def ensure_key_file(settings: Settings) -> Path | None:
    """Create the key file (0400, in a 0700 directory) unless keys come from the environment
    or it exists; repair the directory's mode. The file, or None when the environment rules."""
    if os.environ.get(ENV_KEYS, "").strip():
        return None
    path = key_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    if not path.exists():
        _write_keys(path, [Fernet.generate_key()])
    return path


def _write_keys(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically, never readable by others, not even for a moment."""
    tmp = path.with_name(path.name + ".new")
    if tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(k.decode() + "\n" for k in keys))
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, KEY_FILE_MODE)
    os.replace(tmp, path)


def _sealed_columns() -> Iterator[tuple[type, str]]:
    """Every (model, attribute) that holds a secret."""
    from trenv.store.models import Credential

    yield Credential, "totp_secret"


def encrypt_plain_secrets(session: Session, settings: Settings) -> int:
    """Encrypt secrets stored before encryption at rest (an upgrade). How many."""
    done = 0
    for model, attribute in _sealed_columns():
        for row in session.scalars(select(model)):
            value = getattr(row, attribute)
            if value and not value.startswith(PREFIX):
                setattr(row, attribute, seal(settings, value))
                done += 1
    return done


def rotate(session: Session, settings: Settings) -> int:
    """Re-encrypt every secret under a new key (in the caller's transaction).

    With the key file, the new key is made here and put first. With ``TRENV_SECRET_KEYS`` the
    operator has put the new key first in the variable already, and this re-encrypts under
    it. Returns how many secrets were re-encrypted. The caller commits, then calls
    :func:`drop_old_keys`; until then the old keys still decrypt, so a crash in between
    loses nothing.
    """
    if not os.environ.get(ENV_KEYS, "").strip():
        path = key_file(settings)
        _write_keys(path, [Fernet.generate_key(), *_keys_from_file(path)])
    fernet = cipher(settings)
    done = 0
    for model, attribute in _sealed_columns():
        for row in session.scalars(select(model)):
            value = getattr(row, attribute)
            if value:
                plain = unseal(settings, value) if value.startswith(PREFIX) else value
                token = fernet.encrypt(plain.encode()).decode()
                setattr(row, attribute, PREFIX + token)
                done += 1
    return done


def drop_old_keys(settings: Settings) -> None:
    """Keep only the newest key in the key file (after :func:`rotate`'s transaction
    committed). Keys in ``TRENV_SECRET_KEYS`` are the operator's to remove."""
    if os.environ.get(ENV_KEYS, "").strip():
        return
    path = key_file(settings)
    keys = _keys_from_file(path)
    _write_keys(path, keys[:1])
