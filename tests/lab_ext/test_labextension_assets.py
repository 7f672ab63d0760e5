"""The prebuilt JupyterLab extension committed in trenv/lab/labextension matches its sources.

The notebook image is built offline from trenv's wheel, so the built assets are committed
(docs/lab.md, "Building"). ``labextension/scripts/build.mjs`` stamps them with a digest of
their sources; this test recomputes it the way ``labextension/scripts/sources.mjs`` does, so
a change to the TypeScript without a rebuild fails here instead of shipping stale assets.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from trenv.images.paths import repo_root

ROOT = repo_root()
SOURCES = ROOT / "labextension"
BUILT = ROOT / "trenv" / "lab" / "labextension"
CONFIG = ROOT / "trenv" / "lab" / "jupyter-config"
STAMP_ROOTS = ("package.json", "package-lock.json", "tsconfig.json", "src", "style")


def source_digest(root: Path) -> str:
    files: list[Path] = []
    for name in STAMP_ROOTS:
        path = root / name
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def test_built_assets_match_the_sources() -> None:
    stamp = json.loads((BUILT / "trenv-sources.json").read_text())
    assert stamp["sha256"] == source_digest(SOURCES), (
        "trenv/lab/labextension is older than labextension/: run `make labextension` "
        "and commit the rebuilt assets"
    )


def test_built_package_loads_its_entry_point() -> None:
    package = json.loads((BUILT / "package.json").read_text())
    assert package["name"] == "trenv-lab"
    assert (BUILT / package["jupyterlab"]["_build"]["load"]).is_file()
    js = "".join(p.read_text() for p in (BUILT / "static").glob("*.js"))
    for marker in ("trenv-lab:outputs", "trenv-lab:copy-guard", "copy_limit_chars"):
        assert marker in js, marker


def test_image_configuration_switches_downloads_off_and_the_extension_on() -> None:
    server = json.loads((CONFIG / "jupyter_server_config.d" / "trenv-lab.json").read_text())
    assert server["ServerApp"]["jpserver_extensions"] == {"trenv.lab.server": True}
    page = json.loads((CONFIG / "labconfig" / "page_config.json").read_text())
    assert {
        "@jupyterlab/docmanager-extension:download",
        "@jupyterlab/filebrowser-extension:download",
    } <= {name for name, off in page["disabledExtensions"].items() if off}


def test_the_wheel_installs_them_into_the_prefix() -> None:
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]
    targets = {
        "share/jupyter/labextensions/trenv-lab",
        "share/jupyter/labextensions/trenv-lab/static",
        "etc/jupyter/jupyter_server_config.d",
        "etc/jupyter/labconfig",
    }
    assert targets <= set(data_files)
    for patterns in data_files.values():
        for pattern in patterns:
            assert list(ROOT.glob(pattern)), pattern
