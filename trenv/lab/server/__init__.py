"""trenv's Jupyter server extension: the download lock-down and the Outputs panel's API.

Enabled in the notebook image by ``etc/jupyter/jupyter_server_config.d/trenv-lab.json``
(shipped in trenv's wheel); see docs/lab.md for what it refuses and why.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.serverapp import ServerApp
from jupyter_server.services.contents import handlers as contents_handlers
from jupyter_server.utils import url_path_join

from trenv.lab.server.config import TrenvLab
from trenv.lab.server.endpoints import handlers
from trenv.lab.server.guards import GuardedContentsHandler, refuse_downloads

LABEXTENSION = "trenv-lab"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "trenv.lab.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # For `jupyter labextension develop`; installs use the copy in the wheel's data files.
    return [{"src": "../labextension", "dest": LABEXTENSION}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    config = TrenvLab(parent=serverapp)
    limits = config.limits()  # fail at start, not at the first request, on a bad policy
    web_app = serverapp.web_app
    base_url: str = web_app.settings["base_url"]
    web_app.settings["trenv_lab"] = config
    # jupyter_server's contents routes in their order (checkpoints and trust before the
    # catch-all contents route), with the contents handler swapped for the guarded one.
    # add_handlers puts them in front of jupyter_server's own routes for the same paths.
    original = contents_handlers.ContentsHandler
    contents: list[tuple[str, Any]] = [
        (url_path_join(base_url, pattern), GuardedContentsHandler if h is original else h)
        for pattern, h, *_ in contents_handlers.default_handlers
    ]
    web_app.add_handlers(".*$", [*contents, *handlers(base_url)])
    refuse_downloads(web_app, base_url)
    serverapp.log.info(
        "trenv lock-down: downloads refused; raw reads under %s refused; data files over "
        "%d bytes and uploads over %d bytes refused; copy limit %d characters",
        ", ".join(limits.data_roots),
        limits.max_raw_read_bytes,
        limits.max_upload_bytes,
        limits.copy_limit_chars,
    )
