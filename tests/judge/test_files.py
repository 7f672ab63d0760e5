"""trenv.judge.files over real files written by the real libraries, and the text measures it
adds (record_rows, wrapped_blob_chars): data is told from notes and code by content."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import pickle
import sqlite3
import tarfile
import textwrap
import zipfile
from pathlib import Path

import duckdb
import matplotlib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.orc as orc
import pytest
import yaml
from PIL import Image, PngImagePlugin

from trenv.judge.files import (
    HEAD_BYTES,
    MB,
    FileLimits,
    data_format,
    decode_text,
    judge_file,
    judge_head,
)
from trenv.judge.text import record_rows, wrapped_blob_chars

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LIMITS = FileLimits()
ROOT = Path(__file__).resolve().parents[2]


def people(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "person": [f"{rng.integers(0, 2**62):016x}{rng.integers(0, 2**62):016x}"
                       for _ in range(rows)],
            "age": rng.integers(18, 90, rows),
            "city": rng.choice(["Amsterdam", "Den Haag", "New York City"], rows),
            "offence": rng.choice(["theft", "fraud", "assault"], rows),
            "date": pd.date_range("2020-01-01", periods=rows).astype(str),
        }
    )  # fmt: skip


def without_people(rows: int = 300) -> pd.DataFrame:
    return people(rows).drop(columns="person")


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Data files as the libraries write them, read back as bytes."""
    d = tmp_path_factory.mktemp("formats")
    frame = without_people()
    table = pa.Table.from_pandas(frame)
    out: dict[str, bytes] = {}
    frame.to_parquet(d / "p.parquet")
    out["parquet"] = (d / "p.parquet").read_bytes()
    feather.write_feather(table, d / "f.feather")
    out["feather"] = (d / "f.feather").read_bytes()
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    out["arrow-stream"] = sink.getvalue()
    orc.write_table(table, d / "o.orc")
    out["orc"] = (d / "o.orc").read_bytes()
    for protocol in range(6):
        data = frame.to_dict("records") if protocol < 2 else frame
        out[f"pickle-{protocol}"] = pickle.dumps(data, protocol=protocol)
    buffer = io.BytesIO()
    np.save(buffer, frame.age.to_numpy())
    out["npy"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.savez(buffer, age=frame.age.to_numpy())
    out["npz"] = buffer.getvalue()
    with sqlite3.connect(d / "s.sqlite") as con:
        frame.to_sql("people", con)
    out["sqlite"] = (d / "s.sqlite").read_bytes()
    duck = duckdb.connect(str(d / "d.duckdb"))
    duck.execute("create table people as select * from frame")
    duck.close()
    out["duckdb"] = (d / "d.duckdb").read_bytes()
    frame.to_excel(d / "x.xlsx")
    out["xlsx"] = (d / "x.xlsx").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("people.csv", frame.to_csv())
    out["zip"] = buffer.getvalue()
    out["gzip"] = gzip.compress(frame.to_csv().encode())
    out["bz2"] = bz2.compress(frame.to_csv().encode())
    out["xz"] = lzma.compress(frame.to_csv().encode())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = frame.to_csv().encode()
        info = tarfile.TarInfo("people.csv")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    out["tar"] = buffer.getvalue()
    frame.to_stata(d / "x.dta")
    out["stata"] = (d / "x.dta").read_bytes()
    return out


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("figures")
    fig, ax = plt.subplots()
    ax.plot(range(30), [i * i for i in range(30)])
    ax.set_title("Reoffending by year")
    out = {}
    for fmt in ("png", "jpg", "svg"):
        fig.savefig(d / f"fig.{fmt}")
        out[fmt] = (d / f"fig.{fmt}").read_bytes()
    plt.close(fig)
    return out


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("parquet", "Parquet"),
        ("feather", "Arrow"),
        ("arrow-stream", "Arrow IPC"),
        ("orc", "ORC"),
        *[(f"pickle-{p}", "pickle") for p in range(6)],
        ("npy", "NumPy array"),
        ("npz", "NumPy archive"),
        ("sqlite", "SQLite"),
        ("duckdb", "DuckDB"),
        ("xlsx", "Excel"),
        ("zip", "zip"),
        ("gzip", "gzip"),
        ("bz2", "bzip2"),
        ("xz", "xz"),
        ("tar", "tar"),
        ("stata", "Stata"),
    ],
)
def test_binary_data_is_named_by_its_bytes(
    binaries: dict[str, bytes], name: str, what: str
) -> None:
    data = binaries[name]
    verdict = judge_file(data, LIMITS)
    assert verdict.kind == "data" and not verdict.shown, (name, verdict)
    assert what in verdict.what, (name, verdict.what)
    # The first bytes suffice: the server refuses before reading the rest.
    early = judge_head(data[:HEAD_BYTES], len(data), LIMITS)
    assert early is not None and early.kind == "data" and early.rule == "format"


@pytest.mark.parametrize("name", ["parquet", "feather", "sqlite", "xlsx", "pickle-4", "npy"])
def test_encoded_copies_of_data_in_text_are_refused(binaries: dict[str, bytes], name: str) -> None:
    raw = binaries[name]
    encodings = {
        "base64 on one line": base64.b64encode(raw),
        "base64 wrapped at 76": base64.encodebytes(raw),
        "base64 wrapped at 40": "\n".join(
            textwrap.wrap(base64.b64encode(raw).decode(), 40)
        ).encode(),
        "hex": raw.hex().encode(),
        "hex wrapped at 32": "\n".join(textwrap.wrap(raw.hex(), 32)).encode(),
    }
    for how, text in encodings.items():
        verdict = judge_file(text, LIMITS)
        assert verdict.kind == "data" and verdict.rule == "blob", (name, how, verdict)
        assert "encoded data" in verdict.what


def test_a_small_encoded_token_is_text() -> None:
    note = f"the run's id is {base64.b64encode(b'x' * 40).decode()}\n".encode()
    assert judge_file(note, LIMITS).kind == "text"


@pytest.mark.parametrize(
    "render",
    [
        lambda f: f.to_csv(index=False),
        lambda f: f.to_csv(sep="\t"),
        lambda f: f.to_csv(sep=";", index=False),
        lambda f: f.to_string(),
        lambda f: f.age.to_string(),
        lambda f: f.to_json(orient="records"),
        lambda f: f.to_json(orient="records", lines=True),
        lambda f: json.dumps(json.loads(f.to_json(orient="records")), indent=2),
        lambda f: yaml.safe_dump(json.loads(f.to_json(orient="records"))),
        lambda f: f.to_html(),
        lambda f: f.to_latex(),
        lambda f: "\n".join("| " + " | ".join(map(str, r)) + " |" for r in f.itertuples()),
        lambda f: "rows = " + repr(list(f.itertuples(index=False, name=None))),
        lambda f: "\n".join(str(a) for a in f.age),
        # Rows of different lengths, so no two neighbours share a shape.
        lambda f: "\n".join(
            ",".join(map(str, list(r)[: 2 + i % 4])) for i, r in enumerate(f.itertuples())
        ),
    ],
    ids=["csv", "tsv", "semicolon", "to_string", "series", "json", "jsonl", "json-pretty",
         "yaml", "html", "latex", "markdown", "python-literal", "one-column", "ragged"],
)  # fmt: skip
def test_300_rows_are_refused_however_they_are_written(render) -> None:
    text = render(without_people()).encode()
    verdict = judge_file(text, LIMITS)
    assert verdict.kind == "data" and verdict.rule == "table-rows", verdict
    assert "rows" in verdict.what


def test_a_small_aggregate_is_shown() -> None:
    table = without_people().groupby("city").age.agg(["count", "mean"]).round(1)
    assert len(table) == 3
    verdict = judge_file(table.to_csv().encode(), LIMITS)
    assert verdict.kind == "text" and verdict.shown
    # 48 rows pass, 49 do not (the policy's output_max_table_rows).
    small = without_people(48).to_csv(index=False).encode()  # header + 48 rows
    assert record_rows(small.decode()) == 49
    assert judge_file(without_people(47).to_csv(index=False).encode(), LIMITS).shown
    assert not judge_file(without_people(60).to_csv(index=False).encode(), LIMITS).shown


def test_a_list_of_people_is_refused() -> None:
    listing = ("Seen in the linkage check: " + ", ".join(people(60).person) + ".").encode()
    verdict = judge_file(listing, LIMITS)
    assert verdict.kind == "data" and verdict.rule == "pseudonyms"


@pytest.mark.parametrize(
    "path",
    [
        "docs/lab.md",
        "README.md",
        "trenv/lab/server/guards.py",
        "trenv/airlock/service.py",
        "trenv/disclosure/table.py",
        "trenv/lab/labextension/package.json",
        "labextension/tsconfig.json",
        "trenv/disclosure/policies/sacro.yaml",
        "pyproject.toml",
        "Makefile",
    ],
)
def test_notes_code_and_configuration_are_shown(path: str) -> None:
    verdict = judge_file((ROOT / path).read_bytes(), LIMITS)
    assert verdict.kind == "text" and verdict.shown, (path, verdict)


def test_r_code_is_shown() -> None:
    script = (
        textwrap.dedent(
            """
        library(dplyr)
        people <- arrow::read_parquet("/data/people.parquet")
        by_region <- people %>%
          group_by(region, outcome) %>%
          summarise(n = n(), mean_age = mean(age))
        model <- glm(reoffended ~ age + region, data = people, family = binomial())
        summary(model)
        """
        )
        * 20
    )
    assert judge_file(script.encode(), LIMITS).kind == "text"


def test_a_notebook_is_recognised(tmp_path: Path) -> None:
    notebook = (ROOT / "notebooks").glob("*.ipynb")
    first = next(iter(sorted(notebook)))
    assert judge_file(first.read_bytes(), LIMITS).kind == "notebook"


def test_figures_are_shown(figures: dict[str, bytes]) -> None:
    for fmt, data in figures.items():
        verdict = judge_file(data, LIMITS)
        assert verdict.kind == "image" and verdict.shown, (fmt, verdict)


def test_figures_carrying_files_are_refused(
    figures: dict[str, bytes], binaries: dict[str, bytes]
) -> None:
    # A zip appended after the picture (a polyglot), in PNG and JPEG.
    for fmt in ("png", "jpg"):
        verdict = judge_file(figures[fmt] + binaries["zip"], LIMITS)
        assert verdict.kind == "data" and "after its end" in verdict.what, fmt
    # A table compressed into a zTXt chunk.
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", without_people().to_csv(), zip=True)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(figures["png"])).save(buffer, "PNG", pnginfo=info)
    verdict = judge_file(buffer.getvalue(), LIMITS)
    assert verdict.kind == "data" and verdict.rule == "image-extra"
    # A parquet file laid out as RGB pixels.
    raw = binaries["parquet"] * 4
    width = 64
    height = -(-len(raw) // (width * 3))
    pixels = np.frombuffer(raw.ljust(width * height * 3, b"\0"), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.reshape(height, width, 3)).save(buffer, "PNG")
    verdict = judge_file(buffer.getvalue(), LIMITS)
    assert verdict.kind == "data" and verdict.rule == "image-packed"
    # An SVG with a raster of the table embedded in base64.
    svg = figures["svg"].replace(
        b"</svg>",
        b'<image href="data:image/png;base64,' + base64.b64encode(raw) + b'"/></svg>',
    )
    assert judge_file(svg, LIMITS).rule == "blob"


def test_other_binaries_are_refused() -> None:
    assert data_format(b"%PDF-1.7\n") is not None
    assert judge_file(b"%PDF-1.7\n" + b"x" * 100, LIMITS).kind == "data"
    assert judge_file("café,1\n".encode("latin-1"), LIMITS).kind == "binary"
    assert judge_file(b"\x00\x01\x02\x03" * 100, LIMITS).kind == "binary"
    assert decode_text("\ufeffa,b\n".encode()) == "a,b\n"


def test_large_files_are_too_large_to_show() -> None:
    big = b"a plain line of notes, nothing tabular about it at all\n" * 30_000
    assert len(big) > MB
    verdict = judge_head(big[:HEAD_BYTES], len(big), LIMITS)
    assert verdict is not None and verdict.kind == "too-large" and "text file" in verdict.what
    assert judge_file(big, LIMITS).kind == "too-large"
    assert judge_head(big[:HEAD_BYTES], MB, LIMITS) is None  # at the limit: read and judged


def test_record_rows_counts_rows_not_code() -> None:
    code = (ROOT / "trenv/lab/server/decisions.py").read_text()
    assert record_rows(code) < 48
    assert record_rows("1,2\n3,4\n5,6\n") == 3
    assert record_rows("x = 1\ny = 2\nprint(x, y)\n") == 0
    one_line = ",".join(str(i) for i in range(16 * 60))
    assert record_rows(one_line) == 60  # sixteen values count as one row


def test_wrapped_blob_chars_needs_a_run_of_lines() -> None:
    lines = textwrap.wrap(base64.b64encode(bytes(range(256)) * 4).decode(), 40)
    full = [line for line in lines if len(line) >= 12]  # the short last line is not counted
    assert len(full) == len(lines) - 1
    assert wrapped_blob_chars("\n".join(lines)) == sum(len(line) for line in full)
    assert wrapped_blob_chars("abc123def456ghi\nhello\n") == 0  # one line is not a blob
