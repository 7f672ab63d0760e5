"""`trenv data ...` and `trenv project close` through the CLI runner (SQLite and PostgreSQL).

One story from synthetic extracts to a closed project, checking at each step what is on
disk, in the registry and in the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from trenv.cli import app
from trenv.config import Settings

runner = CliRunner()


def trenv(*args: str, expect: int = 0) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == expect, f"trenv {' '.join(args)} -> {result.exit_code}\n{output}"
    return output


def events() -> list[dict[str, object]]:
    return list(json.loads(trenv("audit", "tail", "-n", "100000", "--json")))


def refused(*args: str, message: str) -> None:
    """The command fails with exit 2, names the problem, and writes nothing."""
    before = len(events())
    output = trenv(*args, expect=2)
    assert message in " ".join(output.split()), output
    assert len(events()) == before


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def people(settings: Settings) -> Settings:
    trenv("user", "add", "stella", "--role", "steward")
    for user in ("berta", "paula", "carl"):
        trenv("user", "add", user)
    for org, controller in (("brp", "berta"), ("politie", "paula"), ("om", "carl")):
        trenv("org", "add", org, "--name", org.upper())
        trenv("org", "add-controller", org, controller)
    for project in ("cybercrime", "reoffending"):
        trenv("project", "create", project, "--title", project, "--end-date", "2099-12-31")
    return settings


def test_synth_writes_every_source(tmp_path: Path) -> None:
    output = trenv("data", "synth", str(tmp_path / "src"), "--persons", "300", "--seed", "2")
    assert "cyber_reports" in output and "ground truth" in output
    assert (tmp_path / "src" / "persons.csv").read_text().count("\n") == 301
    assert (tmp_path / "src" / "ground_truth.parquet").is_file()
    trenv("data", "synth", str(tmp_path / "none"), "--persons", "0", expect=2)
    assert not (tmp_path / "none").exists()


def test_from_extracts_to_a_closed_project(people: Settings, tmp_path: Path) -> None:
    settings = people
    vault, projects_dir = settings.vault_dir, settings.projects_dir
    src = tmp_path / "src"
    trenv("data", "synth", str(src), "--persons", "2000", "--seed", "4")

    # Ingest: built-in schemas by name, or a schema file by path.
    for name, supplier in (("persons", "brp"), ("cyber_reports", "politie")):
        out = trenv(
            "data", "ingest", str(src / f"{name}.csv"), "--dataset", name,
            "--supplier", supplier, "--schema", name, "--version", "2026-11",
        )  # fmt: skip
        assert f"{name}@2026-11 ingested" in out
    schema_file = Path(__file__).parents[2] / "trenv/vault/schemas/convictions.yaml"
    trenv(
        "data", "ingest", str(src / "convictions.parquet"), "--dataset", "convictions",
        "--supplier", "om", "--schema", str(schema_file), "--version", "2026-11",
    )  # fmt: skip
    ingested = files_under(vault / "datasets")

    # A bad delivery: problems listed with row and column, nothing stored, refusal audited.
    lines = (src / "convictions.csv").read_text().splitlines()
    lines[3] = lines[3].replace('"veroordeling"', '"vrijspraak"')
    bad = tmp_path / "convictions-bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    before = len(events())
    out = trenv(
        "data", "ingest", str(bad), "--dataset", "convictions", "--supplier", "om",
        "--schema", "convictions", "--version", "2026-12", expect=2,
    )  # fmt: skip
    flat = " ".join(out.split())
    assert "not_in_code_list" in flat and "verdict" in flat and "nothing was stored" in flat
    assert "│ 3 " in out  # the row number of the bad line
    assert files_under(vault / "datasets") == ingested
    after = events()
    assert len(after) == before + 1 and after[-1]["action"] == "data.ingest.refused"
    refused("dataset", "show", "convictions@2026-12", message="unknown dataset")
    refused(
        "data", "ingest", str(src / "convictions.csv"), "--dataset", "convictions",
        "--supplier", "om", "--schema", "convictions", "--version", "2026-11",
        message="already registered",
    )  # fmt: skip
    refused(
        "data", "ingest", str(src / "convictions.csv"), "--dataset", "convictions",
        "--supplier", "nfi", "--schema", "convictions", message="unknown organisation 'nfi'",
    )  # fmt: skip
    assert files_under(vault / "datasets") == ingested

    # Link: the police reports probabilistically, the convictions on the BSN pseudonym.
    out = trenv(
        "data", "link", "--spine", "persons", "--source", "cyber_reports",
        "--source", "convictions", "--ground-truth", str(src / "ground_truth.parquet"),
        "--version", "2026-11-linked",
    )  # fmt: skip
    assert "registered cyber_reports@2026-11-linked" in " ".join(out.split())
    link_event = events()[-1]
    assert link_event["action"] == "data.link"
    quality = json.loads(str(link_event["detail"]))["results"]["cyber_reports"]
    assert quality["precision"] >= 0.98 and quality["recall"] >= 0.95

    # Grants: a steward proposes, the supplier's controller approves.
    trenv(
        "--as", "stella", "grant", "add", "cybercrime", "cyber_reports",
        "--columns", "report_date,crime_type,person_pseudonym",
    )  # fmt: skip
    refused("--as", "carl", "grant", "approve", "1", message="not a data controller")
    trenv("--as", "paula", "grant", "approve", "1")
    trenv("--as", "stella", "grant", "add", "cybercrime", "convictions@2026-11")
    trenv("--as", "carl", "grant", "approve", "2")
    # Column rules: refused when they do not fit the dataset (nothing written) ...
    refused(
        "--as", "stella", "grant", "add", "reoffending", "convictions@2026-11",
        "--coarsen", "verdict=month", message="cannot coarsen column verdict",
    )  # fmt: skip
    refused(
        "--as", "stella", "grant", "add", "reoffending", "convictions@2026-11",
        "--drop", "sentence", message="does not have",
    )  # fmt: skip
    refused(
        "--as", "stella", "grant", "add", "reoffending", "convictions@2026-11",
        "--coarsen", "fine_eur=bands:500,100", message="strictly increasing",
    )  # fmt: skip
    # ... and otherwise part of the grant the controller approves.
    trenv(
        "--as", "stella", "grant", "add", "reoffending", "convictions@2026-11",
        "--drop", "fine_eur", "--coarsen", "judgment_date=year",
        "--coarsen", "prison_days=bands:30,180,365",
    )  # fmt: skip
    listed = json.loads(trenv("grant", "list", "--project", "reoffending", "--json"))
    assert listed[0]["column_rules"] == {
        "drop": ["fine_eur"],
        "coarsen": {"judgment_date": {"date": "year"}, "prison_days": {"bands": [30, 180, 365]}},
    }
    trenv("--as", "carl", "grant", "approve", "3")

    # Publish: granted datasets and columns only, with per-project pseudonyms.
    published = json.loads(trenv("data", "publish", "--project", "cybercrime", "--json"))
    view = projects_dir / "cybercrime" / "data"
    assert sorted(p.name for p in view.iterdir()) == [
        "convictions.parquet",
        "cyber_reports.linkage",
        "cyber_reports.parquet",
        "manifest.json",
    ]
    reports = pq.read_table(view / "cyber_reports.parquet")
    assert reports.column_names == ["report_date", "crime_type", "person_pseudonym"]
    assert [d["version"] for d in published["datasets"]] == ["2026-11-linked", "2026-11"]
    assert (view / "cyber_reports.linkage" / "report.json").is_file()
    trenv("data", "publish", "--project", "reoffending")
    mine = pq.read_table(view / "convictions.parquet").to_pandas()
    theirs = pq.read_table(projects_dir / "reoffending/data/convictions.parquet").to_pandas()
    # The same rows in the same order, but no identifier joins the two projects' views.
    assert len(mine) == len(theirs) > 0
    assert "fine_eur" in mine.columns and "fine_eur" not in theirs.columns
    assert (
        theirs["judgment_date"].tolist() == pd.to_datetime(mine["judgment_date"]).dt.year.tolist()
    )
    assert set(theirs["prison_days"].dropna()) <= {
        "(-inf, 30)",
        "[30, 180)",
        "[180, 365)",
        "[365, inf)",
    }
    for column in ("conviction_id", "case_id", "person_pseudonym"):
        assert not set(mine[column]) & set(theirs[column]), column
    publish_event = json.loads(str(events()[-1]["detail"]))
    assert (
        publish_event["datasets"][0]["sha256"]
        == json.loads((projects_dir / "reoffending/data/manifest.json").read_text())["datasets"][0][
            "sha256"
        ]
    )

    # Revoke: the next publication removes the view of that dataset.
    trenv("--as", "stella", "grant", "revoke", "1", "--reason", "end of consent")
    out = trenv("data", "publish", "--project", "cybercrime")
    assert "removed cyber_reports" in " ".join(out.split())
    assert sorted(p.name for p in view.iterdir()) == ["convictions.parquet", "manifest.json"]
    assert json.loads(str(events()[-1]["detail"]))["removed"] == ["cyber_reports"]

    # Close: no more publications, the view and the key are gone, the chain verifies.
    salt = vault / "keys" / "projects" / "cybercrime.salt"
    assert salt.is_file()
    out = trenv("project", "close", "cybercrime")
    assert "no workspaces to archive" in " ".join(out.split())
    assert not view.exists() and not salt.exists()
    assert (vault / "keys" / "projects" / "cybercrime.destroyed").exists()
    assert json.loads(trenv("project", "show", "cybercrime", "--json"))["status"] == "closed"
    refused("data", "publish", "--project", "cybercrime", message="is closed")
    refused("project", "close", "nowhere", message="unknown project")
    assert "already closed" in trenv("project", "close", "cybercrime")
    assert (projects_dir / "reoffending/data/convictions.parquet").is_file()
    assert [e["action"] for e in events()].count("project.close") == 1
    trenv("audit", "verify")
