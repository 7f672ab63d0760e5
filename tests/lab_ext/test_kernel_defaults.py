"""The notebook image's IPython kernel sets pandas' display so ordinary frames are not cut:
shipped as a kernel configuration in trenv's wheel (the root filesystem is read-only at run
time), applied when pandas is first imported (a kernel that never uses pandas does not pay
for importing it)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from trenv.disclosure.policy import load_policy
from trenv.kernel_defaults import PANDAS_DISPLAY

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "trenv/lab/jupyter-config/ipython/ipython_kernel_config.json"


def test_the_wheel_installs_the_kernel_configuration_into_the_prefix() -> None:
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]
    # IPython reads $PREFIX/etc/ipython (IPython.core.application.ENV_CONFIG_DIRS).
    assert [str(CONFIG.relative_to(ROOT).parent / "*.json")] == data_files["etc/ipython"]
    lines = json.loads(CONFIG.read_text())["InteractiveShellApp"]["exec_lines"]
    assert any("trenv.kernel_defaults" in line and "apply()" in line for line in lines)


def test_the_defaults_keep_a_frame_inside_the_egress_limit() -> None:
    limit = load_policy("trenv-default").egress.output_max_table_rows
    shown_whole = PANDAS_DISPLAY["display.max_rows"]
    assert shown_whole + 2 <= limit  # the header row and pandas' own HTML header row


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip()


def test_the_options_are_set_when_pandas_is_imported_and_not_before() -> None:
    out = _python(
        "import sys, trenv.kernel_defaults as k; k.apply(); print('pandas' in sys.modules)\n"
        "import pandas as pd; print(pd.options.display.max_rows, pd.options.display.min_rows)"
    )
    assert out.splitlines() == ["False", "40 10"]


def test_the_options_are_set_at_once_when_pandas_is_already_imported() -> None:
    out = _python(
        "import pandas as pd, trenv.kernel_defaults as k; k.apply()\n"
        "print(pd.options.display.max_rows, pd.options.display.min_rows)"
    )
    assert out == "40 10"
