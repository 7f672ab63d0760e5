"""The four-eyes rule on grants, end to end through the service layer and the next spawn.

What tests/foundation/test_registry.py already shows (the proposer cannot approve, only the
supplier's controller approves, revocation ends effectiveness) is not repeated; this adds
that no single person opens data in any role combination, and that a revocation reaches the
next server start even before the view is published again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.admin.world import Tx, build
from tests.support.world import OPERATOR
from trenv import audit
from trenv.config import Settings
from trenv.errors import Forbidden
from trenv.hub.launch import plan_launch
from trenv.registry import grants, organisations, users
from trenv.store.models import GlobalRole, GrantStatus


def test_one_person_never_opens_data_whatever_their_roles(
    tx: Tx, settings: Settings, tmp_path: Path
) -> None:
    build(tx, settings, tmp_path)
    with tx() as session:
        # carl becomes steward and admin too: he holds every role there is.
        users.set_roles(session, actor=OPERATOR, username="carl",
                        roles={GlobalRole.steward, GlobalRole.admin})  # fmt: skip
        grant = grants.propose_grant(session, proposer="carl", project="reoffending",
                                     dataset="convictions@2026-10")  # fmt: skip
        with pytest.raises(Forbidden, match="cannot also approve"):
            grants.approve_grant(session, approver="carl", grant_id=grant.id)
        # an approval by someone who is not the supplier's controller does not count either
        for other in ("adam", "stella", "rita"):
            with pytest.raises(Forbidden, match="not a data controller"):
                grants.approve_grant(session, approver=other, grant_id=grant.id)
        assert grant.status == GrantStatus.proposed
        effective = [g.dataset.reference for g in grants.effective_grants(session, "reoffending")]
        assert "convictions@2026-10" not in effective
        # a second controller of the supplier, a different person, makes it count
        users.add_user(session, actor=OPERATOR, username="olivia")
        organisations.add_controller(session, actor=OPERATOR, slug="om", username="olivia")
        grants.approve_grant(session, approver="olivia", grant_id=grant.id)
        assert (grant.proposed_by, grant.approved_by) == ("carl", "olivia")
        effective = [g.dataset.reference for g in grants.effective_grants(session, "reoffending")]
        assert "convictions@2026-10" in effective


def test_a_refused_approval_leaves_the_grant_proposed(
    tx: Tx, settings: Settings, tmp_path: Path
) -> None:
    """A refused approval leaves nothing behind: no status change, no approval event."""
    build(tx, settings, tmp_path)
    with tx() as session:
        grant_id = grants.propose_grant(session, proposer="stella", project="reoffending",
                                        dataset="convictions@2026-10").id  # fmt: skip
    with pytest.raises(Forbidden), tx() as session:
        grants.approve_grant(session, approver="stella", grant_id=grant_id)
    with tx() as session:
        assert grants.get_grant(session, grant_id).status == GrantStatus.proposed
        approvals = audit.events(session, action_prefix="grant.approve")
        assert all(e.object_id != str(grant_id) for e in approvals)


def test_revocation_takes_effect_at_the_next_spawn(
    tx: Tx, settings: Settings, tmp_path: Path
) -> None:
    grant_id = build(tx, settings, tmp_path)
    with tx() as session:
        before = plan_launch(session, settings, username="rita", project="reoffending")
    assert before.datasets == ["sentences@1"] and before.data_dir.name == "data"
    with tx() as session:
        grants.revoke_grant(session, actor="carl", grant_id=grant_id, reason="consent withdrawn")
    # The published view still holds the file, but no server starts with it mounted.
    assert (settings.projects_dir / "reoffending" / "data" / "sentences.parquet").exists()
    with tx() as session:
        after = plan_launch(session, settings, username="rita", project="reoffending")
    assert after.datasets == [] and after.withheld == ["sentences@1"]
    assert after.data_dir.name == "unpublished"


def test_a_stricter_grant_again_withholds_the_view_until_it_is_republished(
    tx: Tx, settings: Settings, tmp_path: Path
) -> None:
    """Revoked and granted again with a column dropped: the view published under the old
    grant still holds that column, so no server mounts it until the vault publishes again."""
    from trenv.vault import service as vault

    grant_id = build(tx, settings, tmp_path)
    with tx() as session:
        grants.revoke_grant(session, actor="carl", grant_id=grant_id, reason="too detailed")
        stricter = grants.propose_grant(session, proposer="stella", project="reoffending",
                                        dataset="sentences@1",
                                        rules={"drop": ["sentence_days"]})  # fmt: skip
        grants.approve_grant(session, approver="carl", grant_id=stricter.id)
    with tx() as session:
        stale = plan_launch(session, settings, username="rita", project="reoffending")
    assert stale.withheld == ["sentences@1"] and stale.data_dir.name == "unpublished"
    with tx() as session:
        vault.publish_project(session, settings, "reoffending", actor=OPERATOR)
    with tx() as session:
        fresh = plan_launch(session, settings, username="rita", project="reoffending")
    assert fresh.datasets == ["sentences@1"] and fresh.withheld == []
