"""Link every source to the population spine and report on the quality of the linkage.

Sources that carry the (pseudonymised) BSN are linked deterministically on it. Sources
without one are linked probabilistically with Splink on name, birth date and address, inside
the vault, from the vault-only linkage tables that ingest kept for this purpose. The run
writes, all or nothing, into a new directory:

* ``person_keys.parquet`` -- vault-only: source, record key, linkage pseudonym, method, score;
* ``<source>.parquet`` -- for each probabilistically linked source, a new dataset version: the
  research data plus ``person_pseudonym`` and ``match_probability``;
* ``report.json`` and PNG charts -- the quality report that goes with the linked data.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trenv.hashing import file_sha256
from trenv.vault import linkage_report as charts
from trenv.vault.ingest import RECORD_KEY, trenv_metadata, write_parquet
from trenv.vault.probabilistic import link_probabilistic

Progress = Callable[[str, int, int], None]
PERSON = "person_pseudonym"
PERSON_KEYS_FILE = "person_keys.parquet"
REPORT_FILE = "report.json"


class LinkageError(Exception):
    pass


@dataclass(frozen=True)
class LinkSource:
    """One ingested dataset version: its research data and (if any) its linkage table."""

    name: str
    data_path: Path
    linkage_path: Path | None = None
    truth_name: str | None = None  # its name in the ground-truth file, when different

    @classmethod
    def from_ingest_dir(cls, name: str, directory: Path) -> LinkSource:
        linkage = Path(directory) / "linkage.parquet"
        return cls(name, Path(directory) / "data.parquet", linkage if linkage.exists() else None)


@dataclass
class LinkageResult:
    directory: Path
    person_keys_path: Path
    report_path: Path
    report: dict[str, Any]
    linked: dict[str, Path] = field(default_factory=dict)  # source -> linked dataset version
    linked_sha256: dict[str, str] = field(default_factory=dict)
    charts: list[Path] = field(default_factory=list)


def _key_column(path: Path) -> str:
    key = trenv_metadata(path).get("key_column")
    if not key:
        raise LinkageError(
            f"{path} has no key column in its trenv metadata; ingest it with a schema that "
            "declares one column with role key"
        )
    return str(key)


def _has_person(path: Path) -> bool:
    return PERSON in trenv_metadata(path).get("pseudonym_columns", [])


def link(
    spine: LinkSource,
    sources: Sequence[LinkSource],
    out_dir: Path,
    *,
    ground_truth: Path | None = None,
    threshold: float = 0.5,
    seed: int = 0,
    threads: int | None = None,
    progress: Progress | None = None,
) -> LinkageResult:
    """Link ``sources`` to ``spine`` and write the run into the new directory ``out_dir``."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise LinkageError(f"{out_dir} already exists; each linkage run gets a new directory")
    if not 0.0 < threshold < 1.0:
        raise LinkageError("threshold must be a match probability between 0 and 1")
    if spine.linkage_path is None or not _has_person(spine.data_path):
        raise LinkageError(
            f"the spine {spine.name} needs a BSN pseudonym ({PERSON}) and a linkage table; "
            "ingest the population register with its schema (bsn: identifier, names: linkage)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir(mode=0o700)
    try:
        result = _run(
            spine, sources, tmp, out_dir, ground_truth, threshold, seed, threads, progress
        )
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _run(
    spine: LinkSource,
    sources: Sequence[LinkSource],
    tmp: Path,
    out_dir: Path,
    ground_truth: Path | None,
    threshold: float,
    seed: int,
    threads: int | None,
    progress: Progress | None,
) -> LinkageResult:
    started = time.perf_counter()
    assert spine.linkage_path is not None
    spine_link = pq.read_table(spine.linkage_path)
    spine_pseudonyms = spine_link.column(PERSON)
    known = pc.unique(spine_pseudonyms)
    key_parts: list[pa.Table] = [
        _keys_table(spine.name, spine_link.column(RECORD_KEY), spine_pseudonyms, "spine", 1.0)
    ]
    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "spine": {"dataset": spine.name, "records": spine_link.num_rows},
        "threshold_match_probability": threshold,
        "seed": seed,
        "sources": {},
        "models": {},
    }
    linked: dict[str, Path] = {}
    linked_sha: dict[str, str] = {}
    chart_paths: list[Path] = []
    total = len(sources)
    for i, source in enumerate(sources, start=1):
        if progress is not None:
            progress(f"link {source.name}", i - 1, total)
        key_col = _key_column(source.data_path)
        if _has_person(source.data_path):
            data = pq.read_table(source.data_path, columns=[key_col, PERSON])
            found = pc.is_in(data.column(PERSON), value_set=known)
            person = pc.if_else(found, data.column(PERSON), pa.scalar(None, pa.string()))
            keys = _keys_table(source.name, data.column(key_col), person, "deterministic", 1.0)
            keys = keys.filter(pc.is_valid(keys.column(PERSON)))
            entry: dict[str, Any] = {"method": "deterministic (pseudonymised BSN)"}
        elif source.linkage_path is not None:
            outcome = link_probabilistic(
                spine_link,
                pq.read_table(source.linkage_path),
                threshold=threshold,
                seed=seed,
                threads=threads,
            )
            best = outcome.best
            spine_index = pc.index_in(
                best.column("spine_key"), value_set=spine_link.column(RECORD_KEY)
            )
            person = spine_pseudonyms.take(spine_index)
            keys = pa.table(
                {
                    "source": pa.array([source.name] * best.num_rows, pa.string()),
                    "record_key": pc.cast(best.column("source_key"), pa.string()),
                    PERSON: person,
                    "method": pa.array(["probabilistic"] * best.num_rows, pa.string()),
                    "match_probability": pc.cast(best.column("match_probability"), pa.float64()),
                }
            )
            summary = charts.model_summary(outcome.parameters)
            report["models"][source.name] = summary
            threshold_weight = float(np.log2(threshold / (1 - threshold)))
            chart_paths.append(
                charts.chart_match_weights(
                    outcome.weight_histogram,
                    threshold_weight,
                    f"{source.name}: scored pairs",
                    tmp / f"match_weights_{source.name}.png",
                )
            )
            chart_paths.append(
                charts.chart_parameters(
                    summary,
                    f"{source.name}: model parameters",
                    tmp / f"parameters_{source.name}.png",
                )
            )
            path = tmp / f"{source.name}.parquet"
            _write_linked(source.data_path, key_col, keys, path, source.name, threshold)
            linked[source.name] = out_dir / path.name
            linked_sha[source.name] = file_sha256(path)
            entry = {
                "method": "probabilistic (Splink, DuckDB)",
                "pairs_scored": outcome.pairs_scored,
                "match_weight_histogram": outcome.weight_histogram,
            }
        else:
            raise LinkageError(
                f"{source.name} has neither a BSN pseudonym nor a linkage table; declare its "
                "name, birth date and address columns with `linkage:` in the schema"
            )
        records = pq.read_metadata(source.data_path).num_rows
        entry.update(
            records=records,
            matched=keys.num_rows,
            match_rate=keys.num_rows / records if records else 0.0,
        )
        report["sources"][source.name] = entry
        key_parts.append(keys)
    if progress is not None:
        progress("link", total, total)

    person_keys = pa.concat_tables(key_parts)
    write_parquet(person_keys, tmp / PERSON_KEYS_FILE, {"vault_only": True})
    if ground_truth is not None:
        _evaluate(report, person_keys, spine, sources, spine_link, Path(ground_truth))
    rates = {name: e["match_rate"] for name, e in report["sources"].items()}
    if rates:
        chart_paths.append(charts.chart_match_rates(rates, tmp / "match_rates.png"))
    report["charts"] = [p.name for p in chart_paths]
    report["duration_seconds"] = round(time.perf_counter() - started, 2)
    (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return LinkageResult(
        directory=out_dir,
        person_keys_path=out_dir / PERSON_KEYS_FILE,
        report_path=out_dir / REPORT_FILE,
        report=report,
        linked=linked,
        linked_sha256=linked_sha,
        charts=[out_dir / p.name for p in chart_paths],
    )


def _keys_table(
    source: str, record_keys: pa.ChunkedArray | pa.Array, person: Any, method: str, score: float
) -> pa.Table:
    n = len(record_keys)
    return pa.table(
        {
            "source": pa.array([source] * n, pa.string()),
            "record_key": pc.cast(record_keys, pa.string()),
            PERSON: person,
            "method": pa.array([method] * n, pa.string()),
            "match_probability": pa.array(np.full(n, score)),
        }
    )


def _write_linked(
    data_path: Path, key_col: str, keys: pa.Table, path: Path, name: str, threshold: float
) -> None:
    data = pq.read_table(data_path)
    index = pc.index_in(
        pc.cast(data.column(key_col), pa.string()), value_set=keys.column("record_key")
    )
    person = keys.column(PERSON).take(index)
    score = keys.column("match_probability").take(index)
    table = data.append_column(PERSON, person).append_column("match_probability", score)
    meta = dict(trenv_metadata(data_path))
    meta["pseudonym_columns"] = [*meta.get("pseudonym_columns", []), PERSON]
    meta["linked"] = {"method": "probabilistic", "threshold_match_probability": threshold}
    meta["dataset"] = name
    write_parquet(table, path, meta)


def _evaluate(
    report: dict[str, Any],
    person_keys: pa.Table,
    spine: LinkSource,
    sources: Sequence[LinkSource],
    spine_link: pa.Table,
    ground_truth: Path,
) -> None:
    """Precision and recall per source against the synthetic ground truth."""
    truth = pq.read_table(ground_truth).to_pandas()
    spine_truth = truth[truth["source"] == (spine.truth_name or spine.name)]
    person_of_spine = dict(zip(spine_truth["record_id"], spine_truth["person_id"], strict=True))
    spine_df = spine_link.select([RECORD_KEY, PERSON]).to_pandas()
    spine_df["person_id"] = spine_df[RECORD_KEY].map(person_of_spine)
    pseudonym_of_person = dict(zip(spine_df["person_id"], spine_df[PERSON], strict=True))
    keys = person_keys.to_pandas()
    for source in sources:
        name = source.truth_name or source.name
        rows = truth[truth["source"] == name]
        if rows.empty:
            continue
        predicted = keys[keys["source"] == source.name].set_index("record_key")[PERSON]
        expected = rows.set_index("record_id")["person_id"].map(pseudonym_of_person)
        got = predicted.reindex(expected.index)
        linkable = expected.notna()
        tp = int(((got == expected) & linkable).sum())
        made = int(got.notna().sum())
        fp = made - tp
        fn = int(linkable.sum()) - tp
        report["sources"][source.name]["evaluation"] = {
            "true_positives": tp,
            "false_positives": fp,
            "false_negatives": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
        }
