"""Session state of the researcher API: default policy, the list of outputs, provenance."""

from __future__ import annotations

import inspect
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DEFAULT_WORKSPACE = "/home/jovyan/work"


def default_policy() -> str:
    """The project's profile, as the container was started with it."""
    return os.environ.get("TRENV_POLICY", "trenv-default")


def workspace() -> Path:
    return Path(os.environ.get("TRENV_WORKSPACE", DEFAULT_WORKSPACE))


def trenv_version() -> str:
    try:
        return version("trenv")
    except PackageNotFoundError:
        return "unknown"


def calling_code() -> str:
    """The notebook cell that called the API, else the caller's source line."""
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        cells = shell.user_ns.get("In") or shell.user_ns.get("_ih") or []
        if cells:
            return str(cells[-1])
    for frame in inspect.stack()[1:]:
        # The first frame outside trenv.lab is the researcher's code.
        if "trenv/lab" not in frame.filename.replace("\\", "/"):
            line = (frame.code_context or [""])[0].strip()
            return f"{frame.filename}:{frame.lineno}: {line}"
    return ""
