"""Probabilistic linkage of records without a BSN to the population spine, with Splink 5
on DuckDB.

Both sides arrive as the vault-only linkage tables written by ingest (normalised names, full
birth date, postcode, house number). The model is trained without labels (u by random
sampling, m by expectation maximisation on two independent blocking rules) and every source
record is assigned its single best spine match at or above the threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

PAIRS_FOR_U = 2_000_000
EM_MAX_PAIRS = 2_000_000
# The columns the model compares; ingest writes them under these names (schema ``linkage``).
FIELDS = ("first_name", "surname", "birth_date", "postcode", "house_number")


@dataclass
class ProbabilisticResult:
    best: pa.Table  # source_key, spine_key, match_probability, match_weight (best per record)
    parameters: dict[str, Any]  # the trained Splink model, without any data values
    pairs_scored: int
    weight_histogram: list[tuple[float, int]]  # (match weight bin start, count)


def address_m_probabilities(con: duckdb.DuckDBPyConnection) -> list[float] | None:
    """m probabilities of the address levels, measured on pairs that agree exactly on first
    name, surname and birth date (nearly all of which are true matches).

    EM cannot learn these reliably: inside a birth-date block its first step treats every
    pair whose address differs as a non-match (the prior over all pairs is tiny), and it then
    concludes that true matches never move, which silently drops everyone who moved.
    Measuring the share of moved people among near-certain matches avoids that trap. Add-one
    smoothing keeps every level possible.
    """
    [row] = con.execute(
        """
        SELECT
            count(*),
            count(*) FILTER (s.postcode = r.postcode AND s.house_number = r.house_number),
            count(*) FILTER (s.postcode = r.postcode AND s.house_number IS DISTINCT FROM
                             r.house_number),
            count(*) FILTER (s.postcode <> r.postcode
                             AND substr(s.postcode, 1, 4) = substr(r.postcode, 1, 4)),
            count(*) FILTER (substr(s.postcode, 1, 4) <> substr(r.postcode, 1, 4))
        FROM trenv_spine s JOIN trenv_source r USING (first_name, surname, birth_date)
        WHERE s.postcode IS NOT NULL AND r.postcode IS NOT NULL
        """
    ).fetchall()
    total, *levels = (int(x) for x in row)
    if total < 100:
        return None  # too few certain pairs to measure; EM from starting values instead
    return [(n + 1) / (total + len(levels)) for n in levels]


def _settings(seed: int, prior: float, address_m: list[float] | None) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    birth_date = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            # Day and month swapped: the typical error of a form filled in by hand.
            cll.CustomLevel(
                "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) AND "
                "substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) AND "
                "substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)",
                label_for_charts="day and month swapped",
            ),
            cll.DamerauLevenshteinLevel("birth_date", 1),
            cll.CustomLevel(
                "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4)",
                label_for_charts="same year",
            ),
            cll.ElseLevel(),
        ],
    )
    # Postcode and house number change together when a person moves, so they are one
    # comparison: two separate ones would count the same evidence twice (Fellegi-Sunter assumes
    # comparisons independent given match status) and make EM over-trust the address.
    address_levels = [
        cll.CustomLevel(
            "postcode_l = postcode_r AND house_number_l = house_number_r",
            label_for_charts="same postcode and house number",
        ),
        cll.CustomLevel("postcode_l = postcode_r", label_for_charts="same postcode"),
        cll.CustomLevel(
            "substr(postcode_l, 1, 4) = substr(postcode_r, 1, 4)",
            label_for_charts="same 4-digit area",
        ),
        cll.ElseLevel(),
    ]
    if address_m is not None:
        # Measured, not learnt: see address_m_probabilities(). Fixed so EM cannot undo it.
        for level, m in zip(address_levels, address_m, strict=True):
            level.configure(m_probability=m, fix_m_probability=True)
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.CustomLevel(
                "postcode_l IS NULL OR postcode_r IS NULL", label_for_charts="address missing"
            ).configure(is_null_level=True),
            *address_levels,
        ],
    )
    # Starting m values for EM, in the order of the non-null levels. Without them EM can
    # settle on "a true match always keeps its address", which drops every person who moved.
    first_name = cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]).configure(
        m_probabilities=[0.9, 0.05, 0.03, 0.02]
    )
    surname = cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]).configure(
        m_probabilities=[0.9, 0.05, 0.03, 0.02]
    )
    birth_date.configure(m_probabilities=[0.88, 0.03, 0.04, 0.03, 0.02])
    return SettingsCreator(
        link_type="link_only",
        probability_two_random_records_match=prior,
        unique_id_column_name="unique_id",
        comparisons=[
            first_name,
            surname,
            birth_date,
            address,
        ],
        # A true match survives at least one rule unless several fields are wrong at once.
        blocking_rules_to_generate_predictions=[
            block_on("birth_date"),
            block_on("first_name", "surname", "substr(birth_date, 1, 4)"),
            block_on("postcode", "house_number"),
            block_on("surname", "postcode"),
            block_on("first_name", "surname", "substr(postcode, 1, 4)"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        linker_uid=f"trenv{seed}",
    )


def link_probabilistic(
    spine: pa.Table,
    source: pa.Table,
    *,
    threshold: float,
    seed: int,
    threads: int | None = None,
) -> ProbabilisticResult:
    """Best spine match per source record. Both tables have ``record_key`` plus FIELDS."""
    from splink import DuckDBAPI, Linker, block_on

    for name, table in (("spine", spine), ("source", source)):
        missing = [f for f in ("record_key", *FIELDS) if f not in table.column_names]
        if missing:
            raise ValueError(
                f"the {name} linkage table lacks {', '.join(missing)}; map these fields with "
                "`linkage:` in the dataset's schema and ingest it again"
            )
    cols = ["record_key", *FIELDS]
    left = spine.select(cols).rename_columns(["unique_id", *FIELDS])
    right = source.select(cols).rename_columns(["unique_id", *FIELDS])

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    # Splink logs at INFO by default; its messages carry no data values but are noisy.
    logging.getLogger("splink").setLevel(logging.ERROR)
    db = DuckDBAPI(connection=con)
    spine_df = db.register(left, dataset_display_name="spine")
    source_df = db.register(right, dataset_display_name="source")
    con.register("trenv_spine", left)
    con.register("trenv_source", right)
    address_m = address_m_probabilities(con)
    # EM sessions start from the model's prior; over all pairs it is tiny, inside the
    # birth-date block it is about one match per source record. Start there and estimate the
    # global prior after EM.
    [(block_pairs,)] = con.execute(
        "SELECT count(*) FROM trenv_spine s JOIN trenv_source r USING (birth_date)"
    ).fetchall()
    block_prior = min(0.5, max(right.num_rows / max(int(block_pairs), 1), 1e-6))
    linker = Linker(
        [spine_df, source_df], _settings(seed, block_prior, address_m), log_level=logging.ERROR
    )
    # min_count_per_level=None: rare levels (swapped day/month) would otherwise make Splink
    # keep sampling long after the common levels are well estimated.
    linker.training.estimate_u_using_random_sampling(
        max_pairs=PAIRS_FOR_U, seed=seed, min_count_per_level=None
    )
    # Two EM sessions on unrelated rules, so each comparison is trained by one of them:
    # inside "same birth date" EM learns the names; inside "same address" it learns names
    # and the birth-date errors.
    for rule in (block_on("birth_date"), block_on("postcode", "house_number")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS
        )
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "birth_date")], recall=0.8
    )
    predictions = linker.inference.predict(
        threshold_match_probability=min(threshold, 0.5), warning_mode="never"
    )
    rel = predictions.as_duckdbpyrelation()
    con.register("trenv_pred", rel)
    [(pairs,)] = con.execute("SELECT count(*) FROM trenv_pred").fetchall()
    histogram = con.execute(
        "SELECT floor(match_weight) AS w, count(*) FROM trenv_pred GROUP BY 1 ORDER BY 1"
    ).fetchall()
    best = con.sql(
        f"""
        WITH pairs AS (
            SELECT
                CASE WHEN source_dataset_l = 'source' THEN unique_id_l ELSE unique_id_r END
                    AS source_key,
                CASE WHEN source_dataset_l = 'source' THEN unique_id_r ELSE unique_id_l END
                    AS spine_key,
                match_probability, match_weight
            FROM trenv_pred
        )
        SELECT source_key, spine_key, match_probability, match_weight
        FROM pairs
        WHERE match_probability >= {float(threshold)}
        QUALIFY row_number() OVER (
            PARTITION BY source_key ORDER BY match_weight DESC, spine_key
        ) = 1
        """
    ).to_arrow_table()
    model = linker.misc.save_model_to_json()
    con.close()
    return ProbabilisticResult(
        best=best,
        parameters=model,
        pairs_scored=int(pairs),
        weight_histogram=[(float(w), int(n)) for w, n in histogram],
    )
