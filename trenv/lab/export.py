"""Asking for outputs to leave the TRE from a notebook: ``tre.request_export(...)``.

The request goes to the airlock (trenv web API at ``TRENV_API_URL``) with the server's own
``JUPYTERHUB_API_TOKEN``; the server freezes the named workspace files, checks them itself
and queues them for two output checkers. What comes back is the server's view: the request's
id, state and the automatic check of every file. Nothing here decides a release.

This module runs in the container: it must never import trenv.store or hub-side packages.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trenv.lab.api import Api, ApiError, build
from trenv.wire.airlock import REQUESTS_PATH, CreateIn

TIMEOUT = 300  # seconds: the server checks every file (LP audits included) before replying
_COLOURS = {"pass": "#d7f0d7", "review": "#fdf0c8", "fail": "#f8d0d0"}


class ExportError(ApiError):
    """The airlock refused the request; nothing was created."""


@dataclass(eq=False)
class ExportRequest:
    """An export request as the airlock holds it (``detail``: the API's JSON)."""

    detail: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.detail["id"])

    @property
    def state(self) -> str:
        return str(self.detail["state"])

    @property
    def checks(self) -> dict[str, str]:
        """Each file's server-side check status (pass, review or fail), by path."""
        return {f["path"]: f["check"]["status"] for f in self.detail.get("file_list", [])}

    @property
    def failed(self) -> list[str]:
        return [path for path, status in self.checks.items() if status == "fail"]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(f['path'])}</code></td>"
            f"<td style='background:{_COLOURS.get(f['check']['status'], '')}'>"
            f"{html.escape(f['check']['status'])}</td>"
            f"<td>{html.escape(f['check']['summary'])}</td></tr>"
            for f in self.detail.get("file_list", [])
        )
        return (
            f"<p><b>Export request #{self.id}</b> “{html.escape(str(self.detail['title']))}” "
            f"for {html.escape(str(self.detail['project']))}: <b>{html.escape(self.state)}</b>"
            f" — {self.detail.get('approvals_required', 2)} independent output checkers "
            "review it; the server's checks of the frozen files:</p>"
            "<table><tr><th>file</th><th>check</th><th>summary</th></tr>"
            f"{rows}</table>"
        )

    def __repr__(self) -> str:
        return f"<trenv ExportRequest #{self.id} {self.state}: {self.checks}>"


def _api() -> Api:
    return Api.for_session(timeout=TIMEOUT, error=ExportError, caller="tre.request_export")


def request_export(title: str, files: Mapping[str, str], *, submit: bool = True) -> ExportRequest:
    """Ask for ``files`` (workspace path -> justification) to be released.

    Paths are relative to the workspace, e.g. ``"outputs/rates.csv"``. Saved tables and
    figures are checked against their ``.record.json``, DP outputs against the ledger, so
    export the files ``tre.save`` wrote, unchanged. With ``submit=False`` the request stays
    a draft that you can complete and submit from the Outputs panel or the airlock pages.
    """
    if not files:
        raise ValueError("name at least one file: {'outputs/<name>.csv': 'why it is needed'}")
    api = _api()
    fields = {
        "title": title,
        "files": [{"path": p, "justification": j} for p, j in files.items()],
        "submit": submit,
    }
    request = build(CreateIn, fields, ExportError)  # refused as the server would: not sent
    return ExportRequest(api.call("POST", REQUESTS_PATH, request.model_dump(exclude={"project"})))


def export_request(request_id: int) -> ExportRequest:
    """A request as it stands now (state, checks and, once decided, the checkers' votes)."""
    return ExportRequest(_api().call("GET", f"{REQUESTS_PATH}/{int(request_id)}"))
