"""The DP query API: every refusal charges nothing; a release charges the ledger once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.web.conftest import API, Web
from trenv.privacy import ledger
from trenv.store.models import AuditEvent, PrivacySpend, SpendState

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
