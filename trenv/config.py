"""Validated settings for every trenv component.

Sources, strongest first: constructor arguments, ``TRENV_*`` environment variables, a TOML
file (``TRENV_CONFIG``, else ``$TRENV_HOME/trenv.toml`` when it exists), then defaults.
Paths left unset derive from ``home`` so one variable moves a whole installation.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_HOME = Path(".trenv")


def _config_file() -> Path | None:
    explicit = os.environ.get("TRENV_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(
                f"TRENV_CONFIG names {path}, which does not exist; create it or unset TRENV_CONFIG"
            )
        return path
    home = Path(os.environ.get("TRENV_HOME", DEFAULT_HOME))
    candidate = home / "trenv.toml"
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    """Everything an operator can configure. Field names map to ``TRENV_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TRENV_", extra="forbid")

    home: Path = Field(DEFAULT_HOME, description="Root of the installation's state.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default SQLite at $TRENV_HOME/trenv.db."
    )
    vault_dir: Path | None = Field(
        None, description="Identifiable data custody; default home/vault."
    )
    projects_dir: Path | None = Field(
        None, description="Per-project published read-only views; default home/projects."
    )
    workspaces_dir: Path | None = Field(
        None, description="Per-user, per-project workspaces; default home/workspaces."
    )
    airlock_dir: Path | None = Field(
        None,
        description="The airlock's content-addressed store of frozen files and release "
        "bundles; default home/airlock.",
    )
    airlock_max_file_mb: float = Field(20.0, gt=0, description="Largest file one may export.")
    airlock_max_files: int = Field(50, ge=1, description="Most files in one export request.")
    retention_dir: Path | None = Field(
        None,
        description="Where a closed project's workspaces are archived "
        "(<project>/<timestamp>.tar.gz, owner-only); default home/retention.",
    )
    audit_anchor: Path | None = Field(
        None,
        description="File holding the newest audit hash outside the database, so that deleting "
        "the tail of the log is detected; default home/audit-anchor.json.",
    )
    default_policy_profile: str = Field("trenv-default", min_length=1)

    # The hub and the containers it spawns.
    hub_public_ip: str = Field("127.0.0.1", description="Where the proxy listens.")
    hub_public_port: int = Field(8000, ge=1, le=65535)
    hub_api_port: int = Field(8081, ge=1, le=65535, description="Hub API, on the bridge gateway.")
    web_api_port: int = Field(8090, ge=1, le=65535, description="trenv web service port.")
    network_name: str = Field("trenv-internal", min_length=1)
    bridge_name: str = Field(
        "br-trenv", pattern=r"^[A-Za-z0-9_.-]{1,15}$", description="Host interface of the network."
    )
    notebook_image: str = Field("trenv/notebook", description="Repository of the built image.")
    container_mem_limit: str = Field("4G", description="Memory limit per container.")
    container_cpu_limit: float = Field(2.0, gt=0)
    container_pids_limit: int = Field(512, ge=32)
    container_tmp_size: str = Field("1g", description="tmpfs size for /tmp and $HOME.")
    container_user: str = Field(
        "trenv-notebook",
        pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
        description="The dedicated host system account containers run as (created when "
        "first needed; trenv.hub.account).",
    )
    proxy_command: str = Field("configurable-http-proxy", description="JupyterHub's proxy.")
    proxy_api_port: int = Field(8001, ge=1, le=65535, description="The proxy's REST API (local).")

    # Login: "local" (registry passwords + TOTP) or "oidc" (an institutional identity provider).
    auth_backend: str = Field("local", pattern="^(local|oidc)$")
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_authorize_url: str = ""
    oidc_token_url: str = ""
    oidc_userdata_url: str = ""
    oidc_callback_url: str = ""
    oidc_username_claim: str = "preferred_username"

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "database_url must be a sqlite:/// or postgresql+psycopg:// URL; "
                f"got {value.split(':', 1)[0]!r}"
            )
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        home = self.home
        if not self.database_url:
            self.database_url = f"sqlite:///{(home / 'trenv.db').absolute()}"
        self.vault_dir = self.vault_dir or home / "vault"
        self.projects_dir = self.projects_dir or home / "projects"
        self.workspaces_dir = self.workspaces_dir or home / "workspaces"
        self.airlock_dir = self.airlock_dir or home / "airlock"
        self.retention_dir = self.retention_dir or home / "retention"
        self.audit_anchor = self.audit_anchor or home / "audit-anchor.json"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def as_environment(self) -> dict[str, str]:
        """These settings as TRENV_* variables, for the processes trenv starts."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is not None:
                env[f"TRENV_{name.upper()}"] = str(value)
        return env

    def ensure_dirs(self) -> None:
        """Create the state directories with owner-only permissions (and repair them).

        ``home`` itself is 0700, so no other local account can reach the database, the
        published views or the workspaces inside it: the containers get the views and their
        workspace as bind mounts, which the Docker engine resolves as root, so they need no
        way through the directories above them.
        """
        for path in (
            self.home,
            self.vault_dir,
            self.projects_dir,
            self.workspaces_dir,
            self.airlock_dir,
            self.retention_dir,
        ):
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
        assert self.vault_dir is not None and self.airlock_dir is not None
        assert self.retention_dir is not None
        for path in (
            self.home,
            self.vault_dir,
            self.projects_dir,
            self.workspaces_dir,
            self.airlock_dir,
            self.retention_dir,  # archived workspaces hold derived confidential data
        ):
            assert path is not None
            path.chmod(0o700)


@lru_cache(maxsize=1)
def get_settings(**overrides: Any) -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after env changes)."""
    return Settings(**overrides)
