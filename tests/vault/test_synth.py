from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from trenv.demo.synth import SOURCES, SynthConfig, SynthResult, generate
from trenv.identifiers import valid_bsn_mask
from trenv.vault.schema import builtin_schema_path, load_schema
from trenv.vault.validate import validate_file


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", SynthConfig(persons=1500, seed=5))
    b = generate(tmp_path / "b", SynthConfig(persons=1500, seed=5))
    c = generate(tmp_path / "c", SynthConfig(persons=1500, seed=6))
    for name in SOURCES:
        assert (a.out_dir / f"{name}.csv").read_bytes() == (b.out_dir / f"{name}.csv").read_bytes()
        assert pq.read_table(a.out_dir / f"{name}.parquet").equals(
            pq.read_table(b.out_dir / f"{name}.parquet")
        )
    assert (a.out_dir / "persons.csv").read_bytes() != (c.out_dir / "persons.csv").read_bytes()


def test_every_source_in_both_formats_and_valid_against_its_schema(
    synth_small: SynthResult,
) -> None:
    assert set(synth_small.files) == set(SOURCES)
    for name in SOURCES:
        schema = load_schema(builtin_schema_path(name))
        for path in synth_small.files[name]:
            report = validate_file(path, schema)
            assert report.ok, report.summary()
            assert report.rows == synth_small.rows[name] > 0


def test_bsns_valid_and_unique_and_only_where_expected(synth_small: SynthResult) -> None:
    persons = pq.read_table(synth_small.out_dir / "persons.parquet")
    bsn = np.array(persons.column("bsn").to_pylist(), dtype=np.int64)
    assert valid_bsn_mask(bsn).all()
    assert np.unique(bsn).size == bsn.size
    for name in ("prosecution_cases", "convictions", "prison_stays", "reoffending"):
        assert "bsn" in pq.read_schema(synth_small.out_dir / f"{name}.parquet").names
    for name in ("cyber_reports", "drug_seizures"):
        assert "bsn" not in pq.read_schema(synth_small.out_dir / f"{name}.parquet").names


def test_ground_truth_separate_and_reports_carry_realistic_errors(
    synth_small: SynthResult,
) -> None:
    truth = pq.read_table(synth_small.ground_truth).to_pandas()
    for name in SOURCES:
        assert "person_id" not in pq.read_schema(synth_small.out_dir / f"{name}.parquet").names
    persons = pq.read_table(synth_small.out_dir / "persons.parquet").to_pandas()
    reports = pq.read_table(synth_small.out_dir / "cyber_reports.parquet").to_pandas()
    pid = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    persons["person_id"] = persons["record_id"].map(pid)
    reports["person_id"] = reports["report_id"].map(pid)
    joined = reports.merge(persons, on="person_id", suffixes=("_r", "_p"))
    assert len(joined) == len(reports)
    differs = {
        f: (joined[f"{f}_r"] != joined[f"{f}_p"]).mean()
        for f in ("first_name", "surname", "postcode")
    }
    assert 0.01 < differs["first_name"] < 0.1
    assert 0.01 < differs["surname"] < 0.1
    assert 0.03 < differs["postcode"] < 0.15
    swapped = joined.dropna(subset=["birth_date_r"])
    swapped = swapped[swapped["birth_date_r"] != swapped["birth_date_p"]]
    assert len(swapped) > 0
    assert all(
        (r.month, r.day) == (p.day, p.month)
        for r, p in zip(swapped["birth_date_r"], swapped["birth_date_p"], strict=True)
    )


def test_drug_seizures_have_xtc_composition_and_port_interceptions(
    synth_small: SynthResult,
) -> None:
    seizures = pq.read_table(synth_small.out_dir / "drug_seizures.parquet").to_pandas()
    xtc = seizures[seizures["substance"] == "xtc"]
    assert xtc["mdma_mg_per_tablet"].notna().all() and xtc["logo"].notna().all()
    ports = seizures[seizures["place_type"] == "port"]
    assert set(ports["substance"]) <= {"bmk", "pmk", "apaan"}
    assert (seizures["place_type"] == "dump_site").any()


def test_progress_hook_sees_every_step(tmp_path: Path) -> None:
    from io import StringIO

    from rich.console import Console

    from trenv.vault.progress import rich_progress

    seen: list[tuple[str, int, int]] = []
    console = Console(file=StringIO(), force_terminal=False)
    with rich_progress(console) as hook:

        def both(step: str, done: int, total: int) -> None:
            seen.append((step, done, total))
            hook(step, done, total)

        generate(tmp_path, SynthConfig(persons=300, seed=1, formats=("csv",)), progress=both)
    assert [s for s, _, _ in seen][-1] == "synth ground truth"
    assert seen[-1][1] == seen[-1][2] == len(SOURCES) + 1
    assert "synth persons" in console.file.getvalue()
