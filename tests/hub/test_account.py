"""The dedicated host account containers run as (trenv.hub.account). Runs as `make test`
does, as root, and removes the accounts it makes."""

from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from trenv.config import Settings
from trenv.errors import TrenvError
from trenv.hub.account import NOLOGIN, container_account


@pytest.fixture
def fresh_name() -> Iterator[str]:
    assert os.geteuid() == 0, "run as `make test` does (root): the test makes an account"
    name = f"trenv-t{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["userdel", name], capture_output=True, timeout=60)


def test_a_missing_account_is_made_as_a_system_account(tmp_path, fresh_name: str) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path, container_user=fresh_name)
    account = container_account(settings)
    entry = pwd.getpwnam(fresh_name)
    assert (account.uid, account.gid) == (entry.pw_uid, entry.pw_gid)
    assert 0 < account.uid < 1000  # a system uid: nobody's login
    assert entry.pw_shell == NOLOGIN and not os.path.exists(entry.pw_dir)
    assert container_account(settings) == account  # the same account the next time
    assert account.user == f"{account.uid}:{account.gid}"


def test_without_create_a_missing_account_names_the_fix(tmp_path, fresh_name: str) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path, container_user=fresh_name)
    with pytest.raises(TrenvError, match="useradd --system"):
        container_account(settings, create=False)
    with pytest.raises(KeyError):
        pwd.getpwnam(fresh_name)  # nothing was made


def test_root_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrenvError, match="is root"):
        container_account(Settings(home=tmp_path, container_user="root"))
