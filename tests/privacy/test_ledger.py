"""The privacy budget ledger on SQLite and PostgreSQL: never overspent, never given back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.world import populate
from trenv.config import Settings
from trenv.errors import Invalid, NotFound
from trenv.privacy import ledger
from trenv.store import transaction
from trenv.store.models import AuditEvent, PrivacySpend, SpendState

Tx = Callable[[], AbstractContextManager[Session]]


@pytest.fixture
def budget(tx: Tx) -> Tx:
    with tx() as session:
        populate(session)
        ledger.set_budget(
            session, actor="adam", project="reoffending", dataset="convictions", rho_total=1.0
        )
    return tx


def reserve(session: Session, rho: float) -> PrivacySpend:
    return ledger.reserve(
        session, actor="rita", project="reoffending", dataset="convictions", rho=rho,
        plan_hash="p" * 64,
    )  # fmt: skip


def counts(session: Session) -> tuple[int, int]:
    spends = session.scalar(select(func.count()).select_from(PrivacySpend)) or 0
    events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return int(spends), int(events)


def test_micro_units_round_up() -> None:
    assert ledger.to_micro(0.1) == 100_000
    assert ledger.to_micro(1e-7) == 1  # never rounds a real spend down to nothing
    for bad in (0.0, -0.5, float("nan"), float("inf")):
        with pytest.raises(Invalid, match="positive"):
            ledger.to_micro(bad)


def test_reserve_run_commit(budget: Tx) -> None:
    with budget() as session:
        spend = reserve(session, 0.25)
        ledger.mark_running(session, spend.id)
        ledger.commit(session, spend.id, {"value": 41.7})
        status = ledger.status(session, project="reoffending", dataset="convictions")
    assert status.to_dict()["rho_remaining"] == 0.75


def test_overspend_is_refused_and_changes_nothing(budget: Tx) -> None:
    with budget() as session:
        reserve(session, 0.9)
        before = counts(session)
    with pytest.raises(ledger.BudgetExceeded, match=r"only 0\.1 of the 1\.0"), budget() as s:
        reserve(s, 0.2)
    with budget() as session:
        assert counts(session) == before
        assert ledger.status(session, project="reoffending", dataset="convictions").to_dict()[
            "rho_spent"
        ] == pytest.approx(0.9)


def test_unknown_budget_is_named(budget: Tx) -> None:
    with pytest.raises(NotFound, match="no privacy budget on dataset 'seizures'"), budget() as s:
        ledger.reserve(
            s, actor="rita", project="reoffending", dataset="seizures", rho=0.1, plan_hash="x"
        )


def test_budget_cannot_be_lowered_below_what_was_spent(budget: Tx) -> None:
    with budget() as session:
        reserve(session, 0.6)
        with pytest.raises(Invalid, match="already spent"):
            ledger.set_budget(
                session, actor="adam", project="reoffending", dataset="convictions", rho_total=0.5
            )
        raised = ledger.set_budget(
            session, actor="adam", project="reoffending", dataset="convictions", rho_total=2.0
        )
    assert raised.to_dict()["rho_remaining"] == pytest.approx(1.4)


def test_only_an_unrun_reservation_can_be_cancelled(budget: Tx) -> None:
    with budget() as session:
        unrun = reserve(session, 0.5)
        ledger.cancel(session, unrun.id)
        ran = reserve(session, 0.5)
        ledger.mark_running(session, ran.id)
        with pytest.raises(Invalid, match="running; it cannot become cancelled"):
            ledger.cancel(session, ran.id)
        status = ledger.status(session, project="reoffending", dataset="convictions")
    assert status.spent_micro == 500_000  # the cancelled half came back, the run half did not


def test_fifty_concurrent_reservations_never_exceed_the_budget(
    budget: Tx, settings: Settings
) -> None:
    granted: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()

    def query() -> None:
        try:
            with transaction(settings) as session:
                spend = reserve(session, 0.03)
            with lock:
                granted.append(spend.id)
        except ledger.BudgetExceeded as error:
            with lock:
                refused.append(str(error))

    threads = [threading.Thread(target=query) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with budget() as session:
        status = ledger.status(session, project="reoffending", dataset="convictions")
    assert len(granted) == 33 and len(refused) == 17  # floor(1.0 / 0.03) = 33
    assert status.spent_micro == 33 * 30_000 <= status.total_micro


KILLED_MID_QUERY = """
import os, signal
from trenv.config import get_settings
from trenv.privacy import ledger
from trenv.store import transaction
with transaction(get_settings()) as session:
    spend = ledger.reserve(session, actor="rita", project="reoffending", dataset="convictions",
                           rho=0.4, plan_hash="k" * 64)
with transaction(get_settings()) as session:
    ledger.mark_running(session, spend.id)
print(spend.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies while the query runs, before commit
"""


def test_process_killed_mid_query_keeps_the_spend(budget: Tx, settings: Settings) -> None:
    env = {**os.environ, **settings.as_environment()}
    result = subprocess.run(
        [sys.executable, "-c", KILLED_MID_QUERY], env=env, capture_output=True, text=True
    )
    assert result.returncode == -9, result.stderr
    spend_id = int(result.stdout.split()[0])
    with budget() as session:
        spend = session.get(PrivacySpend, spend_id)
        assert spend is not None and spend.state == SpendState.running
        status = ledger.status(session, project="reoffending", dataset="convictions")
        assert status.spent_micro == 400_000
        with pytest.raises(Invalid, match="cannot become cancelled"):
            ledger.cancel(session, spend_id)


def test_budget_changes_and_spends_are_audited(budget: Tx) -> None:
    with budget() as session:
        spend = reserve(session, 0.1)
        ledger.mark_running(session, spend.id)
        ledger.commit(session, spend.id, {"value": 3})
        actions = [
            e.action
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.action.startswith("privacy.")
        ]
    assert actions == [
        "privacy.budget.set", "privacy.reserve", "privacy.running", "privacy.committed"
    ]  # fmt: skip


def test_statuses_lists_every_dataset_budget(budget: Tx) -> None:
    with budget() as session:
        ledger.set_budget(
            session, actor="adam", project="reoffending", dataset="seizures", rho_total=0.5
        )
        names = [s.dataset for s in ledger.statuses(session, project="reoffending")]
    assert names == ["convictions", "seizures"]
