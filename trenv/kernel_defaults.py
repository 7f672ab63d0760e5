"""Display defaults of the researcher's IPython kernel, so that ordinary output is not cut.

Output to the browser is cut above ``egress.output_max_table_rows`` (48) table rows in one
output (docs/lab.md, "Output to the browser"). pandas shows a frame of up to 60 rows in full
by default, so displaying a frame of 49-60 rows would be cut, which is ordinary work, not an
attack. With ``display.max_rows = 40`` and ``display.min_rows = 10`` a frame of up to 40 rows
is shown whole and a longer one as its first and last 5 rows, well inside the limit.

Loaded by the notebook image's kernel configuration
(``$PREFIX/etc/ipython/ipython_kernel_config.json``, installed from trenv's wheel): the root
filesystem is read-only at run time and ``$HOME`` a fresh tmpfs, so the setting has to be in
the image when it is built. It is a convenience, not a control: the researcher may change the
options, and the server judges what is displayed either way.

This module lives outside ``trenv.lab`` on purpose: importing ``trenv.lab`` imports pandas,
which costs every kernel about half a second at start. The options are set when the
researcher's code first imports pandas instead.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

PANDAS_DISPLAY: dict[str, int] = {"display.max_rows": 40, "display.min_rows": 10}


def set_pandas_display(pandas: ModuleType) -> None:
    for option, value in PANDAS_DISPLAY.items():
        with contextlib.suppress(Exception):  # a pandas without the option keeps its own
            pandas.set_option(option, value)


class _AfterPandasImport(importlib.abc.MetaPathFinder):
    """Finds pandas once, so that its options are set right after its module has run."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "pandas":
            return None
        sys.meta_path.remove(self)  # one import only; the real finders find the spec
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            set_pandas_display(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def apply() -> None:
    """Set pandas' display options now if pandas is loaded, else when it is imported."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        set_pandas_display(pandas)
    elif not any(isinstance(f, _AfterPandasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterPandasImport())
