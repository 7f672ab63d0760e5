from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from trenv.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRENV_HOME", "TRENV_DATABASE_URL", "TRENV_CONFIG", "TRENV_VAULT_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_paths_derive_from_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'trenv.db'}"
    assert settings.vault_dir == tmp_path / "vault"
    assert settings.projects_dir == tmp_path / "projects"
    assert settings.audit_anchor == tmp_path / "audit-anchor.json"


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENV_HOME", str(tmp_path))
    monkeypatch.setenv("TRENV_VAULT_DIR", str(tmp_path / "elsewhere"))
    settings = Settings()
    assert settings.home == tmp_path
    assert settings.vault_dir == tmp_path / "elsewhere"


def test_toml_file_in_home_is_read_and_env_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "trenv.toml").write_text(
        'default_policy_profile = "sacro"\ndatabase_url = "postgresql+psycopg://db/trenv"\n'
    )
    monkeypatch.setenv("TRENV_HOME", str(tmp_path))
    assert Settings().default_policy_profile == "sacro"
    assert Settings().database_url == "postgresql+psycopg://db/trenv"
    monkeypatch.setenv("TRENV_DEFAULT_POLICY_PROFILE", "cbs")
    assert Settings().default_policy_profile == "cbs"


def test_missing_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENV_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        Settings()


def test_unknown_database_backend_is_refused() -> None:
    with pytest.raises(ValidationError, match="sqlite:/// or postgresql"):
        Settings(database_url="mysql://x/y")


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="extra"):
        Settings(home=tmp_path, databse_url="sqlite://")  # type: ignore[call-arg]


def test_ensure_dirs_keeps_the_vault_private(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h")
    settings.ensure_dirs()
    assert settings.vault_dir is not None
    assert settings.vault_dir.stat().st_mode & 0o777 == 0o700
