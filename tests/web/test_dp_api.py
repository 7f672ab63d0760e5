"""The DP query API: every refusal charges nothing; a release charges the ledger once."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.privacy import slow_jobs
from tests.web.conftest import API, Web
from trenv.disclosure.policy import PrivacySetting
from trenv.privacy import ledger, service
from trenv.privacy.workers import Busy, ReleaseFailed
from trenv.store.models import AuditEvent, PrivacySpend, SpendState
from trenv.web.api import dp as dp_api
from trenv.wire.dp import DPQuery

COUNT: dict[str, Any] = {"dataset": "convictions", "statistic": "count", "rho": 0.1}


def spends(web: Web) -> list[tuple[float, SpendState]]:
    with web.tx() as session:
        rows = session.scalars(select(PrivacySpend).order_by(PrivacySpend.id))
        return [(ledger.from_micro(s.amount_micro), s.state) for s in rows]


def refused(web: Web, status: int, match: str, token: str = "t-rita", **body: Any) -> None:
    before = spends(web)
    reply = web.post(token, **body)
    assert reply.status_code == status, reply.text
    problem = reply.json()
    assert set(problem) == {"problem", "fix"}
    assert match in f"{problem['problem']} {problem['fix']}", problem
    assert spends(web) == before  # nothing charged, nothing reserved


def test_grouped_count_charges_the_ledger(web: Web) -> None:
    reply = web.post("t-rita", **COUNT, group_by=["offence"], max_contributions=3)
    assert reply.status_code == 200, reply.text
    out = reply.json()
    assert out["dp"] is True and out["project"] == "reoffending"
    assert out["rho"] == 0.1 and out["delta"] == 1e-7 and out["epsilon"] > 0.1
    assert len(out["plan_hash"]) == 64 and out["plan_hash"] == out["release"]["plan_hash"]
    table = out["release"]["table"]
    assert [row["offence"] for row in table] == ["theft", "assault", "fraud"]  # codebook order
    assert "other" not in str(table)  # a key outside the codebook is never released
    assert out["release"]["accuracy"]["count"] > 0
    assert out["budget"]["rho_remaining"] == pytest.approx(0.9)
    assert spends(web) == [(0.1, SpendState.committed)]
    with web.tx() as session:
        spend = session.get(PrivacySpend, out["spend_id"])
        assert spend is not None and spend.release == out["release"]
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"privacy.reserve", "privacy.running", "privacy.committed",
            "privacy.release"} <= actions  # fmt: skip


def test_mean_and_budget(web: Web) -> None:
    reply = web.post("t-rita", dataset="convictions", statistic="mean", column="sentence_days",
                     bounds=[1, 3650], rho=0.2)  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert 1 <= reply.json()["release"]["value"] <= 3650
    budget = web.client.get(f"{API}/dp/budget", headers={"Authorization": "token t-rita"})
    assert budget.status_code == 200
    assert budget.json() == {"project": "reoffending", "budgets": [{
        "project": "reoffending", "dataset": "convictions", "rho_total": 1.0,
        "rho_spent": 0.2, "rho_remaining": 0.8}]}  # fmt: skip


def test_unknown_dataset(web: Web) -> None:
    refused(web, 403, "no effective grant", **{**COUNT, "dataset": "seizures"})


def test_unknown_column(web: Web) -> None:
    refused(web, 400, "unknown column 'sentence'", **{**COUNT, "statistic": "sum"},
            column="sentence", bounds=[0, 10])  # fmt: skip
    refused(web, 400, "unknown column 'district'", **COUNT, group_by=["district"])


def test_missing_bounds(web: Web) -> None:
    refused(web, 400, "needs bounds", **{**COUNT, "statistic": "mean"}, column="sentence_days")


def test_key_list_that_is_not_public(web: Web) -> None:
    # 'year' exists but its codebook lists no codes: its keys would come from the data.
    refused(web, 400, "not public", **COUNT, group_by=["year"])
    # The client cannot smuggle its own key list in.
    refused(web, 400, "group_by", **COUNT, group_by={"year": [2021, 2022]})


def test_grouping_by_the_pseudonym_is_refused(web: Web) -> None:
    refused(web, 400, "not public", **COUNT, group_by=["person_pseudonym"])


@pytest.mark.parametrize("rho", [0, -0.5])
def test_non_positive_rho(web: Web, rho: float) -> None:
    refused(web, 400, "rho must be a positive", **{**COUNT, "rho": rho})


def test_exhausted_budget_shows_what_is_left(web: Web) -> None:
    assert web.post("t-rita", **{**COUNT, "rho": 0.7}).status_code == 200
    refused(web, 409, "only 0.3 of the 1.0", **{**COUNT, "rho": 0.5})


def test_user_without_a_running_server(web: Web) -> None:
    refused(web, 403, "no running notebook server", token="t-nora", **COUNT)
    reply = web.client.get(f"{API}/dp/budget", headers={"Authorization": "token t-nora"})
    assert reply.status_code == 403


def test_member_of_another_project(web: Web) -> None:
    # olga's server is for 'other', which has the same file published but no grant.
    refused(web, 403, "no effective grant", token="t-olga", **COUNT)


def test_server_of_a_project_one_is_not_a_member_of(web: Web) -> None:
    web.identity.servers["olga"] = "reoffending"
    refused(web, 403, "not a member", token="t-olga", **COUNT)
    reply = web.client.get(f"{API}/dp/budget", headers={"Authorization": "token t-olga"})
    assert reply.status_code == 403


def test_no_grant_after_revocation(web: Web) -> None:
    from trenv.registry import grants

    with web.tx() as session:
        (grant,) = grants.list_grants(session, project="reoffending")
        grants.revoke_grant(session, actor="adam", grant_id=grant.id, reason="test")
    refused(web, 403, "no effective grant", **COUNT)


def test_no_token_or_a_wrong_token(web: Web) -> None:
    assert web.client.post(f"{API}/dp/query", json=COUNT).status_code == 401
    refused(web, 401, "token", token="forged", **COUNT)


def test_openapi_describes_the_dp_api(web: Web) -> None:
    spec = web.client.get(f"{API}/openapi.json").json()
    query = spec["paths"][f"{API}/dp/query"]["post"]
    assert {"400", "403", "409"} <= set(query["responses"])
    assert f"{API}/dp/budget" in spec["paths"] and "DPQuery" in spec["components"]["schemas"]


def test_spends_are_counted(web: Web) -> None:
    for _ in range(3):
        assert web.post("t-rita", **{**COUNT, "rho": 0.05}).status_code == 200
    with web.tx() as session:
        total = session.scalar(select(func.sum(PrivacySpend.amount_micro)))
    assert total == 150_000


# --- issue 15: limits, strict types, bounds, workers and timeouts ---------------------------


@pytest.mark.timeout(120)  # before the limits, this query never answered
@pytest.mark.parametrize(
    ("rho", "message"),
    [(1e-300, "at least 1e-06"), (1e-7, "at least 1e-06"), (1.5, "at most 1")],
)
def test_rho_outside_the_policy_limits_is_refused_uncharged(
    web: Web, rho: float, message: str
) -> None:
    refused(web, 400, message, **{**COUNT, "rho": rho})


def test_rho_at_the_limits_is_answered(web: Web) -> None:
    assert web.post("t-rita", **{**COUNT, "rho": 1e-6}).status_code == 200
    reply = web.post("t-rita", **{**COUNT, "rho": 0.5})
    assert reply.status_code == 200, reply.text
    assert spends(web) == [(1e-6, SpendState.committed), (0.5, SpendState.committed)]


SUM: dict[str, Any] = {**COUNT, "statistic": "sum", "column": "sentence_days"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**SUM, "bounds": [0, 1e308]}, "outside what column 'sentence_days' can hold"),
        ({**SUM, "statistic": "mean", "bounds": [-1e19, 10]}, "Int64"),
        ({**SUM, "bounds": [10, 0]}, "lower (10.0) >= upper (0.0)"),
        ({**SUM, "bounds": [5, 5]}, ">= upper"),
        ({**SUM, "statistic": "quantile", "alpha": 0.5, "bounds": [0, 1e308]}, "outside"),
    ],
)
def test_bounds_are_checked_before_anything_is_charged(
    web: Web, body: dict[str, Any], message: str
) -> None:
    with web.tx() as session:
        before = ledger.status(session, project="reoffending", dataset="convictions")
    refused(web, 400, message, **body)
    with web.tx() as session:
        assert ledger.status(session, project="reoffending", dataset="convictions") == before


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({**COUNT, "rho": "0.01"}, "rho"),
        ({**COUNT, "rho": True}, "rho"),
        ({**COUNT, "rho": False}, "rho"),
        ({**COUNT, "rho": None}, "rho"),
        ({**COUNT, "rho": [0.1]}, "rho"),
        ({**COUNT, "max_contributions": True}, "max_contributions"),
        ({**COUNT, "max_contributions": 2.0}, "max_contributions"),
        ({**COUNT, "max_contributions": "3"}, "max_contributions"),
        ({**SUM, "bounds": ["0", 10]}, "bounds"),
        ({**SUM, "bounds": [0, True]}, "bounds"),
        ({**SUM, "statistic": "quantile", "bounds": [1, 3650], "alpha": "0.5"}, "alpha"),
        ({**COUNT, "statistic": "histogram", "column": "sentence_days", "bins": [0, True, 9]},
         "bins"),
        ({**COUNT, "dataset": 7}, "dataset"),
        ({**SUM, "column": 3, "bounds": [0, 10]}, "column"),
        ({**COUNT, "group_by": [1]}, "group_by"),
    ],
)  # fmt: skip
def test_values_of_the_wrong_type_are_refused_not_converted(
    web: Web, body: dict[str, Any], where: str
) -> None:
    refused(web, 400, where, **body)


def test_an_integer_rho_is_a_number(web: Web) -> None:
    # JSON has one number type (JavaScript writes 1.0 as 1): rho 1 is rho 1.0.
    reply = web.post("t-rita", **{**COUNT, "rho": 1})
    assert reply.status_code == 200, reply.text
    assert reply.json()["rho"] == 1.0 and spends(web) == [(1.0, SpendState.committed)]


def _audit_actions(web: Web) -> list[str]:
    with web.tx() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_a_release_that_overruns_is_stopped_and_stays_charged(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rho 1e-300 (allowed here by a lax policy) really runs for hours in OpenDP: the worker
    is killed at the policy's time limit; the data was read, so the rho stays spent."""
    lax = PrivacySetting(min_rho_per_query=1e-300, release_timeout_s=2)
    monkeypatch.setattr(dp_api, "run_query", functools.partial(service.run_query, limits=lax))
    start = time.monotonic()
    reply = web.post("t-rita", **{**COUNT, "rho": 1e-300})
    assert reply.status_code == 504, reply.text
    assert time.monotonic() - start < 100  # the startup of the workers is not counted
    problem = reply.json()
    assert set(problem) == {"problem", "fix"} and problem["fix"]
    assert "did not finish within 2 s" in problem["problem"]
    assert "stays spent" in problem["problem"]
    assert spends(web) == [(1e-6, SpendState.running)]  # charged (rounded up), never returned
    assert _audit_actions(web)[-3:] == ["privacy.reserve", "privacy.running",
                                        "privacy.release.failed"]  # fmt: skip
    # The service goes on answering (a new worker replaces the killed one).
    monkeypatch.setattr(dp_api, "run_query", service.run_query)
    assert web.post("t-rita", **COUNT).status_code == 200


def test_a_worker_failure_is_a_problem_and_stays_charged(web: Web) -> None:
    with pytest.raises(ReleaseFailed, match="ZeroDivisionError") as info:
        service.run_query(web.settings, username="rita", project="reoffending",
                          query=DPQuery(**COUNT), job=slow_jobs.fail)  # fmt: skip
    assert "stays spent (ledger entry #1)" in info.value.problem
    assert spends(web) == [(0.1, SpendState.running)]


def test_a_slow_query_does_not_hold_up_another_user(web: Web, tmp_path: Path) -> None:
    """rita's release runs (held until the test lets it go) while nora's is answered."""
    web.identity.servers["nora"] = "reoffending"
    flag = tmp_path / "go"
    slow: dict[str, Any] = {}

    def rita() -> None:
        try:
            slow["result"] = service.run_query(
                web.settings, username="rita", project="reoffending",
                query=DPQuery(**{**COUNT, "rho": 0.2}),
                job=functools.partial(slow_jobs.held, str(flag)),
            )  # fmt: skip
        except Exception as exc:  # reported by the asserts below
            slow["error"] = exc

    thread = threading.Thread(target=rita)
    thread.start()
    try:
        deadline = time.monotonic() + 200  # the workers may still be starting
        while (0.2, SpendState.running) not in spends(web) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (0.2, SpendState.running) in spends(web), slow  # rita's release is running
        reply = web.post("t-nora", **{**COUNT, "rho": 0.1})
        assert reply.status_code == 200, reply.text
        assert thread.is_alive() and not slow  # answered while rita's release still runs
        assert reply.json()["budget"]["rho_spent"] == pytest.approx(0.3)  # rita's counts
    finally:
        flag.touch()
        thread.join(120)
    assert "error" not in slow, slow
    assert sorted(spends(web)) == [(0.1, SpendState.committed), (0.2, SpendState.committed)]


def test_a_query_that_finds_no_worker_is_refused_and_returned(web: Web, tmp_path: Path) -> None:
    """rita's second query while her first runs waits for a worker, then is refused: its
    reservation is cancelled (the data was never touched), so nothing is charged."""
    flag = tmp_path / "go"
    errors: list[BaseException] = []

    def first() -> None:
        try:
            service.run_query(web.settings, username="rita", project="reoffending",
                              query=DPQuery(**COUNT),
                              job=functools.partial(slow_jobs.held, str(flag)))  # fmt: skip
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        deadline = time.monotonic() + 200
        while (0.1, SpendState.running) not in spends(web) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(Busy, match="already has 1 DP query running") as info:
            service.run_query(web.settings, username="rita", project="reoffending",
                              query=DPQuery(**{**COUNT, "rho": 0.3}),
                              limits=PrivacySetting(queue_wait_s=0.5))  # fmt: skip
        assert info.value.status_code == 503 and "Nothing was charged" in info.value.problem
        assert spends(web) == [(0.1, SpendState.running), (0.3, SpendState.cancelled)]
        with web.tx() as session:
            status = ledger.status(session, project="reoffending", dataset="convictions")
        assert status.spent_micro == 100_000  # the cancelled reservation does not count
    finally:
        flag.touch()
        thread.join(120)
    assert not errors
    assert "privacy.cancelled" in _audit_actions(web)
