"""The installation's state on the host: owner-only modes that `trenv init` and upgrades
repair, and secrets in the database encrypted with a key kept outside it (issue 15).

The attacks run as an unprivileged local account (``nobody``, through ``setpriv``), as the
outsider who read every TOTP secret on the demo machine did; `make test` runs as root.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from tests.support.world import OPERATOR
from trenv.config import Settings
from trenv.registry import credentials, users
from trenv.store import secrets, transaction, upgrade

PASSWORD = "a long enough passphrase"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    assert os.geteuid() == 0, "run as `make test` does (root): the test becomes `nobody`"
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def enrol(settings: Settings, name: str = "rita") -> str:
    with transaction(settings) as session:
        users.add_user(session, actor=OPERATOR, username=name)
        credentials.set_password(session, actor=OPERATOR, username=name, password=PASSWORD)
        return credentials.enrol_totp(session, actor=OPERATOR, username=name)


def logs_in(settings: Settings, secret: str, name: str = "rita") -> bool:
    with transaction(settings) as session:
        code = pyotp.TOTP(secret).now()
        result = credentials.verify_login(session, username=name, password=PASSWORD, otp=code)
        # a code is accepted once: forget the step so the next check may use it again
        session.execute(text("UPDATE credentials SET totp_last_step = NULL"))
        return result.ok


def stored_secret(settings: Settings) -> str:
    with transaction(settings) as session:
        value = session.execute(text("SELECT totp_secret FROM credentials")).scalar_one()
    return str(value)


@pytest.fixture
def sqlite_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An installation whose database lives in its home, as `make demo`'s does."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRENV_HOME", str(home))
    monkeypatch.delenv("TRENV_DATABASE_URL", raising=False)
    monkeypatch.delenv(secrets.ENV_KEYS, raising=False)
    settings = Settings(home=home)
    settings.ensure_dirs()
    upgrade(settings)
    return settings


# --- modes ------------------------------------------------------------------------------------


def test_state_is_owner_only(sqlite_home: Settings) -> None:
    s = sqlite_home
    enrol(s)  # a write: SQLite makes its -wal and -shm files now
    for path in (s.home, s.vault_dir, s.projects_dir, s.workspaces_dir, s.airlock_dir):
        assert path is not None and mode(path) == 0o700, path
    database = s.home / "trenv.db"
    sides = [database.with_name("trenv.db" + x) for x in ("-wal", "-shm")]
    for path in [database, *[p for p in sides if p.exists()]]:
        assert mode(path) == 0o600, path
    assert mode(secrets.key_file(s)) == 0o400 and mode(secrets.key_file(s).parent) == 0o700


def test_another_local_account_reads_nothing(sqlite_home: Settings) -> None:
    s = sqlite_home
    enrol(s)
    assert s.projects_dir is not None
    view = s.projects_dir / "reoffending" / "data" / "convictions.parquet"
    view.parent.mkdir(parents=True)
    view.write_bytes(b"PAR1 the published view PAR1")
    view.chmod(0o444)  # as the vault publishes it
    view.parent.chmod(0o555)
    assert as_nobody("cat", "/etc/hostname").returncode == 0  # the probe itself works
    for target in (s.home / "trenv.db", view, secrets.key_file(s)):
        refused = as_nobody("cat", str(target))
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, target


def test_an_upgrade_repairs_modes_an_older_installation_left(sqlite_home: Settings) -> None:
    s = sqlite_home
    enrol(s)
    database = s.home / "trenv.db"
    s.home.chmod(0o755)
    assert s.projects_dir is not None
    s.projects_dir.chmod(0o755)
    database.chmod(0o644)
    s.ensure_dirs()  # what `trenv init` runs, then the upgrade
    upgrade(s)
    assert mode(s.home) == 0o700 and mode(s.projects_dir) == 0o700
    assert mode(database) == 0o600


# --- secrets at rest ---------------------------------------------------------------------------


def test_the_totp_secret_is_not_in_the_database(sqlite_home: Settings) -> None:
    secret = enrol(sqlite_home)
    stored = stored_secret(sqlite_home)
    assert stored.startswith(secrets.PREFIX) and secret not in stored
    assert secret.encode() not in (sqlite_home.home / "trenv.db").read_bytes()
    assert logs_in(sqlite_home, secret)


def test_an_upgrade_encrypts_secrets_stored_in_clear(sqlite_home: Settings) -> None:
    secret = enrol(sqlite_home)
    with transaction(sqlite_home) as session:  # as an installation before encryption had it
        session.execute(text("UPDATE credentials SET totp_secret = :s"), {"s": secret})
    upgrade(sqlite_home)
    assert stored_secret(sqlite_home).startswith(secrets.PREFIX)
    assert logs_in(sqlite_home, secret)


def test_rotation_re_encrypts_and_retires_the_old_key(sqlite_home: Settings) -> None:
    secret = enrol(sqlite_home)
    path = secrets.key_file(sqlite_home)
    old_key = path.read_text().strip()
    with transaction(sqlite_home) as session:
        assert secrets.rotate(session, sqlite_home) == 1
    secrets.drop_old_keys(sqlite_home)
    keys = path.read_text().split()
    assert len(keys) == 1 and keys[0] != old_key and mode(path) == 0o400
    token = stored_secret(sqlite_home).removeprefix(secrets.PREFIX).encode()
    with pytest.raises(InvalidToken):
        Fernet(old_key.encode()).decrypt(token)
    assert logs_in(sqlite_home, secret)


def test_keys_from_the_environment_need_no_file(
    sqlite_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = enrol(sqlite_home)
    monkeypatch.setenv(secrets.ENV_KEYS, Fernet.generate_key().decode())
    with pytest.raises(secrets.SecretKeyError, match="does not decrypt"):
        logs_in(sqlite_home, secret)  # a different key: named, not a crash
    file_key = secrets.key_file(sqlite_home).read_text().strip()
    monkeypatch.setenv(secrets.ENV_KEYS, f"{Fernet.generate_key().decode()},{file_key}")
    assert logs_in(sqlite_home, secret)  # any listed key decrypts
    newest = Fernet.generate_key().decode()  # rotation: the operator puts a new key first
    monkeypatch.setenv(secrets.ENV_KEYS, f"{newest},{file_key}")
    with transaction(sqlite_home) as session:
        assert secrets.rotate(session, sqlite_home) == 1
    secrets.drop_old_keys(sqlite_home)
    assert secrets.key_file(sqlite_home).read_text().strip() == file_key  # not touched
    monkeypatch.setenv(secrets.ENV_KEYS, newest)  # ... and removes the old one
    assert logs_in(sqlite_home, secret)


def test_a_key_file_others_may_read_is_refused(sqlite_home: Settings) -> None:
    secret = enrol(sqlite_home)
    secrets.key_file(sqlite_home).chmod(0o644)
    with pytest.raises(secrets.SecretKeyError, match="chmod 400"):
        logs_in(sqlite_home, secret)


def test_a_lost_key_file_is_named(sqlite_home: Settings) -> None:
    enrol(sqlite_home)
    secrets.key_file(sqlite_home).unlink()
    with pytest.raises(secrets.SecretKeyError, match="is missing"):
        secrets.cipher(sqlite_home)


def test_the_cli_rotates_and_logins_still_work(sqlite_home: Settings) -> None:
    from typer.testing import CliRunner

    from trenv.cli import app

    secret = enrol(sqlite_home)
    before = secrets.key_file(sqlite_home).read_text()
    result = CliRunner().invoke(app, ["--as", OPERATOR, "secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "1 secrets re-encrypted" in result.output
    assert secrets.key_file(sqlite_home).read_text() != before
    assert logs_in(sqlite_home, secret)
