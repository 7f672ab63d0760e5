"""Record keys (case numbers, report numbers, ...) are project-specific in every view (issue 15).

The supplier's keys stay in the vault; a published view holds HMAC(project record-key subkey,
key), so the keys still join inside the project and join nothing outside it.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from pydantic import ValidationError

from trenv.identifiers import PSEUDONYM_HEX_CHARS, looks_like_id
from trenv.vault.ingest import trenv_metadata, write_parquet
from trenv.vault.pseudonym import (
    RECORD_KEY_INFO,
    Pseudonymiser,
    project_pseudonymiser,
    record_key_pseudonymiser,
)
from trenv.vault.publish import PublishItem, PublishResult, publish
from trenv.vault.schema import KeyKind, Schema, builtin_schema_path, load_schema

from .conftest import SOURCES, Vault

SCHEMAS = sorted(builtin_schema_path("x").parent.glob("*.yaml"))
HEX = re.compile(rf"^[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}$")


def _items(vault: Vault) -> list[PublishItem]:
    items = []
    for name in SOURCES:
        ingested = vault.ingested[name]
        path = vault.linkage.linked.get(name, ingested.data_path)
        items.append(PublishItem(name, "1", path, None, ingested.codebook))
    return items


def _publish(vault: Vault, slug: str, root: Path) -> PublishResult:
    return publish(slug, _items(vault), root / slug, project_pseudonymiser(vault.keys, slug))


def _manifest(result: PublishResult) -> dict[str, dict[str, Any]]:
    manifest = json.loads((result.data_dir / "manifest.json").read_text())
    return {entry["dataset"]: entry for entry in manifest["datasets"]}


def _identifier_values(result: PublishResult) -> dict[tuple[str, str], set[str]]:
    """(dataset, column) -> the values of every column of a view that is named like an id
    or is a pseudonym column."""
    out = {}
    for name, entry in _manifest(result).items():
        table = pq.read_table(result.data_dir / entry["file"])
        for column in table.column_names:
            if looks_like_id(column) or column in entry["pseudonym_columns"]:
                out[name, column] = {v for v in table[column].to_pylist() if v is not None}
    return out


def _extract_values(vault: Vault) -> set[str]:
    """Every cell of every supplier extract, as delivered."""
    values: set[str] = set()
    for name in SOURCES:
        with open(vault.synth.out_dir / f"{name}.csv", newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                values.update(row)
    return values


def test_every_id_column_in_the_schemas_declares_its_key() -> None:
    """A column named like an id says what it is: record key, person key or not identifying."""
    assert len(SCHEMAS) == 7
    for path in SCHEMAS:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        schema = load_schema(path)
        for column in raw["columns"]:
            if looks_like_id(column["name"]) or column.get("role") in ("key", "identifier"):
                assert column.get("key") in {k.value for k in KeyKind}, (path.name, column)
        declared = {c.name for c in schema.columns if c.key is KeyKind.record}
        assert declared == set(schema.record_key_columns)
        assert schema.key_column is not None and schema.key_column.name in declared
    convictions = load_schema(builtin_schema_path("convictions"))
    assert convictions.record_key_columns == ["conviction_id", "case_id"]


def _schema(**column: Any) -> Schema:
    return Schema.model_validate({"dataset": "d", "columns": [{"name": "x"}, column]})


def test_what_looks_like_an_id() -> None:
    for name in ("id", "case_id", "CASE_ID", "case id", "caseId", "CaseID", "zaak.id"):
        assert looks_like_id(name), name
    for name in ("paid", "valid", "VALID", "idle", "identity", "bsn", "video"):
        assert not looks_like_id(name), name


def test_schema_refuses_an_id_column_that_does_not_say_what_it_is() -> None:
    with pytest.raises(ValidationError, match="looks like an identifier; declare key"):
        _schema(name="officer_id")
    assert _schema(name="officer_id", key="none").column("officer_id").key is KeyKind.none
    assert _schema(name="officer_id", key="record").record_key_columns == ["officer_id"]
    assert _schema(name="case_no", role="key").record_key_columns == ["case_no"]
    for column, message in (
        ({"name": "police_id", "key": "person"}, "never published as it is"),
        ({"name": "case_id", "role": "key", "key": "none"}, "declare key: record"),
        ({"name": "bsn", "type": "bsn", "role": "identifier", "key": "record"}, "person key"),
        ({"name": "amount_id", "type": "float", "key": "record"}, "string or integer"),
        ({"name": "area_id", "role": "quasi_identifier", "key": "record"}, "needs role key"),
    ):
        with pytest.raises(ValidationError, match=message):
            _schema(**column)


def test_no_published_key_appears_in_the_extracts_or_another_projects_view(
    vault: Vault, tmp_path: Path
) -> None:
    a, b = _publish(vault, "keys-a", tmp_path), _publish(vault, "keys-b", tmp_path)
    extracts = _extract_values(vault)
    for name in ("BRP", "OM", "RB", "DJI", "WODC", "PL", "NFI"):  # the suppliers' key styles
        assert any(v.startswith(name) for v in extracts), name
    in_a, in_b = _identifier_values(a), _identifier_values(b)
    assert {column for _, column in in_a} == {
        "record_id", "case_id", "conviction_id", "report_id", "stay_id", "seizure_id",
        "followup_id", "person_pseudonym",
    }  # fmt: skip
    every_b = set().union(*in_b.values())
    for (name, column), values in in_a.items():
        assert values, (name, column)
        assert not values & extracts, (name, column)
        assert not values & every_b, (name, column)
        assert all(HEX.match(v) for v in values), (name, column)
    # The manifest and codebook say which columns are re-keyed record keys.
    record_keys = {(n, c) for n, e in _manifest(a).items() for c in e["record_key_columns"]}
    assert record_keys == {k for k in in_a if k[1] != "person_pseudonym"}
    for entry in _manifest(a).values():
        for column in entry["record_key_columns"]:
            assert entry["codebook"][column]["type"] == "record_key"
            assert "re-keyed" in entry["codebook"][column]["description"]
    # Record keys and person pseudonyms come from different keys: they never coincide.
    record_values = set().union(*(in_a[k] for k in record_keys))
    pseudonyms = set().union(*(v for k, v in in_a.items() if k not in record_keys))
    assert not record_values & pseudonyms


def _pairs(left: pa.Table, right: pa.Table, column: str) -> set[tuple[int, int]]:
    """(left row, right row) for every pair of rows whose ``column`` values are equal."""
    rows_of: dict[object, list[int]] = {}
    for j, value in enumerate(right[column].to_pylist()):
        rows_of.setdefault(value, []).append(j)
    return {
        (i, j)
        for i, value in enumerate(left[column].to_pylist())
        if value is not None
        for j in rows_of.get(value, [])
    }


def test_a_join_inside_a_project_matches_the_same_pairs_as_before(
    vault: Vault, tmp_path: Path
) -> None:
    result = _publish(vault, "joins", tmp_path)
    # Ingest records the declared record keys; linkage keeps them in the linked version.
    convictions_meta = trenv_metadata(vault.ingested["convictions"].data_path)
    assert convictions_meta["record_key_columns"] == ["conviction_id", "case_id"]
    linked_meta = trenv_metadata(vault.linkage.linked["cyber_reports"])
    assert linked_meta["record_key_columns"] == ["report_id"]
    vault_convictions = pq.read_table(vault.ingested["convictions"].data_path)
    vault_cases = pq.read_table(vault.ingested["prosecution_cases"].data_path)
    before = _pairs(vault_convictions, vault_cases, "case_id")
    assert len(before) == vault_convictions.num_rows > 0  # every judgment has its case
    convictions = pq.read_table(result.data_dir / "convictions.parquet")
    cases = pq.read_table(result.data_dir / "prosecution_cases.parquet")
    assert _pairs(convictions, cases, "case_id") == before
    # The same holds for the person pseudonyms across sources.
    assert _pairs(convictions, cases, "person_pseudonym") == _pairs(
        vault_convictions, vault_cases, "person_pseudonym"
    )
    # Publishing again for the same project gives the same keys.
    again = _publish(vault, "joins", tmp_path)
    assert (
        pq.read_table(again.data_dir / "convictions.parquet")["case_id"] == convictions["case_id"]
    )


def test_record_key_subkey_is_hkdf_expand_of_the_project_key() -> None:
    key = bytes(range(32))
    expected = HKDFExpand(algorithm=hashes.SHA256(), length=32, info=RECORD_KEY_INFO).derive(key)
    derived = record_key_pseudonymiser(Pseudonymiser(key))
    assert derived.pseudonym("OM000001") == Pseudonymiser(expected).pseudonym("OM000001")
    assert derived.pseudonym("OM000001") != Pseudonymiser(key).pseudonym("OM000001")
    assert "OM000001" not in repr(derived) and key.hex() not in repr(derived)


def test_a_file_ingested_before_record_keys_were_declared_is_rekeyed_safely(
    tmp_path: Path,
) -> None:
    """Old vault files carry no ``record_key_columns``: the key column and every column named
    like an id are re-keyed (integers too), nothing else."""
    source = tmp_path / "old.parquet"
    table = pa.table({"case_id": ["OM1", "OM2"], "officer_id": [7, 8], "offence": ["310", "300"]})
    write_parquet(table, source, {"key_column": "case_id", "pseudonym_columns": []})
    result = publish(
        "legacy", [PublishItem("old", "1", source)], tmp_path / "p", Pseudonymiser(b"k" * 32)
    )
    view = pq.read_table(result.data_dir / "old.parquet")
    assert _manifest(result)["old"]["record_key_columns"] == ["case_id", "officer_id"]
    assert view["offence"].to_pylist() == ["310", "300"]
    for column in ("case_id", "officer_id"):
        assert all(HEX.match(v) for v in view[column].to_pylist())
