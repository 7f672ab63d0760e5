"""trenv's Jupyter server extension: the download lock-down and the Outputs panel's API.

Enabled in the notebook image by ``etc/jupyter/jupyter_server_config.d/trenv-lab.json``
(shipped in trenv's wheel); see docs/lab.md for what it refuses and why.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.serverapp import ServerApp
from jupyter_server.services.contents import handlers as contents_handlers
from jupyter_server.utils import url_path_join

from trenv.lab.server.browser_only import require_browser_session
from trenv.lab.server.config import TrenvLab
from trenv.lab.server.endpoints import SETTINGS_KEY, handlers, server_api
from trenv.lab.server.guards import GuardedContentsHandler, refuse_downloads
from trenv.lab.server.kernel_output import install_kernel_output, verify_kernel_output
from trenv.lab.server.meter import start_meter
from trenv.lab.server.terminals import install_terminals
from trenv.lab.server.untraceable import make_untraceable

LABEXTENSION = "trenv-lab"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "trenv.lab.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # For `jupyter labextension develop`; installs use the copy in the wheel's data files.
    return [{"src": "../labextension", "dest": LABEXTENSION}]


async def _start_jupyter_server_extension(serverapp: ServerApp) -> None:
    # Once every extension has loaded: none of them may have swapped the kernel connection.
    verify_kernel_output(serverapp)


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    # First, before any kernel starts: kernels run as this server's uid (untraceable.py).
    make_untraceable()
    config = TrenvLab(parent=serverapp)
    limits = config.limits()  # fail at start, not at the first request, on a bad policy
    web_app = serverapp.web_app
    base_url: str = web_app.settings["base_url"]
    web_app.settings["trenv_lab"] = config
    web_app.settings[SETTINGS_KEY] = server_api(config)  # the forwarder's client
    start_meter(serverapp, config)  # settings["trenv_meter"]: the egress meter
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

    def report_token(path: str) -> None:
        meter = web_app.settings.get("trenv_meter")
        if meter is not None:
            meter.event("egress.refused", {"rule": "token", "path": path[:300]})

    require_browser_session(serverapp.identity_provider, report_token)
    # Output to the browser: every kernel message judged and metered (or the server stops),
    # terminals refused or judged as the profile says (docs/lab.md, "Output to the browser").
    egress = config.resolved_policy().egress
    output_limits = install_kernel_output(serverapp, egress)
    terminals = install_terminals(web_app, base_url, egress.terminals, output_limits)
    serverapp.log.info(
        "trenv output to the browser: kernel messages judged (%d characters, %d table rows "
        "per output; %d characters, %d table rows per cell); %s",
        egress.output_max_chars,
        egress.output_max_table_rows,
        egress.cell_max_chars,
        egress.cell_max_table_rows,
        terminals,
    )
    serverapp.log.info(
        "trenv lock-down: downloads refused; raw reads under %s refused; reads judged by "
        "content (data refused, files over %d bytes too large to show, notebook outputs "
        "above the caps withheld); uploads over %d bytes refused; copy limit %d characters",
        ", ".join(limits.data_roots),
        limits.max_raw_read_bytes,
        limits.max_upload_bytes,
        limits.copy_limit_chars,
    )
