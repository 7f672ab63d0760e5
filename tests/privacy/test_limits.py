"""The DP limits of a policy profile: rho per query, and the worker's time limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from trenv.disclosure import DisclosureInputError, available_policies, load_policy
from trenv.disclosure.policy import PrivacySetting
from trenv.errors import Invalid
from trenv.privacy.ledger import to_micro
from trenv.privacy.service import check_rho


def test_every_profile_has_dp_limits() -> None:
    default = load_policy("trenv-default").privacy
    assert default == PrivacySetting()  # the file states the model's defaults
    assert (default.min_rho_per_query, default.max_rho_per_query) == (1e-6, 1.0)
    assert (default.release_timeout_s, default.queue_wait_s) == (120, 30)
    # The smallest rho is the ledger's unit: it is charged exactly, never rounded up.
    assert to_micro(default.min_rho_per_query) == 1
    for name in available_policies():
        limits = load_policy(name).privacy
        assert 0 < limits.min_rho_per_query <= limits.max_rho_per_query
        assert 0 < limits.release_timeout_s < 600  # below the notebook client's timeout


def test_a_profile_cannot_invert_the_limits(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "name: x\nversion: '1'\nprivacy: {min_rho_per_query: 0.5, max_rho_per_query: 0.1}\n"
    )
    with pytest.raises(DisclosureInputError, match="min_rho_per_query"):
        load_policy(bad)
    typo = tmp_path / "q.yaml"
    typo.write_text("name: x\nversion: '1'\nprivacy: {max_rho: 2}\n")
    with pytest.raises(DisclosureInputError, match="max_rho"):
        load_policy(typo)
    for field in ("release_timeout_s", "min_rho_per_query"):
        zero = tmp_path / f"{field}.yaml"
        zero.write_text(f"name: x\nversion: '1'\nprivacy: {{{field}: 0}}\n")
        with pytest.raises(DisclosureInputError, match=field):
            load_policy(zero)


@pytest.mark.parametrize("rho", [1e-6, 0.01, 1, 1.0])
def test_rho_within_the_limits(rho: float) -> None:
    check_rho(rho, PrivacySetting())


@pytest.mark.parametrize(
    ("rho", "message"),
    [
        (1e-300, "at least 1e-06"),
        (9.99e-7, "at least 1e-06"),
        (1.0000001, "at most 1"),
        (float("inf"), "at most 1"),
        (0.0, "positive"),
        (-0.1, "positive"),
        (float("nan"), "positive"),
    ],
)
def test_rho_outside_the_limits(rho: float, message: str) -> None:
    with pytest.raises(Invalid, match=message) as info:
        check_rho(rho, PrivacySetting())
    assert info.value.fix


def test_a_profile_may_set_its_own_limits() -> None:
    strict = PrivacySetting(min_rho_per_query=0.001, max_rho_per_query=0.1)
    check_rho(0.05, strict)
    with pytest.raises(Invalid, match=r"at most 0\.1"):
        check_rho(0.2, strict)
