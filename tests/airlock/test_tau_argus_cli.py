"""`trenv airlock tau-argus` and `tau-argus-compare` on a real request in a test database:
a checker reviewing the request gets the files and the comparison, audited; the requester,
a colleague, a non-checker and a request no longer under review are refused, audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import trenv.lab as tre
from tests.web.airlock_world import Tx, World, build_world
from trenv.cli import app
from trenv.config import Settings
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.tauargus import tau_table
from trenv.store.models import AuditEvent

runner = CliRunner()
FILE = "outputs/by_region.csv"


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def people() -> pd.DataFrame:
    """40 people per (region, offence) cell, except 3 in (east, fraud)."""
    rows = []
    for region in ("north", "south", "east"):
        for offence in ("theft", "fraud"):
            for k in range(3 if (region, offence) == ("east", "fraud") else 40):
                rows.append(
                    {"person": f"{region}{offence}{k}", "region": region, "offence": offence}
                )
    return pd.DataFrame(rows)


@pytest.fixture
def request_id(w: World, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("TRENV_WORKSPACE", str(w.workspace()))
    df = people()
    table = tre.crosstab(df.region, df.offence, contributor=df.person, margins=True)
    tre.save(table, "by_region")
    reply = w.create(files=[{"path": FILE, "justification": "table 1"}], submit=True)
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def events(tx: Tx, action: str) -> list[dict[str, Any]]:
    with tx() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [{"actor": r.actor, **json.loads(r.detail)} for r in rows]


def record_of(w: World) -> OutputRecord:
    text = (w.workspace() / "outputs" / "by_region.record.json").read_text(encoding="utf-8")
    return OutputRecord.model_validate_json(text)


def test_a_checker_gets_the_batch_and_it_is_audited(
    w: World, tx: Tx, request_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "tau"
    code, output = cli("--as", "chris", "airlock", "tau-argus", str(request_id), FILE, str(out))
    assert code == 0, output
    name = f"request{request_id}-by_region"
    expected = {f"{name}{suffix}" for suffix in (".arb", "-audit.arb", ".tab", ".rda", ".hst")}
    assert {p.name for p in out.iterdir()} >= expected | {"README.txt", "codes.csv"}
    assert all(p.stat().st_mode & 0o077 == 0 for p in out.iterdir())
    assert "hold unsuppressed values" in output
    # the table is the frozen record's, cell for cell
    record = record_of(w)
    assert len((out / f"{name}.tab").read_text().splitlines()) == len(record.cells)
    (event,) = events(tx, "airlock.tau_argus")
    assert event["actor"] == "chris" and event["path"] == FILE and event["name"] == name
    assert len(event["record_sha256"]) == 64
    # never overwritten: a second run into the same folder is refused and not audited
    code, output = cli("--as", "chris", "airlock", "tau-argus", str(request_id), FILE, str(out))
    assert code == 2 and "never overwritten" in output
    assert len(events(tx, "airlock.tau_argus")) == 1


def test_the_comparison_reads_tau_argus_output(
    w: World, tx: Tx, request_id: int, tmp_path: Path
) -> None:
    record = record_of(w)
    table = tau_table(record)
    lines = [",".join(f'"{n}"' for n in ("region", "offence", "Value", "Status"))]
    for cell in table.cells:
        status = 9 if record.cells.suppressed[cell.index] else 1  # the audit run, nothing added
        lines.append(",".join([*(f'"{c}"' for c in cell.codes), str(table.written[cell.codes]),
                               str(status)]))  # fmt: skip
    safe = tmp_path / "audit-safe.csv"
    safe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ("--as", "kim", "airlock", "tau-argus-compare", str(request_id), FILE, str(safe))
    code, output = cli(*args)
    assert code == 0, output
    assert "Audit run." in output and "tau-ARGUS added no suppression" in output
    code, output = cli(*args, "--json")
    assert code == 0
    body = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert body["run"] == "audit" and body["only_tau_argus"] == 0
    assert body["both"] == sum(s is not None for s in record.cells.suppressed)
    assert len(events(tx, "airlock.tau_argus.compare")) == 3
    # a file from another table is refused
    safe.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    code, output = cli(*args)
    assert code == 2 and "not made from this record" in output


@pytest.mark.parametrize(
    ("who", "why"),
    [
        ("rita", "is yours"),  # the requester
        ("nora", "member of project reoffending"),  # a colleague
        ("pete", "member of project reoffending"),  # a checker on the project
        ("adam", "only output checkers"),  # an administrator is not a checker
    ],
)
def test_who_may_not_review_is_refused_and_audited(
    w: World, tx: Tx, request_id: int, tmp_path: Path, who: str, why: str
) -> None:
    out = tmp_path / "tau"
    for command, last in (("tau-argus", str(out)), ("tau-argus-compare", str(tmp_path / "x.csv"))):
        code, output = cli("--as", who, "airlock", command, str(request_id), FILE, last)
        assert code == 2 and why in output, output
    assert not out.exists()
    refused = events(tx, "airlock.file.refused")
    assert [e["actor"] for e in refused] == [who, who]
    assert all(e["via"] == "trenv airlock tau-argus" and e["path"] == FILE for e in refused)
    assert events(tx, "airlock.tau_argus") == []


def test_a_request_outside_its_project_is_not_found(
    w: World, tx: Tx, request_id: int, tmp_path: Path
) -> None:
    code, output = cli("--as", "olga", "airlock", "tau-argus", str(request_id), FILE, str(tmp_path))
    assert code == 2 and f"no export request {request_id}" in output
    code, output = cli("--as", "chris", "airlock", "tau-argus", "999", FILE, str(tmp_path))
    assert code == 2 and "no export request 999" in output


def test_a_request_no_longer_under_review_is_refused(
    w: World, tx: Tx, request_id: int, tmp_path: Path
) -> None:
    reply = w.call("POST", f"/requests/{request_id}/withdraw", "srv-rita", json={"comment": ""})
    assert reply.status_code == 200, reply.text
    code, output = cli(
        "--as", "chris", "airlock", "tau-argus", str(request_id), FILE, str(tmp_path / "t")
    )
    assert code == 2 and "withdrawn" in output


def test_the_command_needs_a_person_and_a_table(w: World, request_id: int, tmp_path: Path) -> None:
    code, output = cli("airlock", "tau-argus", str(request_id), FILE, str(tmp_path / "t"))
    assert code == 2 and "acts as a person" in output
    code, output = cli("--as", "chris", "airlock", "tau-argus", str(request_id), "outputs/nope.csv",
                       str(tmp_path / "t"))  # fmt: skip
    assert code == 2 and "has no file outputs/nope.csv" in output
    code, output = cli("--as", "chris", "airlock", "tau-argus", str(request_id), FILE,
                       str(tmp_path / "t"), "--method", "CTA")  # fmt: skip
    assert code == 2 and "use MOD, GH or OPT" in output
