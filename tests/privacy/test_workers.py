"""The DP worker pool: releases in processes that can be killed, one user never takes all."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.privacy import slow_jobs
from trenv.errors import Invalid
from trenv.privacy.workers import Busy, ReleaseFailed, ReleasePool, ReleaseTimeout

STARTUP_S = 240.0  # spawning a worker imports polars and OpenDP: slow on a loaded machine


@pytest.fixture(scope="module")
def module_pool() -> Iterator[ReleasePool]:
    pool = ReleasePool(2)
    yield pool
    pool.close()


@pytest.fixture
def pool(module_pool: ReleasePool) -> ReleasePool:
    """The module's pool with both workers ready (a test before may have killed one)."""
    module_pool.start(wait=STARTUP_S)
    assert len(module_pool.pids()) == 2, module_pool.start_error
    return module_pool


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child that is not yet reaped is a zombie: count it as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_a_job_runs_in_a_worker_process(pool: ReleasePool) -> None:
    with pool.acquire("rita", wait=5) as lease:
        assert lease.run(slow_jobs.pid, timeout=60) == lease.pid != os.getpid()
        assert lease.run(sum, [1, 2, 3], timeout=60) == 6  # the same worker serves again
    assert lease.pid in pool.pids()


def test_an_overrun_is_killed_and_its_worker_replaced(pool: ReleasePool) -> None:
    with pool.acquire("rita", wait=5) as lease:
        start = time.monotonic()
        with pytest.raises(ReleaseTimeout, match="did not finish within 1 s") as info:
            lease.run(slow_jobs.forever, timeout=1)
        assert time.monotonic() - start < 30
        assert info.value.status_code == 504 and info.value.fix
        killed = lease.pid
    assert not alive(killed) and killed not in pool.pids()
    pool.start(wait=STARTUP_S)  # a replacement was started in the background
    assert len(pool.pids()) == 2 and killed not in pool.pids()


def test_failures_in_the_worker_are_reported(pool: ReleasePool) -> None:
    with pool.acquire("rita", wait=5) as lease:
        with pytest.raises(ReleaseFailed, match="ZeroDivisionError: float division by zero"):
            lease.run(slow_jobs.fail, timeout=60)
        with pytest.raises(Invalid, match="column 'x' is gone") as info:
            lease.run(slow_jobs.invalid, timeout=60)
        assert info.value.fix == "Publish it again."
        assert lease.run(slow_jobs.pid, timeout=60) == lease.pid  # still serving
    with pool.acquire("rita", wait=5) as lease:
        with pytest.raises(ReleaseFailed, match=r"stopped during the release \(exit code 3\)"):
            lease.run(slow_jobs.crash, timeout=60)
        died = lease.pid
    assert died not in pool.pids()


def test_one_user_never_holds_every_worker(pool: ReleasePool) -> None:
    with pool.acquire("rita", wait=5):
        start = time.monotonic()
        with pytest.raises(Busy, match="'rita' already has 1 DP query running") as info:
            pool.acquire("rita", wait=0.5)
        assert info.value.status_code == 503 and time.monotonic() - start < 10
        # Another user still gets a worker; a third finds both busy.
        with pool.acquire("nora", wait=5), pytest.raises(Busy, match="all 2 DP workers are busy"):
            pool.acquire("olga", wait=0.5)
    with pool.acquire("rita", wait=5), pool.acquire("olga", wait=5):
        pass  # both given back


def test_a_slow_release_does_not_hold_up_another(pool: ReleasePool, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    slow: dict[str, object] = {}

    def run_slow() -> None:
        with pool.acquire("rita", wait=5) as lease:
            slow["pid"] = lease.run(slow_jobs.wait_for, str(flag), timeout=120)

    thread = threading.Thread(target=run_slow)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(pool.pids()) != 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # until rita's job holds its worker
        start = time.monotonic()
        with pool.acquire("nora", wait=5) as lease:
            assert lease.run(sum, [2, 3], timeout=60) == 5
        assert time.monotonic() - start < 30
        assert thread.is_alive() and "pid" not in slow  # rita's release is still running
    finally:
        flag.touch()
        thread.join(60)
    assert isinstance(slow["pid"], int)
