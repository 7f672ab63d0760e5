"""Fixtures for the disclosure tests, including ACRO in a virtual environment of its own.

ACRO 1.0.2 pins pandas<=2.3.3, older than trenv's; rather than holding trenv back, the
reference runs in its own venv (created once under the pytest cache, reused afterwards)
and exchanges data and masks with the tests as files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ACRO_VERSION = "1.0.2"
DRIVER = Path(__file__).with_name("acro_driver.py")


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _ensure_acro(venv: Path) -> Path:
    python = _venv_python(venv)
    marker = venv / f".acro-{ACRO_VERSION}"
    if marker.exists() and python.exists():
        return python
    base = "python3" if sys.platform != "win32" else sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"acro=={ACRO_VERSION}"],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    marker.touch()
    return python


@pytest.fixture(scope="session")
def acro_python(request: pytest.FixtureRequest) -> Path:
    override = os.environ.get("TRENV_ACRO_VENV")
    # Under the pytest cache folder (git-ignored); not via the cache plugin, which may be
    # disabled with -p no:cacheprovider.
    default = Path(request.config.rootpath) / ".pytest_cache" / "d" / "acro-venv"
    venv = Path(override) if override else default
    venv.parent.mkdir(parents=True, exist_ok=True)
    return _ensure_acro(venv)


@pytest.fixture
def run_acro(acro_python: Path, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    def run(df: pd.DataFrame, **spec: Any) -> dict[str, Any]:
        data = tmp_path / "data.csv"
        df.to_csv(data, index=False)
        spec_path = tmp_path / "spec.json"
        out_path = tmp_path / "out.json"
        spec_path.write_text(json.dumps({"data": str(data), **spec}), encoding="utf-8")
        proc = subprocess.run(
            [str(acro_python), str(DRIVER), str(spec_path), str(out_path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # ACRO writes its outputs folder into the working directory
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(out_path.read_text(encoding="utf-8"))

    return run
