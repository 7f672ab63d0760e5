"""The airlock's re-check of controlled-rounded records, and what a released record keeps.

The solver's choice of up or down cannot be recomputed on the server, so the record
carries it (``cells.rounded``) and the server verifies it: adjacent multiples, an additive
table, no farther from the truth than the closest rounding, small counts published only
where the policy replaces suppression by rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.disclosure.helpers import cells
from tests.disclosure.test_controlled_rounding import SPEC, policy
from trenv.disclosure import OutputRecord, check_table, load_policy
from trenv.disclosure import table as table_mod
from trenv.disclosure.controlled import ControlledRounding
from trenv.disclosure.recheck import recheck


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 900
    return pd.DataFrame(
        {
            "region": rng.choice(["n", "e", "s", "w"], n, p=[0.5, 0.3, 0.17, 0.03]),
            "offence": rng.choice(["theft", "fraud", "arson"], n, p=[0.6, 0.3, 0.1]),
            "months": rng.pareto(1.2, n) * 4,
            "pid": rng.integers(0, 500, n),
        }
    )


def _round_trip(record: OutputRecord) -> OutputRecord:
    return OutputRecord.model_validate_json(record.model_dump_json())


def _rounded(margins: bool = True) -> OutputRecord:
    check = check_table(
        cells(SPEC),
        index=["a"],
        columns=["b"],
        contributor="pid",
        policy="trenv-rounding",
        margins=margins,
    )
    return _round_trip(check.record)


def _at(record: OutputRecord, row: str, column: str) -> int:
    cells_ = record.cells
    return next(
        k for k in range(len(cells_)) if cells_.row[k] == [row] and cells_.column[k] == [column]
    )


def _set(record: OutputRecord, i: int, value: float) -> None:
    assert record.cells.rounded is not None
    record.cells.rounded[i] = value
    record.cells.published[i] = value


@pytest.mark.parametrize("pol_name", ["trenv-rounding", "controlled-5"])
@pytest.mark.parametrize(
    ("statistic", "normalize"),
    [("count", None), ("count", "index"), ("count", "all"), ("sum", None), ("median", None)],
)
@pytest.mark.parametrize("margins", [True, False])
def test_genuine_controlled_records_recheck_clean(
    pol_name: str, statistic: str, normalize: str | None, margins: bool
) -> None:
    pol = load_policy(pol_name) if pol_name != "controlled-5" else policy(method="controlled")
    values = {} if statistic == "count" else {"values": "months", "statistic": statistic}
    for columns in (["offence"], []):
        check = check_table(
            _data(),
            index=["region"],
            columns=columns,
            contributor="pid",
            margins=margins,
            normalize=normalize if columns else None,
            policy=pol,
            **values,  # type: ignore[arg-type]
        )
        problems = recheck(_round_trip(check.record), pol).problems
        assert problems == [], (columns, problems)


def test_the_spec_table_rechecks_clean_and_publishes_its_small_cell() -> None:
    record = _rounded()
    assert recheck(record, "trenv-rounding").ok
    i = _at(record, "x", "p")
    assert record.cells.published[i] in (0, 10) and record.cells.value[i] == 3


def test_a_rounding_to_a_multiple_that_is_not_adjacent_is_refused() -> None:
    # (z, q) = 26 "rounded" to 40, with its row and column totals raised alike: the table
    # still adds up, but 40 is no multiple of 10 next to 26.
    record = _rounded()
    cells_ = record.cells
    assert cells_.rounded is not None
    for row, column in (("z", "q"), ("z", "All"), ("All", "q"), ("All", "All")):
        i = _at(record, row, column)
        _set(
            record,
            i,
            float(cells_.rounded[i]) + (40 - float(cells_.rounded[_at(record, "z", "q")])),
        )
    problems = recheck(record, "trenv-rounding").problems
    assert any("26 is rounded to 40, not to a multiple of 10 next to it" in p for p in problems)


def test_a_table_that_does_not_add_up_is_refused() -> None:
    # The grand total moved to the other multiple next to 122: adjacent, but no longer
    # the sum of the rounded cells.
    record = _rounded()
    i = _at(record, "All", "All")
    other = 130.0 if record.cells.rounded[i] == 120 else 120.0
    _set(record, i, other)
    problems = recheck(record, "trenv-rounding").problems
    assert any("does not add up" in p for p in problems)


def test_a_small_cell_published_unrounded_is_refused() -> None:
    record = _rounded()
    i = _at(record, "x", "p")
    _set(record, i, 3.0)  # the true count, "rounded" to itself
    problems = recheck(record, "trenv-rounding").problems
    assert any("['x']/['p']: the count 3 is rounded to 3" in p for p in problems)
    # The whole table unrounded (the record says rounding "none"): the policy rounds
    # every count, a controlled rounding exists, and the small cell is below the threshold.
    plain = _rounded()
    plain.rounding = "none"
    plain.cells.rounded = None
    plain.cells.published = list(plain.cells.value)
    problems = recheck(plain, "trenv-rounding").problems
    assert any("a controlled rounding to base 10 exists" in p for p in problems)
    assert any("['x']/['p'] is published but threshold" in p for p in problems)


def test_a_hand_picked_rounding_is_refused() -> None:
    # Any choice of up and down that adds up would pass the first two checks. Moving one
    # cell with its row total, column total and grand total by a base keeps the table
    # additive and (where all four stay next to their true values) every value adjacent,
    # but moves it away from the truth: a hand-picked rounding could carry the truth in
    # its choice of up and down.
    base_record = _rounded()
    cells_ = base_record.cells
    assert cells_.rounded is not None
    truth = {
        (r[0], c[0]): v for r, c, v in zip(cells_.row, cells_.column, cells_.value, strict=True)
    }
    shown = {
        (r[0], c[0]): v for r, c, v in zip(cells_.row, cells_.column, cells_.rounded, strict=True)
    }
    for row in ("x", "y", "z"):
        for column in ("p", "q"):
            for step in (10, -10):
                keys = [(row, column), (row, "All"), ("All", column), ("All", "All")]
                if not all(abs(shown[k] + step - truth[k]) < 10 for k in keys):
                    continue
                record = _round_trip(base_record)
                for key in keys:
                    _set(record, _at(record, *key), float(shown[key] + step))
                problems = recheck(record, "trenv-rounding").problems
                assert any("the rounding was chosen by hand" in p for p in problems), problems
                assert not any("next to it" in p or "add up" in p for p in problems)
                return
    pytest.fail(f"no cell can be moved with its totals in {shown}")


def test_small_cells_are_published_only_where_the_policy_replaces_suppression() -> None:
    # The same controlled rounding under a policy that rounds but does not replace
    # suppression: the published small cell is caught.
    record = _rounded()
    record.policy = "no-replace"
    pol = load_policy("trenv-rounding").model_dump()
    pol.update(name="no-replace", rounding={"method": "controlled", "base": 10})
    record.policy_parameters = pol
    from trenv.disclosure import Policy

    problems = recheck(record, Policy.model_validate(pol)).problems
    assert any("['x']/['p'] is published but threshold" in p for p in problems)


def test_a_few_people_with_many_rows_are_not_protected_by_rounding() -> None:
    # Two people with 15 rows in (x, p): check_table suppresses the cell (rounding hides a
    # count to within the base, not who is in the cell); a record that publishes its
    # rounded count anyway is caught.
    extra = pd.DataFrame({"a": "x", "b": "p", "v": 1.0, "pid": [900] * 8 + [901] * 7})
    check = check_table(
        pd.concat([cells({**SPEC, ("x", "p"): []}), extra]),
        index=["a"],
        columns=["b"],
        contributor="pid",
        policy="trenv-rounding",
        margins=True,
    )
    record = _round_trip(check.record)
    assert recheck(record, "trenv-rounding").ok
    i = _at(record, "x", "p")
    assert record.cells.suppressed[i] == "primary" and record.cells.rounded is not None
    for k, kind in enumerate(record.cells.suppressed):
        if kind is not None:  # publish every hidden cell as its recorded rounding
            record.cells.published[k] = record.cells.rounded[k]
            record.cells.suppressed[k] = None
    problems = recheck(record, "trenv-rounding").problems
    assert any("['x']/['p'] is published but threshold" in p for p in problems), problems


def test_forged_rounding_parameters_are_refused() -> None:
    record = _rounded()
    record.policy_parameters = {
        **record.policy_parameters,
        "rounding": {"method": "controlled", "base": 100, "replaces_suppression": True},
    }
    problems = recheck(record, "trenv-rounding").problems
    assert any("rounding parameters" in p for p in problems)
    lost = _rounded()
    lost.cells.rounded = None
    assert any("lacks their rounding" in p for p in recheck(lost, "trenv-rounding").problems)


def test_a_claimed_fallback_is_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    # A record that says "no controlled rounding could be made" and suppresses instead is
    # accepted only if the server finds none either; a two-way table always has one.
    def none_found(values: np.ndarray, relations: Any, base: int) -> ControlledRounding:
        return ControlledRounding(None, np.inf, False, "no controlled rounding (test)")

    with monkeypatch.context() as patched:
        patched.setattr(table_mod, "controlled_round", none_found)
        check = check_table(
            cells(SPEC),
            index=["a"],
            columns=["b"],
            contributor="pid",
            policy="trenv-rounding",
            margins=True,
        )
    problems = recheck(_round_trip(check.record), "trenv-rounding").problems
    assert problems == [
        "the counts are published unrounded, but a controlled rounding to base 10 exists "
        "for this table (the policy rounds every count)"
    ]


def test_a_rounded_record_travels_without_its_true_counts() -> None:
    record = _rounded()
    public = record.public()
    cells_ = public["cells"]
    assert all(v is None for v in cells_["value"])  # published cells too: 3 would undo it
    assert all(v is None for v in cells_["rows"]) and all(v is None for v in cells_["rounded"])
    assert all(f == [] for f in cells_["flags"])  # "zeros" vs "threshold" tells a true 0
    assert cells_["published"] == record.cells.published
    assert all(v["flagged_cells"] is None for v in public["rules"])
    assert all(v["status"] in (None, "fail") for v in public["rules"])
    # An unrounded record keeps the counts of its published cells, as before.
    plain = check_table(
        cells(SPEC), index=["a"], columns=["b"], contributor="pid", margins=True
    ).record.public()
    assert any(v is not None for v in plain["cells"]["value"])
