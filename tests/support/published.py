"""A project view made by hand for hub tests, in the shape the launcher will mount.

The launcher mounts ``projects/<slug>/data`` only when it holds a manifest it can read
(``trenv.vault.manifest``); a directory without one counts as nothing published. Hub tests that
only need files under ``/data`` (not the vault's publication, grants and re-keying, which
tests/vault and tests/foundation/test_launch.py cover) write them here with an empty, valid
manifest: no dataset is listed, so no grant is needed for it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from trenv.config import Settings
from trenv.layout import project_data_dir
from trenv.vault.manifest import MANIFEST, Manifest


def hand_published_view(settings: Settings, project: str) -> Path:
    """``projects/<project>/data`` (0755) with a valid manifest; the caller adds files."""
    data = project_data_dir(settings, project)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o755)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manifest = Manifest(project=project, published_at=now, datasets=[])
    (data / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    (data / MANIFEST).chmod(0o644)
    return data
