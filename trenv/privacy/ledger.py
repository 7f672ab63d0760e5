"""The server-side privacy budget ledger: reserve, run, commit; never give back touched budget.

A query's rho is *reserved* before any data is read, in a transaction that locks the budget
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write transactions are serialised by
``BEGIN IMMEDIATE``), so concurrent queries can never together exceed the budget. The
reservation is marked *running* (in its own committed transaction) before the data is
touched: from then on it counts for ever, even if the process dies before *commit*. Only a
reservation that never ran may be *cancelled*. A query that would overspend is refused
before anything is written.

Amounts are integer micro-units of rho, rounded up, so no rounding ever undercharges.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.errors import Invalid, NotFound
from trenv.registry.projects import get_project
from trenv.store.models import PrivacyBudget, PrivacySpend, SpendState

MICRO = 1_000_000
COUNTED = (SpendState.reserved, SpendState.running, SpendState.committed)


class BudgetExceeded(Invalid):
    """The query would spend more than is left; nothing was charged."""


def to_micro(rho: float) -> int:
    if not math.isfinite(rho) or rho <= 0:
        raise Invalid(f"rho must be a positive number, got {rho!r}.", "Ask for e.g. rho=0.01.")
    return int((Decimal(repr(rho)) * MICRO).to_integral_value(rounding=ROUND_CEILING))


def from_micro(amount: int) -> float:
    return amount / MICRO


@dataclass(frozen=True)
class BudgetStatus:
    project: str
    dataset: str
    total_micro: int
    spent_micro: int

    @property
    def remaining_micro(self) -> int:
        return max(self.total_micro - self.spent_micro, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "dataset": self.dataset,
            "rho_total": from_micro(self.total_micro),
            "rho_spent": from_micro(self.spent_micro),
            "rho_remaining": from_micro(self.remaining_micro),
        }


def _budget(session: Session, project: str, dataset: str, *, lock: bool) -> PrivacyBudget:
    proj = get_project(session, project)
    query = select(PrivacyBudget).where(
        PrivacyBudget.project_id == proj.id, PrivacyBudget.dataset == dataset
    )
    if lock:
        query = query.with_for_update()  # a no-op on SQLite, which BEGIN IMMEDIATE serialises
    budget = session.scalars(query).first()
    if budget is None:
        raise NotFound(
            f"project {project!r} has no privacy budget on dataset {dataset!r}.",
            "An administrator sets one with `trenv budget set`.",
        )
    return budget


def _spent(session: Session, budget: PrivacyBudget) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(PrivacySpend.amount_micro), 0)).where(
            PrivacySpend.budget_id == budget.id, PrivacySpend.state.in_(COUNTED)
        )
    )
    return int(total or 0)


def set_budget(
    session: Session, *, actor: str, project: str, dataset: str, rho_total: float
) -> BudgetStatus:
    total = to_micro(rho_total)
    proj = get_project(session, project)
    budget = session.scalars(
        select(PrivacyBudget)
        .where(PrivacyBudget.project_id == proj.id, PrivacyBudget.dataset == dataset)
        .with_for_update()
    ).first()
    if budget is None:
        budget = PrivacyBudget(project=proj, dataset=dataset, total_micro=total, set_by=actor)
        session.add(budget)
        session.flush()
        before = None
    else:
        spent = _spent(session, budget)
        if total < spent:
            raise Invalid(
                f"rho {rho_total} is less than the {from_micro(spent)} already spent.",
                "A budget can be lowered only down to what was spent.",
            )
        before = from_micro(budget.total_micro)
        budget.total_micro, budget.set_by = total, actor
        budget.updated_at = dt.datetime.now(dt.UTC)
    audit.record(
        session,
        actor=actor,
        action=AuditAction.privacy_budget_set,
        object_type="project",
        object_id=project,
        detail={"dataset": dataset, "rho_total": from_micro(total), "rho_before": before},
    )
    return status(session, project=project, dataset=dataset)


def status(session: Session, *, project: str, dataset: str) -> BudgetStatus:
    budget = _budget(session, project, dataset, lock=False)
    return BudgetStatus(project, dataset, budget.total_micro, _spent(session, budget))


def statuses(session: Session, *, project: str) -> list[BudgetStatus]:
    proj = get_project(session, project)
    budgets = session.scalars(
        select(PrivacyBudget)
        .where(PrivacyBudget.project_id == proj.id)
        .order_by(PrivacyBudget.dataset)
    )
    return [BudgetStatus(project, b.dataset, b.total_micro, _spent(session, b)) for b in budgets]


def reserve(
    session: Session, *, actor: str, project: str, dataset: str, rho: float, plan_hash: str
) -> PrivacySpend:
    """Charge ``rho`` against the budget, or refuse (BudgetExceeded) having written nothing."""
    amount = to_micro(rho)
    budget = _budget(session, project, dataset, lock=True)
    spent = _spent(session, budget)
    if spent + amount > budget.total_micro:
        remaining = from_micro(max(budget.total_micro - spent, 0))
        raise BudgetExceeded(
            f"this query needs rho {from_micro(amount)} but only {remaining} of the "
            f"{from_micro(budget.total_micro)} budget on {dataset!r} is left.",
            "Ask for a smaller rho, or ask an administrator for more budget.",
        )
    spend = PrivacySpend(
        budget=budget,
        actor=actor,
        plan_hash=plan_hash,
        amount_micro=amount,
        state=SpendState.reserved,
    )
    session.add(spend)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.privacy_reserve,
        object_type="privacy_spend",
        object_id=spend.id,
        detail={"project": project, "dataset": dataset, "rho": from_micro(amount),
                "plan_hash": plan_hash},
    )  # fmt: skip
    return spend


def _spend(session: Session, spend_id: int) -> PrivacySpend:
    spend = session.get(PrivacySpend, spend_id, with_for_update=True)
    if spend is None:
        raise NotFound(f"unknown privacy spend #{spend_id}.")
    return spend


def _move(session: Session, spend_id: int, allowed_from: set[SpendState], to: SpendState,
          release: dict[str, Any] | None = None) -> PrivacySpend:  # fmt: skip
    spend = _spend(session, spend_id)
    if spend.state not in allowed_from:
        raise Invalid(
            f"privacy spend #{spend_id} is {spend.state.value}; it cannot become {to.value}."
        )
    spend.state, spend.updated_at = to, dt.datetime.now(dt.UTC)
    if release is not None:
        spend.release = release
    audit.record(
        session,
        actor=spend.actor,
        action=AuditAction(f"privacy.{to.value}"),
        object_type="privacy_spend",
        object_id=spend.id,
        detail={"rho": from_micro(spend.amount_micro), "plan_hash": spend.plan_hash},
    )
    return spend


def mark_running(session: Session, spend_id: int) -> PrivacySpend:
    """Commit this before touching data: from here on the spend is never returned."""
    return _move(session, spend_id, {SpendState.reserved}, SpendState.running)


def commit(session: Session, spend_id: int, release: dict[str, Any]) -> PrivacySpend:
    return _move(session, spend_id, {SpendState.running}, SpendState.committed, release)


def cancel(session: Session, spend_id: int) -> PrivacySpend:
    """Return a reservation whose query never touched the data (e.g. invalid after all)."""
    return _move(session, spend_id, {SpendState.reserved}, SpendState.cancelled)
