"""Seeded generator of realistic, linkable synthetic source extracts.

The same seed and size give byte-identical files. Persons come from a population-register
extract (with BSN); prosecution, courts, prisons and reoffending carry the BSN; police
cybercrime reports carry only name, birth date and address, with the errors real reports have
(typos, swapped day and month, people who moved), so they need probabilistic linkage. Forensic
drug seizures are about substances and places, not persons. ``ground_truth.parquet`` maps every
person-level record to the true person and is for evaluating linkage only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trenv.demo import synth_lists as L
from trenv.identifiers import make_bsns

Progress = Callable[[str, int, int], None]
IntArray = npt.NDArray[np.int64]

SOURCES = (
    "persons",
    "prosecution_cases",
    "convictions",
    "prison_stays",
    "reoffending",
    "drug_seizures",
    "cyber_reports",
)
GROUND_TRUTH = "ground_truth.parquet"
_EPOCH = np.datetime64("1970-01-01", "D")
_BIRTH_FROM = np.datetime64("1940-01-01", "D")
_BIRTH_TO = np.datetime64("2008-12-31", "D")
_EVENTS_FROM = np.datetime64("2015-01-01", "D")
_EVENTS_TO = np.datetime64("2024-12-31", "D")


@dataclass(frozen=True)
class SynthConfig:
    persons: int
    seed: int = 0
    offender_rate: float = 0.05
    cyber_report_rate: float = 0.1
    seizure_rate: float = 0.004
    name_typo_rate: float = 0.04
    swap_day_month_rate: float = 0.03
    moved_rate: float = 0.08
    missing_birth_date_rate: float = 0.01
    formats: tuple[str, ...] = ("csv", "parquet")

    def __post_init__(self) -> None:
        if not 1 <= self.persons <= 50_000_000:
            raise ValueError("persons must be between 1 and 50,000,000")
        if not set(self.formats) <= {"csv", "parquet"} or not self.formats:
            raise ValueError("formats must be a non-empty subset of ('csv', 'parquet')")


@dataclass
class SynthResult:
    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    ground_truth: Path | None = None


def _weights(w: Sequence[float]) -> npt.NDArray[np.float64]:
    a = np.asarray(w, dtype=np.float64)
    return a / a.sum()


def _zipf(n: int) -> npt.NDArray[np.float64]:
    return _weights(1.0 / np.arange(1, n + 1) ** 0.8)


def _pick(values: Sequence[str], idx: IntArray) -> pa.Array:
    """Strings by index, built as a dictionary array so 10M names cost little memory."""
    return pc.cast(
        pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), list(values)), pa.string()
    )


def _ids(prefix: str, numbers: IntArray, width: int = 10) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _dates(days: IntArray) -> pa.Array:
    return pa.array(days.astype("datetime64[D]"), pa.date32())


def _days(d: np.datetime64) -> int:
    return int((d - _EPOCH).astype(np.int64))


def _uniform_days(
    rng: np.random.Generator, lo: np.datetime64, hi: np.datetime64, n: int
) -> IntArray:
    return rng.integers(_days(lo), _days(hi) + 1, size=n)


def _unique_bsns(rng: np.random.Generator, n: int) -> IntArray:
    """n distinct valid BSNs in random order (about 1 in 11 prefixes has no check digit)."""
    got = np.empty(0, dtype=np.int64)
    draw = int(n * 1.25) + 64
    while got.size < n:
        prefixes = rng.integers(10_000_000, 70_000_000, size=draw)
        got = np.unique(np.concatenate([got, make_bsns(prefixes)]))
        got = got[got > 0]
        draw *= 2
    return rng.permutation(got)[:n]


def _postcodes(rng: np.random.Generator, municipality: IntArray) -> pa.Array:
    lo = np.array([m[1] for m in L.MUNICIPALITIES])[municipality]
    hi = np.array([m[2] for m in L.MUNICIPALITIES])[municipality]
    digits = lo + (rng.random(municipality.size) * (hi - lo + 1)).astype(np.int64)
    letters = np.array(list("ABCEGHJKLMNPRTVWXZ"))
    pair = rng.integers(0, letters.size, size=(municipality.size, 2))
    l1 = pa.array(letters[pair[:, 0]])
    l2 = pa.array(letters[pair[:, 1]])
    return pc.binary_join_element_wise(pc.cast(pa.array(digits), pa.string()), l1, l2, "")


def _typo(rng: np.random.Generator, word: str) -> str:
    """One realistic keying error: substitution, deletion, insertion or transposition."""
    if len(word) < 3:
        return word + word[-1:]
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(0, 4))
    letter = "abcdeghijklmnorstuvz"[int(rng.integers(0, 20))]
    if kind == 0:
        return word[:i] + letter + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + letter + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def _with_typos(rng: np.random.Generator, values: pa.Array, rate: float) -> pa.Array:
    hit = np.flatnonzero(rng.random(len(values)) < rate)
    if hit.size == 0:
        return values
    py = values.to_pylist()
    for i in hit:
        py[i] = _typo(rng, py[i])
    return pa.array(py, pa.string())


@dataclass
class _Population:
    bsn: IntArray
    sex: IntArray  # 0 male, 1 female
    first: pa.Array
    surname: pa.Array
    birth: IntArray  # days since epoch
    municipality: IntArray
    postcode: pa.Array
    house_number: IntArray


def _population(rng: np.random.Generator, n: int) -> _Population:
    sex = rng.integers(0, 2, size=n)
    male = rng.choice(len(L.MALE_FIRST), size=n, p=_zipf(len(L.MALE_FIRST)))
    female = rng.choice(len(L.FEMALE_FIRST), size=n, p=_zipf(len(L.FEMALE_FIRST)))
    names = list(L.MALE_FIRST) + list(L.FEMALE_FIRST)
    first = _pick(names, np.where(sex == 0, male, female + len(L.MALE_FIRST)))
    surname = _pick(L.SURNAMES, rng.choice(len(L.SURNAMES), size=n, p=_zipf(len(L.SURNAMES))))
    weights = _weights([m[3] for m in L.MUNICIPALITIES])
    municipality = rng.choice(len(L.MUNICIPALITIES), size=n, p=weights)
    return _Population(
        bsn=_unique_bsns(rng, n),
        sex=sex,
        first=first,
        surname=surname,
        birth=_uniform_days(rng, _BIRTH_FROM, _BIRTH_TO, n),
        municipality=municipality,
        postcode=_postcodes(rng, municipality),
        house_number=rng.integers(1, 250, size=n),
    )


def _bsn_strings(bsn: IntArray) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(bsn), pa.string()), 9, "0")


def _municipality_names(idx: IntArray) -> pa.Array:
    return _pick([m[0] for m in L.MUNICIPALITIES], idx)


def _persons(rng: np.random.Generator, pop: _Population) -> tuple[pa.Table, IntArray]:
    order = rng.permutation(pop.bsn.size)
    table = pa.table(
        {
            "record_id": _ids("BRP", np.arange(order.size)),
            "bsn": _bsn_strings(pop.bsn[order]),
            "first_name": pop.first.take(order),
            "surname": pop.surname.take(order),
            "birth_date": _dates(pop.birth[order]),
            "sex": _pick(["M", "V"], pop.sex[order]),
            "postcode": pop.postcode.take(order),
            "house_number": pa.array(pop.house_number[order]),
            "municipality": _municipality_names(pop.municipality[order]),
        }
    )
    return table, order


@dataclass
class _Justice:
    tables: dict[str, pa.Table]
    truth: dict[str, IntArray]


def _justice(rng: np.random.Generator, pop: _Population, cfg: SynthConfig) -> _Justice:
    n = pop.bsn.size
    offenders = np.flatnonzero(rng.random(n) < cfg.offender_rate)
    counts = 1 + rng.poisson(0.6, size=offenders.size)
    person = np.repeat(offenders, counts)
    # Adults only: an offence falls on or after the 12th birthday (criminal responsibility).
    earliest = np.maximum(pop.birth[person] + 12 * 365, _days(_EVENTS_FROM))
    span = np.maximum(_days(_EVENTS_TO) - 400 - earliest, 1)
    offence_day = earliest + (rng.random(person.size) * span).astype(np.int64)
    order = np.lexsort((offence_day, person))
    person, offence_day = person[order], offence_day[order]
    m = person.size
    registration = offence_day + rng.integers(0, 120, size=m)
    offence = rng.choice(len(L.OFFENCES), size=m, p=_weights(L.OFFENCE_WEIGHTS))
    decision = rng.choice(len(L.DECISIONS), size=m, p=_weights(L.DECISION_WEIGHTS))
    case_no = rng.permutation(m)
    cases = pa.table(
        {
            "case_id": _ids("OM", case_no),
            "bsn": _bsn_strings(pop.bsn[person]),
            "offence_code": _pick(list(L.OFFENCES), offence),
            "offence_date": _dates(offence_day),
            "registration_date": _dates(registration),
            "decision": _pick(list(L.DECISIONS), decision),
        }
    )

    # Courts: most summoned cases end in a conviction.
    tried = np.flatnonzero((decision == 0) & (rng.random(m) < 0.88))
    k = tried.size
    judgment = registration[tried] + rng.integers(30, 400, size=k)
    sentence = rng.choice(len(L.SENTENCES), size=k, p=_weights(L.SENTENCE_WEIGHTS))
    verdict = (rng.random(k) < 0.04).astype(np.int64)
    sentence = np.where(verdict == 1, -1, sentence)
    prison_days = np.where(
        np.isin(sentence, [0, 1]), np.round(rng.lognormal(4.0, 1.0, size=k)).astype(np.int64) + 1, 0
    )
    hours = np.where(sentence == 2, rng.integers(10, 240, size=k), 0)
    fine = np.where(sentence == 3, np.round(rng.lognormal(5.5, 0.7, size=k), -1), np.nan)
    mask_days = ~np.isin(sentence, [0, 1])
    convictions = pa.table(
        {
            "conviction_id": _ids("RB", rng.permutation(k)),
            "case_id": cases.column("case_id").take(pa.array(tried)),
            "bsn": _bsn_strings(pop.bsn[person[tried]]),
            "judgment_date": _dates(judgment),
            "verdict": _pick(list(L.VERDICTS), verdict),
            "sentence_type": _sentence_names(sentence),
            "prison_days": pa.array(prison_days, mask=mask_days),
            "community_service_hours": pa.array(hours, mask=sentence != 2),
            "fine_eur": pa.array(fine, mask=np.isnan(fine)),
        }
    )

    # Prisons: unconditional prison sentences begin some weeks after the judgment.
    jailed = np.flatnonzero(sentence == 0)
    entry = judgment[jailed] + rng.integers(0, 90, size=jailed.size)
    exit_ = entry + np.maximum(1, (prison_days[jailed] * rng.uniform(0.66, 1.0, jailed.size)))
    stays = pa.table(
        {
            "stay_id": _ids("DJI", rng.permutation(jailed.size)),
            "bsn": _bsn_strings(pop.bsn[person[tried[jailed]]]),
            "facility": _pick(L.PRISONS, rng.integers(0, len(L.PRISONS), size=jailed.size)),
            "entry_date": _dates(entry),
            "exit_date": _dates(exit_.astype(np.int64)),
        }
    )

    # Reoffending: from each offender's first case, is there a new offence within two years?
    first = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    has_next = np.r_[person[1:] == person[:-1], False]
    nxt = np.minimum(np.arange(m) + 1, m - 1)
    gap = np.where(has_next, offence_day[nxt] - registration, -1)
    start = registration[first]
    g = gap[first]
    reoffended = (g >= 0) & (g <= 730)
    # A follow-up needs two full years of observation before the end of the data.
    observed = start + 730 <= _days(_EVENTS_TO)
    sel = first[observed]
    reoffending = pa.table(
        {
            "followup_id": _ids("WODC", rng.permutation(sel.size)),
            "bsn": _bsn_strings(pop.bsn[person[sel]]),
            "cohort_year": pa.array(
                start[observed].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
                + 1970
            ),
            "followup_start": _dates(start[observed]),
            "reoffended_2y": pa.array(reoffended[observed]),
            "days_to_reoffence": pa.array(
                np.where(reoffended[observed], g[observed], 0), mask=~reoffended[observed]
            ),
        }
    )
    return _Justice(
        tables={
            "prosecution_cases": cases,
            "convictions": convictions,
            "prison_stays": stays,
            "reoffending": reoffending,
        },
        truth={
            "prosecution_cases": person,
            "convictions": person[tried],
            "prison_stays": person[tried[jailed]],
            "reoffending": person[sel],
        },
    )


def _sentence_names(sentence: IntArray) -> pa.Array:
    names = np.array(list(L.SENTENCES), dtype=object)
    return pa.array(
        np.where(sentence >= 0, names[np.maximum(sentence, 0)], None), pa.string(), from_pandas=True
    )


def _cyber_reports(
    rng: np.random.Generator, pop: _Population, cfg: SynthConfig
) -> tuple[pa.Table, IntArray]:
    n = pop.bsn.size
    m = round(n * cfg.cyber_report_rate)
    person = rng.integers(0, n, size=m)
    first = _with_typos(rng, pop.first.take(pa.array(person)), cfg.name_typo_rate)
    surname = _with_typos(rng, pop.surname.take(pa.array(person)), cfg.name_typo_rate)

    birth = pop.birth[person].astype("datetime64[D]")
    year = birth.astype("datetime64[Y]")
    month = (birth.astype("datetime64[M]") - year.astype("datetime64[M]")).astype(np.int64) + 1
    day = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    swap = (rng.random(m) < cfg.swap_day_month_rate) & (day <= 12) & (day != month)
    swapped = (year.astype("datetime64[M]") + (day - 1).astype("timedelta64[M]")).astype(
        "datetime64[D]"
    ) + (month - 1).astype("timedelta64[D]")
    birth_days = np.where(swap, swapped, birth).astype("datetime64[D]").astype(np.int64)
    missing_birth = rng.random(m) < cfg.missing_birth_date_rate

    moved = rng.random(m) < cfg.moved_rate
    weights = _weights([x[3] for x in L.MUNICIPALITIES])
    new_muni = rng.choice(len(L.MUNICIPALITIES), size=m, p=weights)
    municipality = np.where(moved, new_muni, pop.municipality[person])
    fresh_postcode = _postcodes(rng, municipality)
    postcode = pc.if_else(pa.array(moved), fresh_postcode, pop.postcode.take(pa.array(person)))
    house = np.where(moved, rng.integers(1, 250, size=m), pop.house_number[person])

    report_day = _uniform_days(rng, np.datetime64("2019-01-01"), _EVENTS_TO, m)
    crime = rng.choice(len(L.CYBER_TYPES), size=m, p=_weights(L.CYBER_WEIGHTS))
    loss = np.round(rng.lognormal(5.0, 1.5, size=m), 2)
    no_loss = rng.random(m) < 0.3
    table = pa.table(
        {
            "report_id": _ids("PL", rng.permutation(m)),
            "report_date": _dates(report_day),
            "crime_type": _pick(list(L.CYBER_TYPES), crime),
            "loss_eur": pa.array(np.where(no_loss, 0.0, loss)),
            "first_name": first,
            "surname": surname,
            "birth_date": pa.array(
                birth_days.astype("datetime64[D]"), pa.date32(), mask=missing_birth
            ),
            "postcode": postcode,
            "house_number": pa.array(house),
            "municipality": _municipality_names(municipality),
        }
    )
    return table, person


def _drug_seizures(rng: np.random.Generator, cfg: SynthConfig) -> pa.Table:
    m = max(round(cfg.persons * cfg.seizure_rate), 20)
    place = rng.choice(len(L.PLACE_TYPES), size=m, p=_weights([35, 25, 8, 17, 15]))
    # The substance follows from the place: ports intercept precursors, dumps hold waste.
    xtc_or_powder = rng.choice([0, 1], size=m, p=[0.8, 0.2])
    precursor = rng.choice([2, 3, 4], size=m, p=[0.45, 0.35, 0.2])
    substance = np.select(
        [place <= 1, place == 2, place == 3, place == 4],
        [xtc_or_powder, rng.choice([1, 2, 3], size=m), np.full(m, 5), precursor],
    )
    muni_names = [x[0] for x in L.MUNICIPALITIES]
    weights = _weights([x[3] for x in L.MUNICIPALITIES])
    anywhere = rng.choice(len(muni_names), size=m, p=weights)
    dump_idx = np.array([muni_names.index(d[0]) for d in L.DUMP_MUNICIPALITIES])
    south = dump_idx[
        rng.choice(dump_idx.size, size=m, p=_weights([d[1] for d in L.DUMP_MUNICIPALITIES]))
    ]
    ports = np.array([muni_names.index(p) if p in muni_names else 0 for p in L.PORTS])
    port_muni = np.where(
        rng.random(m) < 0.7, muni_names.index("Rotterdam"), ports[rng.integers(0, ports.size, m)]
    )
    municipality = np.select([place >= 2, place == 4], [south, port_muni], anywhere)
    municipality = np.where(place == 4, port_muni, municipality)
    xtc = substance == 0
    tablets = np.where(xtc, np.round(rng.lognormal(3.0, 2.0, size=m)).astype(np.int64) + 1, 0)
    mdma = np.clip(rng.normal(165, 45, size=m), 5, 350).round(1)
    adulterant = rng.choice(len(L.ADULTERANTS), size=m, p=_weights(L.ADULTERANT_WEIGHTS))
    weight = np.round(rng.lognormal(2.5, 1.6, size=m), 2)
    return pa.table(
        {
            "seizure_id": _ids("NFI", rng.permutation(m)),
            "seizure_date": _dates(_uniform_days(rng, _EVENTS_FROM, _EVENTS_TO, m)),
            "place_type": _pick(list(L.PLACE_TYPES), place),
            "municipality": _pick(muni_names, municipality),
            "substance": _pick(list(L.SUBSTANCES), substance),
            "tablets": pa.array(tablets, mask=~xtc),
            "mdma_mg_per_tablet": pa.array(mdma, mask=~xtc),
            "adulterant": pa.array(
                np.array(list(L.ADULTERANTS), dtype=object)[adulterant], pa.string(), mask=~xtc
            ),
            "logo": pa.array(
                np.array(L.LOGOS, dtype=object)[rng.integers(0, len(L.LOGOS), m)],
                pa.string(),
                mask=~xtc,
            ),
            "colour": pa.array(
                np.array(L.COLOURS, dtype=object)[rng.integers(0, len(L.COLOURS), m)],
                pa.string(),
                mask=~xtc,
            ),
            "weight_kg": pa.array(weight, mask=xtc),
        }
    )


def _write(table: pa.Table, out_dir: Path, name: str, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    if "csv" in formats:
        path = out_dir / f"{name}.csv"
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
        paths.append(path)
    if "parquet" in formats:
        path = out_dir / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        paths.append(path)
    return paths


def generate(
    out_dir: Path, config: SynthConfig, *, progress: Progress | None = None
) -> SynthResult:
    """Write every source as CSV and/or Parquet into ``out_dir`` plus ``ground_truth.parquet``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # One child stream per part: changing one source's size does not reshuffle the others.
    seeds = np.random.SeedSequence(config.seed).spawn(5)
    rngs = [np.random.default_rng(s) for s in seeds]
    result = SynthResult(out_dir=out_dir)
    steps = len(SOURCES) + 1
    done = 0

    def step(name: str, table: pa.Table) -> None:
        nonlocal done
        result.files[name] = _write(table, out_dir, name, config.formats)
        result.rows[name] = table.num_rows
        done += 1
        if progress is not None:
            progress(f"synth {name}", done, steps)

    pop = _population(rngs[0], config.persons)
    persons, order = _persons(rngs[0], pop)
    step("persons", persons)
    truth_parts: list[pa.Table] = [_truth("persons", persons.column("record_id"), order)]
    del persons
    justice = _justice(rngs[1], pop, config)
    id_columns = {
        "prosecution_cases": "case_id",
        "convictions": "conviction_id",
        "prison_stays": "stay_id",
        "reoffending": "followup_id",
    }
    for name, table in justice.tables.items():
        step(name, table)
        truth_parts.append(_truth(name, table.column(id_columns[name]), justice.truth[name]))
    step("drug_seizures", _drug_seizures(rngs[2], config))
    reports, who = _cyber_reports(rngs[3], pop, config)
    step("cyber_reports", reports)
    truth_parts.append(_truth("cyber_reports", reports.column("report_id"), who))
    truth = pa.concat_tables(truth_parts)
    result.ground_truth = out_dir / GROUND_TRUTH
    pq.write_table(truth, result.ground_truth, compression="zstd")
    done += 1
    if progress is not None:
        progress("synth ground truth", done, steps)
    return result


def _truth(source: str, record_ids: pa.ChunkedArray | pa.Array, person: IntArray) -> pa.Table:
    n = len(record_ids)
    return pa.table(
        {
            "source": _pick([source], np.zeros(n, dtype=np.int64)),
            "record_id": record_ids,
            "person_id": pa.array(np.asarray(person, dtype=np.int64)),
        }
    )
