"""``python -m trenv.web``: run the service where the hub expects it.

JupyterHub starts this as a managed service with ``JUPYTERHUB_SERVICE_URL`` set to the
address it routes ``/services/trenv/`` to; without it (development) 127.0.0.1 and
``TRENV_WEB_API_PORT`` are used.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import uvicorn

from trenv.config import get_settings
from trenv.web.app import create_app


def main() -> None:
    settings = get_settings()
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL") or "")
    host = url.hostname or "127.0.0.1"
    port = url.port or settings.web_api_port
    app = create_app(settings)
    # One process: OAuth state lives in cookies, but HubOAuth's token cache is per process.
    uvicorn.run(app, host=host, port=port, proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
