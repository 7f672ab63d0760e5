"""Controlled rounding: the solver, check_table's use of it, and rounding in place of
suppression under a profile that says so."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.disclosure.helpers import cells, flags_of
from trenv.disclosure import DisclosureInputError, Policy, check_table, load_policy
from trenv.disclosure import table as table_mod
from trenv.disclosure.controlled import ControlledRounding, controlled_round, problems
from trenv.disclosure.suppression import Relation, table_relations


def _grid(inner: np.ndarray) -> np.ndarray:
    r, c = inner.shape
    g = np.zeros((r + 1, c + 1))
    g[:r, :c] = inner
    g[:r, c] = inner.sum(axis=1)
    g[r, :c] = inner.sum(axis=0)
    g[r, c] = inner.sum()
    return g


def policy(**rounding: Any) -> Policy:
    """trenv-default with another rounding (validated like a profile file)."""
    data = load_policy("trenv-default").model_dump()
    data.update(name="controlled-test", rounding=rounding)
    return Policy.model_validate(data)


@pytest.mark.parametrize("base", [3, 5, 10])
def test_every_two_way_table_gets_an_additive_rounding_to_adjacent_multiples(
    base: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trenv.disclosure import controlled

    def no_branching(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a two-way table's LP vertex is integral: no branch and bound")

    monkeypatch.setattr(controlled, "milp", no_branching)
    rng = np.random.default_rng(base)
    for _ in range(30):
        r, c = (int(k) for k in rng.integers(1, 7, 2))
        inner = rng.choice([0, 1, 2, 3, 4, 5, 7, 9, 10, 13, 25, 40], (r, c)).astype(float)
        grid = _grid(inner)
        relations = table_relations(r, c)
        result = controlled_round(grid.ravel(), relations, base)
        assert result.found and result.optimal  # Cox (1987): always exists for two-way
        rounded = result.rounded.reshape(grid.shape)
        assert problems(result.rounded, grid.ravel(), relations, base) == []
        assert np.all(rounded % base == 0)
        assert np.all(np.abs(rounded - grid) < base)
        multiples = grid % base == 0
        assert np.array_equal(rounded[multiples], grid[multiples])  # zero-restricted
        # Additive: the rounded cells add up to the rounded margins.
        assert np.array_equal(rounded[:r, c], rounded[:r, :c].sum(axis=1))
        assert np.array_equal(rounded[r, :c], rounded[:r, :c].sum(axis=0))
        assert rounded[r, c] == rounded[:r, :c].sum()


def test_the_rounding_is_the_closest_one() -> None:
    # Against every one of the 2^k choices of up or down on small tables.
    rng = np.random.default_rng(3)
    base = 5
    for _ in range(12):
        inner = rng.integers(0, 14, (2, 3)).astype(float)
        grid = _grid(inner).ravel()
        relations = table_relations(2, 3)
        low = np.floor(grid / base) * base
        free = np.flatnonzero(grid != low)
        best = np.inf
        for ups in itertools.product((0, 1), repeat=len(free)):
            candidate = low.copy()
            candidate[free] += base * np.array(ups)
            if not problems(candidate, grid, relations, base):
                best = min(best, float(np.abs(candidate - grid).sum()))
        result = controlled_round(grid, relations, base)
        assert result.distance == best


def test_relations_without_a_controlled_rounding_are_reported() -> None:
    # Three cells of 1, each pair adding up to 2: to base 2 every cell must be 0 or 2 and
    # every pair 2, which no choice gives (an odd cycle: not a two-way table).
    relations = [
        Relation(np.array([0, 1]), 3),
        Relation(np.array([1, 2]), 4),
        Relation(np.array([0, 2]), 5),
    ]
    result = controlled_round(np.array([1.0, 1, 1, 2, 2, 2]), relations, 2)
    assert not result.found
    assert "no controlled rounding to base 2 exists" in result.reason


def test_relations_that_are_no_network_get_the_integer_programme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a + b, b + c and a + c + d: an odd cycle, so the LP relaxation's vertex is fractional
    # (every cell half up) and branch and bound must find the closest 0/1 choice.
    from trenv.disclosure import controlled

    calls: list[int] = []
    real = controlled.milp

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(controlled, "milp", spy)
    values = np.array([12.0, 12, 12, 1, 24, 24, 25])
    relations = [
        Relation(np.array([0, 1]), 4),
        Relation(np.array([1, 2]), 5),
        Relation(np.array([0, 2, 3]), 6),
    ]
    result = controlled_round(values, relations, 5)
    assert calls and result.found and result.optimal
    assert problems(result.rounded, values, relations, 5) == []
    low = np.floor(values / 5) * 5
    free = np.flatnonzero(values != low)
    best = min(
        float(np.abs(c - values).sum())
        for ups in itertools.product((0, 1), repeat=len(free))
        for c in [low + np.isin(np.arange(len(values)), free[np.array(ups, bool)]) * 5]
        if not problems(c, values, relations, 5)
    )
    assert result.distance == best == 13


def test_a_table_of_multiples_is_unchanged_and_bad_input_refused() -> None:
    grid = _grid(np.array([[10.0, 20.0], [0.0, 30.0]])).ravel()
    result = controlled_round(grid, table_relations(2, 2), 10)
    assert np.array_equal(result.rounded, grid) and result.distance == 0
    with pytest.raises(ValueError, match="whole counts"):
        controlled_round(np.array([1.5, 1.5]), [Relation(np.array([0]), 1)], 5)


SPEC = {
    ("x", "p"): [1.0] * 3,  # few people
    ("x", "q"): [1.0] * 42,
    ("y", "p"): [1.0] * 33,
    ("y", "q"): [],  # an empty cell
    ("z", "p"): [1.0] * 18,
    ("z", "q"): [1.0] * 26,
}


def test_controlled_rounding_without_replacing_suppression() -> None:
    pol = policy(method="controlled", base=5)
    check = check_table(
        cells(SPEC), index=["a"], columns=["b"], contributor="pid", policy=pol, margins=True
    )
    assert check.record.rounding == "controlled"
    assert pd.isna(check.safe.loc["x", "p"])  # small counts are still suppressed
    truth = check.table.to_numpy(dtype=float)
    rounded = np.array(check.record.cells.rounded, dtype=float).reshape(truth.shape)
    assert np.all(rounded % 5 == 0) and np.all(np.abs(rounded - truth) < 5)
    assert np.array_equal(rounded[:, 2], rounded[:, :2].sum(axis=1))
    assert np.array_equal(rounded[3], rounded[:3].sum(axis=0))
    shown = check.safe.to_numpy(dtype=float, na_value=np.nan)
    published = ~np.isnan(shown)
    assert np.array_equal(shown[published], rounded[published])


def test_rounding_replaces_suppression_for_small_counts() -> None:
    check = check_table(
        cells(SPEC),
        index=["a"],
        columns=["b"],
        contributor="pid",
        policy="trenv-rounding",
        margins=True,
    )
    safe = check.safe
    assert not check.suppressed.to_numpy().any()
    assert safe.loc["x", "p"] in (0, 10)  # 3 people: published rounded, not suppressed
    assert safe.loc["y", "q"] == 0  # zero-restricted: a true 0 stays 0
    assert "threshold" in flags_of(check, "x", "p")  # still flagged for the checker
    rules = {v.rule_id: v for v in check.record.rules}
    assert rules["threshold"].status == "pass" and rules["threshold"].flagged_cells == 1
    assert "controlled rounding to base 10" in rules["threshold"].detail
    assert rules["zeros"].status == "pass"
    assert check.record.status != "fail"
    values = safe.to_numpy(dtype=float)
    assert np.all(values % 10 == 0)
    assert np.array_equal(values[:3, 2], values[:3, :2].sum(axis=1))
    assert values[3, 2] in (120, 130)  # 122 people: a multiple of 10 next to it


def test_rules_rounding_does_not_address_still_suppress() -> None:
    # Class disclosure (all of region y in one offence) is not hidden by rounding; under
    # a profile that suppresses it, it is suppressed (with partners) all the same.
    data = load_policy("trenv-rounding").model_dump()
    data.update(name="rounding-class", class_disclosure={"action": "suppress"})
    pol = Policy.model_validate(data)
    check = check_table(
        cells(SPEC), index=["a"], columns=["b"], contributor="pid", policy=pol, margins=True
    )
    assert pd.isna(check.safe.loc["y", "p"])
    assert check.record.cells.suppressed[3] == "primary"  # (y, p)
    assert check.record.audit_passed is True
    # A few people with many rows each: rounding hides a count to within the base, not
    # who is in the cell; (x, p) holds 2 people with 15 rows, so it stays suppressed.
    many = cells({**SPEC, ("x", "p"): []})
    extra = pd.DataFrame({"a": "x", "b": "p", "v": 1.0, "pid": [900] * 8 + [901] * 7})
    check = check_table(
        pd.concat([many, extra]),
        index=["a"],
        columns=["b"],
        contributor="pid",
        policy="trenv-rounding",
        margins=True,
    )
    assert pd.isna(check.safe.loc["x", "p"])
    assert {v.rule_id: v.status for v in check.record.rules}["threshold"] == "fail"


def test_sums_are_not_rounded_and_keep_their_suppression() -> None:
    spec = {k: [float(i + 1) for i in range(len(v))] for k, v in SPEC.items()}
    check = check_table(
        cells(spec),
        index=["a"],
        columns=["b"],
        values="v",
        statistic="sum",
        contributor="pid",
        policy="trenv-rounding",
        margins=True,
    )
    assert check.record.rounding == "none"
    assert pd.isna(check.safe.loc["x", "p"])
    assert check.safe.loc["z", "p"] == sum(range(1, 19))


def test_a_table_without_a_controlled_rounding_falls_back_to_suppression(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def none_found(values: np.ndarray, relations: Any, base: int) -> ControlledRounding:
        return ControlledRounding(None, np.inf, False, "no controlled rounding (test)")

    monkeypatch.setattr(table_mod, "controlled_round", none_found)
    check = check_table(
        cells(SPEC),
        index=["a"],
        columns=["b"],
        contributor="pid",
        policy="trenv-rounding",
        margins=True,
    )
    assert check.record.rounding == "none"
    assert pd.isna(check.safe.loc["x", "p"])  # suppressed, as without rounding
    assert check.safe.loc["z", "p"] == 18  # unrounded
    verdict = {v.rule_id: v for v in check.record.rules}["controlled-rounding"]
    assert verdict.status == "review" and "suppressed instead" in verdict.detail
    assert check.record.status == "fail"


@pytest.mark.parametrize(
    ("rounding", "message"),
    [
        ({"method": "base", "base": 10, "replaces_suppression": True}, "method: controlled"),
        ({"method": "controlled", "base": 5, "replaces_suppression": True}, "at least 10"),
    ],
)
def test_a_profile_cannot_replace_suppression_unsafely(
    rounding: dict[str, Any], message: str, tmp_path: Any
) -> None:
    import yaml

    bad = tmp_path / "p.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "version": "1", "rounding": rounding}))
    with pytest.raises(DisclosureInputError, match=message):
        load_policy(bad)
    # A base of 2 is refused whatever the threshold.
    low = tmp_path / "q.yaml"
    low.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "version": "1",
                "threshold": {"min_contributors": 2},
                "rounding": {"method": "controlled", "base": 2, "replaces_suppression": True},
            }
        )
    )
    with pytest.raises(DisclosureInputError, match="at least 3"):
        load_policy(low)


def test_the_rounding_profile_ships() -> None:
    pol = load_policy("trenv-rounding")
    assert pol.rounding.method == "controlled" and pol.rounding.replaces_suppression
    assert pol.rounding.base >= pol.threshold.min_contributors
