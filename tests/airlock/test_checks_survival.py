"""The airlock's checks of survival outputs saved with tre.save: a genuine Kaplan-Meier table,
its figure and a Cox model pass; a CSV or record tampered to publish more fails, naming the
step; the project's policy decides."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trenv.lab as tre
from trenv.airlock.checks import FileCheck
from trenv.airlock.differencing import EarlierFile, record_findings
from trenv.airlock.formats import check_file
from trenv.airlock.intake import read_sidecar, read_workspace_file, sidecar_paths
from trenv.disclosure.survival import log_log_interval, product_limit


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TRENV_POLICY", raising=False)
    return tmp_path


def people(n: int = 1500, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.round(rng.exponential(500, n))
    return pd.DataFrame(
        {
            "pid": [f"p{i:05d}" for i in range(n)],
            "days": np.minimum(days, 730),
            "reoffended": days <= 730,
            "offence": rng.choice(["theft", "violence"], n),
            "age": rng.integers(18, 70, n),
        }
    )


def run(ws: Path, rel: str, policy: str = "trenv-default") -> FileCheck:
    frozen = read_workspace_file(ws, rel)
    record = read_sidecar(ws, sidecar_paths(rel)["record"])
    return check_file(frozen, project="p1", policy=policy, record=record)


def rules(check: FileCheck, status: str) -> set[str]:
    return {f.rule_id for f in check.findings if f.status == status}


def save_km(name: str, **kwargs: object) -> None:
    km = tre.kaplan_meier(people(), "days", "reoffended", contributor="pid", **kwargs)
    tre.save(km, name)


def record_of(ws: Path, name: str) -> dict:
    return json.loads((ws / "outputs" / f"{name}.record.json").read_text())


def forge(ws: Path, name: str, record: dict, csv: str | None = None) -> None:
    """Write a forged record (and CSV) with matching hashes: a researcher who knows exactly
    how tre.save works and edits both."""
    folder = ws / "outputs"
    if csv is not None:
        (folder / f"{name}.csv").write_text(csv)
    record["files"][f"{name}.csv"] = hashlib.sha256(
        (folder / f"{name}.csv").read_bytes()
    ).hexdigest()
    (folder / f"{name}.record.json").write_text(json.dumps(record))


def csv_of(record: dict) -> str:
    """The CSV that tre.save would write for the record's steps."""
    check = record["survival"]
    columns = ["time_from", "at_risk", "events", "censored", "survival", "ci_lower", "ci_upper"]
    rows = [
        [*g["label"], s["time"], *(s[c] for c in columns)]
        for g in check["groups"]
        if not g["withheld"]
        for s in g["steps"]
    ]
    frame = pd.DataFrame(rows, columns=[*check["by"], "time", *columns])
    return frame.set_index([*check["by"], "time"]).to_csv()


def reestimate(steps: list[dict], confidence: float = 0.95) -> None:
    at_risk = np.array([s["at_risk"] for s in steps])
    events = np.array([s["events"] for s in steps])
    survival, greenwood = product_limit(at_risk, events)
    lower, upper = log_log_interval(survival, greenwood, confidence)
    for k, s in enumerate(steps):
        s.update(survival=float(survival[k]), ci_lower=float(lower[k]), ci_upper=float(upper[k]))


def test_genuine_survival_table_and_figure_pass(ws: Path) -> None:
    save_km("km", by="offence")
    table = run(ws, "outputs/km.csv")
    assert table.status == "pass", table.findings
    assert {"record-hash", "record-match", "recheck"} <= rules(table, "pass")
    figure = run(ws, "outputs/km.png")
    assert figure.kind == "figure" and figure.status == "review"
    assert {"record-hash", "recheck"} <= rules(figure, "pass")
    assert rules(figure, "review") == {"figure-visual"}


def test_edited_csv_fails(ws: Path) -> None:
    save_km("km")
    path = ws / "outputs" / "km.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[3] = str(int(fields[3]) - 7)  # the first step's events
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    assert rules(run(ws, "outputs/km.csv"), "fail") == {"record-hash"}
    forge(ws, "km", record_of(ws, "km"))  # the hash forged too: the values still differ
    check = run(ws, "outputs/km.csv")
    assert rules(check, "fail") == {"record-match"}
    assert next(f for f in check.findings if f.status == "fail").cells == [(0, 3)]


def test_forged_record_with_a_small_step_fails_naming_the_step(ws: Path) -> None:
    save_km("km", interval=1)
    record = record_of(ws, "km")
    steps = record["survival"]["groups"][0]["steps"]
    first = steps[0]
    # Split the first step: 3 events on its first day, the rest after (chain kept, estimates
    # recomputed), and write the CSV to match the forged record.
    head = {**first, "time": first["time_from"] + 1, "events": 3, "censored": 0}
    tail = {**first, "time_from": head["time"], "at_risk": first["at_risk"] - 3}
    tail["events"] = first["events"] - 3
    if tail["time"] <= tail["time_from"]:
        tail["time"] = tail["time_from"] + 1
    steps[0:1] = [head, tail]
    reestimate(steps)
    forge(ws, "km", record, csv_of(record))
    check = run(ws, "outputs/km.csv")
    assert "record-match" in rules(check, "pass")  # the CSV is exactly the forged record
    failing = [f for f in check.findings if f.rule_id == "recheck-survival"]
    assert failing and any("step 1 [0, 1]: 3 events, fewer than 10" in f.message for f in failing)
    assert any(f.cells and f.cells[0][0] == 0 for f in failing)  # its CSV row is marked
    # The figure shares the record: it fails too.
    assert "recheck" not in rules(run(ws, "outputs/km.png"), "pass")


def test_forged_record_with_steps_merged_back_apart_fails(ws: Path) -> None:
    df = people(500, seed=9)
    tre.save(tre.kaplan_meier(df, "days", "reoffended", contributor="pid", interval=1), "km")
    exact = tre.kaplan_meier(
        df, "days", "reoffended", contributor="pid", interval=1, policy="opensafely"
    )  # threshold 8: finer steps than the project's profile allows
    record = record_of(ws, "km")
    fine = exact.record.model_dump(mode="json")["survival"]["groups"][0]["steps"]
    record["survival"]["groups"][0]["steps"] = fine
    forge(ws, "km", record, csv_of(record))
    check = run(ws, "outputs/km.csv")
    assert "record-match" in rules(check, "pass")
    messages = [f.message for f in check.findings if f.rule_id == "recheck-survival"]
    assert any("events, fewer than 10" in m or "drops by" in m for m in messages)


def test_counts_edited_to_pass_fail(ws: Path) -> None:
    save_km("km", interval=1)
    record = record_of(ws, "km")
    steps = record["survival"]["groups"][0]["steps"]
    small = next(i for i, s in enumerate(steps) if s["events"] >= 10)
    steps[small]["events"] += 4  # pretend more people reoffended in this step
    forge(ws, "km", record, csv_of(record))
    messages = [f.message for f in run(ws, "outputs/km.csv").findings if f.status == "fail"]
    assert any("but its counts give" in m for m in messages)


def test_project_policy_decides(ws: Path) -> None:
    tre.save(
        tre.kaplan_meier(
            people(600, seed=2), "days", "reoffended", contributor="pid", interval=1,
            policy="opensafely",
        ),
        "km",
    )  # fmt: skip
    assert run(ws, "outputs/km.csv", "opensafely").status == "pass"
    check = run(ws, "outputs/km.csv", "trenv-default")
    assert "recheck-survival" in rules(check, "fail")


def test_saved_cox_model(ws: Path) -> None:
    out = tre.cox(people(), "days", "reoffended", ["offence", "age"], contributor="pid")
    tre.save(out, "cox")
    check = run(ws, "outputs/cox.csv")
    assert check.status == "review", check.findings  # a checker reads every model summary
    assert "cox-record" in rules(check, "pass")
    record = record_of(ws, "cox")
    record["model"]["df_resid"] = 10_000.0
    forge(ws, "cox", record)
    assert "cox-record" in rules(run(ws, "outputs/cox.csv"), "fail")
    record["model"]["df_resid"] = record["model"]["events"] - 1
    record["model"]["parameters"] = 1  # fewer coefficients than the table shows
    forge(ws, "cox", record)
    messages = [f.message for f in run(ws, "outputs/cox.csv").findings if f.status == "fail"]
    assert any("the table has 2 coefficients, its record says 1" in m for m in messages)


def test_survival_record_without_its_steps(ws: Path) -> None:
    save_km("km")
    record = record_of(ws, "km")
    record["survival"] = None
    forge(ws, "km", record)
    check = run(ws, "outputs/km.csv")
    assert rules(check, "fail") == {"record-match"}
    assert any("its output record 0" in f.message for f in check.findings)


def test_server_compares_survival_tables_of_nearly_the_same_people(ws: Path) -> None:
    df = people(700, seed=12)
    tre.save(tre.kaplan_meier(df, "days", "reoffended", contributor="pid"), "all")
    tre.save(tre.kaplan_meier(df.iloc[2:], "days", "reoffended", contributor="pid"), "less")
    earlier = [
        EarlierFile(
            name="outputs/all.csv (request 1)",
            kind="table",
            header_rows=1,
            read=lambda: (ws / "outputs" / "all.csv").read_bytes(),
            read_record=lambda: (ws / "outputs" / "all.record.json").read_bytes(),
        )
    ]
    new = (ws / "outputs" / "less.record.json").read_bytes()
    found = {f.rule_id: f for f in record_findings(new, earlier)}
    assert found["population-difference"].status == "fail"
    assert "isolates 2 people" in found["population-difference"].message
    assert "population-difference" not in {f.rule_id for f in record_findings(new, [])}
