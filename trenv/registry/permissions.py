"""Who may do what: pure functions of plain facts, each with its own test.

Kept free of database access so each rule can be read, reviewed and tested on its own.
"""

from __future__ import annotations

from trenv.store.models import GlobalRole, GrantStatus

GOVERNANCE_ROLES = frozenset({GlobalRole.admin, GlobalRole.steward})


def may_propose_grant(roles: set[GlobalRole]) -> bool:
    """Stewards and admins propose grants; researchers cannot open data to themselves."""
    return bool(roles & GOVERNANCE_ROLES)


def may_approve_grant(
    *, approver: str, proposer: str, approver_controls_supplier: bool, status: GrantStatus
) -> bool:
    """The supplier's data controller agrees, and is never the person who proposed it."""
    return status == GrantStatus.proposed and approver_controls_supplier and approver != proposer


def may_revoke_grant(
    *, roles: set[GlobalRole], controls_supplier: bool, status: GrantStatus
) -> bool:
    """Any single governance role or the supplier's controller may close access at once."""
    return status != GrantStatus.revoked and (bool(roles & GOVERNANCE_ROLES) or controls_supplier)


def may_approve_image(roles: set[GlobalRole]) -> bool:
    return GlobalRole.admin in roles
