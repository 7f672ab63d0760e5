"""The notebook server cannot be traced, read or patched by its own kernels.

Kernels run the researcher's code under the same uid as this server: the container holds no
capability with which the server could start them as another user. A process of the same uid
may ``ptrace`` the server, read or write its memory (``/proc/<pid>/mem``,
``process_vm_readv``/``writev``) and read its environment, and so could patch the output
judge out of the server's memory, unless the server is not *dumpable*. Then all of these
need ``CAP_SYS_PTRACE``, which the container does not have (every capability dropped,
no-new-privileges), and the kernel's ``/proc/<server>/`` files belong to root. Docker's
seccomp profile allows ``ptrace`` on current kernels and Yama is not on every host, so
neither is relied on. The kernel could still kill the server; tini then ends the container
with it, so nothing listens in its place.

Set when the extension loads, before any kernel starts. Kernels get the normal state back
(``execve`` resets it), so a researcher's debugger still works on their own processes.
"""

from __future__ import annotations

import ctypes
import os

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


class NotUntraceable(SystemExit):
    """The server could not make itself untraceable: it refuses to start (a SystemExit,
    since jupyter_server only logs an extension's exceptions)."""


def make_untraceable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise NotUntraceable(
            f"trenv: prctl(PR_SET_DUMPABLE, 0) failed ({os.strerror(error)}); refusing to "
            "start a notebook server whose kernels could trace it"
        )
    if is_dumpable():
        raise NotUntraceable("trenv: the server is still dumpable after prctl; refusing to start")


def is_dumpable() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
