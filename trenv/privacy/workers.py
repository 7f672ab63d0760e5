"""DP releases run in worker processes, each release with a time limit.

Why processes: a release is CPU-bound in polars and in OpenDP's native code, and a thread
running it cannot be stopped (``rho = 1e-300`` kept a service thread at full CPU for over ten
minutes in OpenDP's accuracy computation). A worker process can be killed, so a release that
overruns its time limit is stopped and its worker replaced, and the other workers go on
serving other users' queries.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one running task, and
killing one of its processes breaks the whole pool (``BrokenProcessPool``), failing every
other query in flight. Here each worker has its own pipe and is killed alone.

Why ``spawn``: the web service is multi-threaded and polars and OpenDP keep native thread
pools; ``fork`` of such a process can deadlock the child. A spawned worker imports
trenv.privacy.releases once (a few seconds), signals that it is ready, and then serves one
release at a time for as long as it lives, keeping its caches (calibrated measurements, exact
aggregates) between releases.

How the service uses a pool (trenv/privacy/service.py, the ledger's rules in ledger.py)::

    spend = reserve(...)                       # committed
    lease = pool.acquire(user, wait=...)       # Busy: cancel the reservation (data untouched)
    with lease:
        mark_running(spend)                    # committed: from here the spend is never returned
        result = lease.run(job, spec, delta, timeout=...)   # ReleaseTimeout / ReleaseFailed
    commit(spend, result)

A user holds at most ``size - 1`` workers at once (at least one), so one user's slow queries
never take every worker from the others.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from types import TracebackType
from typing import Any

from trenv.errors import Invalid, TrenvError

# Two workers at least, so one slow release never blocks everyone; half the cores, since each
# release may use several polars threads and the web service needs a core for its pages.
DEFAULT_SIZE = max(2, (os.cpu_count() or 2) // 2)
STARTUP_LIMIT_S = 300.0  # a worker that has not imported its modules by then is given up
RETRY_S = 5.0  # after a worker failed to start, the next start waits this long
PRELOAD = ("trenv.privacy.releases",)


class Busy(TrenvError):
    """Every worker is busy (or this user already holds their share): nothing was charged."""

    status_code = 503


class ReleaseTimeout(TrenvError):
    """The release overran its time limit; its worker was killed. The data was touched."""

    status_code = 504


class ReleaseFailed(TrenvError):
    """The release failed in its worker after the data was touched."""

    status_code = 500


def _serve(conn: Connection, preload: Sequence[str]) -> None:
    """A worker's main loop: import once, then run ``(fn, args)`` jobs until the pipe closes."""
    import importlib

    for module in preload:
        importlib.import_module(module)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", fn(*args)))
        except TrenvError as exc:  # errors cross the pipe as plain fields: always unpicklable
            conn.send(("trenv", type(exc).__name__, exc.status_code, exc.problem, exc.fix))
        except Exception as exc:
            conn.send(("error", type(exc).__name__, str(exc).strip()[:2000]))


class _Worker:
    def __init__(self, process: SpawnProcess, conn: Connection, pid: int) -> None:
        self.process, self.conn, self.pid = process, conn, pid

    def alive(self) -> bool:
        return self.process.is_alive() and not self.conn.closed

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()  # SIGKILL: the release may be deep in native code
        self.process.join(10)
        self.conn.close()


class ReleasePool:
    """``size`` worker processes; :meth:`acquire` leases one, :meth:`Lease.run` runs a job."""

    def __init__(self, size: int = DEFAULT_SIZE, *, preload: Sequence[str] = PRELOAD) -> None:
        if size < 1:
            raise ValueError("a release pool needs at least one worker")
        self.size = size
        self.per_user = max(1, size - 1)
        self._preload = tuple(preload)
        self._ctx = multiprocessing.get_context("spawn")
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._live = 0  # starting + idle + leased
        self._starting = 0
        self._failed_at = -1e9  # monotonic time of the last failed start
        self._held: dict[str, int] = {}
        self._closed = False
        self.start_error: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, wait: float | None = None) -> None:
        """Start the workers in the background; with ``wait``, until all are ready (or not)."""
        deadline = time.monotonic() + (wait or 0)
        with self._cond:
            self._fill()
            while wait is not None and len(self._idle) < self.size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def close(self) -> None:
        """Kill the idle workers now and the leased ones when their lease ends."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()

    def pids(self) -> list[int]:
        """Process ids of the idle workers (for tests and diagnostics)."""
        with self._cond:
            return [w.pid for w in self._idle]

    def _fill(self) -> None:
        # Called with the lock held: start workers (in threads) up to the pool's size; after a
        # failed start, not again for RETRY_S (a broken installation must not spawn in a loop).
        if time.monotonic() - self._failed_at < RETRY_S:
            return
        while not self._closed and self._live < self.size:
            self._live += 1
            self._starting += 1
            threading.Thread(target=self._start_worker, name="trenv-dp-start", daemon=True).start()

    def _start_worker(self) -> None:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_serve, args=(child, self._preload), name="trenv-dp-worker", daemon=True
        )
        try:
            process.start()
            child.close()
            if not parent.poll(STARTUP_LIMIT_S):
                raise TimeoutError(f"not ready after {STARTUP_LIMIT_S:g} s")
            kind, pid = parent.recv()
            if kind != "ready":
                raise RuntimeError(f"unexpected first message {kind!r}")
        except Exception as exc:  # a worker that cannot start is given up; the next acquire retries
            if process.is_alive():
                process.kill()
            parent.close()
            with self._cond:
                self._live -= 1
                self._starting -= 1
                self._failed_at = time.monotonic()
                self.start_error = f"{type(exc).__name__}: {exc}"
                self._cond.notify_all()
            return
        worker = _Worker(process, parent, int(pid))
        with self._cond:
            self._starting -= 1
            if self._closed:
                self._live -= 1
            else:
                self.start_error = None
                self._idle.append(worker)
                self._cond.notify_all()
                return
        worker.kill()

    # -- leases -----------------------------------------------------------------------------

    def acquire(self, user: str, *, wait: float) -> Lease:
        """A ready worker for ``user``, waiting at most ``wait`` seconds; else :class:`Busy`.

        Time spent waiting for a worker that is still starting (the first query after the
        service starts, or a replacement of a killed worker) does not count: starting takes
        a few seconds, after which the worker is free.
        """
        now = time.monotonic()
        deadline, startup_deadline = now + wait, now + STARTUP_LIMIT_S
        dead: list[_Worker] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise Busy("the DP service is shutting down.", "Try again in a minute.")
                    while self._idle and not self._idle[-1].alive():  # died while idle
                        dead.append(self._idle.pop())
                        self._live -= 1
                    self._fill()
                    if self._idle and self._held.get(user, 0) < self.per_user:
                        worker = self._idle.pop()
                        self._held[user] = self._held.get(user, 0) + 1
                        return Lease(self, worker, user)
                    now = time.monotonic()
                    mine = self._held.get(user, 0) < self.per_user
                    if mine and self._starting and not self._idle and now < startup_deadline:
                        self._cond.wait(startup_deadline - now)  # woken when one is ready
                        continue
                    if now >= deadline:
                        raise self._busy(user, wait)
                    self._cond.wait(deadline - now)
        finally:
            for worker in dead:
                worker.kill()

    def _busy(self, user: str, wait: float) -> Busy:
        if self._held.get(user, 0) >= self.per_user:
            return Busy(
                f"{user!r} already has {self._held[user]} DP "
                f"quer{'y' if self._held[user] == 1 else 'ies'} running; another waited "
                f"{wait:g} s and was not run. Nothing was charged.",
                "Wait for your running query to finish, then ask again.",
            )
        why = f" (workers fail to start: {self.start_error})" if self.start_error else ""
        return Busy(
            f"all {self.size} DP workers are busy{why}; the query waited {wait:g} s and was "
            "not run. Nothing was charged.",
            "Try again in a minute.",
        )

    def _give_back(self, lease: Lease) -> None:
        worker = lease.worker
        with self._cond:
            held = self._held.get(lease.user, 1) - 1
            if held > 0:
                self._held[lease.user] = held
            else:
                self._held.pop(lease.user, None)
            keep = not lease.broken and not self._closed and worker.alive()
            if keep:
                self._idle.append(worker)
            else:
                self._live -= 1
                self._fill()  # a replacement starts in the background
            self._cond.notify_all()
        if not keep:
            worker.kill()


class Lease:
    """One worker, held by one user until the ``with`` block ends."""

    def __init__(self, pool: ReleasePool, worker: _Worker, user: str) -> None:
        self.pool, self.worker, self.user = pool, worker, user
        self.broken = False

    @property
    def pid(self) -> int:
        return self.worker.pid

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.pool._give_back(self)

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """``fn(*args)`` in the worker, or kill it after ``timeout`` seconds.

        ``fn`` and ``args`` are pickled: ``fn`` must be importable by module and name. An
        :class:`~trenv.errors.Invalid` raised by ``fn`` is raised again here; any other
        failure is :class:`ReleaseFailed`, an overrun :class:`ReleaseTimeout`.
        """
        conn = self.worker.conn
        try:
            conn.send((fn, args))
        except (OSError, ValueError) as exc:
            self.broken = True
            raise ReleaseFailed(
                f"the DP worker could not take the query ({exc}).", "Try again."
            ) from None
        if not conn.poll(timeout):
            self.broken = True
            self.worker.kill()
            raise ReleaseTimeout(
                f"the release did not finish within {timeout:g} s and was stopped.",
                "Ask a smaller question (fewer groups or bins, a smaller max_contributions), "
                "or a data steward may raise the policy's release_timeout_s.",
            )
        try:
            reply = conn.recv()
        except (EOFError, OSError):
            self.broken = True
            self.worker.process.join(5)  # the pipe closes a moment before the exit is seen
            code = self.worker.process.exitcode
            raise ReleaseFailed(
                f"the DP worker stopped during the release (exit code {code}).",
                "Ask a smaller question; if it happens again, tell the service's operators.",
            ) from None
        kind = reply[0]
        if kind == "ok":
            return reply[1]
        if kind == "trenv":
            _, name, status, problem, fix = reply
            if status == Invalid.status_code:
                raise Invalid(problem, fix)
            raise ReleaseFailed(f"{problem} ({name})", fix)
        _, name, message = reply
        raise ReleaseFailed(
            f"the release failed: {name}: {message}",
            "Check the query's bounds, bins and rho; if it looks right, tell the operators.",
        )


_SHARED: ReleasePool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool() -> ReleasePool:
    """The process's pool, started (in the background) on first use."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = ReleasePool()
            _SHARED.start()
        return _SHARED
