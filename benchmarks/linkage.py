"""Linkage at scale: 1M synthetic records (population spine + police reports without BSN).

Generates the sources, ingests the two that the probabilistic linkage needs, links them and
prints the time of each step with precision and recall against the ground truth.

    .venv/bin/python benchmarks/linkage.py                        # 800k persons + 200k reports
    .venv/bin/python benchmarks/linkage.py --persons 80000        # a quick run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from trenv.demo.synth import SynthConfig, generate
from trenv.vault.ingest import ingest
from trenv.vault.linkage import LinkSource, link
from trenv.vault.pseudonym import FileKeyStore, linkage_pseudonymiser
from trenv.vault.schema import builtin_schema_path, load_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=800_000)
    parser.add_argument("--report-rate", type=float, default=0.25, help="reports per person")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        config = SynthConfig(
            persons=args.persons,
            seed=args.seed,
            cyber_report_rate=args.report_rate,
            formats=("parquet",),
        )
        synth = generate(root / "sources", config)
        t_synth = time.perf_counter() - start

        start = time.perf_counter()
        pseudonymiser = linkage_pseudonymiser(FileKeyStore(root / "keys"))
        dirs = {}
        for name in ("persons", "cyber_reports"):
            dirs[name] = ingest(
                synth.out_dir / f"{name}.parquet",
                load_schema(builtin_schema_path(name)),
                root / "vault" / name,
                pseudonymiser,
            ).directory
        t_ingest = time.perf_counter() - start

        start = time.perf_counter()
        result = link(
            LinkSource.from_ingest_dir("persons", dirs["persons"]),
            [LinkSource.from_ingest_dir("cyber_reports", dirs["cyber_reports"])],
            root / "linkage",
            ground_truth=synth.ground_truth,
            threshold=args.threshold,
            seed=args.seed,
        )
        t_link = time.perf_counter() - start

    entry = result.report["sources"]["cyber_reports"]
    evaluation = entry["evaluation"]
    records = synth.rows["persons"] + synth.rows["cyber_reports"]
    print(
        f"records:    {records:,} ({synth.rows['persons']:,} spine + "
        f"{synth.rows['cyber_reports']:,} reports without BSN)"
    )
    print(f"synth:      {t_synth:7.1f} s")
    print(f"ingest:     {t_ingest:7.1f} s (validate, pseudonymise, write)")
    print(
        f"link:       {t_link:7.1f} s (Splink train + predict + report)"
        f"  -> {records / t_link * 60:,.0f} records/minute"
    )
    print(f"pairs:      {entry['pairs_scored']:,} scored")
    print(f"match rate: {entry['match_rate']:.4f}")
    print(f"precision:  {evaluation['precision']:.4f}")
    print(f"recall:     {evaluation['recall']:.4f}")


if __name__ == "__main__":
    main()
