from __future__ import annotations

import json
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from trenv.hashing import file_sha256
from trenv.vault.pseudonym import ProjectKeyDestroyedError, project_pseudonymiser
from trenv.vault.publish import PublishError, PublishItem, publish, withdraw

from .conftest import Vault


def _items(vault: Vault, *, cyber_columns: list[str] | None = None) -> list[PublishItem]:
    cases = vault.ingested["prosecution_cases"]
    reports = vault.ingested["cyber_reports"]
    return [
        PublishItem("prosecution_cases", "1", cases.data_path, None, cases.codebook),
        PublishItem(
            "cyber_reports",
            "2-linked",
            vault.linkage.linked["cyber_reports"],
            cyber_columns,
            reports.codebook,
            vault.linkage.report_path,
        ),
    ]


def test_publishes_only_granted_datasets_and_columns(vault: Vault, tmp_path: Path) -> None:
    key = project_pseudonymiser(vault.keys, "alpha")
    grant = ["crime_type", "person_pseudonym", "report_date"]
    result = publish("alpha", _items(vault, cyber_columns=grant), tmp_path / "alpha", key)
    data = result.data_dir
    files = sorted(p.name for p in data.iterdir())
    assert files == [
        "cyber_reports.linkage",
        "cyber_reports.parquet",
        "manifest.json",
        "prosecution_cases.parquet",
    ]
    reports = pq.read_table(data / "cyber_reports.parquet")
    assert reports.column_names == ["report_date", "crime_type", "person_pseudonym"]
    manifest = json.loads((data / "manifest.json").read_text())
    entry = {d["dataset"]: d for d in manifest["datasets"]}
    assert entry["cyber_reports"]["sha256"] == file_sha256(data / "cyber_reports.parquet")
    assert set(entry["cyber_reports"]["codebook"]) == set(grant)
    assert entry["cyber_reports"]["linkage_report"]["report"]["sources"]["cyber_reports"]
    assert (data / "cyber_reports.linkage" / "match_rates.png").is_file()


def test_project_pseudonyms_differ_from_vault_and_between_projects(
    vault: Vault, tmp_path: Path
) -> None:
    a = publish(
        "proj-a", _items(vault), tmp_path / "a", project_pseudonymiser(vault.keys, "proj-a")
    )
    b = publish(
        "proj-b", _items(vault), tmp_path / "b", project_pseudonymiser(vault.keys, "proj-b")
    )
    vault_ids = set(
        pq.read_table(vault.ingested["prosecution_cases"].data_path)["person_pseudonym"].to_pylist()
    )
    a_cases = pq.read_table(a.data_dir / "prosecution_cases.parquet").to_pandas()
    b_cases = pq.read_table(b.data_dir / "prosecution_cases.parquet").to_pandas()
    assert not vault_ids & set(a_cases["person_pseudonym"])
    assert not set(a_cases["person_pseudonym"]) & set(b_cases["person_pseudonym"])
    # Same records in the same order, but even their case numbers are unrelated between
    # projects (test_record_keys.py holds the record keys to account in detail).
    assert len(a_cases) == len(b_cases)
    assert not set(a_cases["case_id"]) & set(b_cases["case_id"])
    # Same person, same pseudonym inside one project: across datasets, and row by row.
    a_reports = pq.read_table(a.data_dir / "cyber_reports.parquet").to_pandas()
    assert set(a_reports["person_pseudonym"].dropna()) & set(a_cases["person_pseudonym"])
    again = publish(
        "proj-a", _items(vault), tmp_path / "a", project_pseudonymiser(vault.keys, "proj-a")
    )
    assert (
        pq.read_table(again.data_dir / "prosecution_cases.parquet")
        .to_pandas()["person_pseudonym"]
        .tolist()
        == a_cases["person_pseudonym"].tolist()
    )


def test_view_is_read_only(vault: Vault, tmp_path: Path) -> None:
    result = publish("ro", _items(vault), tmp_path / "ro", project_pseudonymiser(vault.keys, "ro"))
    assert result.data_dir.is_symlink()
    for path in [result.publication_dir, *result.publication_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o555 if path.is_dir() else 0o444), path


def test_revoked_grant_disappears_at_next_publication(vault: Vault, tmp_path: Path) -> None:
    key = project_pseudonymiser(vault.keys, "rev")
    first = publish("rev", _items(vault), tmp_path / "rev", key)
    second = publish("rev", _items(vault)[:1], tmp_path / "rev", key)
    assert second.removed == ["cyber_reports"]
    assert not (second.data_dir / "cyber_reports.parquet").exists()
    assert not first.publication_dir.exists()
    assert [p.name for p in (tmp_path / "rev" / ".publications").iterdir()] == [
        second.publication_dir.name
    ]


def test_bad_grant_fails_and_keeps_previous_view(vault: Vault, tmp_path: Path) -> None:
    key = project_pseudonymiser(vault.keys, "keep")
    good = publish("keep", _items(vault), tmp_path / "keep", key)
    with pytest.raises(PublishError, match="bsn"):
        publish("keep", _items(vault, cyber_columns=["crime_type", "bsn"]), tmp_path / "keep", key)
    assert (good.data_dir / "cyber_reports.parquet").exists()
    assert len(list((tmp_path / "keep" / ".publications").iterdir())) == 1


def test_closed_project_cannot_be_published(vault: Vault) -> None:
    project_pseudonymiser(vault.keys, "closed")
    vault.keys.destroy_project_key("closed")
    with pytest.raises(ProjectKeyDestroyedError):
        project_pseudonymiser(vault.keys, "closed")


def test_withdraw_removes_the_whole_view(vault: Vault, tmp_path: Path) -> None:
    key = project_pseudonymiser(vault.keys, "gone")
    result = publish("gone", _items(vault), tmp_path / "gone", key)
    assert withdraw(tmp_path / "gone") == ["prosecution_cases", "cyber_reports"]
    assert not result.data_dir.exists() and not result.data_dir.is_symlink()
    assert list((tmp_path / "gone" / ".publications").iterdir()) == []
    assert withdraw(tmp_path / "gone") == []


def test_no_key_material_in_anything_written(vault: Vault, tmp_path: Path) -> None:
    key = project_pseudonymiser(vault.keys, "leak")
    result = publish("leak", _items(vault), tmp_path / "leak", key)
    secrets = [
        vault.keys.master_path.read_bytes(),
        vault.keys.linkage_key(),
        vault.keys.project_key("leak"),
    ]
    written = [p for p in result.publication_dir.rglob("*") if p.is_file()]
    written += [p for p in vault.linkage.directory.iterdir() if p.is_file()]
    for ingested in vault.ingested.values():
        written += [p for p in ingested.directory.iterdir() if p.is_file()]
    for path in written:
        content = path.read_bytes()
        for secret in secrets:
            assert secret not in content and secret.hex().encode() not in content, path
