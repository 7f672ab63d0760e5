"""The meter's levels, periods and states: pure, from the policy profile."""

from __future__ import annotations

import datetime as dt

import pytest

from trenv.disclosure.policy import Policy, load_policy
from trenv.meter import levels as lv

NOW = dt.datetime(2026, 3, 14, 15, 9, 26, 535, tzinfo=dt.UTC)


def policy(**egress: int) -> Policy:
    base = load_policy("trenv-default")
    return base.model_copy(update={"egress": base.egress.model_copy(update=egress)})


def test_levels_come_from_the_policy_in_bytes() -> None:
    pol = policy(text_warn_kb_per_hour=3, text_hard_kb_per_hour=5, image_warn_mb_per_hour=2,
                 image_hard_mb_per_hour=7)  # fmt: skip
    assert lv.levels(pol, "text") == lv.Levels(3 * 1024, 5 * 1024)
    assert lv.levels(pol, "image") == lv.Levels(2 * 1024**2, 7 * 1024**2)
    cap = int(pol.airlock.max_upload_mb_per_day * 1024**2)
    assert lv.levels(pol, "upload") == lv.Levels(cap, cap)
    with pytest.raises(ValueError, match="text, image or upload"):
        lv.levels(pol, "video")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("used", "state"),
    [(0, "ok"), (99, "ok"), (100, "warn"), (199, "warn"), (200, "stopped"), (10**9, "stopped")],
)
def test_state_is_reached_at_the_level(used: int, state: str) -> None:
    assert lv.state_of(used, lv.Levels(warn=100, hard=200)) == state


def test_hours_and_days_are_utc_clock_periods() -> None:
    assert lv.hour_start(NOW) == dt.datetime(2026, 3, 14, 15, tzinfo=dt.UTC)
    assert lv.resets_at("text", NOW) == dt.datetime(2026, 3, 14, 16, tzinfo=dt.UTC)
    assert lv.resets_at("image", NOW) == lv.resets_at("text", NOW)
    assert lv.period_start("upload", NOW) == dt.datetime(2026, 3, 14, tzinfo=dt.UTC)
    assert lv.resets_at("upload", NOW) == dt.datetime(2026, 3, 15, tzinfo=dt.UTC)
    # A clock in another zone means the same instant: 01:30 in UTC+2 is 23:30 UTC yesterday.
    cest = dt.datetime(2026, 3, 15, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert lv.period_start("upload", cest) == dt.datetime(2026, 3, 14, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="aware datetime"):
        lv.hour_start(dt.datetime(2026, 3, 14, 15))


def test_reading_and_upload_cap() -> None:
    pol = policy(text_warn_kb_per_hour=1, text_hard_kb_per_hour=2)
    reading = lv.reading(pol, "text", 1500, NOW)
    assert (reading.used, reading.warn, reading.hard) == (1500, 1024, 2048)
    assert reading.state == "warn" and reading.resets_at == lv.resets_at("text", NOW)
    cap = lv.levels(pol, "upload").hard
    assert lv.upload_allowed(cap - 10, 10, pol)  # reaching the cap is allowed
    assert not lv.upload_allowed(cap - 10, 11, pol)
