"""A DP result saved by ``tre.save`` passes the airlock's ledger check as it is, and fails
as soon as a single value is changed: the lab's file format and the server's check agree."""

from __future__ import annotations

from pathlib import Path

import trenv.lab as tre
from tests.web.conftest import Tx, Web, web  # noqa: F401  (fixture)
from tests.web.test_lab_dp import lab  # noqa: F401  (fixture)
from trenv.airlock.formats import check_file
from trenv.airlock.intake import read_sidecar, read_workspace_file
from trenv.airlock.queries import dp_ledger_entry


def check(workspace: Path, tx: Tx, name: str, project: str = "reoffending") -> tuple[str, str]:
    frozen = read_workspace_file(workspace, f"outputs/{name}.csv")
    sidecar = read_sidecar(workspace, f"outputs/{name}.dp.json")
    with tx() as session:
        result = check_file(
            frozen,
            project=project,
            policy="trenv-default",
            dp_output=sidecar,
            dp_lookup=lambda spend_id: dp_ledger_entry(session, spend_id),
        )
    return result.kind, result.status


def test_a_saved_dp_count_passes_and_a_changed_value_fails(lab: Path, tx: Tx) -> None:  # noqa: F811
    out = tre.dp.count("convictions", by="offence", rho=0.1, max_contributions=3)
    tre.save(out, "by_offence")
    assert check(lab, tx, "by_offence") == ("dp-output", "pass")
    assert check(lab, tx, "by_offence", project="other")[1] == "fail"
    csv = lab / "outputs" / "by_offence.csv"
    lines = csv.read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    column = header.index("count")
    first[column] = str(int(float(first[column])) + 1)
    csv.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    assert check(lab, tx, "by_offence")[1] == "fail"


def test_a_saved_dp_mean_passes(lab: Path, tx: Tx) -> None:  # noqa: F811
    out = tre.dp.mean("convictions", "sentence_days", bounds=(1, 400), rho=0.1)
    tre.save(out, "mean_sentence")
    assert check(lab, tx, "mean_sentence") == ("dp-output", "pass")
