"""Images at intake: frozen as a fresh PNG of their pixels, refused if they cannot be decoded
or would be a bomb, and flagged by the checks if their pixels are a file in disguise."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.images import (
    chart,
    chunk,
    chunk_types,
    packed_png,
    parquet_file,
    pixels,
    png_of,
    smuggling_chunks,
    with_chunks,
)
from trenv.airlock.checks import FileCheck
from trenv.airlock.formats import check_file
from trenv.airlock.intake import IntakeLimits, read_workspace_file
from trenv.errors import Invalid
from trenv.judge.image import KEPT_CHUNKS


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "outputs").mkdir(parents=True)
    return root


def put(ws: Path, name: str, data: bytes) -> str:
    (ws / "outputs" / name).write_bytes(data)
    return f"outputs/{name}"


def check(ws: Path, rel: str) -> FileCheck:
    return check_file(read_workspace_file(ws, rel), project="p1", policy="trenv-default")


def by_rule(c: FileCheck, rule: str) -> list:
    return [f for f in c.findings if f.rule_id == rule]


def test_a_png_is_frozen_reencoded_without_its_ancillary_chunks(ws: Path) -> None:
    payload = parquet_file()
    source = with_chunks(chart("bar"), *smuggling_chunks(payload))
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"prVt"} <= set(chunk_types(source))
    frozen = read_workspace_file(ws, put(ws, "fig.png", source))
    assert set(chunk_types(frozen.data)) <= KEPT_CHUNKS
    assert np.array_equal(pixels(frozen.data), pixels(source))
    # the stored bytes, their sha256 and size are the re-encoded image's
    assert frozen.sha256 == hashlib.sha256(frozen.data).hexdigest()
    assert frozen.sha256 != hashlib.sha256(source).hexdigest()
    assert frozen.source_sha256 == frozen.read_sha256 == hashlib.sha256(source).hexdigest()
    assert frozen.size == len(frozen.data) < len(source)
    assert frozen.reencoded is not None
    assert "4 text chunks" in frozen.reencoded.summary()


def test_the_checks_record_what_the_reencoding_removed(ws: Path) -> None:
    payload = parquet_file()
    source = with_chunks(chart("bar"), *smuggling_chunks(payload))
    c = check(ws, put(ws, "fig.png", source))
    (note,) = by_rule(c, "figure-reencoded")
    assert note.status == "pass" and "re-encoded from its pixels" in note.message
    assert "4 text chunks" in note.message and "1 Exif chunk" in note.message
    assert "1 private chunk (prVt" in note.message
    assert hashlib.sha256(source).hexdigest()[:12] in note.message
    # the smuggled text is gone, but a checker still learns it was there
    (meta,) = by_rule(c, "figure-metadata")
    assert meta.status == "fail" and "3 text chunks" in meta.message and "removed" in meta.message
    (pixels_ok,) = by_rule(c, "figure-packed")
    assert pixels_ok.status == "pass"
    assert c.status == "fail"


def test_a_matplotlib_figure_loses_only_its_drawing_metadata(ws: Path) -> None:
    c = check(ws, put(ws, "fig.png", chart("line")))
    assert c.status == "review" and not by_rule(c, "figure-metadata")
    assert {f.rule_id for f in c.findings if f.status == "pass"} == {
        "figure-reencoded",
        "figure-packed",
    }
    assert "1 text chunk" in by_rule(c, "figure-reencoded")[0].message


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_a_parquet_file_packed_into_pixels_fails_its_check(ws: Path, mode: str) -> None:
    c = check(ws, put(ws, "fig.png", packed_png(parquet_file(), mode)))
    (packed,) = by_rule(c, "figure-packed")
    assert packed.status == "fail" and c.status == "fail"
    assert "look like packed bytes" in packed.message
    assert "bits per sample" in packed.message and "neighbour randomness" in packed.message


def test_undecodable_pixels_are_refused_at_intake(ws: Path) -> None:
    good = png_of(Image.new("RGB", (32, 32), "white"))
    broken = good[:33] + chunk(b"IDAT", b"not deflate data") + chunk(b"IEND", b"")
    with pytest.raises(Invalid) as refused:
        read_workspace_file(ws, put(ws, "broken.png", broken))
    assert "cannot be decoded as an image" in refused.value.problem
    assert refused.value.fix and "savefig" in refused.value.fix


def test_a_decompression_bomb_is_refused_at_intake(ws: Path) -> None:
    bomb = png_of(Image.new("L", (4000, 3000)))  # 12 Mpx of zeros in a few KB
    rel = put(ws, "bomb.png", bomb)
    with pytest.raises(Invalid) as refused:
        read_workspace_file(ws, rel, IntakeLimits(max_image_pixels=10_000_000))
    assert "4000 x 3000 pixels" in refused.value.problem
    assert "decompression bomb" in refused.value.problem
    assert refused.value.fix and "dpi" in refused.value.fix
