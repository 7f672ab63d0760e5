"""Checks of tables and figures saved with tre.save: genuine files pass, any tampering with
the CSV or its record fails, and the project's policy (not the notebook's) decides."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

import trenv.lab as tre
from trenv.airlock.checks import FileCheck
from trenv.airlock.formats import check_file
from trenv.airlock.intake import FrozenFile, read_sidecar, read_workspace_file, sidecar_paths

# People per (region, sex): south/m has 3 people, under the threshold of 10.
CELLS = {("north", "f"): 30, ("north", "m"): 25, ("south", "f"): 20, ("south", "m"): 3}


def people(cells: dict[tuple[str, str], int] = CELLS) -> pd.DataFrame:
    rows = []
    for (region, sex), n in cells.items():
        rows += [{"region": region, "sex": sex} for _ in range(n)]
    frame = pd.DataFrame(rows)
    frame["pid"] = [f"p{i:05d}" for i in range(len(frame))]
    return frame


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TRENV_POLICY", raising=False)
    return tmp_path


def save_crosstab(name: str, *, margins: bool = False, columns: list[str] | None = None) -> None:
    df = people()
    cols = [df[c] for c in columns] if columns else df.sex
    out = tre.crosstab(df.region, cols, contributor=df.pid, margins=margins)
    tre.save(out, name)


def run(ws: Path, rel: str, policy: str = "trenv-default") -> tuple[FrozenFile, FileCheck]:
    frozen = read_workspace_file(ws, rel)
    record = read_sidecar(ws, sidecar_paths(rel)["record"])
    return frozen, check_file(frozen, project="p1", policy=policy, record=record)


def rules(check: FileCheck, status: str) -> set[str]:
    return {f.rule_id for f in check.findings if f.status == status}


def rewrite_record(ws: Path, name: str, **changes: object) -> dict:
    path = ws / "outputs" / f"{name}.record.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return data


def edit_csv(ws: Path, name: str, old: str, new: str, *, fix_hash: bool) -> None:
    """Change the CSV; with ``fix_hash`` also forge the record's sha256 (a researcher who
    knows how the record works)."""
    path = ws / "outputs" / f"{name}.csv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    if fix_hash:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        rewrite_record(ws, name, files={f"{name}.csv": digest})


def test_genuine_saved_table_passes(ws: Path) -> None:
    save_crosstab("t")
    _, check = run(ws, "outputs/t.csv")
    assert check.status == "pass", check.findings
    assert check.kind == "table" and check.header_rows == 1
    assert {"record-hash", "record-match", "recheck"} <= rules(check, "pass")


def test_edited_csv_fails_on_the_hash(ws: Path) -> None:
    save_crosstab("t")
    edit_csv(ws, "t", "30", "31", fix_hash=False)
    _, check = run(ws, "outputs/t.csv")
    assert check.status == "fail"
    assert rules(check, "fail") == {"record-hash"}
    assert "changed after tre.save" in check.summary


def test_edited_csv_with_forged_hash_fails_on_the_values(ws: Path) -> None:
    save_crosstab("t")
    # north/f is data row 0, column 1 (column 0 is the region index).
    edit_csv(ws, "t", "north,30", "north,31", fix_hash=True)
    _, check = run(ws, "outputs/t.csv")
    assert check.status == "fail"
    bad = [f for f in check.findings if f.rule_id == "record-match"]
    assert bad and bad[0].status == "fail" and bad[0].cells == [(0, 1)]


def test_filling_in_a_suppressed_cell_fails(ws: Path) -> None:
    save_crosstab("t")
    text = (ws / "outputs" / "t.csv").read_text()
    assert "south,20,\n" in text  # south/m is hidden
    edit_csv(ws, "t", "south,20,\n", "south,20,3\n", fix_hash=True)
    _, check = run(ws, "outputs/t.csv")
    match = [f for f in check.findings if f.rule_id == "record-match"]
    assert match[0].status == "fail" and match[0].cells == [(1, 2)]


def test_forged_record_publishing_a_small_cell_fails_the_recheck(ws: Path) -> None:
    save_crosstab("t")
    edit_csv(ws, "t", "south,20,\n", "south,20,3\n", fix_hash=True)
    path = ws / "outputs" / "t.record.json"
    data = json.loads(path.read_text())
    cells = data["cells"]
    i = next(k for k, (r, c) in enumerate(zip(cells["row"], cells["column"], strict=True))
             if r == ["south"] and c == ["m"])  # fmt: skip
    cells["published"][i] = 3
    cells["suppressed"][i] = None
    cells["flags"][i] = []
    data["rules"] = [dict(v, status="pass", flagged_cells=0) for v in data["rules"]]
    data["status"] = "pass"
    path.write_text(json.dumps(data))
    _, check = run(ws, "outputs/t.csv")
    assert check.status == "fail"
    threshold = [f for f in check.findings if f.rule_id == "recheck-threshold"]
    assert threshold and threshold[0].cells == [(1, 2)]
    assert "3 contributor(s)" in threshold[0].message


def test_project_policy_not_the_notebook_policy_decides(ws: Path) -> None:
    save_crosstab("t")
    _, check = run(ws, "outputs/t.csv", policy="cbs")
    assert check.status == "fail"
    assert any("project policy is cbs" in f.message for f in check.findings)


def test_record_that_does_not_parse_or_names_another_file(ws: Path) -> None:
    save_crosstab("t")
    frozen = read_workspace_file(ws, "outputs/t.csv")
    bad = check_file(frozen, project="p", policy="trenv-default", record=b"{not json")
    assert bad.status == "fail" and "not valid" in bad.findings[0].message
    rec = json.loads((ws / "outputs" / "t.record.json").read_text())
    rec["files"] = {"other.csv": frozen.sha256}
    other = check_file(frozen, project="p", policy="trenv-default", record=json.dumps(rec).encode())
    assert other.status == "fail" and "other.csv, not this file" in other.findings[0].message
    rec["files"] = {"t.csv": frozen.sha256}
    rec["cells"]["published"] = rec["cells"]["published"][:-1]
    short = check_file(frozen, project="p", policy="trenv-default", record=json.dumps(rec).encode())
    assert short.status == "fail" and "wrong length" in short.findings[0].message


def test_multilevel_columns_with_margins(ws: Path) -> None:
    df = people()
    df["age_group"] = ["young" if i % 2 else "old" for i in range(len(df))]
    out = tre.crosstab(df.region, [df.sex, df.age_group], contributor=df.pid, margins=True)
    tre.save(out, "m")
    frozen, check = run(ws, "outputs/m.csv")
    assert check.header_rows == 3
    assert check.status == "pass", check.findings
    # Change a published cell two levels deep and forge the hash: the finding points at it.
    lines = frozen.data.decode().splitlines()
    row = lines[3].split(",")  # first data row (north)
    j = next(k for k in range(1, len(row)) if row[k])
    row[j] = str(float(row[j]) + 1)
    lines[3] = ",".join(row)
    (ws / "outputs" / "m.csv").write_text("\n".join(lines) + "\n")
    rewrite_record(
        ws,
        "m",
        files={"m.csv": hashlib.sha256((ws / "outputs" / "m.csv").read_bytes()).hexdigest()},
    )
    _, check = run(ws, "outputs/m.csv")
    match = [f for f in check.findings if f.rule_id == "record-match"]
    assert match[0].status == "fail" and match[0].cells == [(0, j)]


def test_notebook_differencing_verdict_counts_against_release(ws: Path) -> None:
    save_crosstab("t", margins=True)
    rec = rewrite_record(ws, "t")
    rec["rules"] = [
        dict(v, status="fail", flagged_cells=1, detail="pins a cell")
        if v["rule_id"] == "differencing"
        else v
        for v in rec["rules"]
    ]
    (ws / "outputs" / "t.record.json").write_text(json.dumps(rec))
    _, check = run(ws, "outputs/t.csv")
    assert "notebook-differencing" in rules(check, "fail")


def test_table_labelled_by_pseudonyms_fails(ws: Path) -> None:
    df = people()
    df["pseudonym"] = [hashlib.sha256(p.encode()).hexdigest()[:32] for p in df.pid]
    out = tre.crosstab(df.pseudonym.head(12), df.sex.head(12), contributor=df.pid.head(12))
    tre.save(out, "leak")
    _, check = run(ws, "outputs/leak.csv")
    assert check.status == "fail"
    assert {"pseudonyms", "identifier-labels"} <= rules(check, "fail")
    pseudo = next(f for f in check.findings if f.rule_id == "pseudonyms")
    assert (0, 0) in pseudo.cells


def test_saved_figure(ws: Path) -> None:
    df = people()
    tre.save(tre.bar(df.region, contributor=df.pid), "fig")
    _, png = run(ws, "outputs/fig.png")
    assert png.kind == "figure" and png.status == "review"
    assert {"record-hash", "recheck"} <= rules(png, "pass")
    assert rules(png, "review") == {"figure-visual"}
    _, counts = run(ws, "outputs/fig.csv")
    assert counts.status == "pass", counts.findings
    # A different (still valid) PNG under the record's name fails on its hash.
    data = (ws / "outputs" / "fig.png").read_bytes()
    (ws / "outputs" / "fig.png").unlink()
    tre.save(tre.bar(df.sex, contributor=df.pid), "other")
    (ws / "outputs" / "fig.png").write_bytes((ws / "outputs" / "other.png").read_bytes())
    assert data != (ws / "outputs" / "fig.png").read_bytes()
    _, swapped = run(ws, "outputs/fig.png")
    assert swapped.status == "fail" and rules(swapped, "fail") == {"record-hash"}


def test_publishing_a_secondary_suppression_fails_the_audit_at_the_primary_cell(
    ws: Path,
) -> None:
    import csv
    import io

    save_crosstab("t", margins=True)
    path = ws / "outputs" / "t.record.json"
    data = json.loads(path.read_text())
    cells = data["cells"]
    secondary = [i for i, s in enumerate(cells["suppressed"]) if s == "secondary"]
    assert secondary, "the small cell needs a partner suppression"
    rows = list(csv.reader(io.StringIO((ws / "outputs" / "t.csv").read_text())))
    labels = [r[0] for r in rows[1:]]
    header = rows[0]
    for i in secondary:
        value = cells["value"][i]
        cells["published"][i] = value
        cells["suppressed"][i] = None
        r = labels.index(cells["row"][i][0])
        c = header.index(cells["column"][i][0])
        rows[1 + r][c] = repr(float(value))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    (ws / "outputs" / "t.csv").write_text(out.getvalue())
    data["files"] = {"t.csv": hashlib.sha256(out.getvalue().encode()).hexdigest()}
    path.write_text(json.dumps(data))
    _, check = run(ws, "outputs/t.csv")
    assert "record-match" in rules(check, "pass")
    audit = [f for f in check.findings if f.rule_id == "recheck-secondary"]
    assert audit and audit[0].status == "fail"
    assert (1, 2) in [cell for f in audit for cell in f.cells]  # south/m, the small cell


# --- integers stay integers: tre.save writes 49, not 49.0


def test_saved_counts_are_integers_and_pass(ws: Path) -> None:
    save_crosstab("t")
    text = (ws / "outputs" / "t.csv").read_text()
    assert text.splitlines()[1:] == ["north,30,25", "south,20,"]
    record = json.loads((ws / "outputs" / "t.record.json").read_text())
    assert 30 in record["cells"]["published"] and 30.0 not in [
        v for v in record["cells"]["published"] if isinstance(v, float)
    ]
    _, check = run(ws, "outputs/t.csv")
    assert check.status != "fail", check.findings
    assert {"record-match", "recheck"} <= rules(check, "pass")


def test_a_csv_written_before_counts_were_integers_still_rechecks(ws: Path) -> None:
    # Earlier versions of tre.save wrote float columns (30.0, 25.0, an empty cell) and the
    # record's values as floats. Such a file, untouched, must still pass.
    save_crosstab("t")
    path = ws / "outputs" / "t.csv"
    old = pd.read_csv(path, index_col=0).astype(float).to_csv()
    assert old.splitlines()[1:] == ["north,30.0,25.0", "south,20.0,"]
    path.write_text(old)
    rec = json.loads((ws / "outputs" / "t.record.json").read_text())
    cells = rec["cells"]
    for key in ("published", "value"):
        cells[key] = [None if v is None else float(v) for v in cells[key]]
    rewrite_record(
        ws, "t", cells=cells, files={"t.csv": hashlib.sha256(path.read_bytes()).hexdigest()}
    )
    _, check = run(ws, "outputs/t.csv")
    assert {"record-match", "recheck"} <= rules(check, "pass"), check.findings
    assert "record-match" not in rules(check, "fail")


@pytest.mark.parametrize("edited", ["north,30.5", "north,31", "north,3e1x", "north,"])
def test_integer_cells_edited_after_saving_are_refused(ws: Path, edited: str) -> None:
    save_crosstab("t")
    edit_csv(ws, "t", "north,30", edited, fix_hash=True)
    _, check = run(ws, "outputs/t.csv")
    match = [f for f in check.findings if f.rule_id == "record-match"]
    assert match and match[0].status == "fail" and match[0].cells == [(0, 1)]
