from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from trenv.vault.linkage import LinkageError, LinkSource, link

from .conftest import Vault


def _independent_precision_recall(vault: Vault) -> tuple[float, float]:
    """Score the linked cyber reports against the ground truth without linkage.py's code."""
    truth = pq.read_table(vault.synth.ground_truth).to_pandas()
    person_of = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    spine = pq.read_table(vault.ingested["persons"].data_path).to_pandas()
    pseudonym_to_person = {
        p: person_of[r] for r, p in zip(spine["record_id"], spine["person_pseudonym"], strict=True)
    }
    linked = pq.read_table(vault.linkage.linked["cyber_reports"]).to_pandas()
    made = linked.dropna(subset=["person_pseudonym"])
    correct = sum(
        pseudonym_to_person[p] == person_of[r]
        for r, p in zip(made["report_id"], made["person_pseudonym"], strict=True)
    )
    return correct / len(made), correct / len(linked)


def test_linkage_reaches_the_precision_and_recall_the_report_claims(vault: Vault) -> None:
    claimed = vault.linkage.report["sources"]["cyber_reports"]["evaluation"]
    precision, recall = _independent_precision_recall(vault)
    assert precision == pytest.approx(claimed["precision"])
    assert recall == pytest.approx(claimed["recall"])
    assert precision >= 0.995
    assert recall >= 0.97


def test_deterministic_sources_link_on_the_bsn_pseudonym(vault: Vault) -> None:
    entry = vault.linkage.report["sources"]["prosecution_cases"]
    assert entry["method"].startswith("deterministic")
    assert entry["match_rate"] == 1.0
    assert entry["evaluation"]["precision"] == 1.0 and entry["evaluation"]["recall"] == 1.0


def test_report_has_charts_parameters_and_no_record_level_data(vault: Vault) -> None:
    run = vault.linkage.directory
    report_text = (run / "report.json").read_text()
    report = json.loads(report_text)
    assert report["charts"] and all(
        (run / c).read_bytes()[:4] == b"\x89PNG" for c in report["charts"]
    )
    model = report["models"]["cyber_reports"]
    names = [c["name"] for c in model["comparisons"]]
    assert names == ["first_name", "surname", "birth_date", "address"]
    assert 0 < model["probability_two_random_records_match"] < 1
    # Neither pseudonyms (32 hex digits) nor names may leak into what researchers receive.
    assert not re.search(r"[0-9a-f]{32}", report_text)
    persons = pq.read_table(vault.synth.out_dir / "persons.parquet").slice(0, 30).to_pylist()
    assert not any(f'"{p["surname"]}"' in report_text for p in persons)


def test_linked_version_adds_person_pseudonym_and_keeps_research_columns(vault: Vault) -> None:
    linked = pq.read_table(vault.linkage.linked["cyber_reports"])
    original = pq.read_table(vault.ingested["cyber_reports"].data_path)
    assert linked.column_names == [*original.column_names, "person_pseudonym", "match_probability"]
    assert linked.num_rows == original.num_rows
    keys = pq.read_table(vault.linkage.person_keys_path).to_pandas()
    assert set(keys["method"]) == {"spine", "deterministic", "probabilistic"}


def test_failed_run_leaves_no_directory(vault: Vault, tmp_path: Path) -> None:
    drugs = LinkSource.from_ingest_dir("drug_seizures", vault.ingested["drug_seizures"].directory)
    spine = LinkSource.from_ingest_dir("persons", vault.ingested["persons"].directory)
    with pytest.raises(LinkageError, match="neither a BSN pseudonym nor a linkage table"):
        link(spine, [drugs], tmp_path / "run")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(LinkageError, match="already exists"):
        link(spine, [], vault.linkage.directory)


def test_rerun_links_every_record_to_the_same_person(vault: Vault, tmp_path: Path) -> None:
    ingested = vault.ingested
    again = link(
        LinkSource.from_ingest_dir("persons", ingested["persons"].directory),
        [LinkSource.from_ingest_dir("cyber_reports", ingested["cyber_reports"].directory)],
        tmp_path / "rerun",
        seed=1,
    )
    first = pq.read_table(vault.linkage.person_keys_path).to_pandas()
    second = pq.read_table(again.person_keys_path).to_pandas()
    first = first[first["source"] == "cyber_reports"].sort_values("record_key")
    second = second.sort_values("record_key")
    second = second[second["source"] == "cyber_reports"]
    assert first["record_key"].tolist() == second["record_key"].tolist()
    assert first["person_pseudonym"].tolist() == second["person_pseudonym"].tolist()
    assert "evaluation" not in again.report["sources"]["cyber_reports"]
