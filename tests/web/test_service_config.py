"""The hub starts the trenv web service and tells containers where it is."""

from __future__ import annotations

import sys
from pathlib import Path

from traitlets.config import Config

from trenv.config import Settings
from trenv.hub import roles
from trenv.hub.hubconfig import configure


def test_trenv_is_a_managed_service_on_the_gateway(tmp_path: Path) -> None:
    c = Config()
    settings = Settings(home=tmp_path, web_api_port=8123, oidc_client_secret="s3cret")
    configure(c, settings, gateway="172.31.255.1")
    (service,) = [s for s in c.JupyterHub.services if s["name"] == roles.SERVICE_NAME]
    assert service["command"] == [sys.executable, "-m", "trenv.web"]
    assert service["url"] == "http://172.31.255.1:8123"
    assert service["oauth_no_confirm"] is True
    assert set(roles.CUSTOM_SCOPES) <= set(service["oauth_client_allowed_scopes"])
    assert roles.ACCESS_SERVICE in service["oauth_client_allowed_scopes"]
    env = service["environment"]
    assert env["TRENV_HOME"] == str(tmp_path) and env["TRENV_DATABASE_URL"].startswith("sqlite")
    assert "TRENV_OIDC_CLIENT_SECRET" not in env
    assert roles.service_role() in c.JupyterHub.load_roles
    # The server's own token may call the service (DP queries, export requests).
    assert roles.ACCESS_SERVICE in c.TrenvSpawner.server_token_scopes
