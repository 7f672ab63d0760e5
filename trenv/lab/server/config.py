"""The extension's settings (traitlets), with the project's policy deciding the limits.

Every limit defaults to ``None``, meaning "as the project's policy profile says" (the
``airlock`` section of the profile in ``TRENV_POLICY``, which the spawner sets). An image or
an operator may pin a value in the server's configuration instead, e.g. in
``jupyter_server_config.py``::

    c.TrenvLab.max_upload_mb = 5
    c.TrenvLab.data_roots = ["/data", "/scratch/linked"]

The researcher cannot change them: the container's $HOME (where user configuration would
live) is a fresh tmpfs at every start and the server reads its configuration only then.
"""

from __future__ import annotations

import os

from traitlets import Float, Int, List, Unicode
from traitlets.config import Configurable

from trenv.disclosure.policy import Policy, load_policy
from trenv.lab.api import Endpoint
from trenv.lab.server.decisions import MB, Limits
from trenv.lab.server.output_judge import OutputLimits


class TrenvLab(Configurable):
    """trenv's lock-down and Outputs panel in the notebook server (docs/lab.md)."""

    policy = Unicode(
        help="Policy profile whose 'airlock' section gives the limits. Default: $TRENV_POLICY "
        "(set by the spawner to the project's profile), else trenv-default."
    ).tag(config=True)
    copy_limit_chars = Int(
        None,
        allow_none=True,
        help="Longest text that may be copied out of a notebook output or a file view "
        "(the browser's copy guard). None: the policy's airlock.copy_limit_chars.",
    ).tag(config=True)
    max_upload_mb = Float(
        None,
        allow_none=True,
        help="Largest file the contents API accepts in a save or upload, in MB. None: the "
        "policy's airlock.max_upload_mb.",
    ).tag(config=True)
    max_raw_read_mb = Float(
        None,
        allow_none=True,
        help="Largest file whose bytes the contents API returns (larger ones are too large "
        "to show), in MB. None: the policy's airlock.max_raw_read_mb. Files under data_roots: "
        "never; data files (judged by content): never.",
    ).tag(config=True)
    data_roots = List(
        Unicode(),
        help="Directories whose files are never returned raw, however they are reached "
        "(symlinks are followed). Default: $TRENV_DATA, else /data.",
    ).tag(config=True)
    api_url = Unicode(
        help="The trenv web API that export requests and the DP budget are forwarded to. "
        "Default: $TRENV_API_URL (set by the spawner)."
    ).tag(config=True)
    request_timeout = Float(60.0, help="Seconds to wait for the trenv web API.").tag(config=True)

    def resolved_policy(self) -> Policy:
        return load_policy(self.policy or os.environ.get("TRENV_POLICY") or "trenv-default")

    def limits(self) -> Limits:
        """The limits in force: explicit settings first, else the project's policy."""
        airlock = self.resolved_policy().airlock
        upload = self.max_upload_mb if self.max_upload_mb is not None else airlock.max_upload_mb
        raw = self.max_raw_read_mb if self.max_raw_read_mb is not None else airlock.max_raw_read_mb
        copy = (
            self.copy_limit_chars if self.copy_limit_chars is not None else airlock.copy_limit_chars
        )
        roots = self.data_roots or [os.environ.get("TRENV_DATA") or "/data"]
        return Limits(
            data_roots=tuple(os.path.realpath(r) for r in roots),
            max_raw_read_bytes=int(raw * MB),
            max_upload_bytes=int(upload * MB),
            copy_limit_chars=int(copy),
            output=self.output_limits().output,
        )

    def output_limits(self) -> OutputLimits:
        """The limits on output to the browser (the policy's ``egress`` section)."""
        return OutputLimits.from_setting(self.resolved_policy().egress)

    def endpoint(self) -> Endpoint | None:
        """The trenv API and this server's token (None: not started by the trenv hub)."""
        return Endpoint.from_environment(self.api_url)
