"""``tre.tau_argus(output, name)``: a checked table as tau-ARGUS batch input in the workspace.

The files go to ``tau-argus/<name>/`` in the workspace, never ``outputs/``: they hold the
table's unsuppressed values, so they must not look like release candidates, and the airlock
refuses any request file under ``tau-argus/`` (:mod:`trenv.airlock.intake`). The format is
in :mod:`trenv.disclosure.tauargus`; the record's own policy gives the rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from trenv.disclosure.tauargus import WORKSPACE_FOLDER, check_name, write_batch
from trenv.lab import session
from trenv.lab.outputs import Output


def tau_argus(
    output: Output,
    name: str,
    *,
    method: Literal["MOD", "GH", "OPT"] = "MOD",
    interactive: bool = False,
) -> Path:
    """Write ``output``'s table and rules as tau-ARGUS 4.2 batch input into
    ``tau-argus/<name>/`` in the workspace and return that folder (never overwritten).

    ``method`` is tau-ARGUS's secondary suppression (MOD modular, GH hypercube, OPT
    optimal); ``interactive`` ends the batch in tau-ARGUS's window instead of exiting.
    """
    if not isinstance(output, Output):
        raise TypeError("tau_argus() takes a table returned by tre.crosstab or tre.pivot_table")
    folder = session.workspace() / WORKSPACE_FOLDER / check_name(name)
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; choose another name")
    write_batch(output.record, folder, name, method=method, interactive=interactive)
    return folder
