"""The host account that notebook containers run as: a dedicated system account.

Containers share the host kernel's uids (no user namespace), so the uid a container runs as
*is* a host uid. uid 1000, which Jupyter images use, is usually the first person's login on
the host: that person could then signal, trace or read (``/proc/<pid>/root``) every
researcher's container, and owns every workspace on disk. trenv instead creates a system
account (``trenv-notebook`` by default: no home, no login shell, a system uid chosen by
``useradd``) the first time anything needs it, as root, and builds the images for its uid
(the ``NB_UID``/``NB_GID`` build arguments; the images carry it as a label and the spawner
refuses an image built for another uid). User-namespace remapping would do as well but
changes the whole Docker engine's configuration, which trenv does not own; docs/hub.md.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass

from trenv.config import Settings
from trenv.errors import TrenvError

LABEL_UID = "org.trenv.uid"
NOLOGIN = "/usr/sbin/nologin"


@dataclass(frozen=True)
class ContainerAccount:
    name: str
    uid: int
    gid: int

    @property
    def user(self) -> str:
        """Docker's ``user`` option."""
        return f"{self.uid}:{self.gid}"


def container_account(settings: Settings, *, create: bool = True) -> ContainerAccount:
    """The account (made now if missing and ``create`` and running as root)."""
    name = settings.container_user
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if not create or os.geteuid() != 0:
            raise TrenvError(
                f"the account notebook containers run as, {name!r}, does not exist.",
                "Run `trenv hub start` or `trenv image build` as root once (they create it), "
                f"or create it: useradd --system --user-group --no-create-home --shell "
                f"{NOLOGIN} {name}",
            ) from None
        _useradd(name)
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise TrenvError(
            f"the container account {name!r} is root (uid {entry.pw_uid}, gid {entry.pw_gid}).",
            "Set container_user to a dedicated unprivileged account.",
        )
    return ContainerAccount(name, entry.pw_uid, entry.pw_gid)


def _useradd(name: str) -> None:
    command = [
        "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
        "--shell", NOLOGIN, "--comment", "trenv notebook containers", name,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    # 9: the name exists (another process made it just now); anything else is a real failure.
    if done.returncode not in (0, 9):
        raise TrenvError(
            f"could not create the container account {name!r}: {done.stderr.strip()}",
            "Create it by hand (useradd --system --user-group ...) or set container_user.",
        )
