"""Jobs for the DP worker processes in tests (sent by name, so they live in a module).

``run_query(..., job=...)`` and ``Lease.run`` send a job to a worker process by its module
and name; these stand in for ``trenv.privacy.releases.release`` to make a release slow or
broken on purpose. Nothing here is used outside the tests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from trenv.errors import Invalid
from trenv.privacy.releases import DPRelease, QuerySpec, release

SAFETY_S = 180.0  # no job outlives a failed test by more than this


def held(flag: str, spec: QuerySpec, delta: float) -> DPRelease:
    """A release that starts only once the file ``flag`` exists (the test decides when)."""
    deadline = time.monotonic() + SAFETY_S
    while not Path(flag).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return release(spec, delta)


def wait_for(flag: str) -> int:
    """Block until ``flag`` exists; return the worker's pid."""
    deadline = time.monotonic() + SAFETY_S
    while not Path(flag).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid()


def forever(*_: Any) -> None:
    """Never returns (until the safety limit): the pool must kill it."""
    time.sleep(SAFETY_S)


def pid(*_: Any) -> int:
    return os.getpid()


def crash(*_: Any) -> None:
    os._exit(3)  # the worker dies mid-release, as on running out of memory


def fail(*_: Any) -> None:
    raise ZeroDivisionError("float division by zero")


def invalid(*_: Any) -> None:
    raise Invalid("column 'x' is gone.", "Publish it again.")
