"""The egress meter in the notebook server: bytes sent to the browser, counted and reported.

The output judges (kernel and terminal output, contents reads) call :class:`EgressMeter`,
one instance per server in ``web_app.settings["trenv_meter"]``:

- ``add`` counts bytes just sent; ``event`` queues an audit event (``egress.cut``,
  ``egress.refused``). Neither blocks: both batch, and the batch is reported to the trenv
  API (``POST <TRENV_API_URL>/egress/report``, trenv.meter.wire) with the server's own token
  in the background, every ~2 s or as soon as 64 KB are waiting.
- ``allowed`` says whether output of a kind may still go out this hour: the server's last
  answer plus what it has not been told yet, against the hard level.
- ``upload_refusal`` asks the server whether an upload fits the user's day.

Fail closed: when the API cannot be reached, counts stay here and are sent again later
(never dropped), and the hard level of the project's policy is enforced on this server's own
count of the current hour; uploads are refused, since the day's total lives on the server.
At start the meter asks the server for the hour's state (an empty report), so restarting the
server does not reset it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from jupyter_server.serverapp import ServerApp
from pydantic import ValidationError

from trenv.disclosure.policy import Policy
from trenv.lab.api import AsyncApi, Endpoint
from trenv.lab.server.config import TrenvLab
from trenv.lab.server.decisions import EXPORT_HINT, Refusal
from trenv.meter import levels as lv
from trenv.meter.wire import (
    CHANNELS,
    CONTAINER_ACTIONS,
    KINDS,
    MAX_COUNT_BYTES,
    MAX_COUNTS,
    MAX_EVENTS,
    REPORT_PATH,
    Channel,
    Count,
    Event,
    Kind,
    Report,
    ReportAnswer,
    Upload,
    clean_detail,
)

BATCH_BYTES = 64 * 1024
INTERVAL_S = 2.0
MAX_BACKOFF_S = 30.0
# Events waiting while the API is down: a bound on memory, not a normal limit. Past it the
# oldest are dropped and the next event sent says how many.
MAX_PENDING_EVENTS = 1000
SETTINGS_KEY = "trenv_meter"
UPLOAD_REASON = "upload-day"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _size(nbytes: int, kind: str) -> str:
    unit, name = (lv.KB, "KB") if kind == "text" else (lv.MB, "MB")
    return f"{nbytes / unit:,.0f} {name}" if nbytes >= unit or nbytes == 0 else f"{nbytes} bytes"


class EgressMeter:
    """Counts output to the browser per kind and reports it; see the module's docstring."""

    def __init__(
        self,
        *,
        api_url: str,
        token: str,
        policy: Policy,
        log: logging.Logger | None = None,
        interval: float = INTERVAL_S,
        batch_bytes: int = BATCH_BYTES,
        max_backoff: float = MAX_BACKOFF_S,
        request_timeout: float = 10.0,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._api = AsyncApi(Endpoint.of(api_url, token), timeout=request_timeout)
        self._policy = policy
        self._log = log or logging.getLogger(__name__)
        self._interval = interval
        self._batch_bytes = batch_bytes
        self._max_backoff = max_backoff
        self._clock = clock
        # add/event may be called from any thread; the lock guards everything below it.
        self._lock = threading.Lock()
        self._pending: Counter[tuple[Channel, Kind]] = Counter()  # not yet sent
        self._inflight: Counter[tuple[Channel, Kind]] = Counter()  # sent, no answer yet
        self._events: list[dict[str, Any]] = []
        self._dropped_events = 0
        self._answer: ReportAnswer | None = None
        self._local_hour = lv.hour_start(clock())
        self._local: Counter[Kind] = Counter()  # added this hour, by this server
        self._synced = False  # the server has answered at least once
        # Loop state, touched on the loop's thread only.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[bool] | None = None
        self._warned_unconnected = False
        self._failures = 0
        self._not_before = 0.0

    @classmethod
    def for_server(cls, config: TrenvLab, log: logging.Logger | None = None) -> EgressMeter:
        """The meter of this notebook server: the spawner's API URL and token, the policy."""
        endpoint = config.endpoint()
        return cls(
            api_url=endpoint.base_url if endpoint else "",
            token=endpoint.token if endpoint else "",
            policy=config.resolved_policy(),
            log=log,
            request_timeout=min(config.request_timeout, 10.0),
        )

    # --- the interface the output judges use -------------------------------------------

    def add(self, channel: Channel, kind: Kind, nbytes: int) -> None:
        """Count ``nbytes`` just sent to the browser; reported in the background."""
        if channel not in CHANNELS or kind not in KINDS:
            raise ValueError(
                f"unknown channel {channel!r} or kind {kind!r}; use one of {CHANNELS} and "
                f"one of {KINDS}"
            )
        if nbytes < 0:
            raise ValueError(f"the meter counts bytes sent, got {nbytes}: pass len(payload)")
        if nbytes == 0:
            return
        with self._lock:
            self._roll_hour()
            self._pending[(channel, kind)] += nbytes
            self._local[kind] += nbytes
        self._wake()

    def allowed(self, kind: Kind) -> bool:
        """False once this user's hour has reached the hard level for ``kind``."""
        used, hard, _ = self._reading(kind)
        return used < hard

    def stopped_message(self, kind: Kind) -> str:
        used, hard, resets = self._reading(kind)
        minutes = max(1, round((resets - self._clock()).total_seconds() / 60))
        what = "Text output" if kind == "text" else "Images"
        return (
            f"[trenv] {what} to your browser stopped for this hour: this hour you were sent "
            f"{_size(used, kind)}, and this project's limit is {_size(hard, kind)} per hour. "
            f"An audit event records this. Output resumes at {resets:%H:%M} UTC (in about "
            f"{minutes} minutes); your code keeps running and its results stay in the "
            f"workspace. {EXPORT_HINT}"
        )

    def event(self, action: str, detail: dict[str, object]) -> None:
        """Queue an audit event; sent with the next report (never blocks output)."""
        if action not in CONTAINER_ACTIONS:
            raise ValueError(
                f"the meter sends only the audit actions {CONTAINER_ACTIONS}, not {action!r}; "
                "egress.warn and egress.stopped are written by the trenv API itself"
            )
        with self._lock:
            self._events.append({"action": action, "detail": clean_detail(detail)})
            if len(self._events) > MAX_PENDING_EVENTS:
                del self._events[0]
                self._dropped_events += 1
        self._wake()

    async def upload_refusal(self, path: str, nbytes: int) -> Refusal | None:
        """None when ``nbytes`` more fit this user's uploads of the day (and counts them),
        else the refusal. Refuses when the trenv API cannot be asked: the day's total is
        kept there, so an unchecked upload could pass the cap."""
        if nbytes < 0:
            raise ValueError(f"an upload has a size of 0 bytes or more, got {nbytes}")
        limit = lv.levels(self._policy, "upload").hard
        if nbytes > min(limit, MAX_COUNT_BYTES):
            return self._upload_refused(path, nbytes, used=None, limit=limit)
        answer = await self._post(Report(upload=Upload(path=path, bytes=nbytes)))
        if answer is None or answer.upload is None:
            return Refusal(
                UPLOAD_REASON,
                f"{path.strip('/')}: uploads are refused for now because today's upload limit "
                "could not be checked (the trenv service did not answer). Nothing was saved; "
                "try again in a minute, and tell the service desk if it persists.",
            )
        self._remember(answer)
        if answer.upload.allowed:
            return None
        return self._upload_refused(
            path, nbytes, used=answer.upload.used, limit=answer.upload.limit
        )

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        """Begin on the running event loop: ask the server for this hour's state (retried
        until it answers) and report whatever was counted before the loop ran."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._schedule(now=True)

    async def flush(self) -> bool:
        """Report what is waiting now and wait for the answer; True when it was accepted.
        For shutdown and tests: ordinary reporting needs no call."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return await asyncio.shield(self._begin_report())

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not started yet: start() reports what was counted meanwhile
        if threading.get_ident() == self._loop_thread:
            self._schedule()
        else:
            loop.call_soon_threadsafe(self._schedule)

    def _waiting(self) -> tuple[bool, int]:
        with self._lock:
            waiting = bool(self._pending or self._events) or not self._synced
            return waiting, sum(self._pending.values())

    def _schedule(self, now: bool = False) -> None:
        """Arrange the next report: at once for a full batch, else within the interval;
        never before the back-off after a failure. One report at a time."""
        loop = self._loop
        if loop is None or (self._task is not None and not self._task.done()):
            return  # the running report reschedules when it ends
        waiting, nbytes = self._waiting()
        if not waiting:
            return
        delay = 0.0 if now or nbytes >= self._batch_bytes else self._interval
        due = max(loop.time() + delay, self._not_before)
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        self._timer = loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._begin_report()

    def _begin_report(self) -> asyncio.Task[bool]:
        task = asyncio.get_running_loop().create_task(self._report())
        self._task = task
        task.add_done_callback(lambda _task: self._schedule())  # the next batch, if any
        return task

    async def _report(self) -> bool:
        with self._lock:
            counts = []
            for (channel, kind), nbytes in sorted(self._pending.items())[:MAX_COUNTS]:
                take = min(nbytes, MAX_COUNT_BYTES)  # the rest goes in the next report
                counts.append(Count(channel=channel, kind=kind, bytes=take))
                self._pending[(channel, kind)] -= take
                self._inflight[(channel, kind)] += take
            self._pending = +self._pending  # drop zero entries
            events, self._events = self._events[:MAX_EVENTS], self._events[MAX_EVENTS:]
            if events and self._dropped_events:
                events[0]["detail"]["events_dropped"] = self._dropped_events
                self._dropped_events = 0
        report = Report(counts=counts, events=[Event.model_validate(e) for e in events])
        answer = await self._post(report)
        with self._lock:
            if answer is not None:  # the answer counts the in-flight bytes: swap together
                self._answer, self._synced = answer, True
                self._inflight.clear()
                self._failures = 0
                self._not_before = 0.0
            else:  # nothing is lost: the counts and events go out with the next attempt
                self._pending.update(self._inflight)
                self._inflight.clear()
                self._events[:0] = events
                self._failures += 1
                backoff = min(self._interval * 2 ** (self._failures - 1), self._max_backoff)
                self._not_before = asyncio.get_running_loop().time() + backoff
        return answer is not None

    async def _post(self, body: Report) -> ReportAnswer | None:
        """The server's answer to a report, or None when it could not be had."""
        if not self._api.connected:
            if not self._warned_unconnected:
                self._warned_unconnected = True
                self._log.warning(
                    "trenv egress meter: no TRENV_API_URL or JUPYTERHUB_API_TOKEN; counting "
                    "locally against the policy's levels, uploads refused (start the server "
                    "from the hub)"
                )
            return None
        try:
            reply = await self._api.send("POST", REPORT_PATH, body)
        except Exception as error:  # unreachable, timed out, reset: all mean "try later"
            self._log.warning("trenv egress meter: report not delivered (%s)", error)
            return None
        if reply.status != 200:
            excerpt = reply.content.decode("utf-8", "replace")[:300]
            self._log.warning("trenv egress meter: report refused (%s): %s", reply.status, excerpt)
            return None
        try:
            return ReportAnswer.model_validate_json(reply.content)
        except ValidationError as error:
            self._log.warning("trenv egress meter: unreadable answer: %s", error)
            return None

    # --- what the meter knows ---------------------------------------------------------

    def _remember(self, answer: ReportAnswer) -> None:
        """Take a state answered outside a report (an upload check), unless a report is on
        its way: its answer will be newer, and this one may not count its bytes."""
        with self._lock:
            if not self._inflight:
                self._answer, self._synced = answer, True

    def _roll_hour(self) -> None:
        hour = lv.hour_start(self._clock())
        if hour != self._local_hour:
            self._local_hour, self._local = hour, Counter()

    def _reading(self, kind: Kind) -> tuple[int, int, dt.datetime]:
        """(bytes counted this hour, the hard level, when the hour ends) for ``kind``.

        With a current answer from the server: its count plus what it has not acknowledged
        (the server will count that in this hour when it arrives). Without one (the API is
        down, or its last answer is from an earlier hour): this server's own count of the
        hour, against the policy's own hard level.
        """
        now = self._clock()
        with self._lock:
            self._roll_hour()
            answer = self._answer
            unacknowledged = sum(
                n for (_, k), n in (self._pending + self._inflight).items() if k == kind
            )
            local = self._local[kind]
        if answer is not None and now < answer.kinds[kind].resets_at:
            state = answer.kinds[kind]
            return state.used + unacknowledged, state.hard, state.resets_at
        hard = answer.kinds[kind].hard if answer is not None else lv.levels(self._policy, kind).hard
        return local, hard, lv.resets_at(kind, now)

    def _upload_refused(self, path: str, nbytes: int, *, used: int | None, limit: int) -> Refusal:
        so_far = "" if used is None else f"; today you have uploaded {used / lv.MB:.1f} MB"
        return Refusal(
            UPLOAD_REASON,
            f"{path.strip('/')}: uploads and saves are limited to {limit / lv.MB:g} MB per day "
            f"in this project{so_far}, and this one is {nbytes / lv.MB:.1f} MB. The limit "
            "resets at 00:00 UTC. Data comes into the research environment through the data "
            "stewards (the vault), not through the browser.",
        )


def start_meter(serverapp: ServerApp, config: TrenvLab) -> EgressMeter:
    """Create this server's meter, publish it in the tornado settings, start it on the loop."""
    meter = EgressMeter.for_server(config, serverapp.log)
    serverapp.web_app.settings[SETTINGS_KEY] = meter
    serverapp.io_loop.add_callback(meter.start)
    return meter
