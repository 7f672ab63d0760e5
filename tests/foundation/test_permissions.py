"""One test per permission rule (trenv/registry/permissions.py)."""

from __future__ import annotations

from trenv.registry import permissions as p
from trenv.store.models import GlobalRole, GrantStatus


def test_only_stewards_and_admins_propose_grants() -> None:
    assert p.may_propose_grant({GlobalRole.steward})
    assert p.may_propose_grant({GlobalRole.admin})
    assert not p.may_propose_grant({GlobalRole.checker})
    assert not p.may_propose_grant(set())


def test_grant_approval_needs_the_suppliers_controller_who_is_not_the_proposer() -> None:
    base = {"approver": "carl", "proposer": "stella", "status": GrantStatus.proposed}
    assert p.may_approve_grant(**base, approver_controls_supplier=True)
    assert not p.may_approve_grant(**base, approver_controls_supplier=False)
    assert not p.may_approve_grant(
        approver="carl",
        proposer="carl",
        approver_controls_supplier=True,
        status=GrantStatus.proposed,
    )
    for status in (GrantStatus.active, GrantStatus.revoked):
        assert not p.may_approve_grant(
            **{**base, "status": status}, approver_controls_supplier=True
        )


def test_revocation_by_governance_or_controller_unless_already_revoked() -> None:
    assert p.may_revoke_grant(
        roles={GlobalRole.steward}, controls_supplier=False, status=GrantStatus.active
    )
    assert p.may_revoke_grant(roles=set(), controls_supplier=True, status=GrantStatus.proposed)
    assert not p.may_revoke_grant(
        roles={GlobalRole.checker}, controls_supplier=False, status=GrantStatus.active
    )
    assert not p.may_revoke_grant(
        roles={GlobalRole.admin}, controls_supplier=True, status=GrantStatus.revoked
    )


def test_only_admins_approve_images() -> None:
    assert p.may_approve_image({GlobalRole.admin})
    assert not p.may_approve_image({GlobalRole.steward, GlobalRole.checker})
