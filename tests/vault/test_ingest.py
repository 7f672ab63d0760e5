from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from trenv.demo.synth import SynthResult
from trenv.hashing import file_sha256
from trenv.vault.ingest import IngestError, ingest, trenv_metadata
from trenv.vault.pseudonym import FileKeyStore, linkage_pseudonymiser
from trenv.vault.schema import builtin_schema_path, load_schema
from trenv.vault.validate import ValidationFailed

from .conftest import Vault


def test_ingest_stores_pseudonymised_research_data(vault: Vault) -> None:
    result = vault.ingested["persons"]
    assert result.rows == vault.synth.rows["persons"]
    assert result.sha256 == file_sha256(result.data_path)
    assert result.columns == ["record_id", "person_pseudonym", "birth_date", "sex", "municipality"]
    table = pq.read_table(result.data_path)
    # Direct identifiers are gone, the birth date is generalised to the year.
    assert table.schema.field("birth_date").type == "int32"
    codebook_types = {c: e["type"] for c, e in result.codebook.items()}
    assert codebook_types["birth_date"] == "integer"
    assert trenv_metadata(result.data_path)["pseudonym_columns"] == ["person_pseudonym"]
    codebook = json.loads(result.codebook_path.read_text())
    assert set(codebook["columns"]) == set(result.columns)
    assert codebook["columns"]["sex"]["codes"] == {"M": "male", "V": "female"}


def test_no_bsn_or_name_survives_in_research_data(vault: Vault) -> None:
    persons = pq.read_table(vault.synth.out_dir / "persons.parquet").slice(0, 50).to_pylist()
    raw = vault.ingested["persons"].data_path.read_bytes()
    text = pq.read_table(vault.ingested["persons"].data_path).to_pandas().to_csv()
    for person in persons:
        assert person["bsn"] not in text and person["bsn"].encode() not in raw
        assert person["surname"] not in text


def test_linkage_table_keeps_normalised_fields_for_the_vault_only(vault: Vault) -> None:
    result = vault.ingested["cyber_reports"]
    assert result.pseudonym_columns == []
    assert result.linkage_path is not None
    link = pq.read_table(result.linkage_path)
    assert {"record_key", "first_name", "surname", "birth_date", "postcode"} <= set(
        link.column_names
    )
    assert all(name == name.lower() for name in link.column("surname").to_pylist()[:100])
    assert trenv_metadata(result.linkage_path)["vault_only"] is True
    assert "first_name" not in result.columns


def test_rerun_gives_identical_pseudonyms(vault: Vault, tmp_path: Path) -> None:
    again = ingest(
        vault.synth.out_dir / "prosecution_cases.parquet",
        load_schema(builtin_schema_path("prosecution_cases")),
        tmp_path / "again",
        linkage_pseudonymiser(FileKeyStore(vault.root / "keys")),
    )
    first = pq.read_table(vault.ingested["prosecution_cases"].data_path)
    assert pq.read_table(again.data_path).equals(first)


BAD_LINES = {
    "invalid_bsn": ("bsn", "123456789"),
    "not_in_code_list": ("decision", "vrijspraak"),
    "wrong_type": ("offence_date", "2021-13-01"),
    "missing_value": ("offence_code", ""),
}


@pytest.mark.parametrize("kind", [*BAD_LINES, "duplicate_key", "missing_column", "encoding"])
def test_failed_ingest_writes_nothing(synth_small: SynthResult, tmp_path: Path, kind: str) -> None:
    source = synth_small.out_dir / "prosecution_cases.csv"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].strip().split(",")
    if kind in BAD_LINES:
        column, value = BAD_LINES[kind]
        cells = lines[5].rstrip("\n").split(",")
        cells[header.index(f'"{column}"')] = value
        lines[5] = ",".join(cells) + "\n"
        data = "".join(lines).encode()
    elif kind == "duplicate_key":
        data = "".join([*lines, lines[3]]).encode()
    elif kind == "missing_column":
        data = "".join(",".join(line.split(",")[:-1]) + "\n" for line in lines).encode()
    else:
        data = "".join(
            lines
        ).encode() + '"OM9","111222333","310",2020-01-01,2020-01-02,"s\xe9pot"\n'.encode("latin-1")
    bad = tmp_path / "in" / "extract.csv"
    bad.parent.mkdir()
    bad.write_bytes(data)
    vault_dir = tmp_path / "vault"
    vault_dir.mkdir()
    dest = vault_dir / "prosecution_cases" / "2"
    with pytest.raises(ValidationFailed) as info:
        ingest(
            bad,
            load_schema(builtin_schema_path("prosecution_cases")),
            dest,
            linkage_pseudonymiser(FileKeyStore(tmp_path / "keys")),
        )
    assert kind in info.value.report.counts
    assert "fix them" in str(info.value)
    assert not dest.exists()
    assert [p for p in vault_dir.rglob("*") if p.is_file()] == []


def test_existing_version_is_never_overwritten(vault: Vault) -> None:
    result = vault.ingested["convictions"]
    before = file_sha256(result.data_path)
    with pytest.raises(IngestError, match="already exists"):
        ingest(
            vault.synth.out_dir / "convictions.csv",
            load_schema(builtin_schema_path("convictions")),
            result.directory,
            linkage_pseudonymiser(vault.keys),
        )
    assert file_sha256(result.data_path) == before


def test_failure_while_writing_leaves_no_temporary_directory(
    synth_small: SynthResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trenv.vault.ingest as ingest_module

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ingest_module, "file_sha256", explode)
    with pytest.raises(OSError, match="disk full"):
        ingest(
            synth_small.out_dir / "prison_stays.csv",
            load_schema(builtin_schema_path("prison_stays")),
            tmp_path / "v" / "1",
            linkage_pseudonymiser(FileKeyStore(tmp_path / "keys")),
        )
    assert list((tmp_path / "v").iterdir()) == []
    shutil.rmtree(tmp_path / "v")
