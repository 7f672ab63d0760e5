"""The notebook server makes itself untraceable by its kernels (trenv.lab.server.untraceable).

The attack itself (a kernel, as the container's unprivileged user, tracing and reading the
server) runs in tests/hub/test_egress.py; as root here the kernel would hold CAP_SYS_PTRACE.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "from trenv.lab.server.untraceable import is_dumpable, make_untraceable\n"
    "before = is_dumpable()\n"
    "make_untraceable()\n"
    "print(before, is_dumpable())\n"
)


def test_make_untraceable_clears_the_dumpable_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["True", "False"]
