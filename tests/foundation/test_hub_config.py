"""The hub's configuration as trenv sets it, local login and OpenID Connect (no hub started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config

from trenv.config import Settings
from trenv.errors import Invalid
from trenv.hub import roles
from trenv.hub.hubconfig import OPERATOR_TOKEN_ENV, configure


def configured(settings: Settings) -> Config:
    c = Config()
    configure(c, settings, gateway="172.31.255.1")
    return c


def test_local_login_with_otp_and_registry_roles(tmp_path: Path) -> None:
    from trenv.hub.auth import TrenvAuthenticator

    c = configured(Settings(home=tmp_path))
    assert c.JupyterHub.authenticator_class == "trenv.hub.auth.TrenvAuthenticator"
    auth = TrenvAuthenticator(config=c)
    assert auth.request_otp and auth.manage_roles and auth.reset_managed_roles_on_startup


def test_hub_listens_on_the_bridge_gateway_and_containers_connect_there(tmp_path: Path) -> None:
    c = configured(Settings(home=tmp_path, hub_api_port=9081, hub_public_port=9000))
    assert c.JupyterHub.hub_bind_url == "http://172.31.255.1:9081"
    assert c.TrenvSpawner.hub_connect_url == "http://172.31.255.1:9081"
    assert c.JupyterHub.bind_url == "http://127.0.0.1:9000"
    assert c.TrenvSpawner.network_name == "trenv-internal"


def test_custom_scopes_and_roles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OPERATOR_TOKEN_ENV, "t" * 64)
    c = configured(Settings(home=tmp_path))
    assert set(c.JupyterHub.custom_scopes) == {
        "custom:trenv:review",
        "custom:trenv:steward",
        "custom:trenv:admin",
    }
    operator = c.JupyterHub.load_roles[0]
    assert operator["services"] == ["trenv-operator"] and "tokens" in operator["scopes"]
    # Nobody is handed blanket access to researchers' servers.
    definitions = roles.role_definitions({"trenv-checker": ["chris"]})
    every_scope = [s for r in definitions for s in r["scopes"]] + operator["scopes"]
    assert "access:servers" not in every_scope and "admin" not in every_scope
    checker = next(r for r in definitions if r["name"] == "trenv-checker")
    assert checker["users"] == ["chris"] and "custom:trenv:review" in checker["scopes"]


def test_oidc_configuration(tmp_path: Path) -> None:
    from trenv.hub.oidc import TrenvOIDCAuthenticator

    settings = Settings(
        home=tmp_path,
        auth_backend="oidc",
        oidc_client_id="trenv",
        oidc_client_secret="s3cret",
        oidc_authorize_url="https://idp.example/realms/justice/protocol/openid-connect/auth",
        oidc_token_url="https://idp.example/realms/justice/protocol/openid-connect/token",
        oidc_userdata_url="https://idp.example/realms/justice/protocol/openid-connect/userinfo",
        oidc_callback_url="https://trenv.example/hub/oauth_callback",
    )
    c = configured(settings)
    assert c.JupyterHub.authenticator_class is TrenvOIDCAuthenticator
    auth = TrenvOIDCAuthenticator(config=c)
    assert auth.client_id == "trenv" and auth.enable_pkce
    assert auth.token_url.endswith("/token") and auth.username_claim == "preferred_username"
    assert auth.manage_roles and "openid" in auth.scope


def test_oidc_without_endpoints_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="TRENV_OIDC_CLIENT_ID"):
        configured(Settings(home=tmp_path, auth_backend="oidc"))
