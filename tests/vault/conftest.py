"""Shared synthetic data for the vault tests: generated, ingested and linked once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from trenv.demo.synth import SynthConfig, SynthResult, generate
from trenv.vault.ingest import IngestResult, ingest
from trenv.vault.linkage import LinkageResult, LinkSource, link
from trenv.vault.pseudonym import FileKeyStore, linkage_pseudonymiser
from trenv.vault.schema import builtin_schema_path, load_schema

PERSONS = 6_000
SOURCES = (
    "persons",
    "prosecution_cases",
    "convictions",
    "prison_stays",
    "reoffending",
    "cyber_reports",
    "drug_seizures",
)


@dataclass
class Vault:
    root: Path
    synth: SynthResult
    keys: FileKeyStore
    ingested: dict[str, IngestResult]
    linkage: LinkageResult


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    out = tmp_path_factory.mktemp("synth")
    return generate(out, SynthConfig(persons=PERSONS, seed=11, cyber_report_rate=0.3))


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory, synth_small: SynthResult) -> Vault:
    root = tmp_path_factory.mktemp("vault")
    keys = FileKeyStore(root / "keys")
    pseudonymiser = linkage_pseudonymiser(keys)
    ingested = {}
    for name in SOURCES:
        ingested[name] = ingest(
            synth_small.out_dir / f"{name}.csv",
            load_schema(builtin_schema_path(name)),
            root / "datasets" / name / "1",
            pseudonymiser,
        )
    result = link(
        LinkSource.from_ingest_dir("persons", ingested["persons"].directory),
        [
            LinkSource.from_ingest_dir(
                "prosecution_cases", ingested["prosecution_cases"].directory
            ),
            LinkSource.from_ingest_dir("cyber_reports", ingested["cyber_reports"].directory),
        ],
        root / "linkage" / "run1",
        ground_truth=synth_small.ground_truth,
        seed=1,
    )
    return Vault(root, synth_small, keys, ingested, result)


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """A 2,000-person world for the registry and CLI tests (each runs on two databases)."""
    out = tmp_path_factory.mktemp("synth-tiny")
    return generate(out, SynthConfig(persons=2_000, seed=5, cyber_report_rate=0.2))
