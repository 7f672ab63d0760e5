"""The notebook server's egress meter against a stand-in trenv API: batching, failing
closed when the API is down (nothing dropped, the policy's hard level enforced here), a
restart picking up the hour, and uploads checked against the day on the server."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.support.egress_api import FakeEgressApi
from tests.support.lab_server import running_lab
from tests.support.net import free_port
from trenv.disclosure.policy import Policy, load_policy
from trenv.lab.server.meter import EgressMeter
from trenv.meter.wire import DETAIL_MAX_VALUE_CHARS

TOKEN = "server-token"


def small_policy() -> Policy:
    """Text: warn at 1 KB, stop at 2 KB an hour; uploads: 1 MB a day."""
    base = load_policy("trenv-default")
    egress = base.egress.model_copy(update={"text_warn_kb_per_hour": 1,
                                            "text_hard_kb_per_hour": 2})  # fmt: skip
    airlock = base.airlock.model_copy(update={"max_upload_mb_per_day": 1.0})
    return base.model_copy(update={"egress": egress, "airlock": airlock})


def meter_for(url: str, policy: Policy, **options: Any) -> EgressMeter:
    options = {"interval": 0.2, "max_backoff": 0.4, "request_timeout": 2.0, **options}
    return EgressMeter(api_url=url, token=TOKEN, policy=policy, **options)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the meter did not get there in time")
        await asyncio.sleep(0.02)


def counts(report: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(c["channel"], c["kind"]): c["bytes"] for c in report["body"]["counts"]}


def delivered(api: FakeEgressApi) -> list[dict[str, Any]]:
    """The events of every report answered 200 (the API was up)."""
    return [e for r in api.reports[api.refused :] for e in r["body"]["events"]]


def test_output_is_batched_and_a_full_batch_goes_at_once() -> None:
    api = FakeEgressApi(policy=load_policy("trenv-default"))

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy, interval=3.0, batch_bytes=4096)
            meter.start()
            await until(lambda: len(api.reports) == 1)  # at start: the hour's state
            empty = {"counts": [], "events": [], "upload": None}
            assert api.reports[0] == {"auth": f"token {TOKEN}", "body": empty}
            for _ in range(20):
                meter.add("kernel", "text", 100)
            meter.add("terminal", "text", 50)
            meter.add("kernel", "image", 300)
            await asyncio.sleep(0.5)
            assert len(api.reports) == 1  # small output waits for the interval
            await until(lambda: len(api.reports) == 2, timeout=6)
            assert counts(api.reports[1]) == {("kernel", "image"): 300, ("kernel", "text"): 2000,
                                              ("terminal", "text"): 50}  # fmt: skip
            started = time.monotonic()
            meter.add("contents", "text", 5000)  # a full batch does not wait
            await until(lambda: len(api.reports) == 3, timeout=6)
            assert time.monotonic() - started < 2.0
            assert counts(api.reports[2]) == {("contents", "text"): 5000}
            assert api.counted("text") == 7050 and api.counted("image") == 300

    run(scenario)


def test_add_and_event_never_wait_for_the_api() -> None:
    api = FakeEgressApi(delay=1.5)

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy, batch_bytes=1)
            meter.start()
            started = time.perf_counter()
            for _ in range(200):  # each one a full batch, while a report is on its way
                meter.add("kernel", "text", 10)
                meter.event("egress.cut", {"rule": "blob"})
            assert time.perf_counter() - started < 0.2
            assert meter.allowed("text")
            await until(lambda: api.counted("text") == 2000, timeout=20)
            await until(lambda: len(delivered(api)) == 200, timeout=20)  # 64 per report

    run(scenario)


def test_when_the_api_is_down_counts_wait_and_the_policys_hard_level_holds() -> None:
    api = FakeEgressApi(policy=small_policy(), down=True)

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy)
            meter.start()
            meter.add("kernel", "text", 1500)
            assert meter.allowed("text")
            meter.add("terminal", "text", 600)  # 2,100 bytes: past the policy's 2 KB
            assert not meter.allowed("text") and meter.allowed("image")
            message = meter.stopped_message("text")
            assert "2 KB per hour" in message and "audit event" in message
            assert ":00 UTC" in message and "airlock" in message
            meter.event("egress.cut", {"rule": "table-rows", "rows": 7021})
            await until(lambda: api.refused >= 3)  # retried, with back-off
            assert api.counted("text") == 0

            api.down = False  # back: everything counted while it was down arrives, once
            await until(lambda: api.counted("text") == 2100)
            await asyncio.sleep(0.6)
            assert api.counted("text") == 2100
            cut = {"action": "egress.cut", "detail": {"rule": "table-rows", "rows": 7021}}
            answered = api.reports[api.refused :]  # the reports after the API came back
            assert [e for r in answered for e in r["body"]["events"]] == [cut]  # once
            assert not meter.allowed("text")  # the server's answer now: stopped

    run(scenario)


def test_an_unreachable_api_refuses_uploads_and_counts_locally() -> None:
    async def scenario() -> None:
        meter = meter_for(f"http://127.0.0.1:{free_port()}/services/trenv/api", small_policy())
        meter.start()
        refusal = await meter.upload_refusal("notes/data.csv", 10)
        assert refusal is not None and refusal.reason == "upload-day"
        assert "could not be checked" in refusal.message and "Nothing was saved" in refusal.message
        meter.add("contents", "text", 2048)
        assert not meter.allowed("text")
        assert not await meter.flush()

    run(scenario)


def test_a_restart_picks_up_the_hours_usage() -> None:
    api = FakeEgressApi(policy=small_policy())
    api.used["text"] = 1500  # sent by this user's previous server, this hour

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy, interval=5.0)
            meter.start()
            assert await meter.flush()
            assert meter.allowed("text")
            meter.add("kernel", "text", 600)  # 1,500 known + 600 not yet reported
            assert not meter.allowed("text")

            api.used["text"] = 5000
            again = meter_for(url, api.policy)  # the next restart: stopped from the start
            again.start()
            assert await again.flush()
            assert not again.allowed("text") and again.allowed("image")

    run(scenario)


def test_a_new_hour_starts_afresh_even_with_the_api_down() -> None:
    api = FakeEgressApi(policy=small_policy())
    api.used["text"] = 4096
    now = [dt.datetime.now(dt.UTC)]

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy, clock=lambda: now[0])
            meter.start()
            assert await meter.flush()
            assert not meter.allowed("text")
            api.down = True
            now[0] += dt.timedelta(hours=1)  # the server's answer is for the hour before
            assert meter.allowed("text")
            meter.add("kernel", "text", 2048)  # this hour's own count, against the policy
            assert not meter.allowed("text")
            resets = (now[0] + dt.timedelta(hours=1)).strftime("%H:00 UTC")
            assert resets in meter.stopped_message("text")

    run(scenario)


def test_uploads_are_checked_against_the_day_on_the_server() -> None:
    api = FakeEgressApi(policy=small_policy())
    kb600 = 600 * 1024

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy)
            meter.start()
            assert await meter.upload_refusal("a.csv", kb600) is None
            refusal = await meter.upload_refusal("b.csv", kb600)
            assert refusal is not None and refusal.reason == "upload-day"
            assert "1 MB per day" in refusal.message and "0.6 MB" in refusal.message
            assert api.counted("upload") == kb600  # the refused one is not counted
            asked = len(api.reports)
            too_big = await meter.upload_refusal("c.bin", 2 * 1024 * 1024)  # over a day's cap
            assert too_big is not None and len(api.reports) == asked  # refused without asking
            with pytest.raises(ValueError, match="0 bytes or more"):
                await meter.upload_refusal("d", -1)

    run(scenario)


def test_events_and_counts_are_checked_before_they_are_queued() -> None:
    api = FakeEgressApi()

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy)
            with pytest.raises(ValueError, match=r"egress\.warn and egress\.stopped"):
                meter.event("egress.warn", {})
            with pytest.raises(ValueError, match="unknown channel"):
                meter.add("email", "text", 10)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="counts bytes sent"):
                meter.add("kernel", "text", -10)
            meter.event("egress.refused", {"path": "x" * 10_000, "nested": {"rows": [1, 2]}})
            meter.start()
            assert await meter.flush()
            [event] = delivered(api)
            assert len(event["detail"]["path"]) == DETAIL_MAX_VALUE_CHARS
            assert event["detail"]["nested"] == '{"rows": [1, 2]}'

    run(scenario)


def test_counts_from_another_thread_are_reported() -> None:
    api = FakeEgressApi()

    async def scenario() -> None:
        with api.serving() as url:
            meter = meter_for(url, api.policy)
            meter.start()
            worker = threading.Thread(target=lambda: meter.add("contents", "text", 777))
            worker.start()
            worker.join()
            await until(lambda: api.counted("text") == 777)

    run(scenario)


def test_the_notebook_server_starts_its_meter_with_the_hours_state(tmp_path: Path) -> None:
    """Wiring: the extension's meter asks the API for the hour's state as the server starts,
    with the server's own token (the stand-in refuses any other)."""
    with running_lab(tmp_path) as lab:
        first = lab.api.wait_for(lambda: lab.api.reports[:1])
        assert first, "the meter sent no report at start"
        assert first[0].counts == [] and first[0].events == [] and first[0].upload is None
